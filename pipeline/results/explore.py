"""What the explorer shows, for every run in the database, read and never written: the
runs, every cell's statistics (the ``cell_summary`` view), each run's verdicts, and the
compare rule's outcome per cell for pairs of runs and of a run's hosts.

Pairs of runs: every pair while there are at most ALL_PAIRS_UP_TO runs with trials;
beyond that, each run with the one before it and with the newest (``pipeline compare``
does any other pair).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd

from ..storage.store import Store
from . import CELL_NUMBERS

ALL_PAIRS_UP_TO = 8
# cell_summary columns the explorer plots and filters on
AXES = ("task", "variant", "model", "workers", "payload_bytes", "interpreter", "host")
VALUES = (
    *CELL_NUMBERS,
    "median_peak_uss_bytes",
    "median_peak_rss_bytes",
    "median_startup_s",
)
COMPARED = (
    "n_first",
    "n_second",
    "median_first_s",
    "median_second_s",
    "change",  # B / A - 1, of the geometric means
    "change_ci_low",
    "change_ci_high",
    "level",
    "verdict",
)


def explorer_data(store: Store) -> dict[str, Any]:
    """Everything the explorer page needs, JSON-ready (missing numbers as None). Each
    run's trials are read once, for its verdicts and every comparison it is in."""
    from ..analysis import compare
    from . import verdicts

    runs: list[dict[str, Any]] = []
    cells: list[dict[str, Any]] = []
    decided: list[dict[str, Any]] = []
    trials: dict[int, pd.DataFrame] = {}
    for run in sorted(store.runs(), key=lambda row: row.id or 0):
        run_id = run.id or 0
        summary = store.summary_frame(run_id)
        environment = store.environment(run_id)
        runs.append(
            {
                "id": run_id,
                "name": run.name,
                "status": run.status,
                "started_at": run.started_at.isoformat(sep=" ", timespec="seconds"),
                "host": environment.hostname if environment is not None else "",
                "cells": len(summary),
            }
        )
        if summary.empty:
            continue
        columns = [c for c in ("run_id", *AXES, *VALUES) if c in summary]
        cells += _records(summary[columns])
        trials[run_id] = store.trials_frame(run_id)
        for found in verdicts(store, run_id, trials[run_id]):
            decided.append(
                {
                    "run_id": run_id,
                    "claim": found.claim,
                    "title": found.title,
                    "verdict": str(found.verdict),
                    "headline": found.headline,
                }
            )
    compared = [  # pipeline compare A B: the same rule on the same trials
        _pair(first, second, None, None, compare.trials(trials[first], trials[second]))
        for first, second in run_pairs(list(trials))
    ]
    for run_id, frame in trials.items():  # pipeline compare RUN --hosts A B
        hosts = sorted(set(frame["host"]) - {""})
        for first, second in itertools.combinations(hosts, 2):
            sides = [frame[frame["host"].eq(host)] for host in (first, second)]
            compared.append(_pair(run_id, run_id, first, second, compare.trials(*sides)))
    return {
        "runs": runs,
        "cells": cells,
        "verdicts": decided,
        "compared": compared,
        "axes": list(AXES),
    }


def _pair(
    run_a: int, run_b: int, host_a: str | None, host_b: str | None, frame: pd.DataFrame
) -> dict[str, Any]:
    """One comparison the page carries: which runs (and hosts), and its rows."""
    columns = [c for c in (*AXES, *COMPARED) if c in frame]
    return {
        "run_a": run_a,
        "run_b": run_b,
        "host_a": host_a,
        "host_b": host_b,
        "rows": _records(frame[columns]),
    }


def run_pairs(run_ids: list[int]) -> list[tuple[int, int]]:
    """The pairs (older, newer) of runs whose comparison the page carries."""
    if len(run_ids) <= ALL_PAIRS_UP_TO:
        return list(itertools.combinations(run_ids, 2))
    newest = run_ids[-1]
    pairs = set(itertools.pairwise(run_ids)) | {(run, newest) for run in run_ids[:-1]}
    return sorted(pairs)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain values; NaN and NA become None (JSON null)."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{str(k): _plain(v) for k, v in row.items()} for row in rows]


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
