"""Tests for pipeline.environment: the machine-state readers, capture() and busy_warnings().

Readers are pointed at fake /sys and /proc trees under tmp_path; nothing here depends on
timing or on what the machine running the tests happens to expose.
"""

from __future__ import annotations

import collections
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipeline.analysis import machine
from pipeline.execution import cpu_use, environment, records
from pipeline.storage import schema


def write(root: Path, relative: str, text: str) -> Path:
    """Write ``text`` to root/relative, making parent directories."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def empty_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Point the module's /sys and /proc roots at empty directories."""
    root, proc = tmp_path / "sys", tmp_path / "proc"
    root.mkdir()
    proc.mkdir()
    monkeypatch.setattr(environment, "SYS_CPU_ROOT", root)
    monkeypatch.setattr(environment, "PROC_ROOT", proc)
    return root, proc


# -- capture() -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def captured() -> schema.EnvironmentRow:
    return records.environment_row(environment.capture())


def test_capture_kernel(captured: schema.EnvironmentRow) -> None:
    assert captured.kernel == platform.release()


def test_capture_affinity_parses_back(captured: schema.EnvironmentRow) -> None:
    assert captured.cpu_affinity is not None
    assert environment.parse_cpu_list(captured.cpu_affinity) == os.sched_getaffinity(0)


def test_capture_aslr(captured: schema.EnvironmentRow) -> None:
    """What this machine's /proc says, in the stored form (unreadable: None)."""
    try:
        value = Path("/proc/sys/kernel/randomize_va_space").read_text().strip()
    except OSError:
        value = None
    expected = {"0": "0 (disabled)", "1": "1 (partial)", "2": "2 (full)"}.get(value or "")
    assert captured.aslr == expected


def test_capture_memory(captured: schema.EnvironmentRow) -> None:
    assert captured.memory_total_bytes == psutil.virtual_memory().total
    assert captured.memory_available_bytes is not None
    assert 0 < captured.memory_available_bytes <= captured.memory_total_bytes


def test_capture_details_json(captured: schema.EnvironmentRow) -> None:
    details = json.loads(captured.details_json)
    assert details["affinity_cpu_count"] == len(os.sched_getaffinity(0))
    assert None not in details.values()  # only the figures that could be read


def test_capture_keeps_older_fields(captured: schema.EnvironmentRow) -> None:
    assert captured.hostname == platform.node()
    assert captured.python_version == platform.python_version()
    assert captured.cpu_logical == psutil.cpu_count(logical=True)
    packages = json.loads(captured.packages_json)
    assert packages["pandas"] == metadata.version("pandas")  # the versions installed


def test_capture_on_a_bare_tree(empty_roots: tuple[Path, Path]) -> None:
    env = records.environment_row(environment.capture())
    assert env.cpu_governor is None
    assert env.cpu_turbo is None
    assert env.isolated_cpus is None
    assert env.aslr is None
    assert env.kernel == platform.release()  # not read from the trees
    details = json.loads(env.details_json)
    assert "nohz_full" not in details
    assert "perf_event_max_sample_rate" not in details


def test_closing_figures_keys() -> None:
    figures = environment.closing_figures()
    assert set(figures) == {"load_avg_end", "cpu_percent_end"}


# -- CPU lists -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cpus", "text"),
    [({0, 1}, "0-1"), ({0, 2, 3, 5}, "0,2-3,5"), (set(), ""), ({7}, "7"), ({1, 3}, "1,3")],
)
def test_format_cpu_list(cpus: set[int], text: str) -> None:
    assert environment.format_cpu_list(cpus) == text


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-1", {0, 1}), ("0,2-3,5\n", {0, 2, 3, 5}), ("", set()), (" (null)\n", set())],
)
def test_parse_cpu_list(text: str, cpus: set[int]) -> None:
    assert environment.parse_cpu_list(text) == cpus


def test_parse_cpu_list_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        environment.parse_cpu_list("zero-one")


# -- readers on fake trees ------------------------------------------------------------------
def test_readers_return_none_on_missing_files(tmp_path: Path) -> None:
    assert environment.read_line(tmp_path / "absent") is None
    assert environment.read_int(tmp_path / "absent") is None
    assert environment.cpu_governor(tmp_path) is None
    assert environment.cpu_turbo(tmp_path) is None
    assert environment.isolated_cpus(tmp_path) is None
    assert environment.nohz_full_cpus(tmp_path) is None
    assert environment.throttle_count(tmp_path) is None
    assert environment.aslr(tmp_path) is None
    assert environment.cpuinfo_mhz(tmp_path) is None


def test_readers_return_none_on_a_directory(tmp_path: Path) -> None:
    (tmp_path / "isolated").mkdir()
    assert environment.isolated_cpus(tmp_path) is None


def test_cpu_governor_distinct_values(tmp_path: Path) -> None:
    for cpu, governor in enumerate(["powersave", "performance", "powersave"]):
        write(tmp_path, f"cpu{cpu}/cpufreq/scaling_governor", governor + "\n")
    assert environment.cpu_governor(tmp_path) == "performance, powersave"


def test_cpu_governor_single(tmp_path: Path) -> None:
    write(tmp_path, "cpu0/cpufreq/scaling_governor", "performance\n")
    write(tmp_path, "cpu1/cpufreq/scaling_governor", "performance\n")
    assert environment.cpu_governor(tmp_path) == "performance"


@pytest.mark.parametrize(
    ("relative", "value", "expected"),
    [
        ("intel_pstate/no_turbo", "1", "disabled"),
        ("intel_pstate/no_turbo", "0", "enabled"),
        ("cpufreq/boost", "1", "enabled"),
        ("cpufreq/boost", "0", "disabled"),
        ("cpufreq/boost", "maybe", None),
    ],
)
def test_cpu_turbo(tmp_path: Path, relative: str, value: str, expected: str | None) -> None:
    write(tmp_path, relative, value + "\n")
    assert environment.cpu_turbo(tmp_path) == expected


def test_isolated_and_nohz_full(tmp_path: Path) -> None:
    write(tmp_path, "isolated", "2-3,5\n")
    write(tmp_path, "nohz_full", " (null)\n")
    assert environment.isolated_cpus(tmp_path) == "2-3,5"
    assert environment.nohz_full_cpus(tmp_path) is None


def test_isolated_empty_is_none(tmp_path: Path) -> None:
    write(tmp_path, "isolated", "\n")
    assert environment.isolated_cpus(tmp_path) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", "2 (full)"), ("1", "1 (partial)"), ("0", "0 (disabled)"), ("7", None)],
)
def test_aslr(tmp_path: Path, value: str, expected: str | None) -> None:
    write(tmp_path, "sys/kernel/randomize_va_space", value + "\n")
    assert environment.aslr(tmp_path) == expected


def test_cpuinfo_mhz_average(tmp_path: Path) -> None:
    write(
        tmp_path,
        "cpuinfo",
        "processor\t: 0\ncpu MHz\t\t: 1000.0\n\nprocessor\t: 1\ncpu MHz\t\t: 3000.0\n",
    )
    assert environment.cpuinfo_mhz(tmp_path) == 2000.0


def test_throttle_count_sums(tmp_path: Path) -> None:
    write(tmp_path, "cpu0/thermal_throttle/core_throttle_count", "3\n")
    write(tmp_path, "cpu1/thermal_throttle/core_throttle_count", "4\n")
    assert environment.throttle_count(tmp_path) == 7


def test_details_from_fake_tree(tmp_path: Path) -> None:
    root, proc = tmp_path / "sys", tmp_path / "proc"
    write(root, "nohz_full", "1\n")
    write(root, "cpuidle/current_driver", "intel_idle\n")
    write(proc, "sys/kernel/perf_event_max_sample_rate", "100000\n")
    found = environment.details({0, 1}, root, proc)
    assert found["affinity_cpu_count"] == 2
    assert found["nohz_full"] == "1"
    assert found["cpuidle_driver"] == "intel_idle"
    assert found["perf_event_max_sample_rate"] == 100000
    assert "cpufreq_driver" not in found


# -- busy_warnings() ------------------------------------------------------------------------
def quiet(**changes: Any) -> schema.EnvironmentRow:
    """A quiet, well-tuned two-CPU machine, with ``changes`` applied."""
    env = schema.EnvironmentRow(
        run_id=1,
        cpu_logical=2,
        load_avg_start=0.1,
        load_avg_end=0.2,
        cpu_percent_start=1.0,
        cpu_percent_end=2.0,
        cpu_governor="performance",
        cpu_turbo="disabled",
        aslr="2 (full)",
        isolated_cpus=None,
    )
    for name, value in changes.items():
        setattr(env, name, value)
    return env


def test_quiet_machine_has_no_warnings() -> None:
    assert machine.busy_warnings(quiet()) == []


def test_unknown_everything_has_no_warnings() -> None:
    assert machine.busy_warnings(schema.EnvironmentRow(run_id=1)) == []


def test_high_load_at_start() -> None:
    warnings = machine.busy_warnings(quiet(load_avg_start=3.1, load_avg_end=None))
    assert len(warnings) == 1
    assert "load 3.1" in warnings[0]
    assert "start" in warnings[0]
    assert "2 CPUs" in warnings[0]


def test_end_of_run_load_is_not_judged() -> None:
    # it still carries the run's own workers, so a high figure says nothing about others
    assert machine.busy_warnings(quiet(load_avg_start=0.1, load_avg_end=2.5)) == []


def test_load_without_cpu_count_is_not_judged() -> None:
    assert machine.busy_warnings(quiet(cpu_logical=None, load_avg_start=9.0)) == []


def test_cpu_percent_before_run() -> None:
    warnings = machine.busy_warnings(quiet(cpu_percent_start=60.0, cpu_percent_end=None))
    assert warnings == [
        f"the machine was busy: CPU use 60% just before the run; {machine.BUSY_FIX}"
    ]


def test_powersave_governor() -> None:
    warnings = machine.busy_warnings(quiet(cpu_governor="powersave"))
    assert len(warnings) == 1
    assert "powersave" in warnings[0]


def test_mixed_governors_warn() -> None:
    warnings = machine.busy_warnings(quiet(cpu_governor="performance, powersave"))
    assert len(warnings) == 1
    assert "powersave" in warnings[0]


def test_turbo_enabled() -> None:
    warnings = machine.busy_warnings(quiet(cpu_turbo="enabled"))
    assert len(warnings) == 1
    assert "turbo" in warnings[0]


def test_aslr_and_isolation_never_warn() -> None:
    env = quiet(aslr="0 (disabled)", isolated_cpus=None)
    assert machine.busy_warnings(env) == []
    env = quiet(aslr="2 (full)", isolated_cpus="1")
    assert machine.busy_warnings(env) == []


def test_a_change_of_load_during_the_run_is_warned_about() -> None:
    warnings = machine.busy_warnings(quiet(cpu_percent_start=1.0, cpu_percent_end=24.0))
    assert warnings == [
        "the machine's load changed during the run: CPU use 1% just before, 24% just after; "
        + machine.BUSY_FIX
    ]


def test_cgroup_quota_v2_and_v1(tmp_path: Path) -> None:
    """cpu.max of the process's cgroup (v2), else cfs quota over period (v1); unlimited is
    None; the usable cores are the affinity capped by it."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("0::/box\n")
    v2 = tmp_path / "v2"
    (v2 / "box").mkdir(parents=True)
    (v2 / "box" / "cpu.max").write_text("150000 100000\n")
    assert environment.cgroup_cpu_quota(v2, proc) == 1.5
    (v2 / "box" / "cpu.max").write_text("max 100000\n")
    assert environment.cgroup_cpu_quota(v2, proc) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert environment.cgroup_cpu_quota(v1, proc) == 2.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert environment.cgroup_cpu_quota(v1, proc) is None
    assert environment.usable_cores({0, 1, 2, 3}, 1.5, 8) == 1.5
    assert environment.usable_cores({0, 1}, None, 8) == 2.0
    assert environment.usable_cores(None, None, 4) == 4.0


# -- CPU use around the run ------------------------------------------------------------------
def test_cpu_window_leaves_out_this_process(monkeypatch) -> None:
    """Other programs' CPU use: the machine's busy time less this process's own (the run's
    set-up or summary done while the window is open), guests counted once. On 2 CPUs
    over 2 s (4 CPU-seconds), 2.5 s busy of which 1 s this process's: 37.5%."""
    fields = "user nice system idle iowait irq softirq steal guest guest_nice"
    times = collections.namedtuple("scputimes", fields)  # type: ignore[misc]
    readings = iter(
        [
            times(10.0, 0.0, 5.0, 100.0, 1.0, 0.0, 0.0, 0.0, 2.0, 0.0),
            times(11.5, 0.0, 5.5, 101.0, 1.5, 0.5, 0.0, 0.0, 2.5, 0.0),
        ]
    )
    own = iter([3.0, 4.0])
    monkeypatch.setattr(cpu_use, "cpu_times", lambda: next(readings))
    monkeypatch.setattr(cpu_use, "own_cpu_s", lambda: next(own))
    assert cpu_use.CpuWindow(minimum_s=0.0).close() == 37.5


def test_the_run_set_up_goes_on_inside_the_cpu_window(monkeypatch) -> None:
    """capture() opens the window, does the run's set-up, then waits out the rest of the
    window: the set-up starts before the window's minimum is up, the figure after."""
    events: list[tuple[str, float]] = []
    close = cpu_use.CpuWindow.close

    def closing(window: cpu_use.CpuWindow) -> float | None:
        events.append(("opened", window.opened_s))
        found = close(window)
        events.append(("closed", time.monotonic()))
        return found

    monkeypatch.setattr(cpu_use.CpuWindow, "close", closing)
    env = environment.capture(lambda: events.append(("set-up", time.monotonic())))
    names = [name for name, _ in events]
    assert names == ["set-up", "opened", "closed"]
    moments = dict(events)
    assert moments["opened"] <= moments["set-up"]
    assert moments["set-up"] < moments["opened"] + cpu_use.CPU_PERCENT_INTERVAL_S
    assert moments["closed"] >= moments["opened"] + cpu_use.CPU_PERCENT_INTERVAL_S
    assert env["cpu_percent_start"] is not None
    assert 0.0 <= env["cpu_percent_start"] <= 100.0
