"""What a run was measured on: host, CPU, OS, Python build, packages, project commit.

Besides the inventory, a run records what pyperf records about the machine's state (load,
CPU use, frequency, governor, turbo, affinity, isolated CPUs, ASLR) so that a report can
warn when the machine was busy or badly configured (``busy_warnings``). Every reader of
/proc and /sys degrades to None when the file is missing or unreadable; the roots they read
under are the module constants ``SYS_CPU_ROOT`` and ``PROC_ROOT`` (parameters in each
reader, so tests can point them at a fake tree).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from ..units import format_cpu_list, parse_cpu_list
from .cpu_use import CpuWindow
from .launch import PROJECT_ROOT

SYS_CPU_ROOT = Path("/sys/devices/system/cpu")
PROC_ROOT = Path("/proc")
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


def read_line(path: Path) -> str | None:
    """The first line of a small text file, stripped; None if missing, unreadable or empty."""
    try:
        with path.open(encoding="utf-8") as stream:
            line = stream.readline()
    except (OSError, ValueError):  # ValueError covers UnicodeDecodeError
        return None
    return line.strip(" \t\n\x00") or None


def read_int(path: Path) -> int | None:
    """A file holding one integer, as an int (None if missing or not an integer)."""
    text = read_line(path)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def read_cpu_list(path: Path) -> str | None:
    """A kernel CPU-list file in compact form; None if missing, empty or malformed."""
    text = read_line(path)
    if text is None:
        return None
    try:
        return format_cpu_list(parse_cpu_list(text)) or None
    except ValueError:
        return None


def kernel() -> str:
    """The running kernel's release, e.g. ``"6.8.0-45-generic"``."""
    return platform.release()


def cpuinfo_mhz(proc: Path = PROC_ROOT) -> float | None:
    """The average ``cpu MHz`` over the CPUs /proc/cpuinfo lists (None if it has none)."""
    try:
        lines = (proc / "cpuinfo").read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return None
    values = []
    for line in lines:
        if line.startswith("cpu MHz"):
            try:
                values.append(float(line.split(":", 1)[1]))
            except (IndexError, ValueError):
                continue
    return round(sum(values) / len(values), 1) if values else None


def _positive(value: float) -> float | None:
    """``value`` rounded to 0.1, or None for the zero psutil reports when it does not know."""
    return round(value, 1) if value > 0 else None


def cpu_frequencies(proc: Path = PROC_ROOT) -> tuple[float | None, float | None]:
    """The current and maximum CPU frequency in MHz: psutil's, else /proc/cpuinfo's current."""
    try:
        freq = psutil.cpu_freq()
    except (AttributeError, NotImplementedError, OSError, ValueError):
        freq = None
    current = _positive(freq.current) if freq is not None else None
    maximum = _positive(freq.max) if freq is not None else None
    return current if current is not None else cpuinfo_mhz(proc), maximum


def cpu_governor(root: Path = SYS_CPU_ROOT) -> str | None:
    """The cpufreq scaling governors of all CPUs, distinct and sorted, e.g. ``"performance"``."""
    governors = {
        value
        for path in root.glob("cpu[0-9]*/cpufreq/scaling_governor")
        if (value := read_line(path)) is not None
    }
    return ", ".join(sorted(governors)) or None


def cpu_turbo(root: Path = SYS_CPU_ROOT) -> str | None:
    """``"enabled"``/``"disabled"`` from intel_pstate/no_turbo or cpufreq/boost, as pyperf reads."""
    no_turbo = read_line(root / "intel_pstate" / "no_turbo")
    if no_turbo in ("0", "1"):
        return "disabled" if no_turbo == "1" else "enabled"
    boost = read_line(root / "cpufreq" / "boost")
    if boost in ("0", "1"):
        return "enabled" if boost == "1" else "disabled"
    return None


def cpu_affinity() -> set[int] | None:
    """The CPUs this process may run on (None where the OS will not say)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        return set(psutil.Process().cpu_affinity())
    except (AttributeError, OSError, psutil.Error):
        return None


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc: Path = PROC_ROOT) -> float | None:
    """CPUs' worth of time the process's cgroup may use (cgroup v2 ``cpu.max``, or v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); None when unlimited or unreadable."""
    relative = ""
    for line in (read_line_all(proc / "self" / "cgroup") or "").splitlines():
        if line.startswith("0::"):
            relative = line[3:].lstrip("/")
    for folder in dict.fromkeys([root / relative, root]):
        text = read_line(folder / "cpu.max")
        if text:
            quota, _, period = text.partition(" ")
            if quota != "max" and period:
                return int(quota) / int(period)
            return None
    quota_us = read_int(root / "cpu" / "cpu.cfs_quota_us")
    period_us = read_int(root / "cpu" / "cpu.cfs_period_us")
    if quota_us is not None and quota_us > 0 and period_us:
        return quota_us / period_us
    return None


def usable_cores(affinity: set[int] | None, quota: float | None, logical: int | None) -> float:
    """How many CPUs a run can keep busy at once: the CPUs it may run on (affinity) capped
    by its cgroup's CPU quota."""
    cpus = float(len(affinity) if affinity else (logical or 1))
    return min(cpus, quota) if quota else cpus


def read_line_all(path: Path) -> str | None:
    """A small file's whole text, or None where it cannot be read."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def isolated_cpus(root: Path = SYS_CPU_ROOT) -> str | None:
    """The CPUs isolated from the scheduler (isolcpus), or None when there are none."""
    return read_cpu_list(root / "isolated")


def nohz_full_cpus(root: Path = SYS_CPU_ROOT) -> str | None:
    """The adaptive-tick (nohz_full) CPUs, or None when there are none."""
    return read_cpu_list(root / "nohz_full")


ASLR_MODES = {"0": "0 (disabled)", "1": "1 (partial)", "2": "2 (full)"}


def aslr(proc: Path = PROC_ROOT) -> str | None:
    """Address-space layout randomisation, e.g. ``"2 (full)"`` (None if unreadable)."""
    value = read_line(proc / "sys" / "kernel" / "randomize_va_space")
    return ASLR_MODES.get(value) if value is not None else None


def memory_available() -> int | None:
    """Bytes of memory available to new processes without swapping."""
    try:
        return int(psutil.virtual_memory().available)
    except (OSError, RuntimeError):
        return None


def uptime_s() -> float | None:
    """Seconds since the machine booted."""
    try:
        return round(time.time() - psutil.boot_time(), 1)
    except (OSError, RuntimeError):
        return None


def throttle_count(root: Path = SYS_CPU_ROOT) -> int | None:
    """Thermal throttling events since boot, summed over CPUs (None where not exposed)."""
    counts = [
        count
        for path in root.glob("cpu[0-9]*/thermal_throttle/core_throttle_count")
        if (count := read_int(path)) is not None
    ]
    return sum(counts) if counts else None


def details(
    affinity: set[int] | None, root: Path = SYS_CPU_ROOT, proc: Path = PROC_ROOT
) -> dict[str, object]:
    """Extras for ``details_json``: only the figures that could be read."""
    found: dict[str, object] = {
        "uptime_s": uptime_s(),
        "affinity_cpu_count": len(affinity) if affinity else None,
        "nohz_full": nohz_full_cpus(root),
        "perf_event_max_sample_rate": read_int(
            proc / "sys" / "kernel" / "perf_event_max_sample_rate"
        ),
        "cpufreq_driver": read_line(root / "cpu0" / "cpufreq" / "scaling_driver"),
        "cpuidle_driver": read_line(root / "cpuidle" / "current_driver"),
        "throttle_count": throttle_count(root),
    }
    return {key: value for key, value in found.items() if value is not None}


def capture(during: Callable[[], object] | None = None) -> dict[str, Any]:
    """The facts of the machine and interpreter for a run starting now, named as the
    ``environment`` table's columns (``packages`` and ``details`` as dicts).

    Samples other programs' CPU use for at least ``CPU_PERCENT_INTERVAL_S`` while
    ``during`` (the run's own set-up) goes on; that and the load average are taken first,
    before anything here starts a subprocess.
    """
    window = CpuWindow()
    load = load_average()
    if during is not None:
        during()
    busy = window.close()
    root, proc = SYS_CPU_ROOT, PROC_ROOT
    affinity = cpu_affinity()
    freq_mhz, freq_max_mhz = cpu_frequencies(proc)
    commit, dirty = git_state()
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_physical": psutil.cpu_count(logical=False),
        "cpu_logical": psutil.cpu_count(logical=True),
        "memory_total_bytes": psutil.virtual_memory().total,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()) + f" {platform.python_compiler()}",
        "python_executable": sys.executable,
        "packages": package_versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "load_avg_start": load,
        "boot_time": datetime.fromtimestamp(psutil.boot_time(), UTC),
        "kernel": kernel(),
        "cpu_freq_mhz": freq_mhz,
        "cpu_freq_max_mhz": freq_max_mhz,
        "cpu_governor": cpu_governor(root),
        "cpu_turbo": cpu_turbo(root),
        "cpu_affinity": format_cpu_list(affinity) if affinity else None,
        "cpu_quota": cgroup_cpu_quota(),
        "usable_cores": usable_cores(affinity, cgroup_cpu_quota(), psutil.cpu_count(logical=True)),
        "isolated_cpus": isolated_cpus(root),
        "aslr": aslr(proc),
        "memory_available_bytes": memory_available(),
        "cpu_percent_start": busy,
        "details": details(affinity, root, proc),
    }


def closing_figures(window: CpuWindow | None = None) -> dict[str, float | None]:
    """The figures taken when a run ends: 1-minute load and other programs' CPU use over
    ``window`` (opened once the trials and fork servers are done; by default, one opened
    now), which this waits out."""
    load = load_average()
    return {"load_avg_end": load, "cpu_percent_end": (window or CpuWindow()).close()}
