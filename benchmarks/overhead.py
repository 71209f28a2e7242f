"""Orchestration overhead of a spec: how much of a run's wall time is not measured work.

overhead = (run wall time - sum over all trials, warm-ups included, of start-up + work)
           / run wall time

split into what the orchestrator spends outside every trial's process (run wall time -
sum of worker process time: planning, the environment, storing, adaptive decisions, the
statistics, the reference loop, starting fork servers) and what each worker process
spends outside its timed phases (interpreter start and imports, or the fork from a warm
server; payload, shutdown, writing its result; the kill-and-reap checks): the price of
isolated trials.

The spec runs twice, as written (``trial_process: fresh`` unless it says otherwise) and
with ``trial_process: warm``, and the two are compared cell by cell: the geometric mean
over cells of the ratio warm / fresh of the median work time and of the median PSS peak
(the trials of both runs are measurements of the same cells, so these should be 1).

The run wall time is that of ``app.run`` (database set-up, environment capture, every
trial, the statistics; no report). Runs into a temporary database.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import app
from pipeline.storage import readonly

MODES = ("fresh", "warm")
CELL_MEDIANS = (
    "SELECT c.task, c.model, c.workers, c.payload_bytes, t.wall_s, t.peak_pss_bytes "
    "FROM trial t JOIN cell c ON c.id = t.cell_id WHERE t.status = 'ok' AND NOT t.warmup"
)


def run_once(spec_path: str, trial_process: str) -> pd.DataFrame:
    """Run the spec with ``trial_process``, print its overhead; its ok trials."""
    planned = app.plan(spec_path)
    planned = dataclasses.replace(
        planned, spec=planned.spec.model_copy(update={"trial_process": trial_process})
    )
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder, 'bench.db')}"
        started_s = time.perf_counter()
        outcome = app.run(planned, url, reports_dir=None)
        run_wall_s = time.perf_counter() - started_s
        totals = readonly.query(
            url,
            "SELECT sum(startup_s + wall_s) AS measured_s, "
            "sum(process_s) AS process_s, count(*) AS trials FROM trial",
        )
        trials = readonly.query(url, CELL_MEDIANS)
    measured_s = float(totals["measured_s"][0])
    process_s = float(totals["process_s"][0])
    count = int(totals["trials"][0])
    overhead = (run_wall_s - measured_s) / run_wall_s
    outside_s = run_wall_s - process_s
    print(
        f"\ntrial_process: {trial_process} ({count} trials, run {outcome.run_id} {outcome.status})"
    )
    print(f"run wall time:              {run_wall_s:8.2f} s")
    print(f"sum of start-up + work:     {measured_s:8.2f} s")
    per_trial_ms = (process_s - measured_s) / count * 1000
    fresh = trial_process == "fresh"  # the goals are the default's (P15); warm is shown beside
    print(
        f"sum of worker process time: {process_s:8.2f} s (per trial outside start-up + work: "
        f"{per_trial_ms:.0f} ms{'; goal: at most 45 ms' if fresh else ''})"
    )
    print(
        f"overhead, all of it:        {overhead:8.1%}  (not start-up or work, in the run"
        f"{'; goal: at most 12%' if fresh else ''})"
    )
    print(
        f"  the orchestrator's own:   {outside_s / run_wall_s:8.1%}  ({outside_s:.1f} s outside "
        f"every trial's process{'; goal: at most 3%' if fresh else ''})"
    )
    print(
        f"  each worker's isolation:  {(process_s - measured_s) / run_wall_s:8.1%}  "
        "(interpreter start or fork, imports, shutdown, result, kill checks)"
    )
    return trials


def compare(runs: dict[str, pd.DataFrame]) -> None:
    """Geometric mean over cells of the ratio warm / fresh of the cell medians."""
    keys = ["task", "model", "workers", "payload_bytes"]
    medians = {mode: trials.groupby(keys).median() for mode, trials in runs.items()}
    both = pd.merge(
        medians["warm"],
        medians["fresh"],
        left_index=True,
        right_index=True,
        suffixes=("_warm", "_fresh"),
    ).dropna()
    print(f"\nwarm / fresh, geometric mean over {len(both)} cells of the ratio of cell medians:")
    for column, what in (("wall_s", "work time"), ("peak_pss_bytes", "PSS peak")):
        ratios = (both[f"{column}_warm"] / both[f"{column}_fresh"]).sort_values()
        print(
            f"  {what:10} {float(np.exp(np.log(ratios).mean())):.3f}x (cells from "
            f"{ratios.iloc[0]:.3f}x, {label(ratios.index[0])}, to {ratios.iloc[-1]:.3f}x, "
            f"{label(ratios.index[-1])})"
        )


def label(key: Any) -> str:
    """A cell's task, model, workers and payload, in a few words."""
    task, model, workers, payload_bytes = key
    return f"{task} {model} ×{workers} {int(payload_bytes) // 1024} KiB"


def main(spec_path: str) -> None:
    """Run the spec fresh and warm; print the overhead figures and the comparison."""
    print(f"spec: {spec_path}")
    compare({mode: run_once(spec_path, mode) for mode in MODES})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/quick.yaml")
