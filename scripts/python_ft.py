"""Get a free-threaded CPython into .python-ft/ (``make python-ft``). Standard library only.

In order, the first that works:

1. ``.python-ft/bin/python3t`` is already a working free-threaded interpreter;
2. one on PATH (``python3.14t``, ``python3.13t``) or built earlier into the cache
   (``$PIPELINE_PYTHON_FT_CACHE``, default ``~/.cache/pipeline/python-ft``, outside any
   clone, so CI and every clone reuse one build);
3. ``uv python find``, then ``uv python install`` (where uv is installed and can reach
   its downloads);
4. a build from source with ``./configure --disable-gil``. On Debian the source comes
   from ``apt-get source``, with deb-src entries for the suites that carry python3.14
   and python3.13 on the Debian mirror the machine already uses (no download host is
   named here), kept with their package lists in the build folder, so the machine's apt
   configuration is left as it was. About 3 to 6 minutes on 2 cores.

The result is linked as ``.python-ft/bin/python3t`` (and under its own name), which
experiments/interpreters.yaml names, and prints that absolute path on the last line. A
3.13 built here also gets the interpreters-pep-734 backport from PyPI (installed with
the pip of the Python running this script), so that the ``subinterpreters`` model can
run on it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

VERSIONS = ("3.14", "3.13")  # newest first: 3.14 also brings InterpreterPoolExecutor
SUITES = ("trixie", "forky", "sid")  # Debian suites that carry python3.13 / python3.14
APT = Path("/etc/apt")
BUILD_PACKAGES = (
    "gcc",
    "make",
    "libssl-dev",
    "zlib1g-dev",
    "libffi-dev",
    "libbz2-dev",
    "liblzma-dev",
    "libsqlite3-dev",
)
CHECK = "import sys, sysconfig; print(sysconfig.get_config_var('Py_GIL_DISABLED') or 0)"


class Failed(Exception):
    """This way of getting an interpreter did not work (the next one is tried)."""


def say(message: str) -> None:
    print(f"python-ft: {message}", file=sys.stderr, flush=True)


def is_free_threaded(python: str) -> bool:
    """Whether ``python`` runs and is a free-threaded build."""
    try:
        done = subprocess.run(
            [python, "-c", CHECK], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == "1"


def version_key(text: str) -> tuple[list[int], int, list[int]]:
    """Orders '3.13.5' < '3.14.0~rc3-1' (Debian) or '3.14.0rc3' (a cache folder) < '3.14.0'."""
    match = re.match(r"[^\d]*(\d+(?:\.\d+)*)(.*)", text)
    release, rest = (match.group(1), match.group(2)) if match else ("0", text)
    numbers = [int(part) for part in release.split(".")]
    pre = re.match(r"~|a\d|b\d|rc", rest) is not None
    return numbers, 0 if pre else 1, [int(part) for part in re.findall(r"\d+", rest)]


def cached(cache: Path) -> Iterable[str]:
    """Interpreters built earlier into the cache, newest first."""
    found = cache.glob("*/bin/python3.*t")
    return [str(p) for p in sorted(found, key=lambda p: version_key(p.parent.parent.name))][::-1]


def on_path() -> Iterable[str]:
    for version in VERSIONS:
        found = shutil.which(f"python{version}t")
        if found:
            yield found


def with_uv() -> Iterable[str]:
    """``uv python find`` for each version, then ``uv python install`` for each."""
    uv = shutil.which("uv")
    if uv is None:
        return
    for command in ("find", "install"):
        for version in VERSIONS:
            say(f"uv python {command} {version}t")
            try:
                done = subprocess.run(
                    [uv, "python", command, f"{version}t"],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                    env={**os.environ, "UV_HTTP_TIMEOUT": "30"},
                )
            except subprocess.TimeoutExpired:
                continue
            if done.returncode == 0 and command == "install":
                done = subprocess.run(
                    [uv, "python", "find", f"{version}t"], capture_output=True, text=True
                )
            if done.returncode == 0 and done.stdout.strip():
                yield done.stdout.strip().splitlines()[-1]


def debian_mirrors(apt: Path = APT) -> list[tuple[str, str]]:
    """The machine's own Debian mirrors with their keyrings, from one-line ``sources.list``
    entries and deb822 ``*.sources`` files: archives at ``.../debian`` with the ``main``
    component (not the security archive, nor another vendor's ``.../linux/debian``)."""
    found: list[tuple[str, str]] = []
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        for line in path.read_text().splitlines() if path.exists() else []:
            options = re.search(r"signed-by=([^\s\]]+)", line)
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 4 and parts[0] in ("deb", "deb-src"):
                keyring = options.group(1) if options else ""
                found += _debian(parts[1], parts[3:], keyring)
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            pairs = (line.partition(":") for line in stanza.splitlines() if ":" in line)
            fields = {key.strip(): value.strip() for key, _, value in pairs}
            if fields.get("Enabled", "yes").lower() == "no":
                continue
            components = fields.get("Components", "").split()
            for uri in fields.get("URIs", "").split():
                found += _debian(uri, components, fields.get("Signed-By", ""))
    if not found:
        raise Failed(f"no Debian mirror with a main component in {apt} (not Debian?)")
    keyrings: dict[str, str] = {}  # one entry per mirror (apt refuses two that disagree)
    for uri, keyring in found:
        keyrings[uri.rstrip("/")] = keyrings.get(uri.rstrip("/")) or keyring
    return list(keyrings.items())


def _debian(uri: str, components: list[str], keyring: str) -> list[tuple[str, str]]:
    path = uri.rstrip("/")
    if "main" in components and path.endswith("/debian") and not path.endswith("/linux/debian"):
        return [(uri, "" if keyring.startswith("-----") else keyring)]  # not inline keys
    return []


def apt(*args: str, private: Path | None = None) -> subprocess.CompletedProcess[str]:
    """apt-get or apt-cache; with ``private`` (a folder), on the deb-src list and package
    lists kept there, so the machine's own apt configuration and lists are left alone."""
    options: list[str] = []
    if private is not None:
        settings = {
            "Dir::Etc::sourcelist": private / "sources.list",
            "Dir::Etc::sourceparts": "-",
            "Dir::State::Lists": private / "lists",
            "Dir::Cache": private / "cache",
        }
        for key, value in settings.items():
            options += ["-o", f"{key}={value}"]
    return subprocess.run(
        [args[0], *options, *args[1:]],
        capture_output=True,
        text=True,
        check=False,
        cwd=private,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def debian_source(workdir: Path) -> Path:
    """Download and unpack the newest CPython source a Debian suite offers; its folder."""
    if shutil.which("apt-get") is None:
        raise Failed("no apt-get: not a Debian machine")
    if os.geteuid() != 0:
        raise Failed("apt-get source needs root here (run as root, or build by hand)")
    for folder in ("lists/partial", "cache/archives/partial"):
        (workdir / folder).mkdir(parents=True, exist_ok=True)
    entries = []
    for uri, keyring in debian_mirrors():
        say(f"deb-src entries for {', '.join(SUITES)} on the machine's mirror, {uri}")
        signed = f"[signed-by={keyring}] " if keyring else ""
        entries += [f"deb-src {signed}{uri} {suite} main\n" for suite in SUITES]
    (workdir / "sources.list").write_text("".join(entries))
    # a suite the mirror lacks makes apt-get fail; what the others offer still counts
    updated = apt("apt-get", "update", "-qq", private=workdir)
    for version in VERSIONS:
        package = f"python{version}"
        listed = apt("apt-cache", "madison", package, private=workdir).stdout
        candidates = sorted(
            {line.split("|")[1].strip() for line in listed.splitlines() if "|" in line},
            key=version_key,
            reverse=True,
        )
        for candidate in candidates:  # the newest the mirror really serves
            say(f"apt-get source {package}={candidate}")
            fetched = apt(
                "apt-get", "source", "--download-only", f"{package}={candidate}", private=workdir
            )
            tarballs = [t for t in workdir.glob(f"{package}_*.orig.tar.*") if t.suffix != ".asc"]
            if fetched.returncode == 0 and tarballs:
                return unpack(tarballs[0], workdir)
            for leftover in workdir.glob(f"{package}_*"):
                leftover.unlink()
    complaint = updated.stderr.strip()[-300:]
    raise Failed(
        f"the mirror has no downloadable source of python{' or python'.join(VERSIONS)}"
        + (f" (apt-get update: {complaint})" if complaint else "")
    )


def unpack(tarball: Path, workdir: Path) -> Path:
    say(f"unpacking {tarball.name}")
    with tarfile.open(tarball) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(workdir, filter="data")
        else:  # pragma: no cover - Python before 3.11.4
            archive.extractall(workdir)
    found = sorted(workdir.glob("Python-*/configure"))
    if not found:
        raise Failed(f"{tarball.name} holds no Python-*/configure")
    return found[0].parent


def build_packages() -> None:
    """Install the compilers and headers the build needs (Debian, root), if missing."""
    missing = [
        name
        for name in BUILD_PACKAGES
        if subprocess.run(["dpkg", "-s", name], capture_output=True, check=False).returncode
    ]
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        say(f"installing {' '.join(missing)}")
        apt("apt-get", "update", "-qq")
        done = apt("apt-get", "install", "-y", "-qq", *missing)
        if done.returncode != 0:
            raise Failed(f"cannot install {' '.join(missing)}: {done.stderr.strip()[-300:]}")


def build(source: Path, cache: Path, jobs: int) -> str:
    """configure --disable-gil, make, make install into the cache; the interpreter's path."""
    version = source.name.split("-", 1)[1]
    prefix = cache / f"{version}t"
    say(f"building CPython {version} free-threaded into {prefix} ({jobs} jobs)")
    steps = [
        [
            "./configure",
            "--disable-gil",
            f"--prefix={prefix}",
            "--with-ensurepip=no",
            "--disable-test-modules",
        ],
        ["make", f"-j{jobs}"],
        ["make", "install"],
    ]
    log = source.parent / "build.log"
    with log.open("w") as output:
        for step in steps:
            done = subprocess.run(step, cwd=source, stdout=output, stderr=subprocess.STDOUT)
            if done.returncode:
                tail = log.read_text()[-1500:]
                raise Failed(f"{' '.join(step)} failed; the end of {log}:\n{tail}")
    minor = ".".join(version.split(".")[:2])
    return str(prefix / "bin" / f"python{minor}t")


def from_source(cache: Path, jobs: int, keep: bool) -> Iterable[str]:
    workdir = Path(tempfile.mkdtemp(prefix="pipeline-python-ft-"))
    try:
        source = debian_source(workdir)
        build_packages()
        yield build(source, cache, jobs)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def link(python: str, dest: Path) -> Path:
    """``dest/bin/python3t`` and ``dest/bin/<its own name>`` -> ``python``."""
    folder = dest / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    target = Path(python).absolute()
    for name in ("python3t", target.name):
        entry = folder / name
        if entry.is_symlink() or entry.exists():
            if entry.resolve() == target.resolve():
                continue
            entry.unlink()
        entry.symlink_to(target)
    return folder / "python3t"


def find(dest: Path, cache: Path, jobs: int, keep: bool) -> str | None:
    existing = dest / "bin" / "python3t"
    if is_free_threaded(str(existing)):
        return str(existing)
    ways: list[tuple[str, Callable[[], Iterable[str]]]] = [
        ("on PATH", on_path),
        ("in the cache", lambda: cached(cache)),
        ("with uv", with_uv),
        ("built from source", lambda: from_source(cache, jobs, keep)),
    ]
    for how, candidates in ways:
        try:
            for python in candidates():
                if is_free_threaded(python):
                    say(f"found {how}: {python}")
                    return python
        except Failed as error:
            say(f"{how}: {error}")
    return None


BACKPORT = "interpreters-pep-734"  # PyPI: InterpreterPoolExecutor before Python 3.14
# the backport's module: interpreters_backport in its releases, interpreters_backports in
# its README (pipeline.worker.subinterpreters accepts both)
HAS_POOL = (
    "import concurrent.futures as f, importlib.util as u; "
    "print(int(hasattr(f, 'InterpreterPoolExecutor') or any(u.find_spec(name) is not None "
    "for name in ('interpreters_backport', 'interpreters_backports'))))"
)


def ensure_backport(python: str, cache: Path) -> None:
    """Give a build of ours that lacks InterpreterPoolExecutor (3.13) the
    interpreters-pep-734 backport, so that its subinterpreters cells can run. Never
    touches an interpreter this script did not build; a failure only means those cells
    are skipped."""
    if not Path(python).resolve().is_relative_to(cache.resolve()):
        return

    def ask(code: str) -> str:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    if ask(HAS_POOL) != "0":
        return
    target = ask("import sysconfig; print(sysconfig.get_path('purelib'))")
    version = ask("import sys; print('%d.%d' % sys.version_info[:2])")
    say(f"installing {BACKPORT} (subinterpreters for Python {version}) into {target}")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--only-binary=:all:", "--python-version", version,
         "--ignore-requires-python",  # checked against this pip's Python otherwise
         "--target", target, BACKPORT],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 or ask(HAS_POOL) != "1":
        said = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        say(f"could not install {BACKPORT} ({said}): subinterpreters cells will be skipped")


def default_cache() -> Path:
    """$PIPELINE_PYTHON_FT_CACHE, else pipeline/python-ft in the user's cache folder."""
    if os.environ.get("PIPELINE_PYTHON_FT_CACHE"):
        return Path(os.environ["PIPELINE_PYTHON_FT_CACHE"])
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "pipeline" / "python-ft"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", default=".python-ft", help="project-local folder")
    parser.add_argument(
        "--cache",
        default=str(default_cache()),
        help="where builds are kept, outside the clone (default: %(default)s)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep-source", action="store_true", help="keep the build folder")
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    python = find(Path(args.dest), cache, args.jobs, args.keep_source)
    if python is None:
        say("no free-threaded interpreter found, installed or built (see the lines above)")
        return 1
    existing = Path(args.dest) / "bin" / "python3t"
    linked = existing if python == str(existing) else link(python, Path(args.dest))
    ensure_backport(python, cache)
    say(f"{linked} -> {Path(python).resolve()}")
    print(linked.absolute())
    return 0


if __name__ == "__main__":
    sys.exit(main())
