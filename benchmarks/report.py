"""Time to build the report of a run of 100,000 trials (synthetic rows; goal: 10 s at most, P15).

The run has 10 tasks x 4 models x 4 worker counts x 2 payloads (the sequential cells
collapsed), about 260 cells, with lognormal wall times and a few failed trials; rows go
straight into SQLite. Timed apart: the cell statistics a run computes when it ends
(``app.summarise``), then ``app.build_report`` (verdicts, charts, page, CSV files, digest)
on the finished run.
"""

from __future__ import annotations

import itertools
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline import app
from pipeline.storage import schema, store
from pipeline.worker.builtin import TASKS

MODELS = ("sequential", "threads", "asyncio", "processes")
WORKERS = (1, 2, 4, 8)
PAYLOADS = (1024, 1 << 20)


def synthetic_run(url: str, path: Path, trials: int) -> int:
    """A finished run with ~``trials`` measured trials; returns its id."""
    keys = sorted(
        {
            (task, model, 1 if model == "sequential" else workers, payload)
            for task, model, workers, payload in itertools.product(TASKS, MODELS, WORKERS, PAYLOADS)
        }
    )
    cells = [
        schema.CellRow(
            run_id=0,
            position=i,
            task=task,
            model=model,
            workers=workers,
            payload_bytes=payload,
            interpreter="python3",
        )
        for i, (task, model, workers, payload) in enumerate(keys)
    ]
    results = store.Store(url)
    run = results.create_run(
        schema.Run(name="bench-report", status="finished", repetitions=trials // len(cells)),
        schema.EnvironmentRow(run_id=0, hostname="bench", cpu_physical=2, cpu_logical=2),
        cells,
    )
    run_id = run.id or 0
    rng = np.random.default_rng(1)
    per_cell = trials // len(cells)
    rows: list[tuple[object, ...]] = []
    for cell in cells:
        base = 0.2 / (1 if cell.model in ("sequential", "threads") else min(cell.workers, 2))
        walls = base * rng.lognormal(0.0, 0.1, per_cell)
        for repetition, wall in enumerate(walls):
            status = "ok" if rng.random() > 0.01 else "error"
            rows.append(
                (
                    run_id,
                    cell.id,
                    len(rows),
                    repetition,
                    status,
                    float(wall),
                    0.01,
                    0.001,
                    float(wall) * 0.9,
                    0.01,
                    30_000_000,
                    20_000_000,
                    25_000_000,
                    8,
                )
            )
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO trial (run_id, cell_id, sequence, repetition, status, wall_s, "
            "startup_s, shutdown_s, cpu_user_s, cpu_sys_s, peak_rss_bytes, peak_uss_bytes, "
            "peak_pss_bytes, items_done, warmup, items_failed, started_at, host, detail_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, '2026-01-01', '', '{}')",
            rows,
        )
    return run_id


def synthetic_database(folder: str, trials: int) -> tuple[str, store.Store, int, int]:
    """A SQLite database in ``folder`` with one synthetic run: its URL, store, run id
    and measured trial count."""
    path = Path(folder, "bench.db")
    url = f"sqlite:///{path}"
    run_id = synthetic_run(url, path, trials)
    results = store.Store(url)
    return url, results, run_id, sum(results.trial_counts(run_id).values())


def main(trials: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _, results, run_id, counted = synthetic_database(folder, trials)
        started_s = time.perf_counter()
        app.summarise(results, run_id)
        stats_s = time.perf_counter() - started_s
        started_s = time.perf_counter()
        page = app.build_report(results, run_id, Path(folder, "site"))
        build_s = time.perf_counter() - started_s
        size = page.stat().st_size
    print(f"report of {counted} trials in {len(results.summary_frame(run_id))} cells")
    print(f"cell statistics (end of run): {stats_s:6.2f} s")
    print(f"report build time:            {build_s:6.2f} s  (goal: at most 10 s)")
    print(f"page size:                    {size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
