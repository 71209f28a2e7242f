"""A run's environment for people: the stored facts as a dict, then in groups (CPU,
memory, operating system, Python, noise sources), each fact with its label and format."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..metrics import Unit, format_value
from ..planning.axes import describe_interpreter
from ..storage.store import Store


def environment_dict(store: Store, run_id: int) -> dict[str, Any]:
    """A run's environment as a dict, packages and probed interpreters in words."""
    found = store.environment(run_id)
    if found is None:
        return {}
    values = found.model_dump(exclude={"run_id", "packages_json"})
    packages = json.loads(found.packages_json or "{}")
    values["packages"] = ", ".join(f"{name} {version}" for name, version in packages.items())
    probed = store.interpreters_frame(run_id)
    if not probed.empty:
        values["interpreters"] = "; ".join(
            f"{label}: {describe_interpreter(json.loads(facts))}"
            for label, facts in zip(probed["label"], probed["facts_json"], strict=True)
        )
    return values


# The environment for people: groups in a stable order, each fact with a label and the way
# it is printed. Facts a run lacks (None, '') are left out; anything recorded but not
# listed here ends up under "other".
def _mhz(value: Any) -> str:
    return f"{float(value):,.0f} MHz"


def _percent(value: Any) -> str:
    return f"{float(value):.0f}%"


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def _when(value: Any) -> str:
    return (
        value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else str(value)
    )


def _bytes(value: Any) -> str:
    return format_value(value, Unit.BYTES)


def _load(value: Any) -> str:
    return f"{float(value):.2f}"


EnvironmentFact = tuple[str, str, Callable[[Any], str]]  # column, label, formatter
ENVIRONMENT_GROUPS: dict[str, list[EnvironmentFact]] = {
    "CPU": [
        ("cpu_model", "model", str),
        ("cpu_physical", "physical cores", str),
        ("cpu_logical", "logical CPUs", str),
        ("cpu_affinity", "CPUs the run may use", str),
        ("cpu_quota", "cgroup CPU quota", lambda value: f"{float(value):g} CPUs"),
        ("usable_cores", "usable cores (affinity, quota)", lambda value: f"{float(value):g}"),
        ("cpu_freq_mhz", "frequency at the start", _mhz),
        ("cpu_freq_max_mhz", "maximum frequency", _mhz),
        ("cpu_governor", "frequency governor", str),
        ("cpu_turbo", "turbo boost", str),
        ("isolated_cpus", "isolated CPUs", str),
    ],
    "Memory": [
        ("memory_total_bytes", "total", _bytes),
        ("memory_available_bytes", "available at the start", _bytes),
    ],
    "Operating system": [
        ("hostname", "host", str),
        ("os", "platform", str),
        ("kernel", "kernel", str),
        ("machine", "architecture", str),
        ("aslr", "ASLR", str),
        ("boot_time", "booted", _when),
    ],
    "Python": [
        ("python_version", "version", str),
        ("python_implementation", "implementation", str),
        ("python_build", "build", str),
        ("python_executable", "executable", str),
        ("interpreters", "interpreters of the run", str),
        ("packages", "packages", str),
        ("git_commit", "pipeline commit", str),
        ("git_dirty", "uncommitted changes", _yes_no),
    ],
    "Noise sources": [
        ("load_avg_start", "1-minute load at the start", _load),
        ("load_avg_end", "1-minute load at the end", _load),
        ("cpu_percent_start", "other programs' CPU use just before", _percent),
        ("cpu_percent_end", "other programs' CPU use just after", _percent),
        ("details_json", "other readings", str),
    ],
}


def environment_groups(values: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """A run's environment (:func:`environment_dict`) as groups of (label, text), in the
    order above; facts not listed go to a last group, "other"."""
    listed = {column for facts in ENVIRONMENT_GROUPS.values() for column, _, _ in facts}
    groups = [
        (
            group,
            [
                (label, show(values[column]))
                for column, label, show in facts
                if values.get(column) not in (None, "", "{}")
            ],
        )
        for group, facts in ENVIRONMENT_GROUPS.items()
    ]
    other = [(key, str(value)) for key, value in values.items() if key not in listed and value]
    groups.append(("other", other))
    return [(group, rows) for group, rows in groups if rows]
