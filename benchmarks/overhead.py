"""Orchestration overhead of a spec: how much of a run's wall time is not measured work.

overhead = (run wall time - sum over all trials, warm-ups included, of start-up + work)
           / run wall time

split into what the orchestrator spends outside every trial's process (run wall time -
sum of worker process time: planning, the environment, storing, adaptive decisions, the
statistics, the reference loop) and what each fresh worker process spends outside its
timed phases (interpreter start, imports, payload, shutdown, writing its result): the
price of isolated trials.

The run wall time is that of ``app.run`` (database set-up, environment capture, every
trial, the statistics; no report). Runs into a temporary database.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pipeline import app
from pipeline.storage import readonly


def main(spec_path: str) -> None:
    """Run the spec once and print the overhead figures."""
    planned = app.plan(spec_path)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder, 'bench.db')}"
        started_s = time.perf_counter()
        outcome = app.run(planned, url, reports_dir=None)
        run_wall_s = time.perf_counter() - started_s
        totals = readonly.query(
            url,
            "SELECT sum(startup_s + wall_s) AS measured_s, "
            "sum(process_s) AS process_s, sum(shutdown_s) AS shutdown_s, "
            "count(*) AS trials FROM trial",
        )
    measured_s = float(totals["measured_s"][0])
    process_s = float(totals["process_s"][0])
    trials = int(totals["trials"][0])
    overhead = (run_wall_s - measured_s) / run_wall_s
    print(f"spec: {spec_path} ({trials} trials, run {outcome.run_id} {outcome.status})")
    print(f"run wall time:              {run_wall_s:8.2f} s")
    print(f"sum of start-up + work:     {measured_s:8.2f} s")
    print(
        f"sum of worker process time: {process_s:8.2f} s "
        f"(per trial outside start-up + work: "
        f"{(process_s - measured_s) / trials * 1000:.0f} ms)"
    )
    outside_s = run_wall_s - process_s
    print(f"overhead, all of it:        {overhead:8.1%}  (not start-up or work, in the run)")
    print(
        f"  the orchestrator's own:   {outside_s / run_wall_s:8.1%}  ({outside_s:.1f} s outside "
        "every trial's process; goal: under 8%)"
    )
    print(
        f"  each worker's isolation:  {(process_s - measured_s) / run_wall_s:8.1%}  "
        "(interpreter start, imports, shutdown, result, in the trial's process)"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/quick.yaml")
