"""Running a plan: trials one at a time in fresh processes, each stored as it finishes;
adaptive rounds; SIGTERM and Ctrl-C end a run as interrupted with its trials kept."""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ..errors import SpecError
from ..planning import matrix
from ..planning.spec import Spec, load_spec
from ..results import summarise, undecided_cells
from ..status import RunStatus, StopReason, TrialStatus
from ..storage import store
from ..worker.tasks import is_user_task
from . import adaptive, cluster, dispatch, environment, interpreters, observer, records, runner
from .resume import reopen


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
Undecided = Callable[[store.Store, int], set[int]]


@dataclass(frozen=True)
class Plan:
    """A validated spec with its cells and ordered trials."""

    spec: Spec
    cells: list[matrix.Cell]
    trials: list[matrix.TrialPlan]
    probes: dict[str, interpreters.Probe]  # by interpreter label
    cluster: cluster.Cluster | None = None  # where the trials run (None: on this machine)
    limits: runner.Limits = field(default_factory=runner.Limits)  # what a trial may use

    def skip_reason(self, cell: matrix.Cell) -> str | None:
        """Why the cell's interpreter cannot run its model (its trials are then recorded as
        skipped without running), or None."""
        return self.probes[cell.interpreter].unsupported(cell.model)

    def warnings(self) -> list[str]:
        """What the user should know before the run starts: hosts that differ although
        they share one matrix (hosts: spread); warm starts that cannot be."""
        return self._host_warnings() + self._warm_warnings()

    def _host_warnings(self) -> list[str]:
        if self.cluster is None:
            each = self.spec.hosts == "each"
            return ["hosts: each only applies with --cluster; this run is on this machine"] * each
        if self.spec.hosts == "each":
            return []
        return [
            f"{difference}: hosts: spread mixes their measurements in each cell (hosts: each "
            "keeps them apart)"
            for difference in self.cluster.differences()
        ]

    def _warm_warnings(self) -> list[str]:
        if self.spec.trial_process != "warm":
            return []
        if self.cluster is not None:
            return ["trial_process: warm applies on this machine only; on the cluster every "
                    "trial runs in a fresh interpreter"]  # fmt: skip
        return [
            f"interpreter {label}: trial_process: warm is not available ({reason}); its "
            "trials run in fresh interpreters"
            for label, probe in self.probes.items()
            if (reason := probe.facts.get("warm_starts"))
        ]

    def close(self) -> None:
        """Let go of the cluster, if any."""
        if self.cluster is not None:
            self.cluster.close()

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
    report_path: Path | None = None  # filled in by whoever writes the report


def plan(spec_path: str | Path, cluster_address: str | None = None) -> Plan:
    """Load and validate the spec, probe its interpreters (each run once), expand the
    matrix and order the trials. Writes nothing. With ``cluster_address``, the
    interpreters are probed on every host of that Dask cluster instead (the first host's
    probes stand for all in the run's records), and ``hosts: each`` makes the hosts an
    axis of cells."""
    if cluster_address is None:
        spec = load_spec(spec_path, interpreters.check)
        probes = probe_interpreters(spec)
        hosts: tuple[str, ...] = ("",)
        connected = None
    else:
        spec = load_spec(spec_path, elsewhere=True)
        user_tasks = [task for task in spec.matrix.task if is_user_task(task)]
        connected = cluster.connect(
            cluster_address, spec.interpreter_entries, user_tasks, spec.python_path
        )
        probes = connected.hosts[connected.names[0]].probes
        hosts = connected.names if spec.hosts == "each" else ("",)
    cells = matrix.expand(spec, hosts)
    if not cells:
        raise SpecError(
            f"{spec.path}:{spec.line_of('exclude')}: exclude: removes every cell of the matrix"
        )
    available = (
        min(int(h.facts.get("memory_available_bytes") or 0) for h in connected.hosts.values())
        if connected is not None
        else None
    )
    _check_capacity(spec, cells, available)
    limits = trial_limits(spec, cells, available)
    if connected is None:  # on a cluster, each host checked them (cluster.describe_host)
        _check_user_tasks(spec, probes)
    trials = matrix.schedule(cells, spec.min_repetitions, spec.warmup, spec.seed)
    return Plan(spec, cells, trials, probes, connected, limits)


def _check_user_tasks(spec: Spec, probes: dict[str, interpreters.Probe]) -> None:
    """Refuse a module:function task that an interpreter of the spec cannot load (before
    the first trial, rather than as a failure of every trial)."""
    for index, task in enumerate(spec.matrix.task):
        if not is_user_task(task):
            continue
        for label, probed in probes.items():
            problem = interpreters.task_problem(probed, task, spec.python_path)
            if problem:
                raise SpecError(
                    f"{spec.path}:{spec.line_of('matrix', 'task', index)}: matrix.task[{index}]: "
                    f"{task} cannot be loaded by interpreter {label}: {problem}"
                )


DEFAULT_PROCESSES = 512
DEFAULT_OUTPUT_BYTES = 16 * 1024**2
MEMORY_SHARE = 0.8  # of the memory available when the run starts


def trial_limits(spec: Spec, cells: list[matrix.Cell], available: int | None) -> runner.Limits:
    """The spec's limits, each unset one derived from the machine: 80% of the memory
    available now, 512 processes (or twice the most workers, plus 16, if more; never more
    than RLIMIT_NPROC allows), 16 MiB of output."""
    import resource

    available = available or environment.memory_available()
    nproc, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    processes = max(DEFAULT_PROCESSES, 2 * max(cell.workers for cell in cells) + 16)
    if nproc != resource.RLIM_INFINITY:
        processes = min(processes, nproc)
    given = spec.limits
    if spec.sampling.memory == "off":  # nothing samples the tree, so nothing checks these
        return runner.Limits(output_bytes=given.output or DEFAULT_OUTPUT_BYTES)
    return runner.Limits(
        memory_bytes=given.memory or (int(available * MEMORY_SHARE) if available else None),
        processes=given.processes or processes,
        output_bytes=given.output or DEFAULT_OUTPUT_BYTES,
    )


def _check_capacity(spec: Spec, cells: list[matrix.Cell], available: int | None) -> None:
    """Refuse cells the machine cannot hold: a trial keeps about payload × items bytes in
    the parent and in every worker, and each worker may be a process (RLIMIT_NPROC)."""
    import resource

    from ..units import format_bytes, format_size

    available = available or environment.memory_available()
    largest = max(cells, key=lambda c: c.payload_bytes * spec.items * (c.workers + 1))
    need = largest.payload_bytes * spec.items * (largest.workers + 1)
    if available and need > available:
        raise SpecError(
            f"{spec.path}:{spec.line_of('matrix', 'payload')}: matrix.payload: "
            f"{format_bytes(largest.payload_bytes)} × {spec.items} items × "
            f"({largest.workers} workers + 1) needs {format_size(need)}, more than the "
            f"{format_size(available)} of memory available"
        )
    limit, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    most = max(cell.workers for cell in cells)
    if limit != resource.RLIM_INFINITY and most >= limit:
        raise SpecError(
            f"{spec.path}:{spec.line_of('matrix', 'workers')}: matrix.workers: {most} "
            f"workers, but this user may run only {limit} processes (ulimit -u)"
        )


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
    execute: runner.Execute | None = None,
    resume: str | None = None,
    undecided: Undecided = undecided_cells,
) -> RunOutcome:
    """Run every trial of ``plan``, committing each as it finishes; then summarise the run's
    cells. With ``resume`` (a run id, or
    "latest" for the newest resumable run of this spec), run only the trials that run
    lacks. ``undecided``: the cells that adaptive rounds go to (by default those of the
    claims' open comparisons)."""
    progress = progress or QuietProgress()
    results = store.Store(url)
    if resume is None:
        run_id, cell_ids = _start(results, plan)
        done = pd.DataFrame(
            columns=["position", "repetition", "warmup", "sequence", "status", "wall_s", "error"]
        )
    else:
        run_id, cell_ids, done = reopen(results, plan, resume)
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

    def prepare(trial: matrix.TrialPlan) -> runner.TrialRequest | runner.Measurement:
        """What to run for a trial, or the measurement of one that need not run."""
        reason = skipped.get(trial.cell.position) or plan.skip_reason(trial.cell)
        if reason:
            return _skipped(plan.probes[trial.cell.interpreter], reason)
        return _request(plan, trial.cell)

    def store_done(done: dispatch.Done) -> None:
        trial, measurement = done.trial, done.measurement
        if measurement.status == TrialStatus.SKIPPED:
            skipped[trial.cell.position] = measurement.error or "skipped"
        results.add_trial(
            records.trial_row(
                run_id,
                cell_ids[trial.cell.position],
                trial,
                measurement,
                host=done.host,
                note=done.note,
            ),
            records.trial_facts(trial.cell.task, trial.cell.workers, measurement),
        )
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
        for done in finished:
            store_done(done)

    # trials forked from warm fork servers, closed with the run (see warm.py)
    warm = runner.WarmStarts() if execute is None and plan.spec.trial_process == "warm" else None
    run_trial = execute or functools.partial(runner.execute_in_process, warm=warm)
    try:
        with _sigterm_as_interrupt():
            run_all(todo)
            positions = {cell_id: position for position, cell_id in cell_ids.items()}
            _adaptive_rounds(
                plan,
                repetitions,
                run_all,
                progress,
                next_sequence,
                lambda: {positions[i] for i in undecided(results, run_id) if i in positions},
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
        results.set_stop_reasons(
            {cell_ids[position]: reason for position, reason in repetitions.reasons.items()}
        )
        results.finish_run(run_id, status, environment.closing_figures())
        summarise(results, run_id)
    return RunOutcome(run_id, status, results.trial_counts(run_id))


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _start(results: store.Store, plan: Plan) -> tuple[int, dict[int, int]]:
    """Store a new run with its environment and cells; its id and cell ids by position."""
    cell_rows = records.cell_rows(plan)
    run_row = results.create_run(
        records.run_row(plan),
        records.environment_row(environment.capture()),
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


def _skipped(probe: interpreters.Probe, reason: str) -> runner.Measurement:
    """A trial of a cell its interpreter cannot run: recorded, with the reason, not run."""
    return runner.Measurement(
        status=TrialStatus.SKIPPED, result={"interpreter": probe.facts}, error=reason
    )


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
        items=matrix.work_items(spec, cell),
        warmup_items=spec.warmup_items,
        timeout_s=spec.timeout,
        seed=spec.seed,
        params=matrix.cell_params(spec, cell),
        python_path=tuple(spec.python_path),
        limits=plan.limits,
        sampling=observer.Sampling(spec.sampling.interval, spec.sampling.memory),
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
