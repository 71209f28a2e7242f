"""Running a plan: trials one at a time in fresh processes, each stored as it finishes;
adaptive rounds; SIGTERM and Ctrl-C end a run as interrupted with its trials kept."""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ..planning import matrix
from ..results import OpenCells, prepare_decisions, rule, summarise
from ..status import RunStatus, StopReason, TrialStatus
from ..storage.store import Store
from . import (
    adaptive,
    cluster,
    dispatch,
    environment,
    interpreters,
    records,
    runner,
    trial,
)
from .cpu_use import CpuWindow
from .plan import Plan
from .resume import reopen
from .warm import WarmStarts


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


# the cell ids of a stored run that adaptive rounds should measure again
Undecided = Callable[[Store, int], set[int]]


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run produced."""

    run_id: int
    status: str
    counts: dict[str, int]
    report_path: Path | None = None  # filled in by whoever writes the report


def run(
    plan: Plan,
    url: str,
    *,
    progress: Progress | None = None,
    execute: trial.Execute | None = None,
    resume: str | None = None,
    undecided: Undecided | None = None,
) -> RunOutcome:
    """Run every trial of ``plan``, committing each as it finishes; then summarise the run's
    cells. With ``resume`` (a run id, or
    "latest" for the newest resumable run of this spec), run only the trials that run
    lacks. ``undecided``: the cells that adaptive rounds go to (by default those of the
    claims' open comparisons, each look reading only the trials stored since the last)."""
    progress = progress or QuietProgress()
    store = Store(url)
    if resume is None:
        run_id, cell_ids = _start(store, plan)
        done = pd.DataFrame(
            columns=["position", "repetition", "warmup", "sequence", "status", "wall_s", "error"]
        )
    else:
        run_id, cell_ids, done = reopen(store, plan, resume)
    finished = {
        (int(p), int(r), bool(w))
        for p, r, w in zip(done["position"], done["repetition"], done["warmup"], strict=True)
    }
    todo = [t for t in plan.trials if (t.cell.position, t.repetition, t.warmup) not in finished]
    status = RunStatus.FAILED
    repetitions = _repetitions(plan)
    by_position = {cell.position: cell for cell in plan.cells}
    measured = done[~done["warmup"].astype(bool)]
    for position, status_text, wall in zip(
        measured["position"], measured["status"], measured["wall_s"], strict=True
    ):
        repetitions.record(by_position[int(position)], str(status_text), _float_or_none(wall))
    progress.begin(len(todo))
    next_sequence = max([len(plan.trials), *(int(s) + 1 for s in done["sequence"])])

    # why, by cell position: no (further) trial of these cells runs
    skipped = {
        int(position): str(error or "skipped")
        for position, status_text, error in zip(
            done["position"], done["status"], done["error"], strict=True
        )
        if status_text == TrialStatus.SKIPPED
    }

    def prepare(trial: matrix.TrialPlan) -> trial.TrialRequest | trial.Measurement:
        """What to run for a trial, or the measurement of one that need not run."""
        reason = skipped.get(trial.cell.position) or plan.skip_reason(trial.cell)
        if reason:
            return _skipped(plan.probes[trial.cell.interpreter], reason)
        return _request(plan, trial.cell)

    interrupts = Interrupts()

    def store_done(batch: list[dispatch.Done]) -> None:
        """Store trials that finished together, in one transaction, then count them."""
        for done in batch:
            if done.measurement.status == TrialStatus.SKIPPED:
                skipped[done.trial.cell.position] = done.measurement.error or "skipped"
        with interrupts.storing_trials():
            store.add_trials(
                [
                    (
                        records.trial_row(
                            run_id,
                            cell_ids[done.trial.cell.position],
                            done.trial,
                            done.measurement,
                            host=done.host,
                            note=done.note,
                        ),
                        records.trial_facts(
                            done.trial.cell.task, done.trial.cell.workers, done.measurement
                        ),
                    )
                    for done in batch
                ]
            )
        for done in batch:
            trial, measurement = done.trial, done.measurement
            if not trial.warmup:
                repetitions.record(trial.cell, measurement.status, measurement.result.get("work_s"))
            progress.trial_finished(trial, measurement.status)

    def run_all(trials: list[matrix.TrialPlan]) -> None:
        """Run ``trials`` where the plan says (this machine or the cluster), storing each
        as it finishes."""
        if plan.cluster is None:
            finished = dispatch.run_locally(trials, prepare, run_trial, progress.trial_started)
        else:
            finished = plan.cluster.run(trials, prepare, progress.trial_started)
        for batch in finished:
            store_done(batch)

    # trials forked from warm fork servers, closed with the run (see warm.py)
    warm = WarmStarts() if execute is None and plan.spec.trial_process == "warm" else None
    run_trial = execute or functools.partial(runner.execute_in_process, warm=warm)
    try:
        with interrupts.installed():
            run_all(todo)
            positions = {cell_id: position for position, cell_id in cell_ids.items()}
            look = (
                OpenCells(store, run_id)
                if undecided is None
                else functools.partial(undecided, store, run_id)
            )
            _adaptive_rounds(
                plan,
                repetitions,
                run_all,
                progress,
                next_sequence,
                lambda: {positions[i] for i in look() if i in positions},
            )
        status = RunStatus.FINISHED
    except KeyboardInterrupt:
        status = RunStatus.INTERRUPTED
        raise Interrupted(run_id) from None
    except cluster.HostsGone as error:
        status = RunStatus.INTERRUPTED
        raise cluster.HostsGone(f"{error}: run {run_id} interrupted (--resume {run_id})") from None
    finally:
        if warm is not None:
            warm.close()
        progress.end()
        repetitions.stop_all(
            StopReason.FIXED_COUNT if status == RunStatus.FINISHED else StopReason.INTERRUPTED
        )
        store.set_stop_reasons(
            {cell_ids[position]: reason for position, reason in repetitions.reasons.items()}
        )
        _finish(store, run_id, status)
    return RunOutcome(run_id, status, store.trial_counts(run_id))


def _finish(store: Store, run_id: int, status: str) -> None:
    """Store the cell statistics and how the run ended, with other programs' CPU use after
    it, sampled while the statistics are worked out where their queries run in this
    process (SQLite; a database server's work would count as another program's)."""
    closing = CpuWindow()
    if not store.embedded:
        store.finish_run(run_id, status, environment.closing_figures(closing))
        summarise(store, run_id)
        return
    try:
        summarise(store, run_id)
    finally:
        store.finish_run(run_id, status, environment.closing_figures(closing))


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _start(store: Store, plan: Plan) -> tuple[int, dict[int, int]]:
    """Store a new run with its environment and cells; its id and cell ids by position."""
    cell_rows = records.cell_rows(plan)
    run = records.run_row(plan)
    # the statistics the first adaptive decision needs (the level of every look, their
    # imports) are prepared while the machine's CPU use is sampled before the run
    run_row = store.create_run(
        run,
        records.environment_row(environment.capture(lambda: prepare_decisions(rule(run)))),
        cell_rows,
        [records.interpreter_row(probe) for probe in plan.probes.values()],
        records.host_rows(plan),
    )
    assert run_row.id is not None
    return run_row.id, {row.position: row.id or 0 for row in cell_rows}


def _repetitions(plan: Plan) -> adaptive.Repetitions:
    settings = plan.spec.adaptive
    return adaptive.Repetitions(
        plan.cells,
        target_ci=settings.target_ci if settings else 0.0,
        maximum=settings.max if settings else plan.spec.min_repetitions,
        budget_s=plan.spec.budget,
        deadline_s=time.monotonic() + plan.spec.time_limit if plan.spec.time_limit else None,
        seed=plan.spec.seed,
    )


def _adaptive_rounds(
    plan: Plan,
    repetitions: adaptive.Repetitions,
    run_all: Callable[[list[matrix.TrialPlan]], None],
    progress: Progress,
    sequence: int,
    undecided: Callable[[], set[int]],
) -> None:
    """Extra rounds of trials for the cells a claim has not decided yet, or (with a
    target) not yet known precisely enough."""
    if plan.spec.adaptive is None:
        return
    while cells := repetitions.next_round(undecided()):
        progress.extend(len(cells))
        round_trials = [
            matrix.TrialPlan(sequence + i, cell, repetitions.counts.get(cell.position, 0), False)
            for i, cell in enumerate(cells)
        ]
        sequence += len(cells)
        run_all(round_trials)


def _skipped(probe: interpreters.Probe, reason: str) -> trial.Measurement:
    """A trial of a cell its interpreter cannot run: recorded, with the reason, not run."""
    return trial.Measurement(
        status=TrialStatus.SKIPPED, result={"interpreter": probe.facts}, error=reason
    )


def _request(plan: Plan, cell: matrix.Cell) -> trial.TrialRequest:
    spec = plan.spec
    probe = plan.probes[cell.interpreter]
    return trial.TrialRequest(
        interpreter=probe.executable,
        env=probe.interpreter.environment,
        task=cell.task,
        model=cell.model,
        workers=cell.workers,
        payload_bytes=cell.payload_bytes,
        items=matrix.work_items(spec, cell),
        warmup_items=spec.warmup_items,
        timeout_s=spec.timeout,
        seed=spec.seed,
        params=matrix.cell_params(spec, cell),
        python_path=tuple(spec.python_path),
        limits=plan.limits,
        sampling=trial.Sampling(spec.sampling.interval, spec.sampling.memory),
    )


class Interrupts:
    """Ctrl-C and SIGTERM end a run as 'interrupted', but never in the middle of storing
    trials: a KeyboardInterrupt raised inside the database driver or its connection pool
    could leave a transaction (and SQLite's write lock) open while the run goes on to
    record how it ended. A signal that comes while trials are stored interrupts the run
    once they are."""

    def __init__(self) -> None:
        self.storing = False
        self.pending = False

    def handler(self, _signum: int, _frame: Any) -> None:
        if self.storing:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        try:
            previous = {
                number: signal.signal(number, self.handler)
                for number in (signal.SIGINT, signal.SIGTERM)
            }
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    @contextlib.contextmanager
    def storing_trials(self) -> Iterator[None]:
        self.storing = True
        try:
            yield
        finally:
            self.storing = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt
