"""The library behind the CLI: plan a run, run it into the store, build reports.

Data flows one way: spec -> matrix -> runner -> store -> stats -> charts -> report.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import psutil
import yaml

from . import __version__, adaptive, environment, interpreters, matrix, runner, store
from .errors import ResumeError, SpecError
from .spec import Spec, load_spec

DEFAULT_REPORTS_DIR = Path("reports")


class Interrupted(Exception):
    """The run was stopped by Ctrl-C or SIGTERM; its finished trials are stored."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"run {run_id} interrupted")
        self.run_id = run_id


class Progress(Protocol):
    """What the runner tells its caller while a run goes on."""

    def begin(self, total: int) -> None: ...

    def trial_started(self, plan: matrix.TrialPlan) -> None: ...

    def trial_finished(self, plan: matrix.TrialPlan, status: str) -> None: ...

    def extend(self, extra: int) -> None: ...

    def end(self) -> None: ...


class QuietProgress:
    """A Progress that shows nothing (tests, scripts)."""

    def begin(self, total: int) -> None:
        """Nothing to show."""

    def trial_started(self, plan: matrix.TrialPlan) -> None:
        """Nothing to show."""

    def trial_finished(self, plan: matrix.TrialPlan, status: str) -> None:
        """Nothing to show."""

    def extend(self, extra: int) -> None:
        """Nothing to show."""

    def end(self) -> None:
        """Nothing to show."""


@dataclass(frozen=True)
class Plan:
    """A validated spec with its cells and ordered trials."""

    spec: Spec
    cells: list[matrix.Cell]
    trials: list[matrix.TrialPlan]
    probes: dict[str, interpreters.Probe]  # by interpreter label

    def skip_reason(self, cell: matrix.Cell) -> str | None:
        """Why the cell's interpreter cannot run its model (its trials are then recorded as
        skipped without running), or None."""
        return self.probes[cell.interpreter].unsupported(cell.model)

    @property
    def warmup_count(self) -> int:
        """How many of the trials are warm-ups."""
        return sum(trial.warmup for trial in self.trials)


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run produced."""

    run_id: int
    status: str
    counts: dict[str, int]
    report_path: Path | None


def plan(spec_path: str | Path) -> Plan:
    """Load and validate the spec, probe its interpreters (each run once), expand the
    matrix and order the trials. Writes nothing."""
    spec = load_spec(spec_path)
    cells = matrix.expand(spec)
    trials = matrix.schedule(cells, spec.min_repetitions, spec.warmup, spec.seed)
    return Plan(spec, cells, trials, probe_interpreters(spec))


def probe_interpreters(spec: Spec) -> dict[str, interpreters.Probe]:
    """Each interpreter of the spec, probed (once per process: validation probed the ones
    the spec names already)."""
    probes = {}
    for entry in spec.interpreter_entries:
        try:
            probes[entry.label] = interpreters.probe(entry)
        except interpreters.ProbeError as error:  # only the running one is not yet probed
            raise SpecError(f"{spec.path}: interpreter {entry.label}: {error}") from None
    return probes


def run(
    plan: Plan,
    url: str,
    *,
    progress: Progress | None = None,
    execute: runner.Execute = runner.execute_in_process,
    reports_dir: Path | None = DEFAULT_REPORTS_DIR,
    resume: str | None = None,
) -> RunOutcome:
    """Run every trial of ``plan``, committing each as it finishes; then summarise and
    (unless ``reports_dir`` is None) write the report. With ``resume`` (a run id, or
    "latest" for the newest resumable run of this spec), run only the trials that run
    lacks."""
    progress = progress or QuietProgress()
    results = store.Store(url)
    if resume is None:
        run_id, cell_ids = _start(results, plan)
        done = pd.DataFrame(
            columns=["position", "repetition", "warmup", "sequence", "status", "wall_s", "error"]
        )
    else:
        run_id, cell_ids, done = _reopen(results, plan, resume)
    finished = {
        (int(p), int(r), bool(w))
        for p, r, w in zip(done["position"], done["repetition"], done["warmup"], strict=True)
    }
    todo = [t for t in plan.trials if (t.cell.position, t.repetition, t.warmup) not in finished]
    status = "failed"
    sampler = _sampler(plan)
    by_position = {cell.position: cell for cell in plan.cells}
    measured = done[~done["warmup"].astype(bool)]
    for position, status_text, wall in zip(
        measured["position"], measured["status"], measured["wall_s"], strict=True
    ):
        sampler.record(by_position[int(position)], str(status_text), _float_or_none(wall))
    progress.begin(len(todo))
    next_sequence = max([len(plan.trials), *(int(s) + 1 for s in done["sequence"])])

    # why, by cell position: no (further) trial of these cells runs
    skipped = {
        int(position): str(error or "skipped")
        for position, status_text, error in zip(
            done["position"], done["status"], done["error"], strict=True
        )
        if status_text == "skipped"
    }

    def one(trial: matrix.TrialPlan) -> None:
        progress.trial_started(trial)
        reason = skipped.get(trial.cell.position) or plan.skip_reason(trial.cell)
        if reason:
            measurement = _skipped(plan.probes[trial.cell.interpreter], reason)
        else:
            measurement = execute(_request(plan, trial.cell))
        if measurement.status == "skipped":
            skipped[trial.cell.position] = measurement.error or "skipped"
        results.add_trial(
            to_trial_row(run_id, cell_ids[trial.cell.position], trial, measurement),
            trial_facts(trial.cell.task, trial.cell.workers, measurement),
        )
        if not trial.warmup:
            sampler.record(trial.cell, measurement.status, measurement.result.get("work_s"))
        progress.trial_finished(trial, measurement.status)

    try:
        with _sigterm_as_interrupt():
            for trial in todo:
                one(trial)
            _adaptive_rounds(plan, sampler, one, progress, next_sequence)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise Interrupted(run_id) from None
    finally:
        progress.end()
        sampler.stop_all(adaptive.INTERRUPTED if status != "finished" else adaptive.FIXED)
        results.set_stop_reasons(
            {cell_ids[position]: reason for position, reason in sampler.reasons.items()}
        )
        results.finish_run(run_id, status, environment.closing_figures())
        summarise(results, run_id)
    report_path = build_report(results, run_id, reports_dir) if reports_dir else None
    return RunOutcome(run_id, status, results.trial_counts(run_id), report_path)


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _start(results: store.Store, plan: Plan) -> tuple[int, dict[int, int]]:
    """Store a new run with its environment and cells; its id and cell ids by position."""
    cell_rows = [
        store.Cell(
            run_id=0,
            position=cell.position,
            task=cell.task,
            model=cell.model,
            workers=cell.workers,
            payload_bytes=cell.payload_bytes,
            interpreter=cell.interpreter,
            variant=cell.variant_label,
            params_json=store.to_json(matrix.cell_params(plan.spec, cell)),
        )
        for cell in plan.cells
    ]
    run_row = results.create_run(
        _run_row(plan),
        environment.capture(),
        cell_rows,
        [interpreter_row(probe) for probe in plan.probes.values()],
    )
    assert run_row.id is not None
    return run_row.id, {row.position: row.id or 0 for row in cell_rows}


def interpreter_row(probe: interpreters.Probe) -> store.RunInterpreter:
    """The stored form of a probed interpreter."""
    facts = probe.facts
    return store.RunInterpreter(
        run_id=0,
        label=probe.interpreter.label,
        executable=probe.executable,
        env_json=store.to_json(probe.interpreter.environment),
        implementation=str(facts.get("implementation", "")),
        version=str(facts.get("version", "")),
        free_threaded_build=facts.get("py_gil_disabled"),
        gil_enabled=facts.get("gil_enabled"),
        start_methods=",".join(facts.get("start_methods", [])),
        unsupported_json=store.to_json(facts.get("unsupported", {})),
        facts_json=store.to_json(facts),
    )


def _reopen(
    results: store.Store, plan: Plan, resume: str
) -> tuple[int, dict[int, int], pd.DataFrame]:
    """Check that a run can be resumed with this plan and claim it; its id, cell ids by
    position and the trials it already has."""
    run_row = _resumable_run(results, plan, resume)
    run_id = run_row.id or 0
    if run_row.spec_hash != plan.spec.hash:
        raise ResumeError(
            f"run {run_id} cannot be resumed: its spec changed since "
            f"({spec_changes(run_row.spec_text, plan.spec.text)})"
        )
    changed = _changed_interpreters(results.interpreters_frame(run_id), plan.probes)
    if changed:
        raise ResumeError(f"run {run_id} cannot be resumed: {changed}")
    results.claim_run(run_id, platform.node(), os.getpid())
    return run_id, results.cell_ids(run_id), results.done_trials(run_id)


def _changed_interpreters(stored: pd.DataFrame, probes: dict[str, interpreters.Probe]) -> str:
    """What differs between the interpreters a run was started with and the ones probed now
    under the same labels (say, .python-ft relinked to another build), or ''."""
    keys = [
        "executable",
        "real_executable",  # .python-ft relinked to another build of the same version
        "env_json",
        "implementation",
        "version",
        "free_threaded_build",
        "gil_enabled",
        "unsupported_json",  # the backport installed or removed since
    ]
    changes = []
    for row in stored.to_dict("records"):
        probe = probes.get(row["label"])
        if probe is None:
            continue
        now = interpreter_row(probe).model_dump()
        now["real_executable"] = probe.facts.get("real_executable")
        row["real_executable"] = json.loads(row["facts_json"] or "{}").get("real_executable")
        was = {key: _comparable(row[key]) for key in keys}
        changes += [
            f"interpreter {row['label']!r} {key} was {was[key]!r}, now {now[key]!r}"
            for key in keys
            if was[key] is not None and _comparable(now[key]) != was[key]  # None: not kept then
        ]
    return "; ".join(changes)


def _comparable(value: Any) -> Any:
    """A stored value as its own kind: SQLite gives booleans back as 0/1, NULL as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value) if isinstance(value, bool | int) else str(value)


def _resumable_run(results: store.Store, plan: Plan, resume: str) -> store.Run:
    if resume != "latest":
        run_row = results.resolve_run(resume)
        problem = _why_not_resumable(run_row, plan.spec.timeout)
        if problem:
            raise ResumeError(f"run {run_row.id} cannot be resumed: {problem}")
        return run_row
    for run_row in results.runs():
        if run_row.name == plan.spec.name and not _why_not_resumable(run_row, plan.spec.timeout):
            return run_row
    raise ResumeError(
        f"no run of spec {plan.spec.name!r} to resume (every one finished or running)"
    )


HEARTBEAT_GRACE_S = 60.0


def _why_not_resumable(run_row: store.Run, timeout_s: float) -> str | None:
    """None when the run may be resumed; else why not."""
    if run_row.status == "finished":
        return "it finished"
    if run_row.status != "running":
        return None  # interrupted or failed
    if run_row.orchestrator_host == platform.node() and run_row.orchestrator_pid:
        if run_row.orchestrator_pid != os.getpid() and psutil.pid_exists(run_row.orchestrator_pid):
            return f"it is still running (pid {run_row.orchestrator_pid})"
        return None  # its orchestrator on this host is gone
    beat = run_row.heartbeat_at or run_row.started_at
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    silent_s = (store.now() - beat).total_seconds()
    if silent_s <= timeout_s + HEARTBEAT_GRACE_S:
        return (
            f"it may still be running on {run_row.orchestrator_host or 'another host'} "
            f"(last trial {silent_s:.0f} s ago)"
        )
    return None


def spec_changes(old_text: str, new_text: str) -> str:
    """The top-level spec keys (and matrix axes) whose values differ, e.g.
    'matrix.workers: [1, 2] -> [1, 2, 4]'."""
    old, new = yaml.safe_load(old_text) or {}, yaml.safe_load(new_text) or {}
    flat_old, flat_new = _flatten(old), _flatten(new)
    changed = [
        f"{key}: {flat_old.get(key, '(none)')} -> {flat_new.get(key, '(none)')}"
        for key in sorted(set(flat_old) | set(flat_new))
        if flat_old.get(key) != flat_new.get(key)
    ]
    return "; ".join(changed) or "its text differs (comments or formatting only)"


def _flatten(spec: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if key in ("matrix", "params") and isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat


def _sampler(plan: Plan) -> adaptive.Sampler:
    settings = plan.spec.adaptive
    return adaptive.Sampler(
        plan.cells,
        target_ci=settings.target_ci if settings else 0.0,
        maximum=settings.max if settings else plan.spec.min_repetitions,
        budget_s=plan.spec.budget,
        seed=plan.spec.seed,
    )


def _adaptive_rounds(
    plan: Plan,
    sampler: adaptive.Sampler,
    one: Callable[[matrix.TrialPlan], None],
    progress: Progress,
    sequence: int,
) -> None:
    """Extra rounds of trials for the cells not yet known precisely enough."""
    if plan.spec.adaptive is None:
        return
    while cells := sampler.next_round():
        progress.extend(len(cells))
        for cell in cells:
            one(matrix.TrialPlan(sequence, cell, sampler.counts.get(cell.position, 0), False))
            sequence += 1


def _run_row(plan: Plan) -> store.Run:
    spec = plan.spec
    return store.Run(
        name=spec.name,
        description=spec.description,
        spec_path=spec.path,
        spec_text=spec.text,
        spec_hash=spec.hash,
        seed=spec.seed,
        repetitions=spec.min_repetitions,
        repetitions_max=spec.adaptive.max if spec.adaptive else spec.min_repetitions,
        target_ci=spec.adaptive.target_ci if spec.adaptive else None,
        budget_s=spec.budget,
        warmup=spec.warmup,
        items=spec.items,
        timeout_s=spec.timeout,
        trial_order=matrix.ORDER_DESCRIPTION,
        trial_count=len(plan.trials),
        sample_interval_s=runner.SAMPLE_INTERVAL_S,
        pipeline_version=__version__,
        orchestrator_host=platform.node(),
        orchestrator_pid=os.getpid(),
    )


def _skipped(probe: interpreters.Probe, reason: str) -> runner.Measurement:
    """A trial of a cell its interpreter cannot run: recorded, with the reason, not run."""
    return runner.Measurement("skipped", {"interpreter": probe.facts}, 0.0, None, reason)


def _request(plan: Plan, cell: matrix.Cell) -> runner.TrialRequest:
    spec = plan.spec
    probe = plan.probes[cell.interpreter]
    return runner.TrialRequest(
        interpreter=probe.executable,
        env=probe.interpreter.environment,
        task=cell.task,
        model=cell.model,
        workers=cell.workers,
        payload_bytes=cell.payload_bytes,
        items=spec.items,
        timeout_s=spec.timeout,
        seed=spec.seed,
        params=matrix.cell_params(spec, cell),
        python_path=tuple(spec.python_path),
    )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while a run goes on, so it ends as 'interrupted'."""

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def to_trial_row(
    run_id: int, cell_id: int, trial: matrix.TrialPlan, measurement: runner.Measurement
) -> store.Trial:
    """The stored form of one measured trial."""
    result = measurement.result
    interpreter = result.get("interpreter", {})
    latencies = sorted(item["latency_s"] for item in result.get("items", []) if "latency_s" in item)
    work_s = result.get("work_s")
    items_done = result.get("items_done", 0)
    return store.Trial(
        run_id=run_id,
        cell_id=cell_id,
        sequence=trial.sequence,
        repetition=trial.repetition,
        warmup=trial.warmup,
        status=measurement.status,
        wall_s=work_s,
        startup_s=result.get("startup_s"),
        shutdown_s=result.get("shutdown_s"),
        process_s=measurement.process_s,
        cpu_user_s=result.get("cpu_user_s"),
        cpu_sys_s=result.get("cpu_sys_s"),
        peak_rss_bytes=measurement.peak_rss_bytes,
        peak_uss_bytes=measurement.peak_uss_bytes,
        peak_pss_bytes=measurement.peak_pss_bytes,
        items_done=items_done,
        items_failed=result.get("items_failed", 0),
        latency_p50_s=_percentile(latencies, 50),
        latency_p95_s=_percentile(latencies, 95),
        latency_p99_s=_percentile(latencies, 99),
        throughput_items_s=items_done / work_s if work_s else None,
        cpu_utilisation=_cpu_utilisation(result),
        ctx_switches_voluntary=result.get("ctx_switches_voluntary"),
        ctx_switches_involuntary=result.get("ctx_switches_involuntary"),
        start_method=result.get("start_method"),
        python_version=interpreter.get("version"),
        python_implementation=interpreter.get("implementation"),
        gil_enabled=interpreter.get("gil_enabled"),
        free_threaded_build=interpreter.get("free_threaded_build"),
        switch_interval_s=interpreter.get("switch_interval_s"),
        error=measurement.error,
        detail_json=json.dumps(result, default=repr),
    )


def trial_facts(
    task: str, workers: int, measurement: runner.Measurement
) -> dict[str, float | None]:
    """The task's facts about a trial: those the worker reported, plus those only the
    orchestrator can know (a fault that killed the whole trial process; memory per worker)."""
    facts: dict[str, float | None] = dict(measurement.result.get("facts") or {})
    if task == "fault" and measurement.status == "crashed":
        facts.update(
            others_finished=measurement.result.get("items_done"),
            pool_broken=None,
            trial_process_survived=0.0,
        )
    if task == "memory":
        for kind in ("rss", "uss", "pss"):
            peak = getattr(measurement, f"peak_{kind}_bytes")
            facts[f"{kind}_per_worker_bytes"] = peak / workers if peak is not None else None
    return facts


def _cpu_utilisation(result: dict[str, Any]) -> float | None:
    """CPU time over the wall time of the same interval (start-up + work + shutdown), in
    cores: 2.0 means two cores busy throughout."""
    try:
        wall_s = math.fsum(float(result[key]) for key in ("startup_s", "work_s", "shutdown_s"))
        cpu_s = math.fsum(float(result[key]) for key in ("cpu_user_s", "cpu_sys_s"))
    except (KeyError, TypeError):
        return None
    return cpu_s / wall_s if wall_s > 0 else None


def _percentile(values: list[float], percent: int) -> float | None:
    """The inclusive percentile of sorted values (None for none)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def summarise(results: store.Store, run_id: int, trials: pd.DataFrame | None = None) -> None:
    """Compute the run's cell statistics and store them behind ``cell_summary``
    (``trials``: the run's trial_results rows, when the caller has them already)."""
    from . import stats

    trials = results.trials_frame(run_id) if trials is None else trials
    if trials.empty:
        return
    run_row = results.resolve_run(run_id)
    summary = stats.summarize_cells(
        trials,
        cores=_cores(results, run_id),
        seed=run_row.seed,  # the bootstrap's seed is the run's, recorded with it
        target_ci=run_row.target_ci,
    )
    results.save_cell_stats(run_id, summary)


def _cores(results: store.Store, run_id: int) -> int:
    found = results.environment(run_id)
    return (found.cpu_physical or found.cpu_logical or 1) if found else 1


def verdicts(
    results: store.Store, run: str | int | None, trials: pd.DataFrame | None = None
) -> list[Any]:
    """The verdicts on the explainer's claims for one run (see pipeline.claims)."""
    from . import claims, stats

    run_row = results.resolve_run(run)
    run_id = run_row.id or 0
    trials = results.trials_frame(run_id) if trials is None else trials
    if results.summary_frame(run_id).empty and not trials.empty:
        summarise(results, run_id, trials)
    return claims.verdicts(
        stats.numeric_summary(results.summary_frame(run_id)),
        trials,
        results.facts_frame(run_id),
        _cores(results, run_id),
    )


def report_dir_name(run_id: int) -> str:
    """The folder of a run's report under the reports directory."""
    return f"run-{run_id}"


def build_report(
    results: store.Store, run: str | int | None, reports_dir: Path, *, index: bool = True
) -> Path:
    """(Re)build a run's report folder (page, trials.csv, summary.csv, summary.md) and,
    unless ``index`` is false, the index of all runs; return the run's page."""
    from . import report, stats

    run_row = results.resolve_run(run)
    assert run_row.id is not None
    trials = results.trials_frame(run_row.id)  # read once: 100,000 rows take a second
    if results.summary_frame(run_row.id).empty and not trials.empty:
        summarise(results, run_row.id, trials)
    summary = report.variant_sections(results.summary_frame(run_row.id))
    cores = _cores(results, run_row.id)
    rendered = _render_charts(
        summary, [str(task) for task in dict.fromkeys(summary["task"])], cores
    )
    out_dir = reports_dir / report_dir_name(run_row.id)
    found = verdicts(results, run_row.id, trials)
    run_values = _run_dict(results, run_row)
    environment_values = _environment_dict(results, run_row.id)
    page = report.write_run_report(
        run_values,
        environment_values,
        summary,
        rendered,
        out_dir,
        facts=stats.summarize_facts(results.facts_frame(run_row.id)),
        warnings=_warnings(results, run_row.id),
        verdicts=found,
        overview=rendered.pop(OVERVIEW, []),
        interpreters=results.interpreters_frame(run_row.id),
        trials=trials,
    )
    report.write_data_files(
        out_dir,
        trials,
        results.summary_frame(run_row.id),
        report.markdown_digest(run_values, environment_values, summary, found),
        found,
    )
    if index:
        write_index(results, reports_dir)
    return page


OVERVIEW = "\0overview"  # the key of the run-wide charts (no task can be named so)


def _render_charts(summary: pd.DataFrame, tasks: list[str], cores: int) -> dict[str, list[str]]:
    """Every chart of a report: each task's and the overview. Rendering SVG is the slow
    part of a report (about 0.5 s a figure), so with many figures it is spread over a
    process per core."""
    import concurrent.futures as cf
    import multiprocessing
    import os

    jobs = [*tasks, OVERVIEW]
    workers = min(os.cpu_count() or 1, len(jobs))
    if workers < 2 or len(jobs) < 4:
        return {job: _charts_of(summary, job, cores) for job in jobs}
    # fork: the children inherit the imported matplotlib and seaborn (seconds to import)
    with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        drawn = pool.map(_charts_of, [summary] * len(jobs), jobs, [cores] * len(jobs))
        return dict(zip(jobs, drawn, strict=True))


def _charts_of(summary: pd.DataFrame, job: str, cores: int) -> list[str]:
    return _overview_charts(summary) if job == OVERVIEW else _task_charts(summary, job, cores)


def _task_charts(summary: pd.DataFrame, task: str, cores: int) -> list[str]:
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


def _overview_charts(summary: pd.DataFrame) -> list[str]:
    """The run-wide figures that have data: fastest model per task and worker count,
    start-up and shutdown, transfer cost, and interpreters side by side."""
    from . import charts

    drawn = []
    for chart in (
        charts.best_model_heatmap,
        charts.startup_chart,
        charts.transfer_chart,
        charts.interpreter_chart,
    ):
        try:
            drawn.append(chart(summary))
        except charts.NothingToDraw:  # no data for it in this run
            continue
    return drawn


def publish(results: store.Store, reports_dir: Path) -> list[Path]:
    """Rebuild the report of every run in the database and the index of them all."""
    pages = [
        build_report(results, row.id, reports_dir, index=False) for row in reversed(results.runs())
    ]
    write_index(results, reports_dir)
    return pages


def write_index(results: store.Store, reports_dir: Path) -> Path:
    """reports_dir/index.html: every run with a published report, newest first."""
    from . import report

    published = [
        row
        for row in results.runs()
        if (reports_dir / report_dir_name(row.id or 0) / "index.html").exists()
    ]
    return report.write_index(
        [_index_entry(results, row, reports_dir) for row in published], reports_dir
    )


def _warnings(results: store.Store, run_id: int) -> list[str]:
    found = results.environment(run_id)
    return environment.busy_warnings(found) if found is not None else []


def _run_dict(results: store.Store, run_row: store.Run) -> dict[str, Any]:
    values = run_row.model_dump()
    values["order"] = run_row.trial_order
    values["trial_count"] = sum(results.trial_counts(run_row.id or 0).values())
    return values


def _environment_dict(results: store.Store, run_id: int) -> dict[str, Any]:
    found = results.environment(run_id)
    if found is None:
        return {}
    values = found.model_dump(exclude={"run_id", "packages_json"})
    packages = json.loads(found.packages_json or "{}")
    values["packages"] = ", ".join(f"{name} {version}" for name, version in packages.items())
    probed = results.interpreters_frame(run_id)
    if not probed.empty:
        values["interpreters"] = "; ".join(
            f"{label}: {interpreters.describe(json.loads(facts))}"
            for label, facts in zip(probed["label"], probed["facts_json"], strict=True)
        )
    return values


def _index_entry(results: store.Store, run_row: store.Run, reports_dir: Path) -> dict[str, Any]:
    from . import report

    run_id = run_row.id or 0
    found = results.environment(run_id)
    counts = results.trial_counts(run_id)
    return {
        "id": run_id,
        "name": run_row.name,
        "status": run_row.status,
        "started_at": run_row.started_at,
        "host": found.hostname if found else "",
        "interpreters": ", ".join(results.interpreters(run_id)),
        "trial_count": sum(counts.values()),
        "report_href": f"{report_dir_name(run_id)}/index.html",
        "headline": report.run_headline(report.variant_sections(results.summary_frame(run_id))),
        # written beside the run's page when it was built: no statistics redone here
        "verdicts": report.read_verdict_counts(reports_dir / report_dir_name(run_id)),
    }


# -- the database as a product: runs, one run, exports ----------------------------------------
def runs_frame(results: store.Store) -> pd.DataFrame:
    """Every run, newest first: id, name, status, start, duration, host, interpreters and
    measured trials by status."""
    rows = []
    for row in results.runs():
        run_id = row.id or 0
        found = results.environment(run_id)
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
                "host": found.hostname if found else "",
                "interpreters": ", ".join(results.interpreters(run_id)),
                "trials": ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            }
        )
    columns = ["id", "name", "status", "started", "duration_s", "host", "interpreters", "trials"]
    return pd.DataFrame(rows, columns=columns)


def show(
    results: store.Store, run: str | int | None
) -> tuple[store.Run, dict[str, Any], pd.DataFrame]:
    """A run, its environment (as a dict) and the main columns of its cell summary."""
    from .stats import CELL_COLUMNS  # scipy: imported only by the commands that need it

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
        _environment_dict(results, run_row.id or 0),
        summary[[column for column in shown if column in summary.columns]],
    )


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
    return export_frame(store.Store(db or store.default_url()), run, "trials")[1]


def load_summary(db: str | None = None, run: str | int | None = "latest") -> pd.DataFrame:
    """A run's cell statistics (the ``cell_summary`` view) for a notebook."""
    return export_frame(store.Store(db or store.default_url()), run, "summary")[1]


COMPARE_KEYS = ["task", "variant", "model", "workers", "payload_bytes", "interpreter"]


def compare_runs(results: store.Store, first: str | int, second: str | int) -> pd.DataFrame:
    """The cells two runs share, side by side: median wall times, the change (second /
    first - 1) with its bootstrap interval, and Mann-Whitney p-values Holm-corrected over
    the shared cells. Runs with one interpreter each are matched whatever it is (to
    compare interpreters or machines); otherwise the interpreter is part of the match."""
    from . import stats

    runs = [results.resolve_run(run) for run in (first, second)]
    trials = [results.trials_frame(run.id or 0) for run in runs]
    keys = list(COMPARE_KEYS)
    if all(frame["interpreter"].nunique() <= 1 for frame in trials):
        keys.remove("interpreter")
    ok = [
        frame[frame["status"].eq("ok")].assign(variant=frame["variant"].fillna(""))
        for frame in trials
    ]
    walls = [dict(iter(frame.groupby(keys)["wall_s"])) for frame in ok]
    rows = []
    for key in [key for key in walls[0] if key in walls[1]]:
        found = stats.compare(walls[0][key].to_numpy(), walls[1][key].to_numpy())
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_first": found.n_first,
                "n_second": found.n_second,
                "median_first_s": found.median_first,
                "median_second_s": found.median_second,
                "change": found.ratio - 1,
                "change_ci_low": found.ratio_ci_low - 1,
                "change_ci_high": found.ratio_ci_high - 1,
                "p_value": found.p_value,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_holm"] = stats.holm(frame["p_value"].to_numpy())
    significant = frame["p_holm"] < 0.05
    frame["verdict"] = "no significant change"
    frame.loc[significant & (frame["change_ci_low"] > 0), "verdict"] = "slower"
    frame.loc[significant & (frame["change_ci_high"] < 0), "verdict"] = "faster"
    return frame


def regressions(compared: pd.DataFrame, fail_above_percent: float) -> pd.DataFrame:
    """The compared cells that got significantly slower by more than the given percent."""
    if compared.empty:
        return compared
    return compared[
        compared["verdict"].eq("slower") & (compared["change"] * 100 > fail_above_percent)
    ]
