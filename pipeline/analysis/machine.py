"""Is the machine fit for benchmarking? Warnings from the environment recorded with a run:
a busy machine before or after it, a load that changed while it ran, CPU settings that
pyperf advises changing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class MachineFacts(Protocol):
    """The recorded figures the warnings read (the ``environment`` table's columns)."""

    cpu_logical: int | None
    load_avg_start: float | None
    cpu_percent_start: float | None
    cpu_percent_end: float | None
    cpu_governor: str | None
    cpu_turbo: str | None


# Warning thresholds. The 1-minute load counts runnable tasks, so a load above half the
# logical CPUs before the run means another program wanted a good share of the machine.
# The end-of-run load is stored but not warned about: it decays over about a minute, so it
# still carries the run's own workers. CPU use sampled just before and just after the run,
# while the run itself is idle, above a quarter of the machine means another program worked.
BUSY_LOAD_PER_CPU = 0.5
BUSY_CPU_PERCENT = 25.0
LOAD_CHANGE_PERCENT = 20.0  # points of machine-wide CPU use between before and after
RECOMMENDED_GOVERNOR = "performance"  # what pyperf's system tune sets


def _load_warnings(env: MachineFacts) -> list[str]:
    """A warning when the 1-minute load was high as the run started."""
    cpus, load = env.cpu_logical, env.load_avg_start
    if not cpus or load is None or load <= BUSY_LOAD_PER_CPU * cpus:
        return []
    return [f"the machine was busy: 1-minute load {load:.1f} at the start on {cpus} CPUs"]


def _cpu_percent_warnings(env: MachineFacts) -> list[str]:
    """Warnings about machine-wide CPU use just before and just after the run, and about
    a change between the two (the background load changed while the run went on)."""
    start, end = env.cpu_percent_start, env.cpu_percent_end
    warnings = [
        f"the machine was busy: CPU use {percent:.0f}% just {when} the run"
        for when, percent in (("before", start), ("after", end))
        if percent is not None and percent > BUSY_CPU_PERCENT
    ]
    if start is not None and end is not None and abs(end - start) > LOAD_CHANGE_PERCENT:
        warnings.append(
            f"the machine's load changed during the run: CPU use {start:.0f}% just before, "
            f"{end:.0f}% just after"
        )
    return warnings


def _config_warnings(env: MachineFacts) -> list[str]:
    """Mild notes about CPU settings pyperf advises changing for stable timings."""
    warnings = []
    if env.cpu_governor:
        others = [g for g in env.cpu_governor.split(", ") if g != RECOMMENDED_GOVERNOR]
        if others:
            warnings.append(
                f"CPU frequency governor is {env.cpu_governor!r}; pyperf suggests "
                f"{RECOMMENDED_GOVERNOR!r} for steadier timings"
            )
    if env.cpu_turbo == "enabled":
        warnings.append(
            "CPU turbo boost is enabled; timings may drift with temperature "
            "(pyperf suggests disabling it)"
        )
    return warnings


def busy_warnings(env: MachineFacts) -> list[str]:
    """Short plain-English warnings that the machine was busy or tuned against benchmarking.

    Empty when nothing is known or all is fine. ASLR and the absence of isolated CPUs are
    normal and never warned about.
    """
    return [*_load_warnings(env), *_cpu_percent_warnings(env), *_config_warnings(env)]


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
