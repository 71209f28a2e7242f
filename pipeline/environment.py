"""What a run was measured on: host, CPU, OS, Python build, packages, project commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

from . import store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "pipeline",
    "typer",
    "sqlmodel",
    "sqlalchemy",
    "pandas",
    "numpy",
    "scipy",
    "seaborn",
    "matplotlib",
    "psutil",
    "pydantic",
    "pyyaml",
    "jinja2",
    "rich",
)


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def physical_cores() -> int:
    """Physical cores (the ideal speedup's ceiling), falling back to logical ones."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def load_average() -> float | None:
    """The one-minute load average, where the OS has one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the measurements and the report."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_state(root: Path = PROJECT_ROOT) -> tuple[str | None, bool | None]:
    """The project's git commit and whether its work tree has changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def capture() -> store.Environment:
    """The environment row for a run starting now."""
    commit, dirty = git_state()
    return store.Environment(
        run_id=0,
        hostname=platform.node(),
        os=platform.platform(),
        machine=platform.machine(),
        cpu_model=cpu_model(),
        cpu_physical=psutil.cpu_count(logical=False),
        cpu_logical=psutil.cpu_count(logical=True),
        memory_total_bytes=psutil.virtual_memory().total,
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        python_build=" ".join(platform.python_build()) + f" {platform.python_compiler()}",
        python_executable=sys.executable,
        packages_json=store.to_json(package_versions()),
        git_commit=commit,
        git_dirty=dirty,
        load_avg_start=load_average(),
        boot_time=datetime.fromtimestamp(psutil.boot_time(), UTC),
    )
