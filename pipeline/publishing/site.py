"""Publishing a stored run: its report folder (page, charts, data files) and the index
of every run."""

from __future__ import annotations

import os
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
    rendered = _render_charts(
        summary,
        [str(task) for task in dict.fromkeys(summary["task"])],
        cores,
        host_cores,
        trials[[c for c in REFERENCE_COLUMNS if c in trials]],
    )
    out_dir = reports_dir / report_dir_name(run_row.id)
    found = results.verdicts(store, run_row.id, trials)
    per_host = [
        {"host": host, "verdicts": results.verdicts(store, run_row.id, trials, host=host)}
        for host in results.cell_hosts(store, run_row.id)
    ]
    run_values = results.run_dict(store, run_row)
    machine_facts = store.environment(run_row.id)
    environment_values = environment_dict(store, run_row.id)
    page = report.write_run_report(
        run_values,
        environment_values,
        summary,
        rendered,
        out_dir,
        facts=stats.summarise_facts(store.facts_frame(run_row.id)),
        warnings=_warnings(store, run_row.id, machine_facts),
        notes=machine.tuning_notes(machine_facts) if machine_facts is not None else [],
        verdicts=found,
        overview=rendered.pop(OVERVIEW, []),
        interpreters=store.interpreters_frame(run_row.id),
        trials=trials,
        hosts=results.hosts(store, run_row.id),
        host_verdicts=per_host,
    )
    data_files.write_data_files(
        out_dir,
        trials,
        store.summary_frame(run_row.id),
        markdown.markdown_digest(run_values, environment_values, summary, found),
        found,
    )
    if index:
        write_index(store, reports_dir)
    return page


OVERVIEW = "\0overview"  # the key of the run-wide charts (no task can be named so)
REFERENCE_COLUMNS = ("reference_s", "started_at", "trial_host")  # what the drift chart reads


def _render_charts(
    summary: pd.DataFrame,
    tasks: list[str],
    cores: float,
    host_cores: dict[str, float],
    reference: pd.DataFrame,
) -> dict[str, list[str]]:
    """Every chart of a report: each task's and the overview (``reference``: the trials'
    reference loop timings, for the drift chart). Rendering SVG is the slow part of a
    report (about 0.5 s a figure), so with many figures it is spread over a process per
    core; the parent then never imports matplotlib itself."""
    import concurrent.futures as cf
    import multiprocessing

    jobs = [*tasks, OVERVIEW]
    workers = min(os.cpu_count() or 1, len(jobs))
    args = (cores, host_cores, reference)
    if workers < 2 or len(jobs) < 4:
        return {job: _charts_of(summary, job, *args) for job in jobs}
    with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        n = len(jobs)
        drawn = pool.map(_charts_of, [summary] * n, jobs, *([value] * n for value in args))
        return dict(zip(jobs, drawn, strict=True))


def _charts_of(
    summary: pd.DataFrame,
    job: str,
    cores: float,
    host_cores: dict[str, float],
    reference: pd.DataFrame,
) -> list[str]:
    if job == OVERVIEW:
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
