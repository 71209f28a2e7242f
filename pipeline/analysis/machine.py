"""Is the machine fit for benchmarking? Warnings and notes from the environment recorded
with a run, after pyperf's ``system show``: each names what was seen and how to fix it.

``busy_warnings`` lists what makes timings noisy or wrong: a busy machine before or after
the run, a load that changed while it ran, a CPU frequency governor other than
'performance', turbo boost, nohz_full with the intel_pstate driver (pyperf's only
"WARNING"), and a run spread over isolated and ordinary CPUs at once.

``tuning_notes`` lists what is normal on an untuned machine but that pyperf's
``system tune`` (or a kernel parameter) would change, for the report to show in smaller
print: no isolated CPUs, isolated CPUs the run did not use, isolated CPUs without
nohz_full, ASLR other than full randomisation, the perf event sample rate.

ASLR: pyperf counts full randomisation (``randomize_va_space`` = 2, Linux's default) as
tuned for benchmarks and advises turning it back on when it is partial (1) or off (0):
with full randomisation each trial's fresh worker process gets its own memory layout, so
layout effects average out over trials; with it off every trial shares one layout and one
bias. It does not make the timings noisier, so it is a note, not a warning.

Nothing is said about a figure that was not recorded (None), so a run from a machine that
does not expose one gets neither a warning nor a note about it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..units import format_cpu_list, parse_cpu_list


class MachineFacts(Protocol):
    """The recorded figures the warnings read (the ``environment`` table's columns)."""

    os: str
    cpu_logical: int | None
    load_avg_start: float | None
    cpu_percent_start: float | None
    cpu_percent_end: float | None
    cpu_governor: str | None
    cpu_turbo: str | None
    cpu_affinity: str | None
    isolated_cpus: str | None
    aslr: str | None
    details_json: str  # nohz_full, cpufreq_driver, perf_event_max_sample_rate, where read


# Warning thresholds. The 1-minute load counts runnable tasks, so a load above half the
# logical CPUs before the run means another program wanted a good share of the machine.
# The end-of-run load is stored but not warned about: it decays over about a minute, so it
# still carries the run's own workers. CPU use sampled just before and just after the run,
# while the run itself is idle, above a quarter of the machine means another program worked.
BUSY_LOAD_PER_CPU = 0.5
BUSY_CPU_PERCENT = 25.0
LOAD_CHANGE_PERCENT = 20.0  # points of machine-wide CPU use between before and after
RECOMMENDED_GOVERNOR = "performance"  # what pyperf's system tune sets
RECOMMENDED_ASLR = "2"  # full randomisation, which pyperf counts as tuned for benchmarks
RECOMMENDED_PERF_SAMPLE_RATE = 1  # what pyperf's system tune sets
PYPERF_TUNE = "`python -m pyperf system tune`"
# what a busy machine does to a run's answers, said beside them (other_programs)
BUSY_CONSEQUENCE = (
    "parallel cells had fewer free cores than they asked for, so their gains are understated"
)
BUSY_FIX = "close other programs, or wait until the load falls (see `uptime`), then rerun"
INTEL_PSTATE_DRIVERS = ("intel_pstate", "intel_cpufreq")  # intel_cpufreq: its passive mode
NO_TURBO_FIX = "`echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo`"
BOOST_FIX = "`echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost`"


def _details(env: MachineFacts) -> dict[str, Any]:
    """The extras of ``details_json`` (empty when missing or malformed)."""
    try:
        found = json.loads(env.details_json or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _cpus(text: object) -> set[int] | None:
    """CPU ids of a kernel CPU list such as ``"0,2-3"``; None when unknown or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_cpu_list(text)
    except ValueError:
        return None


def _load_warnings(env: MachineFacts) -> list[str]:
    """A warning when the 1-minute load was high as the run started."""
    cpus, load = env.cpu_logical, env.load_avg_start
    if not cpus or load is None or load <= BUSY_LOAD_PER_CPU * cpus:
        return []
    return [
        f"the machine was busy: 1-minute load {load:.1f} at the start on {cpus} CPUs; {BUSY_FIX}"
    ]


def _cpu_percent_warnings(env: MachineFacts) -> list[str]:
    """Warnings about other programs' CPU use just before and just after the run, and about
    a change between the two (the background load changed while the run went on)."""
    start, end = env.cpu_percent_start, env.cpu_percent_end
    warnings = [
        f"the machine was busy: CPU use {percent:.0f}% just {when} the run; {BUSY_FIX}"
        for when, percent in (("before", start), ("after", end))
        if percent is not None and percent > BUSY_CPU_PERCENT
    ]
    if start is not None and end is not None and abs(end - start) > LOAD_CHANGE_PERCENT:
        warnings.append(
            f"the machine's load changed during the run: CPU use {start:.0f}% just before, "
            f"{end:.0f}% just after; {BUSY_FIX}"
        )
    return warnings


def _turbo_fix(driver: object) -> str:
    """How to turn turbo boost off under the recorded cpufreq driver (both ways if unknown)."""
    if driver in INTEL_PSTATE_DRIVERS:
        way = NO_TURBO_FIX
    elif isinstance(driver, str) and driver:
        way = BOOST_FIX
    else:
        way = f"{NO_TURBO_FIX} (intel_pstate) or {BOOST_FIX} (other drivers)"
    return f"disable it with {way}, or {PYPERF_TUNE}"


def _config_warnings(env: MachineFacts) -> list[str]:
    """CPU settings pyperf advises changing for stable timings: governor and turbo."""
    warnings = []
    if env.cpu_governor:
        others = [g for g in env.cpu_governor.split(", ") if g != RECOMMENDED_GOVERNOR]
        if others:
            warnings.append(
                f"CPU frequency governor is {env.cpu_governor!r}; pyperf suggests "
                f"{RECOMMENDED_GOVERNOR!r} for steadier timings: set it with "
                f"`sudo cpupower frequency-set -g {RECOMMENDED_GOVERNOR}` or {PYPERF_TUNE}"
            )
    if env.cpu_turbo == "enabled":
        warnings.append(
            "CPU turbo boost is enabled; timings may drift with temperature and with how "
            f"many cores are busy: {_turbo_fix(_details(env).get('cpufreq_driver'))}"
        )
    return warnings


def _nohz_full_warnings(env: MachineFacts) -> list[str]:
    """pyperf's one "WARNING": nohz_full CPUs under the intel_pstate driver, which does not
    update their frequency (https://bugzilla.redhat.com/show_bug.cgi?id=1378529)."""
    details = _details(env)
    nohz = _cpus(details.get("nohz_full"))
    if not nohz or details.get("cpufreq_driver") != "intel_pstate":
        return []
    return [
        f"nohz_full is on for CPUs {format_cpu_list(nohz)} under the intel_pstate frequency "
        "driver, which pyperf calls incompatible with nohz_full (their frequency may not "
        "follow the load): boot with intel_pstate=disable, or without nohz_full="
    ]


def _isolation_warnings(env: MachineFacts) -> list[str]:
    """A warning when the run could use both isolated and ordinary CPUs: the kernel does
    not balance load onto isolated CPUs, so its workers may have shared fewer cores than
    the run counted."""
    isolated, affinity = _cpus(env.isolated_cpus), _cpus(env.cpu_affinity)
    if not isolated or not affinity or not affinity & isolated or affinity <= isolated:
        return []
    used = format_cpu_list(affinity & isolated)
    return [
        f"the run could use CPUs {format_cpu_list(affinity)}, of which {used} are isolated "
        "(isolcpus); the kernel does not spread work onto isolated CPUs, so workers may "
        f"have shared fewer cores than counted: start the run on the isolated CPUs alone "
        f"with `taskset -c {used} python -m pipeline run ...`"
    ]


def other_programs(env: MachineFacts) -> list[str]:
    """The busy-machine warnings alone: other programs used the CPU around the run (the
    1-minute load before it, CPU use just before or just after it). Where they did, the
    run's parallel cells had fewer free cores than they asked for, so measured gains are
    smaller than on a quiet machine: ``pipeline advise`` and the verdicts' readers say so
    beside an answer instead of presenting it as the machine's."""
    return [*_load_warnings(env), *_cpu_percent_warnings(env)]


def busy_warnings(env: MachineFacts) -> list[str]:
    """Short plain-English warnings that the machine was busy or tuned against
    benchmarking, each with the value seen and (but for the CPU-use ones) the fix.

    Empty when nothing is known or all is fine. ASLR and the absence of isolated CPUs are
    normal and never warned about: see ``tuning_notes``.
    """
    return [
        *other_programs(env),
        *_config_warnings(env),
        *_nohz_full_warnings(env),
        *_isolation_warnings(env),
    ]


def _isolation_notes(env: MachineFacts) -> list[str]:
    """Notes on CPU isolation (Linux only, more than one CPU): none isolated, isolated
    CPUs the run did not use, isolated CPUs that still take the scheduler tick."""
    if not env.os.startswith("Linux") or not env.cpu_logical or env.cpu_logical < 2:
        return []
    details = _details(env)
    if env.isolated_cpus is None:
        return [
            "no CPU is isolated, so other programs and kernel work share the run's CPUs: "
            f"to reserve some, boot with isolcpus=<cpus> {_tick_parameters('<cpus>', details)} "
            "and start the run on them with `taskset -c <cpus> python -m pipeline run ...`"
        ]
    isolated, affinity = _cpus(env.isolated_cpus), _cpus(env.cpu_affinity)
    if not isolated:
        return []  # malformed: unknown
    shown = format_cpu_list(isolated)
    notes = []
    if affinity and not affinity & isolated:
        notes.append(
            f"CPUs {shown} are isolated but the run used CPUs {format_cpu_list(affinity)}: start "
            f"it with `taskset -c {shown} python -m pipeline run ...` to measure on them"
        )
    ticking = isolated - (_cpus(details.get("nohz_full")) or set())
    if ticking:
        notes.append(
            f"isolated CPUs {format_cpu_list(ticking)} still take the scheduler tick and RCU "
            f"callbacks: add {_tick_parameters(format_cpu_list(ticking), details)} to the kernel "
            "command line"
        )
    return notes


def _tick_parameters(cpus: str, details: Mapping[str, Any]) -> str:
    """The kernel parameters that keep the tick and RCU callbacks off ``cpus``: nohz_full=
    and rcu_nocbs=, or rcu_nocbs= alone under intel_pstate (see ``_nohz_full_warnings``)."""
    if details.get("cpufreq_driver") == "intel_pstate":
        return (
            f"rcu_nocbs={cpus} (not nohz_full=, which pyperf calls incompatible with intel_pstate)"
        )
    return f"nohz_full={cpus} rcu_nocbs={cpus}"


def _aslr_notes(env: MachineFacts) -> list[str]:
    """A note when ASLR is not full randomisation (pyperf's advice; see the module doc)."""
    if not env.aslr or env.aslr.split()[0] == RECOMMENDED_ASLR:
        return []
    return [
        f"ASLR is {env.aslr!r}; pyperf advises full randomisation, so that each trial's "
        "fresh process gets its own memory layout and layout effects average out over "
        "trials: `echo 2 | sudo tee /proc/sys/kernel/randomize_va_space`, or "
        f"{PYPERF_TUNE}"
    ]


def _perf_event_notes(env: MachineFacts) -> list[str]:
    """A note when the kernel's perf event sample rate is above the 1 pyperf sets."""
    rate = _details(env).get("perf_event_max_sample_rate")
    if not isinstance(rate, int) or rate <= RECOMMENDED_PERF_SAMPLE_RATE:
        return []
    return [
        f"the kernel's perf event sample rate may reach {rate} per second; pyperf lowers it "
        "to limit time spent in the perf profiler: "
        f"`sudo sysctl kernel.perf_event_max_sample_rate={RECOMMENDED_PERF_SAMPLE_RATE}`, "
        f"or {PYPERF_TUNE}"
    ]


def tuning_notes(env: MachineFacts) -> list[str]:
    """Mild notes, each with its fix, on settings that are normal on an untuned machine but
    that pyperf's ``system tune`` or kernel parameters would change for steadier timings:
    CPU isolation, ASLR, the perf event sample rate. For smaller print than the warnings.

    Empty when nothing is known (None) or all is tuned.
    """
    return [*_isolation_notes(env), *_aslr_notes(env), *_perf_event_notes(env)]


HOST_FACTS = {  # what hosts sharing one matrix (hosts: spread) must have in common
    "cpu_model": "CPU model",
    "usable_cores": "usable cores",
    "interpreters": "interpreters",
}


def host_differences(hosts: Sequence[Mapping[Any, Any]]) -> list[str]:
    """How cluster hosts differ in CPU model, usable cores or interpreter versions
    (``hosts``: one dict per host with ``name`` and the HOST_FACTS keys): what makes
    sharing one matrix among them mix unlike measurements in each cell."""
    found = []
    for key, what in HOST_FACTS.items():
        values = {str(host["name"]): host.get(key) for host in hosts}
        if len({repr(value) for value in values.values()}) > 1:
            shown = ", ".join(f"{name}: {value}" for name, value in sorted(values.items()))
            found.append(f"the hosts differ in {what} ({shown})")
    return found
