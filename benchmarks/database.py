"""The results database under load: trials written per second through the store (each
committed on its own, as a run does), and ``pipeline query`` over a database of
1,000,000 trials (synthetic rows). Goals: over 5,000 trials/s; under 2 s for the
``cell_summary`` view.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from pipeline.storage import readonly, schema, store

from .report import synthetic_run

WRITES = 2000
BATCH = 16  # trials that finished together, one transaction


def writes_per_second(url: str) -> tuple[float, float, float]:
    """Trials per second through the store, facts included: add_trial, one commit each, as
    a local run stores its trials (rows built beforehand, then with building each SQLModel
    row included), and add_trials in batches of BATCH, as trials that finished together
    on a cluster are stored (one transaction a batch, rows built)."""
    results = store.Store(url)
    run = results.create_run(
        schema.Run(name="bench-writes"),
        schema.EnvironmentRow(run_id=0),
        [
            schema.CellRow(
                run_id=0,
                position=0,
                task="t",
                model="m",
                workers=1,
                payload_bytes=1,
                interpreter="python3",
            )
        ],
    )
    cell_id = results.cell_ids(run.id or 0)[0]

    def row(sequence: int) -> schema.Trial:
        return schema.Trial(
            run_id=run.id or 0,
            cell_id=cell_id,
            sequence=sequence,
            repetition=sequence,
            status="ok",
            wall_s=0.1,
            items_done=8,
        )

    rows = [row(sequence) for sequence in range(WRITES)]
    started_s = time.perf_counter()
    for trial in rows:
        results.add_trial(trial, {"bytes_moved": 1024.0})
    store_rate = WRITES / (time.perf_counter() - started_s)
    started_s = time.perf_counter()
    for sequence in range(WRITES, 2 * WRITES):
        results.add_trial(row(sequence), {"bytes_moved": 1024.0})
    built_rate = WRITES / (time.perf_counter() - started_s)
    started_s = time.perf_counter()
    for first in range(2 * WRITES, 3 * WRITES, BATCH):
        results.add_trials([(row(s), {"bytes_moved": 1024.0}) for s in range(first, first + BATCH)])
    return store_rate, built_rate, WRITES / (time.perf_counter() - started_s)


def timed_query(url: str, sql: str) -> tuple[float, int]:
    """Seconds for one read-only query through pipeline's query path, and its rows."""
    started_s = time.perf_counter()
    rows = len(readonly.query(url, sql))
    return time.perf_counter() - started_s, rows


def main(trials: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        rate, with_rows, batched = writes_per_second(f"sqlite:///{Path(folder, 'writes.db')}")
        path = Path(folder, "million.db")
        url = f"sqlite:///{path}"
        started_s = time.perf_counter()
        run_id = synthetic_run(url, path, trials)
        with sqlite3.connect(path) as connection:  # statistics rows, as a finished run has
            connection.execute(
                "INSERT INTO cell_stats (cell_id, run_id, n, n_ok, median_wall_s, warnings) "
                "SELECT c.id, c.run_id, count(t.id), count(t.id), avg(t.wall_s), '' "
                "FROM cell c JOIN trial t ON t.cell_id = c.id WHERE c.run_id = ? "
                "GROUP BY c.id",
                (run_id,),
            )
        load_s = time.perf_counter() - started_s
        summary_s, summary_rows = timed_query(url, "SELECT * FROM cell_summary")
        grouped_s, _ = timed_query(
            url,
            "SELECT task, model, workers, count(*) AS n, avg(wall_s) AS mean_wall_s "
            "FROM trial_results GROUP BY task, model, workers",
        )
    print(f"trials written through the store: {rate:8.0f} /s  (goal: over 5,000)")
    print(f"  ... building each row as well:  {with_rows:8.0f} /s")
    print(f"  ... in batches of {BATCH}, rows built: {batched:8.0f} /s  (goal: over 5,000)")
    print(f"synthetic database of {trials} trials built in {load_s:.1f} s")
    print(f"query cell_summary ({summary_rows} rows): {summary_s:8.3f} s  (goal: under 2 s)")
    print(f"query trial_results grouped by cell:   {grouped_s:8.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
