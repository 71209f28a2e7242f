"""Stored runs read back through the analysis: the cell summary, verdicts, listings,
exports and comparisons. The one module that joins storage and analysis (analysis stays
pure functions on frames; SQL stays in storage)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..cells import CELL_KEYS
from ..errors import PipelineError
from ..metrics import Unit, format_value
from ..storage import engine, schema
from ..storage.store import Store
from .environment import environment_dict

if TYPE_CHECKING:
    from ..analysis.inference import Rule


def summarise(store: Store, run_id: int, trials: pd.DataFrame | None = None) -> None:
    """Compute the run's cell statistics and store them behind ``cell_summary``
    (``trials``: the run's trial_results rows, when the caller has them already)."""
    from ..analysis import stats

    trials = store.trials_frame(run_id) if trials is None else trials
    if trials.empty:
        return
    run_row = store.resolve_run(run_id)
    summary = stats.summarise_cells(
        trials,
        cores=cores(store, run_id),
        target_ci=run_row.target_ci,
        rule=rule(run_row),
    )
    store.save_cell_stats(run_id, summary)


def cores(store: Store, run_id: int) -> float:
    """The CPUs a run could keep busy: affinity capped by its cgroup quota (older runs:
    the physical cores; cluster runs: the host with the fewest)."""
    on_hosts = host_cores(store, run_id)
    if on_hosts:  # a cluster run: the hosts', not the orchestrator's (the fewest)
        return min(on_hosts.values())
    found = store.environment(run_id)
    if found is None:
        return 1.0
    return float(found.usable_cores or found.cpu_physical or found.cpu_logical or 1)


class OpenCells:
    """A run's cells that some claim's comparison has not decided yet, looked at again
    after every round: each look reads only the trials stored since the last one (a look
    comes once a round's trials are all stored, and a later round's come later in
    sequence), so a look costs the same at the 100th round as at the first."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.run_id = run_id
        self.trials = pd.DataFrame()
        self.cells = pd.DataFrame(columns=["cell_id", *CELL_KEYS])
        self.decided_by: Rule | None = None

    def __call__(self) -> set[int]:
        from ..analysis import claims

        after = None if self.trials.empty else int(self.trials["sequence"].max())
        new = self.store.trials_frame(self.run_id, after_sequence=after)
        if not new.empty:
            self.trials = (
                new if self.trials.empty else pd.concat([self.trials, new], ignore_index=True)
            )
            if not set(new["cell_id"]) <= set(self.cells["cell_id"]):
                # the claims find their comparisons by the cells' keys, and decide them
                # from the trials: the cell statistics are not needed, nor the task facts
                # (only the verdicts of the claims decided by counts read them)
                cells = self.trials.drop_duplicates("cell_id").sort_values("cell_id")
                self.cells = cells[["cell_id", *CELL_KEYS]]
        if self.trials.empty:
            return set()
        if self.decided_by is None:
            self.decided_by = rule(self.store.resolve_run(self.run_id))
        data = claims.gather_evidence(self.cells, self.trials, claims.no_facts(), self.decided_by)
        return claims.undecided_cells(data)


def prepare_decisions(decided_by: Rule) -> None:
    """What deciding a run's comparisons needs before its first decision, done ahead: the
    analysis imported and the level of its looks worked out (a seeded simulation; cached)."""
    from ..analysis import claims  # noqa: F401  (imported now rather than after a round)

    decided_by.level()


def rule(run_row: schema.Run) -> Rule:
    """How a run's comparisons are decided (inference.run_rule)."""
    from ..analysis.inference import run_rule

    return run_rule(run_row.model_dump())


def other_programs(store: Store, run: str | int | None) -> list[str]:
    """Warnings that other programs used the CPU around the run (machine.other_programs):
    empty for a quiet machine, or a run without a recorded environment."""
    from ..analysis import machine

    found = store.environment(store.resolve_run(run).id or 0)
    return machine.other_programs(found) if found is not None else []


def verdicts(
    store: Store,
    run: str | int | None,
    trials: pd.DataFrame | None = None,
    *,
    host: str | None = None,
) -> list[Any]:
    """The verdicts on the explainer's claims for one run (see pipeline.claims); with
    ``host``, from that host's cells only (a run with hosts: each)."""
    from ..analysis import claims, stats

    run_row = store.resolve_run(run)
    run_id = run_row.id or 0
    trials = store.trials_frame(run_id) if trials is None else trials
    if store.summary_frame(run_id).empty and not trials.empty:
        summarise(store, run_id, trials)
    summary, facts = store.summary_frame(run_id), store.facts_frame(run_id)
    if host is not None:
        known = sorted(set(summary["host"]) - {""}) if "host" in summary else []
        if host not in known:
            raise PipelineError(
                f"run {run_id} has no host {host!r} (hosts: {', '.join(known) or 'none'})"
            )
        summary = summary[summary["host"].eq(host)]
        trials, facts = trials[trials["host"].eq(host)], facts[facts["host"].eq(host)]
    return claims.verdicts(stats.numeric_summary(summary), trials, facts, rule(run_row))


def cell_hosts(store: Store, run_id: int) -> list[str]:
    """The hosts that are an axis of a run's cells (hosts: each), in order; [] otherwise."""
    return sorted(set(store.cell_hosts(run_id)) - {""})


def host_cores(store: Store, run_id: int) -> dict[str, float]:
    """Usable cores of each cluster host of a run."""
    found = store.hosts_frame(run_id)
    return {
        str(name): float(value or logical or 1)
        for name, value, logical in zip(
            found.get("name", []),
            found.get("usable_cores", []),
            found.get("cpu_logical", []),
            strict=True,
        )
    }


def run_dict(store: Store, run_row: schema.Run) -> dict[str, Any]:
    """A run's row as a dict, with its trial order and count."""
    values = run_row.model_dump()
    values["order"] = run_row.trial_order
    values["trial_count"] = sum(store.trial_counts(run_row.id or 0).values())
    return values


# -- the database as a product: runs, one run, exports ----------------------------------------
def where_text(store: Store, run_id: int) -> str:
    """Where a run was measured, in words: its cluster hosts, or the orchestrator's host."""
    names = list(store.hosts_frame(run_id).get("name", []))
    if names:
        return ", ".join(str(name) for name in names)
    found = store.environment(run_id)
    return found.hostname if found else ""


def runs_frame(store: Store) -> pd.DataFrame:
    """Every run, newest first: id, name, status, start, duration, host, interpreters and
    measured trials by status."""
    rows = []
    for row in store.runs():
        run_id = row.id or 0
        counts = store.trial_counts(run_id)
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
                "host": where_text(store, run_id),
                "interpreters": ", ".join(store.interpreters(run_id)),
                "trials": ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            }
        )
    columns = ["id", "name", "status", "started", "duration_s", "host", "interpreters", "trials"]
    return pd.DataFrame(rows, columns=columns)


# a cell's main figures in the cell_summary view: trials, median wall time and speedup
# with their intervals (what `pipeline show` and the explorer give first)
CELL_NUMBERS = (
    "n_ok",
    "median_wall_s",
    "ci_low_wall_s",
    "ci_high_wall_s",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
)


def show(store: Store, run: str | int | None) -> tuple[schema.Run, dict[str, Any], pd.DataFrame]:
    """A run, its environment (as a dict) and the main columns of its cell summary."""
    from ..analysis.stats import CELL_COLUMNS  # scipy: imported only by the commands that need it

    shown = [
        "cell_id",
        *(column for column in CELL_COLUMNS if column != "interpreter"),
        *CELL_NUMBERS,
        "stop_reason",
    ]
    run_row = store.resolve_run(run)
    summary = store.summary_frame(run_row.id or 0)
    return (
        run_row,
        environment_dict(store, run_row.id or 0),
        summary[[column for column in shown if column in summary.columns]],
    )


def hosts(store: Store, run: str | int | None) -> pd.DataFrame:
    """The cluster hosts of a run, for people: name, machine, cores, memory, interpreters
    and how many trials each ran (empty for a run on one machine)."""
    run_row = store.resolve_run(run)
    found = store.hosts_frame(run_row.id or 0)
    if found.empty:
        return found
    counts = store.trials_frame(run_row.id or 0)["trial_host"].value_counts()
    return pd.DataFrame(
        {
            "host": found["name"],
            "hostname": found["hostname"],
            "cpu_model": found["cpu_model"],
            "usable_cores": found["usable_cores"],
            "memory": [format_value(value, Unit.BYTES) for value in found["memory_total_bytes"]],
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


def host_warnings(store: Store, run_id: int) -> list[str]:
    """A report note for a run whose trials were shared among hosts (hosts: spread) that
    differ in CPU model, usable cores or interpreters."""
    from ..analysis import machine

    found = hosts(store, run_id)
    if found.empty or cell_hosts(store, run_id):
        return []  # one machine, or hosts: each (hosts kept apart)
    rows = found.rename(columns={"host": "name"}).to_dict("records")
    return [
        f"{difference}: their trials were shared, so each cell mixes their measurements"
        for difference in machine.host_differences(rows)
    ]


EXPORTS = {"trials": "trials_frame", "summary": "summary_frame", "facts": "facts_frame"}


def export_frame(store: Store, run: str | int | None, table: str) -> tuple[int, pd.DataFrame]:
    """One of a run's views (trials, summary or facts) as a DataFrame, with the run's id."""
    run_row = store.resolve_run(run)
    frame: pd.DataFrame = getattr(store, EXPORTS[table])(run_row.id or 0)
    return run_row.id or 0, frame


def load_trials(db: str | None = None, run: str | int | None = "latest") -> pd.DataFrame:
    """A run's measured trials (the ``trial_results`` view) for a notebook."""
    return export_frame(Store(db or engine.default_url()), run, "trials")[1]


def load_summary(db: str | None = None, run: str | int | None = "latest") -> pd.DataFrame:
    """A run's cell statistics (the ``cell_summary`` view) for a notebook."""
    return export_frame(Store(db or engine.default_url()), run, "summary")[1]


def compare_runs(
    store: Store, first: str | int, second: str | int, threshold: float | None = None
) -> pd.DataFrame:
    """The cells two runs share, side by side, decided against ``threshold`` (a share;
    default the margin, 10%): see :func:`pipeline.analysis.compare.trials`."""
    from ..analysis import compare

    runs = [store.resolve_run(run) for run in (first, second)]
    found = [store.trials_frame(run.id or 0) for run in runs]
    return compare.trials(*found, threshold=threshold)


def compare_hosts(
    store: Store, run: str | int, first: str, second: str, threshold: float | None = None
) -> pd.DataFrame:
    """The cells two hosts of one run (hosts: each) share, side by side, decided as two
    runs are."""
    from ..analysis import compare

    run_row = store.resolve_run(run)
    trials = store.trials_frame(run_row.id or 0)
    known = sorted(set(trials["host"]) - {""})
    for host in (first, second):
        if host not in known:
            raise PipelineError(
                f"run {run_row.id} has no host {host!r} (hosts: {', '.join(known) or 'none'})"
            )
    sides = [trials[trials["host"].eq(host)] for host in (first, second)]
    return compare.trials(*sides, threshold=threshold)
