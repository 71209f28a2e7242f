"""Publishing a stored run: its report folder (page, charts, data files) and the index
of every run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from .. import results
from ..analysis import machine
from ..results.environment import environment_dict
from ..storage import schema
from ..storage.store import Store

DEFAULT_REPORTS_DIR = Path("reports")


def report_dir_name(run_id: int) -> str:
    """The folder of a run's report under the reports directory."""
    return f"run-{run_id}"


def build_report(
    store: Store, run: str | int | None, reports_dir: Path, *, index: bool = True
) -> Path:
    """(Re)build a run's report folder (page, trials.csv, summary.csv, summary.md) and,
    unless ``index`` is false, the index of all runs; return the run's page."""
    from ..analysis import stats
    from . import data_files, markdown, report

    run_row = store.resolve_run(run)
    assert run_row.id is not None
    trials = store.trials_frame(run_row.id)  # read once: 100,000 rows take a second
    if store.summary_frame(run_row.id).empty and not trials.empty:
        results.summarise(store, run_row.id, trials)
    summary = report.variant_sections(store.summary_frame(run_row.id))
    cores = results.cores(store, run_row.id)
    host_cores = results.host_cores(store, run_row.id)
    out_dir = reports_dir / report_dir_name(run_row.id)
    tasks = [str(task) for task in dict.fromkeys(summary["task"])]
    reference = trials[[c for c in REFERENCE_COLUMNS if c in trials]]
    with _charts_drawn(summary, tasks, cores, host_cores, reference) as drawn:
        # while the charts are drawn (the slow part), the rest of the report is worked out
        found = results.verdicts(store, run_row.id, trials)
        per_host = [
            {"host": host, "verdicts": results.verdicts(store, run_row.id, trials, host=host)}
            for host in results.cell_hosts(store, run_row.id)
        ]
        run_values = results.run_dict(store, run_row)
        machine_facts = store.environment(run_row.id)
        environment_values = environment_dict(store, run_row.id)
        facts = stats.summarise_facts(store.facts_frame(run_row.id))
        data_files.write_data_files(
            out_dir,
            trials,
            store.summary_frame(run_row.id),
            markdown.markdown_digest(run_values, environment_values, summary, found),
            found,
        )
        rendered = drawn()
    page = report.write_run_report(
        run_values,
        environment_values,
        summary,
        rendered,
        out_dir,
        facts=facts,
        warnings=_warnings(store, run_row.id, machine_facts),
        notes=machine.tuning_notes(machine_facts) if machine_facts is not None else [],
        verdicts=found,
        overview=rendered.pop(OVERVIEW, []),
        interpreters=store.interpreters_frame(run_row.id),
        trials=trials,
        hosts=results.hosts(store, run_row.id),
        host_verdicts=per_host,
    )
    if index:
        write_index(store, reports_dir)
    return page


OVERVIEW = "\0overview"  # the key of the run-wide charts (no task can be named so)
REFERENCE_COLUMNS = ("reference_s", "started_at", "trial_host")  # what the drift chart reads


@contextlib.contextmanager
def _charts_drawn(
    summary: pd.DataFrame,
    tasks: list[str],
    cores: float,
    host_cores: dict[str, float],
    reference: pd.DataFrame,
) -> Iterator[Callable[[], dict[str, list[str]]]]:
    """Start drawing every chart of a report, each task's and the overview (``reference``:
    the trials' reference loop timings, for the drift chart); yields the function that
    waits for them. Rendering SVG is the slow part of a report (about 0.3 s a figure), so
    with many figures it is spread over a process per core and the caller goes on with
    the rest of the report meanwhile; the parent never imports matplotlib for them."""
    import concurrent.futures as cf
    import multiprocessing

    jobs = [*tasks, OVERVIEW]
    workers = min(os.cpu_count() or 1, len(jobs))
    if workers < 2 or len(jobs) < 4:
        yield lambda: {job: _charts_of(summary, job, cores, host_cores, reference) for job in jobs}
        return
    with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {  # the overview first: it is the largest job
            job: pool.submit(
                _charts_of, summary, job, cores, host_cores, reference if job == OVERVIEW else None
            )
            for job in [OVERVIEW, *tasks]
        }
        yield lambda: {job: futures[job].result() for job in jobs}


def _charts_of(
    summary: pd.DataFrame,
    job: str,
    cores: float,
    host_cores: dict[str, float],
    reference: pd.DataFrame | None,
) -> list[str]:
    if job == OVERVIEW:
        assert reference is not None
        return [*_overview_charts(summary, host_cores), *_drift(reference)]
    return _task_charts(summary, job, cores)


def _task_charts(summary: pd.DataFrame, task: str, cores: float) -> list[str]:
    """Speedup; wall time, efficiency and CPU use; memory per worker (where measured)."""
    from . import charts

    drawn = [
        charts.speedup_chart(summary, task, cores=cores),
        charts.metrics_chart(summary, task, cores=cores),
    ]
    cells = summary[summary["task"] == task]
    if "median_peak_uss_bytes" in cells and cells["median_peak_uss_bytes"].notna().any():
        drawn.append(charts.memory_chart(summary, task, cores=cores))
    return drawn


def _overview_charts(summary: pd.DataFrame, host_cores: dict[str, float]) -> list[str]:
    """The run-wide figures that have data: fastest model per task and worker count,
    start-up and shutdown, transfer cost, interpreters and hosts side by side."""
    from functools import partial

    from . import charts, overview

    drawn = []
    for chart in (
        overview.best_model_heatmap,
        overview.startup_chart,
        overview.transfer_chart,
        overview.interpreter_chart,
        partial(overview.host_chart, host_cores=host_cores),
    ):
        try:
            drawn.append(chart(summary))
        except charts.NothingToDraw:  # no data for it in this run
            continue
    return drawn


def publish(store: Store, reports_dir: Path) -> list[Path]:
    """Rebuild the report of every run in the database and the index of them all."""
    pages = [
        build_report(store, row.id, reports_dir, index=False) for row in reversed(store.runs())
    ]
    write_index(store, reports_dir)
    return pages


def write_index(store: Store, reports_dir: Path) -> Path:
    """reports_dir/index.html: every run with a published report, newest first."""
    from . import index_page

    published = [
        row
        for row in store.runs()
        if (reports_dir / report_dir_name(row.id or 0) / "index.html").exists()
    ]
    return index_page.write_index(
        [_index_entry(store, row, reports_dir) for row in published], reports_dir
    )


def _drift(trials: pd.DataFrame) -> list[str]:
    """The machine's speed over the run, when the trials timed the reference loop."""
    from . import charts, overview

    try:
        return [overview.drift_chart(trials)]
    except charts.NothingToDraw:  # a run from before the reference loop
        return []


def _warnings(store: Store, run_id: int, found: schema.EnvironmentRow | None) -> list[str]:
    busy = machine.busy_warnings(found) if found is not None else []
    return busy + results.host_warnings(store, run_id)


def _index_entry(store: Store, run_row: schema.Run, reports_dir: Path) -> dict[str, Any]:
    from . import data_files

    run_id = run_row.id or 0
    counts = store.trial_counts(run_id)
    return {
        "id": run_id,
        "name": run_row.name,
        "status": run_row.status,
        "started_at": run_row.started_at,
        "host": results.where_text(store, run_id),
        "interpreters": ", ".join(store.interpreters(run_id)),
        "trial_count": sum(counts.values()),
        "report_href": f"{report_dir_name(run_id)}/index.html",
        # written beside the run's page when it was built: no statistics redone here
        "verdicts": data_files.read_verdicts(reports_dir / report_dir_name(run_id)),
    }
