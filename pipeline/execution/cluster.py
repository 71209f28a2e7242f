"""Trials on a Dask distributed cluster: one trial at a time per host, each stored as it
completes.

Every host runs ``dask worker tcp://SCHEDULER:8786 --nthreads 1 --resources host=1
--name NAME`` from an environment with this project installed. A trial asks for the whole
``host`` resource, so no two trials ever overlap on one host; the Dask task only launches
the trial there, as :func:`runner.execute_in_process` does locally (a fresh subprocess of
the interpreter under test, the same timeout, process-tree sampling and kill rules).

``hosts: spread`` shares the trials among the hosts, in the run's seeded order (priority
by sequence); ``hosts: each`` runs every cell on its own host (the host is an axis of the
matrix). Before the run, every host is described (its environment, and each interpreter of
the spec probed there): a host lacking one is refused, by name. A host whose Dask worker
dies mid-trial: Dask runs the trial again on another host (stored once, with a note), or
after repeated deaths it is stored ``crashed``. With no host left for
``NO_HOST_GRACE_S``, the run stops as interrupted and can be resumed.

``distributed`` is an optional extra (``pipeline[cluster]``), imported only here and only
when a cluster is named.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..analysis import machine
from ..errors import PipelineError
from ..planning.axes import Interpreter, resolve
from ..planning.matrix import TrialPlan
from ..status import TrialStatus
from . import environment, interpreters, runner
from .dispatch import Done, Prepare
from .trial import Measurement, TrialRequest

CLUSTER_ENV = "PIPELINE_CLUSTER"  # the scheduler's address, when --cluster is not given
RESOURCE = "host"  # what each host's Dask worker offers once: one trial at a time
CONNECT_TIMEOUT_S = 10.0
NO_HOST_GRACE_S = 60.0  # how long a run waits when no host is left to take its trials
GRACE_ENV = "PIPELINE_CLUSTER_GRACE_S"  # overrides NO_HOST_GRACE_S
_WATCH_EVERY_S = 1.0
INSTALL_HINT = (
    "pip install 'pipeline[cluster]' (Dask distributed) on the orchestrator and every host"
)
WORKER_COMMAND = "dask worker {address} --nthreads 1 --resources host=1 --name NAME"


class ClusterError(PipelineError):
    """The cluster cannot run this spec (unreachable, no hosts, a host lacking something)."""


class HostsGone(ClusterError):
    """Every host left mid-run and none came back in time: the run stops, resumable."""


@dataclass(frozen=True)
class Host:
    """A cluster host: its Dask worker, its environment and its interpreters, probed there."""

    name: str
    address: str
    facts: dict[str, Any]  # environment.capture() on the host
    probes: dict[str, interpreters.Probe]  # by interpreter label


# -- on the hosts (pickled by reference: they must import this module) ------------------------
def describe_host(
    entries: list[Interpreter], tasks: list[str], python_path: list[str]
) -> dict[str, Any]:
    """Runs on a host: its environment, and each interpreter found there (on its PATH, a
    path, or ``current``: the Python running its Dask worker) and probed, or why not
    (including a user task of the spec it cannot load)."""
    probes: dict[str, Any] = {}
    for entry in entries:
        executable = resolve(entry.executable)
        if executable is None:
            probes[entry.label] = f"{entry.executable!r} not found on this host"
            continue
        try:
            probes[entry.label] = probed = interpreters.probe(replace(entry, executable=executable))
        except interpreters.ProbeError as error:
            probes[entry.label] = str(error)
            continue
        for task in tasks:
            problem = interpreters.task_problem(probed, task, python_path)
            if problem:
                probes[entry.label] = f"cannot load task {task}: {problem}"
    return {"facts": environment.capture(), "probes": probes}


def run_trial_on_host(
    request: TrialRequest, label: str, executables: dict[str, dict[str, str]]
) -> tuple[str, Measurement]:
    """Runs on a host: the trial, with that host's executable for interpreter ``label``."""
    from distributed import get_worker

    worker = get_worker()
    name = str(worker.name)
    worker.log_event(_started_topic(worker.get_current_task()), {"host": name})
    executable = executables.get(name, {}).get(label, request.interpreter)
    return name, runner.execute_in_process(replace(request, interpreter=executable))


def _started_topic(key: Any) -> str:
    """The scheduler event topic where the hosts that started a trial's task log it."""
    return f"pipeline-started-{key}"


def interpreter_versions(probes: dict[str, interpreters.Probe]) -> str:
    """A host's interpreters as 'label version, ...' (what run_host.interpreters_json keeps)."""
    return ", ".join(
        f"{label} {probe.facts.get('version')}" for label, probe in sorted(probes.items())
    )


def _retries(keys: list[str], dask_scheduler: Any = None) -> dict[str, int]:
    """Runs on the scheduler: how often a worker died while running each task."""
    return {
        key: dask_scheduler.tasks[key].suspicious for key in keys if key in dask_scheduler.tasks
    }


# -- on the orchestrator ------------------------------------------------------------------------
@dataclass
class Cluster:
    """A connection to a Dask scheduler and the hosts it has."""

    address: str
    client: Any  # distributed.Client
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.hosts))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def live_hosts(self) -> dict[str, str]:
        """The scheduler's workers that offer the host resource: name -> address."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return {
            str(info.get("name", address)): address
            for address, info in workers.items()
            if (info.get("resources") or {}).get(RESOURCE)
        }

    def describe(
        self, entries: list[Interpreter], tasks: list[str], python_path: list[str]
    ) -> None:
        """Describe every host (environment and interpreters, probed there); refuse hosts
        that lack an interpreter of the spec, naming them."""
        live = self.live_hosts()
        futures = {
            name: self.client.submit(
                describe_host,
                entries,
                tasks,
                python_path,
                key=f"pipeline-describe-{name}-{uuid.uuid4().hex}",
                workers=[address],
                resources={RESOURCE: 1},
                allow_other_workers=False,
                pure=False,
            )
            for name, address in live.items()
        }
        problems = []
        for name, future in sorted(futures.items()):
            described = future.result()
            missing = {k: v for k, v in described["probes"].items() if isinstance(v, str)}
            problems += [f"host {name}: interpreter {k}: {v}" for k, v in missing.items()]
            self.hosts[name] = Host(name, live[name], described["facts"], described["probes"])
        if problems:
            raise ClusterError("; ".join(problems))

    def differences(self) -> list[str]:
        """How the hosts differ in CPU model, usable cores or interpreter versions."""
        return machine.host_differences(
            [
                {
                    "name": name,
                    "cpu_model": host.facts.get("cpu_model"),
                    "usable_cores": host.facts.get("usable_cores"),
                    "interpreters": interpreter_versions(host.probes),
                }
                for name, host in self.hosts.items()
            ]
        )

    def executables(self) -> dict[str, dict[str, str]]:
        """Each host's executable for each interpreter label."""
        return {
            name: {label: probe.executable for label, probe in host.probes.items()}
            for name, host in self.hosts.items()
        }

    def run(
        self,
        trials: Iterable[TrialPlan],
        prepare: Prepare,
        started: Callable[[TrialPlan], None],
    ) -> Iterator[list[Done]]:
        """Submit every trial (earlier sequences first on each host), then yield them as they
        complete, those completed together in one batch. Raises HostsGone when the hosts
        that could run the remaining trials have been gone for NO_HOST_GRACE_S (the run is
        then interrupted, and resumable)."""
        from distributed import as_completed

        executables = self.executables()
        pending: dict[Any, TrialPlan] = {}
        skipped: list[Done] = []
        for trial in trials:
            job = prepare(trial)
            if isinstance(job, Measurement):
                started(trial)
                skipped.append(Done(trial, job))
                continue
            host = self.hosts.get(trial.cell.host)  # hosts: each pins a cell to its host
            future = self.client.submit(
                run_trial_on_host,
                job,
                trial.cell.interpreter,
                executables,
                key=f"pipeline-trial-{trial.sequence}-{uuid.uuid4().hex}",
                resources={RESOURCE: 1},
                workers=[host.address] if host else None,
                allow_other_workers=False,
                priority=-trial.sequence,
                pure=False,
            )
            pending[future] = trial
        if skipped:
            yield skipped
        if not pending:
            return
        stop = threading.Event()
        needs = {
            future: self.hosts[trial.cell.host].address if trial.cell.host else ""
            for future, trial in pending.items()
        }
        watchdog = threading.Thread(
            target=self._watch, args=(needs, stop), name="pipeline-cluster", daemon=True
        )
        watchdog.start()
        stranded = 0
        try:
            completed = as_completed(  # type: ignore[no-untyped-call]
                list(pending), loop=self.client.loop
            )
            for futures in completed.batches():  # type: ignore[no-untyped-call]
                batch = []
                for future in futures:
                    trial = pending.pop(future)
                    if future.cancelled():
                        stranded += 1
                        continue
                    started(trial)
                    batch.append(self._done(future, trial))
                if batch:
                    yield batch
        finally:
            stop.set()
            if pending:
                self.client.cancel(list(pending))
        if stranded:
            raise HostsGone(
                f"no host of the cluster at {self.address} could run {stranded} trials for "
                f"{_grace_s():g} s (every host, or the one their cells belong to, was gone)"
            )

    def _done(self, future: Any, trial: TrialPlan) -> Done:
        """A completed future as a stored trial: its host, and a note when it ran again."""
        note = None
        # a worker died holding the task (started, or only queued there): did it start?
        if self.client.run_on_scheduler(_retries, [future.key]).get(future.key, 0):
            starts = [msg["host"] for _, msg in self.client.get_events(_started_topic(future.key))]
            if len(starts) > 1:
                note = f"ran again after its Dask worker died (started on {', '.join(starts)})"
        try:
            host, measurement = future.result()
        except Exception as error:  # KilledWorker: every worker it ran on died
            measurement = Measurement(
                status=TrialStatus.CRASHED, error=f"its Dask worker died: {error}"
            )
            return Done(trial, measurement, self._named_in(str(error)), note)
        return Done(trial, measurement, host, note)

    def _named_in(self, text: str) -> str:
        """The host whose worker address a message names (the last one), or ''."""
        named = [
            (text.rfind(h.address), name) for name, h in self.hosts.items() if h.address in text
        ]
        return max(named)[1] if named else ""

    def _watch(self, needs: dict[Any, str], stop: threading.Event) -> None:
        """Cancel the trials not done whose host's worker (by address; "": any host) has
        been gone for NO_HOST_GRACE_S. A worker that restarts comes back at another
        address: the trials pinned to it stop the run, and --resume finds the new one."""
        gone_since: dict[str, float] = {}
        while not stop.wait(_WATCH_EVERY_S) and needs:
            try:
                live = set(self.live_hosts().values())
            except Exception:  # the scheduler itself is gone
                live = set()
            now = time.monotonic()
            for wanted in set(needs.values()):
                if (wanted in live) if wanted else bool(live):
                    gone_since.pop(wanted, None)
                elif now - gone_since.setdefault(wanted, now) >= _grace_s():
                    stranded = [f for f, host in needs.items() if host == wanted]
                    self.client.cancel([future for future in stranded if not future.done()])
                    needs = {f: host for f, host in needs.items() if host != wanted}


def _grace_s() -> float:
    return float(os.environ.get(GRACE_ENV) or NO_HOST_GRACE_S)


def connect(
    address: str,
    entries: list[Interpreter],
    tasks: Sequence[str] = (),
    python_path: Sequence[str] = (),
) -> Cluster:
    """Connect to the scheduler at ``address`` and describe its hosts (``tasks``: the
    spec's user tasks, which every interpreter of every host must load)."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(f"--cluster needs Dask distributed: {INSTALL_HINT}") from None
    try:
        client = Client(  # type: ignore[no-untyped-call]
            address, timeout=CONNECT_TIMEOUT_S, set_as_default=False
        )
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    cluster = Cluster(address, client)
    try:
        if not cluster.live_hosts():
            raise ClusterError(
                f"no Dask worker at {address} offers the '{RESOURCE}' resource: start one on "
                f"each host with `{WORKER_COMMAND.format(address=address)}`"
            )
        cluster.describe(entries, list(tasks), list(python_path))
    except BaseException:
        cluster.close()
        raise
    return cluster
