"""What a run will run, apart from running it: the spec validated, its interpreters
probed (here or on every cluster host), the cells expanded, the trials ordered, what each
trial may use (its limits) and the checks that refuse a run before its first trial (user
tasks that do not load, payloads the machine cannot hold). Writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError
from ..planning import matrix
from ..planning.spec import Spec, load_spec
from ..units import format_bytes
from ..worker.tasks import is_user_task
from . import cluster, environment, interpreters
from .trial import Limits


@dataclass(frozen=True)
class Plan:
    """A validated spec with its cells and ordered trials."""

    spec: Spec
    cells: list[matrix.Cell]
    trials: list[matrix.TrialPlan]
    probes: dict[str, interpreters.Probe]  # by interpreter label
    cluster: cluster.Cluster | None = None  # where the trials run (None: on this machine)
    limits: Limits = field(default_factory=Limits)  # what a trial may use

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


def trial_limits(spec: Spec, cells: list[matrix.Cell], available: int | None) -> Limits:
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
        return Limits(output_bytes=given.output or DEFAULT_OUTPUT_BYTES)
    return Limits(
        memory_bytes=given.memory or (int(available * MEMORY_SHARE) if available else None),
        processes=given.processes or processes,
        output_bytes=given.output or DEFAULT_OUTPUT_BYTES,
    )


def _check_capacity(spec: Spec, cells: list[matrix.Cell], available: int | None) -> None:
    """Refuse cells the machine cannot hold: a trial keeps about payload × items bytes in
    the parent and in every worker, and each worker may be a process (RLIMIT_NPROC)."""
    import resource

    from ..units import format_size

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
