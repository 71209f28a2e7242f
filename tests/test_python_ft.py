"""scripts/python_ft.py: the machine's own mirror is reused, results are linked, the cache
is searched newest first, and an interpreter is accepted only when it is free-threaded."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from .helpers import free_threaded_python

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "python_ft.py"
_spec = importlib.util.spec_from_file_location("python_ft", SCRIPT)
assert _spec is not None
assert _spec.loader is not None
python_ft = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(python_ft)


def test_the_mirrors_come_from_the_machines_own_apt_sources(tmp_path: Path) -> None:
    """Debian archives with a main component, from both formats; not the security archive,
    nor another vendor's repository that happens to end in /debian."""
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k/one.gpg] http://local.example/debian/ bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "docker.sources").write_text(
        "Types: deb\nURIs: https://download.example.com/linux/debian\nSuites: bookworm\n"
        "Components: stable\nSigned-By: /k/docker.asc\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n"
        "\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    (tmp_path / "sources.list.d" / "again.sources").write_text(
        "Types: deb\nURIs: http://local.example/debian\nSuites: bookworm\nComponents: main\n"
        "\n"
        "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"
        "Components: main\n"
    )
    assert python_ft.debian_mirrors(tmp_path) == [
        ("http://local.example/debian", "/k/one.gpg"),  # once, with its keyring
        ("http://mirror.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg"),
    ]


def test_no_mirror_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(python_ft.Failed, match="no Debian mirror"):
        python_ft.debian_mirrors(tmp_path)


def test_versions_are_ordered_with_release_candidates_first() -> None:
    debian = ["3.14.0-1", "3.13.15-1", "3.14.0~rc3-1", "3.13.5-2+deb13u5"]
    assert sorted(debian, key=python_ft.version_key) == [
        "3.13.5-2+deb13u5",
        "3.13.15-1",
        "3.14.0~rc3-1",
        "3.14.0-1",
    ]
    assert sorted(["3.14.0t", "3.14.0rc3t"], key=python_ft.version_key) == [
        "3.14.0rc3t",
        "3.14.0t",
    ]


def test_the_cache_is_searched_newest_first(tmp_path: Path) -> None:
    for version in ("3.13.5t", "3.14.2t", "3.13.15t"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        (folder / f"python{version.rsplit('.', 1)[0]}t").touch()
    found = [Path(p).parent.parent.name for p in python_ft.cached(tmp_path)]
    assert found == ["3.14.2t", "3.13.15t", "3.13.5t"]


def test_the_result_is_linked_as_python3t(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "3.13.15t" / "bin" / "python3.13t"
    target.parent.mkdir(parents=True)
    target.touch()
    linked = python_ft.link(str(target), tmp_path / ".python-ft")
    assert linked == tmp_path / ".python-ft" / "bin" / "python3t"
    assert linked.resolve() == target
    assert (tmp_path / ".python-ft" / "bin" / "python3.13t").resolve() == target
    python_ft.link(str(target), tmp_path / ".python-ft")  # again: nothing to change
    assert linked.resolve() == target


def test_a_build_with_a_gil_is_not_taken_for_a_free_threaded_one() -> None:
    import sysconfig

    expected = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert python_ft.is_free_threaded(sys.executable) is expected
    assert python_ft.is_free_threaded("/nonexistent/python3t") is False


def test_an_interpreter_it_did_not_build_gets_no_backport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[object] = []
    monkeypatch.setattr(python_ft.subprocess, "run", lambda *a, **k: ran.append(a))
    python_ft.ensure_backport(sys.executable, tmp_path / "cache")
    assert ran == []


def test_a_working_link_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object) -> list[str]:
        raise AssertionError("searched, though the link works")

    real = Path(free_threaded_python()).resolve()
    linked = python_ft.link(str(real), tmp_path / ".python-ft")
    for way in ("on_path", "cached", "with_uv", "from_source"):
        monkeypatch.setattr(python_ft, way, never)
    found = python_ft.find(tmp_path / ".python-ft", tmp_path / "cache", 2, keep=False)
    assert found == str(linked)
