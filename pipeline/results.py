"""Stored runs read back through the analysis: the cell summary, verdicts, listings,
exports and comparisons. The one module that joins storage and analysis (analysis stays
pure functions on frames; SQL stays in storage)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from .cells import CELL_KEYS, with_optional_keys
from .errors import PipelineError
from .metrics import Unit, format_value
from .planning.axes import describe_interpreter
from .storage import engine, schema, store

if TYPE_CHECKING:
    from .analysis.inference import Rule


def summarise(results: store.Store, run_id: int, trials: pd.DataFrame | None = None) -> None:
    """Compute the run's cell statistics and store them behind ``cell_summary``
    (``trials``: the run's trial_results rows, when the caller has them already)."""
    from .analysis import stats

    trials = results.trials_frame(run_id) if trials is None else trials
    if trials.empty:
        return
    run_row = results.resolve_run(run_id)
    summary = stats.summarize_cells(
        trials,
        cores=cores(results, run_id),
        target_ci=run_row.target_ci,
        rule=rule(run_row),
    )
    results.save_cell_stats(run_id, summary)


def cores(results: store.Store, run_id: int) -> float:
    """The CPUs a run could keep busy: affinity capped by its cgroup quota (older runs:
    the physical cores; cluster runs: the host with the fewest)."""
    on_hosts = host_cores(results, run_id)
    if on_hosts:  # a cluster run: the hosts', not the orchestrator's (the fewest)
        return min(on_hosts.values())
    found = results.environment(run_id)
    if found is None:
        return 1.0
    return float(found.usable_cores or found.cpu_physical or found.cpu_logical or 1)


def undecided_cells(results: store.Store, run_id: int) -> set[int]:
    """The run's cells that some claim's comparison has not decided yet (computed from
    the trials stored so far; nothing is written)."""
    from .analysis import claims

    trials = results.trials_frame(run_id)
    if trials.empty:
        return set()
    run_row = results.resolve_run(run_id)
    # the claims find their comparisons by the cells' keys, and decide them from the
    # trials: the cell statistics (a third of the time, after every round) are not needed
    cells = with_optional_keys(trials).drop_duplicates("cell_id").sort_values("cell_id")
    data = claims.gather_evidence(
        cells[["cell_id", *CELL_KEYS]],
        trials,
        results.facts_frame(run_id),
        cores(results, run_id),
        rule(run_row),
    )
    return claims.undecided_cells(data)


def rule(run_row: schema.Run) -> Rule:
    """How a run's comparisons are decided (inference.run_rule)."""
    from .analysis.inference import run_rule

    return run_rule(run_row.model_dump())


def verdicts(
    results: store.Store,
    run: str | int | None,
    trials: pd.DataFrame | None = None,
    *,
    host: str | None = None,
) -> list[Any]:
    """The verdicts on the explainer's claims for one run (see pipeline.claims); with
    ``host``, from that host's cells only (a run with hosts: each)."""
    from .analysis import claims, stats

    run_row = results.resolve_run(run)
    run_id = run_row.id or 0
    trials = results.trials_frame(run_id) if trials is None else trials
    if results.summary_frame(run_id).empty and not trials.empty:
        summarise(results, run_id, trials)
    summary, facts = results.summary_frame(run_id), results.facts_frame(run_id)
    usable = cores(results, run_id)
    if host is not None:
        known = sorted(set(summary["host"]) - {""}) if "host" in summary else []
        if host not in known:
            raise PipelineError(
                f"run {run_id} has no host {host!r} (hosts: {', '.join(known) or 'none'})"
            )
        summary = summary[summary["host"].eq(host)]
        trials, facts = trials[trials["host"].eq(host)], facts[facts["host"].eq(host)]
        usable = host_cores(results, run_id).get(host, usable)
    return claims.verdicts(
        stats.numeric_summary(summary),
        trials,
        facts,
        usable,
        rule(run_row),
    )


def cell_hosts(results: store.Store, run_id: int) -> list[str]:
    """The hosts that are an axis of a run's cells (hosts: each), in order; [] otherwise."""
    return sorted(set(results.cell_hosts(run_id)) - {""})


def host_cores(results: store.Store, run_id: int) -> dict[str, float]:
    """Usable cores of each cluster host of a run."""
    found = results.hosts_frame(run_id)
    return {
        str(name): float(value or logical or 1)
        for name, value, logical in zip(
            found.get("name", []),
            found.get("usable_cores", []),
            found.get("cpu_logical", []),
            strict=True,
        )
    }


def run_dict(results: store.Store, run_row: schema.Run) -> dict[str, Any]:
    """A run's row as a dict, with its trial order and count."""
    values = run_row.model_dump()
    values["order"] = run_row.trial_order
    values["trial_count"] = sum(results.trial_counts(run_row.id or 0).values())
    return values


def environment_dict(results: store.Store, run_id: int) -> dict[str, Any]:
    """A run's environment as a dict, packages and probed interpreters in words."""
    found = results.environment(run_id)
    if found is None:
        return {}
    values = found.model_dump(exclude={"run_id", "packages_json"})
    packages = json.loads(found.packages_json or "{}")
    values["packages"] = ", ".join(f"{name} {version}" for name, version in packages.items())
    probed = results.interpreters_frame(run_id)
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
        ("cpu_percent_start", "machine-wide CPU use just before", _percent),
        ("cpu_percent_end", "machine-wide CPU use just after", _percent),
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


# -- the database as a product: runs, one run, exports ----------------------------------------
def where_text(results: store.Store, run_id: int) -> str:
    """Where a run was measured, in words: its cluster hosts, or the orchestrator's host."""
    names = list(results.hosts_frame(run_id).get("name", []))
    if names:
        return ", ".join(str(name) for name in names)
    found = results.environment(run_id)
    return found.hostname if found else ""


def runs_frame(results: store.Store) -> pd.DataFrame:
    """Every run, newest first: id, name, status, start, duration, host, interpreters and
    measured trials by status."""
    rows = []
    for row in results.runs():
        run_id = row.id or 0
        counts = results.trial_counts(run_id)
        finished = row.finished_at
        rows.append(
            {
                "id": run_id,
                "name": row.name,
                "status": row.status,
                "started": row.started_at.isoformat(sep=" ", timespec="seconds"),
                "duration_s": round((finished - row.started_at).total_seconds(), 1)
                if finished is not None
                else None,
                "host": where_text(results, run_id),
                "interpreters": ", ".join(results.interpreters(run_id)),
                "trials": ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            }
        )
    columns = ["id", "name", "status", "started", "duration_s", "host", "interpreters", "trials"]
    return pd.DataFrame(rows, columns=columns)


def show(
    results: store.Store, run: str | int | None
) -> tuple[schema.Run, dict[str, Any], pd.DataFrame]:
    """A run, its environment (as a dict) and the main columns of its cell summary."""
    from .analysis.stats import CELL_COLUMNS  # scipy: imported only by the commands that need it

    shown = [
        "cell_id",
        *(column for column in CELL_COLUMNS if column != "interpreter"),
        "n_ok",
        "median_wall_s",
        "ci_low_wall_s",
        "ci_high_wall_s",
        "speedup",
        "speedup_ci_low",
        "speedup_ci_high",
        "stop_reason",
    ]
    run_row = results.resolve_run(run)
    summary = results.summary_frame(run_row.id or 0)
    return (
        run_row,
        environment_dict(results, run_row.id or 0),
        summary[[column for column in shown if column in summary.columns]],
    )


def hosts(results: store.Store, run: str | int | None) -> pd.DataFrame:
    """The cluster hosts of a run, for people: name, machine, cores, memory, interpreters
    and how many trials each ran (empty for a run on one machine)."""
    run_row = results.resolve_run(run)
    found = results.hosts_frame(run_row.id or 0)
    if found.empty:
        return found
    counts = results.trials_frame(run_row.id or 0)["trial_host"].value_counts()
    return pd.DataFrame(
        {
            "host": found["name"],
            "hostname": found["hostname"],
            "cpu_model": found["cpu_model"],
            "usable_cores": found["usable_cores"],
            "memory": [_bytes(value) for value in found["memory_total_bytes"]],
            "interpreters": [
                ", ".join(
                    f"{label} {facts.get('version')}"
                    for label, facts in sorted(json.loads(text).items())
                )
                for text in found["interpreters_json"]
            ],
            "trials": [int(counts.get(name, 0)) for name in found["name"]],
        }
    )


def host_warnings(results: store.Store, run_id: int) -> list[str]:
    """A report note for a run whose trials were shared among hosts (hosts: spread) that
    differ in CPU model, usable cores or interpreters."""
    from .analysis import machine

    found = hosts(results, run_id)
    if found.empty or cell_hosts(results, run_id):
        return []  # one machine, or hosts: each (hosts kept apart)
    rows = found.rename(columns={"host": "name"}).to_dict("records")
    return [
        f"{difference}: their trials were shared, so each cell mixes their measurements"
        for difference in machine.host_differences(rows)
    ]


EXPORTS = {"trials": "trials_frame", "summary": "summary_frame", "facts": "facts_frame"}


def export_frame(
    results: store.Store, run: str | int | None, table: str
) -> tuple[int, pd.DataFrame]:
    """One of a run's views (trials, summary or facts) as a DataFrame, with the run's id."""
    run_row = results.resolve_run(run)
    frame: pd.DataFrame = getattr(results, EXPORTS[table])(run_row.id or 0)
    return run_row.id or 0, frame


def load_trials(db: str | None = None, run: str | int | None = "latest") -> pd.DataFrame:
    """A run's measured trials (the ``trial_results`` view) for a notebook."""
    return export_frame(store.Store(db or engine.default_url()), run, "trials")[1]


def load_summary(db: str | None = None, run: str | int | None = "latest") -> pd.DataFrame:
    """A run's cell statistics (the ``cell_summary`` view) for a notebook."""
    return export_frame(store.Store(db or engine.default_url()), run, "summary")[1]


def compare_runs(
    results: store.Store, first: str | int, second: str | int, threshold: float | None = None
) -> pd.DataFrame:
    """The cells two runs share, side by side, decided against ``threshold`` (a share;
    default the margin, 10%): see :func:`pipeline.analysis.compare.trials`."""
    from .analysis import compare

    runs = [results.resolve_run(run) for run in (first, second)]
    found = [results.trials_frame(run.id or 0) for run in runs]
    return compare.trials(*found, threshold=threshold)


def compare_hosts(
    results: store.Store, run: str | int, first: str, second: str, threshold: float | None = None
) -> pd.DataFrame:
    """The cells two hosts of one run (hosts: each) share, side by side, decided as two
    runs are."""
    from .analysis import compare

    run_row = results.resolve_run(run)
    trials = results.trials_frame(run_row.id or 0)
    known = sorted(set(trials["host"]) - {""})
    for host in (first, second):
        if host not in known:
            raise PipelineError(
                f"run {run_row.id} has no host {host!r} (hosts: {', '.join(known) or 'none'})"
            )
    sides = [trials[trials["host"].eq(host)] for host in (first, second)]
    return compare.trials(*sides, threshold=threshold)
