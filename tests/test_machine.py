"""pipeline.analysis.machine: each known noise source gives one warning (busy_warnings) or
mild note (tuning_notes) naming the value seen and the fix; a good or unknown (None) value
gives none. The environment is a plain dataclass fake of the ``environment`` row."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from pipeline.analysis import machine


@dataclasses.dataclass
class Facts:
    """The MachineFacts of a quiet, pyperf-tuned two-CPU Linux machine by default."""

    os: str = "Linux-6.8.0-45-generic-x86_64-with-glibc2.39"
    cpu_logical: int | None = 2
    load_avg_start: float | None = 0.1
    cpu_percent_start: float | None = 1.0
    cpu_percent_end: float | None = 2.0
    cpu_governor: str | None = "performance"
    cpu_turbo: str | None = "disabled"
    cpu_affinity: str | None = "1"
    isolated_cpus: str | None = "1"
    aslr: str | None = "2 (full)"
    details_json: str = json.dumps(
        {"nohz_full": "1", "cpufreq_driver": "acpi-cpufreq", "perf_event_max_sample_rate": 1}
    )


def facts(**changes: Any) -> Facts:
    """The tuned machine with ``changes``; ``details`` (a dict) is merged into details_json."""
    details = json.loads(Facts.details_json) | changes.pop("details", {})
    return Facts(details_json=json.dumps(details), **changes)


def unknown() -> Facts:
    """A machine that exposed nothing (as a non-Linux one, or an old row)."""
    return Facts(
        os="",
        cpu_logical=None,
        load_avg_start=None,
        cpu_percent_start=None,
        cpu_percent_end=None,
        cpu_governor=None,
        cpu_turbo=None,
        cpu_affinity=None,
        isolated_cpus=None,
        aslr=None,
        details_json="{}",
    )


def only(found: list[str]) -> str:
    assert len(found) == 1, found
    return found[0]


def test_a_tuned_quiet_machine_has_no_warnings_and_no_notes() -> None:
    assert machine.busy_warnings(facts()) == []
    assert machine.tuning_notes(facts()) == []


def test_nothing_known_gives_nothing() -> None:
    assert machine.busy_warnings(unknown()) == []
    assert machine.tuning_notes(unknown()) == []


@pytest.mark.parametrize("details_json", ["", "not json", "[1, 2]"])
def test_unreadable_details_are_unknown(details_json: str) -> None:
    env = facts(cpu_turbo="enabled")
    env.details_json = details_json
    # the turbo fix falls back to both ways; the isolated CPU's tick is then unknown-as-on
    assert "no_turbo" in only(machine.busy_warnings(env))
    assert "cpufreq/boost" in only(machine.busy_warnings(env))
    assert "nohz_full=1 rcu_nocbs=1" in only(machine.tuning_notes(env))


# -- busy_warnings ----------------------------------------------------------------------------
def test_high_load_names_the_load_and_the_fix() -> None:
    warning = only(machine.busy_warnings(facts(load_avg_start=3.1)))
    assert "1-minute load 3.1 at the start on 2 CPUs" in warning
    assert "close other programs" in warning
    assert "wait until the load falls" in warning


def test_load_at_the_threshold_or_unknown_is_fine() -> None:
    assert machine.busy_warnings(facts(load_avg_start=1.0)) == []  # half of 2 CPUs
    assert machine.busy_warnings(facts(load_avg_start=None)) == []
    assert machine.busy_warnings(facts(cpu_logical=None, load_avg_start=9.0)) == []


@pytest.mark.parametrize("governor", ["powersave", "performance, powersave", "schedutil"])
def test_governor_other_than_performance_names_it_and_the_fix(governor: str) -> None:
    warning = only(machine.busy_warnings(facts(cpu_governor=governor)))
    assert repr(governor) in warning
    assert "`sudo cpupower frequency-set -g performance`" in warning
    assert "`python -m pyperf system tune`" in warning


@pytest.mark.parametrize("governor", ["performance", None, ""])
def test_performance_or_unknown_governor_is_fine(governor: str | None) -> None:
    assert machine.busy_warnings(facts(cpu_governor=governor)) == []


@pytest.mark.parametrize(
    ("driver", "fix", "not_fix"),
    [
        ("intel_pstate", "intel_pstate/no_turbo", "cpufreq/boost"),
        ("intel_cpufreq", "intel_pstate/no_turbo", "cpufreq/boost"),
        ("acpi-cpufreq", "`echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost`", "no_turbo"),
    ],
)
def test_turbo_enabled_gives_the_fix_for_its_driver(driver: str, fix: str, not_fix: str) -> None:
    env = facts(cpu_turbo="enabled", details={"cpufreq_driver": driver, "nohz_full": None})
    warning = only(machine.busy_warnings(env))
    assert "turbo boost is enabled" in warning
    assert fix in warning
    assert not_fix not in warning
    assert "`python -m pyperf system tune`" in warning


def test_turbo_fix_under_an_unknown_driver_gives_both_ways() -> None:
    env = facts(cpu_turbo="enabled", details={"cpufreq_driver": None})
    warning = only(machine.busy_warnings(env))
    assert "`echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo`" in warning
    assert "`echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost`" in warning


@pytest.mark.parametrize("turbo", ["disabled", None])
def test_turbo_disabled_or_unknown_is_fine(turbo: str | None) -> None:
    assert machine.busy_warnings(facts(cpu_turbo=turbo)) == []


def test_nohz_full_under_intel_pstate_warns_with_the_fix() -> None:
    env = facts(details={"cpufreq_driver": "intel_pstate", "nohz_full": "1"})
    warning = only(machine.busy_warnings(env))
    assert "nohz_full is on for CPUs 1 under the intel_pstate" in warning
    assert "intel_pstate=disable" in warning


@pytest.mark.parametrize(
    "details",
    [
        {"cpufreq_driver": "acpi-cpufreq", "nohz_full": "1"},  # another driver
        {"cpufreq_driver": "intel_pstate", "nohz_full": None},  # no nohz_full
        {"cpufreq_driver": None, "nohz_full": "1"},  # driver unknown
    ],
)
def test_nohz_full_otherwise_is_fine(details: dict[str, Any]) -> None:
    assert machine.busy_warnings(facts(details=details)) == []


def test_a_run_over_isolated_and_ordinary_cpus_warns_with_the_fix() -> None:
    warning = only(machine.busy_warnings(facts(cpu_affinity="0-1", isolated_cpus="1")))
    assert "could use CPUs 0-1, of which 1 are isolated" in warning
    assert "`taskset -c 1 python -m pipeline run ...`" in warning


@pytest.mark.parametrize(
    ("affinity", "isolated"), [("1", "1"), ("0", "1"), (None, "1"), ("0-1", None)]
)
def test_a_run_on_isolated_cpus_alone_or_on_none_is_not_warned_about(
    affinity: str | None, isolated: str | None
) -> None:
    assert machine.busy_warnings(facts(cpu_affinity=affinity, isolated_cpus=isolated)) == []


def test_aslr_and_missing_isolation_are_never_warnings() -> None:
    env = facts(aslr="0 (disabled)", isolated_cpus=None, cpu_affinity="0-1")
    assert machine.busy_warnings(env) == []


# -- tuning_notes -----------------------------------------------------------------------------
def test_no_isolated_cpu_is_a_note_with_the_kernel_parameters_and_taskset() -> None:
    env = facts(isolated_cpus=None, cpu_affinity="0-1", details={"nohz_full": None})
    note = only(machine.tuning_notes(env))
    assert "no CPU is isolated" in note
    assert "isolcpus=<cpus> nohz_full=<cpus> rcu_nocbs=<cpus>" in note
    assert "`taskset -c <cpus>" in note


def test_no_isolated_cpu_under_intel_pstate_leaves_out_nohz_full() -> None:
    env = facts(isolated_cpus=None, details={"nohz_full": None, "cpufreq_driver": "intel_pstate"})
    note = only(machine.tuning_notes(env))
    assert "isolcpus=<cpus> rcu_nocbs=<cpus> (not nohz_full=" in note


@pytest.mark.parametrize(
    "changes",
    [
        {"os": "macOS-14.5-arm64-arm-64bit"},  # isolcpus is a Linux parameter
        {"os": ""},
        {"cpu_logical": 1},  # nothing to isolate from
        {"cpu_logical": None},
    ],
)
def test_no_isolation_note_off_linux_or_on_one_cpu(changes: dict[str, Any]) -> None:
    env = facts(isolated_cpus=None, cpu_affinity="0-1", details={"nohz_full": None}, **changes)
    assert machine.tuning_notes(env) == []


def test_isolated_cpus_the_run_did_not_use_are_a_note() -> None:
    note = only(machine.tuning_notes(facts(cpu_affinity="0", isolated_cpus="1")))
    assert "CPUs 1 are isolated but the run used CPUs 0" in note
    assert "`taskset -c 1 python -m pipeline run ...`" in note


def test_isolated_cpus_without_nohz_full_are_a_note() -> None:
    env = facts(cpu_affinity="2-3", isolated_cpus="2-3", cpu_logical=4, details={"nohz_full": "2"})
    note = only(machine.tuning_notes(env))
    assert "isolated CPUs 3 still take the scheduler tick" in note
    assert "nohz_full=3 rcu_nocbs=3" in note


@pytest.mark.parametrize(("aslr", "value"), [("0 (disabled)", "0"), ("1 (partial)", "1")])
def test_aslr_short_of_full_randomisation_is_a_note_with_the_fix(aslr: str, value: str) -> None:
    note = only(machine.tuning_notes(facts(aslr=aslr)))
    assert f"ASLR is '{value} (" in note
    assert "`echo 2 | sudo tee /proc/sys/kernel/randomize_va_space`" in note
    assert "`python -m pyperf system tune`" in note


@pytest.mark.parametrize("aslr", ["2 (full)", None])
def test_full_or_unknown_aslr_is_fine(aslr: str | None) -> None:
    assert machine.tuning_notes(facts(aslr=aslr)) == []


def test_perf_event_sample_rate_above_one_is_a_note_with_the_fix() -> None:
    note = only(machine.tuning_notes(facts(details={"perf_event_max_sample_rate": 100000})))
    assert "100000 per second" in note
    assert "`sudo sysctl kernel.perf_event_max_sample_rate=1`" in note


@pytest.mark.parametrize("rate", [1, None])
def test_perf_event_sample_rate_of_one_or_unknown_is_fine(rate: int | None) -> None:
    assert machine.tuning_notes(facts(details={"perf_event_max_sample_rate": rate})) == []


def test_an_untuned_laptop_gets_each_warning_and_note_once() -> None:
    env = Facts(
        cpu_logical=4,
        load_avg_start=0.3,
        cpu_governor="powersave",
        cpu_turbo="enabled",
        cpu_affinity="0-3",
        isolated_cpus=None,
        aslr="2 (full)",
        details_json=json.dumps(
            {"cpufreq_driver": "intel_pstate", "perf_event_max_sample_rate": 100000}
        ),
    )
    warnings, notes = machine.busy_warnings(env), machine.tuning_notes(env)
    assert [w.split(";")[0] for w in warnings] == [
        "CPU frequency governor is 'powersave'",
        "CPU turbo boost is enabled",
    ]
    assert len(notes) == 2
    assert notes[0].startswith("no CPU is isolated")
    assert notes[1].startswith("the kernel's perf event sample rate")


def test_other_programs_are_the_busy_warnings_about_cpu_use_alone() -> None:
    """What advise and verdicts say beside an answer: other programs' CPU use around the
    run (load before it, CPU use before or after it), not the machine's settings."""
    assert machine.other_programs(facts()) == []
    assert machine.other_programs(facts(cpu_governor="powersave", cpu_turbo="enabled")) == []
    busy = machine.other_programs(facts(cpu_percent_start=55, cpu_percent_end=50))
    assert "CPU use 55% just before" in busy[0]
    assert "CPU use 50% just after" in only(busy[1:])
    assert "1-minute load 1.8" in only(machine.other_programs(facts(load_avg_start=1.8)))
    assert machine.other_programs(unknown()) == []
