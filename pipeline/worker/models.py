"""The pool models: threads and process pools, each a concurrent.futures executor built
warm (its start-up ends when every worker is running), fed every item at once, then shut
down; each phase timed into the trial's outcome.

Standard library only, Python 3.9 syntax.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time

from . import api, tasks
from .api import Unsupported
from .outcome import Model, Trial

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

    from .api import Params


def modules(task: str, session: api.Session) -> Tuple[str, ...]:
    """What every worker imports before timing starts: the task's modules and the
    trial's own (a user function's module)."""
    return tasks.imports(task) + session.imports()


def meet(barrier: Any) -> None:
    """Thread pool initializer: each new worker waits until all of them are alive."""
    barrier.wait()


def _start_process(barrier: Any, shared: Dict[str, Any], modules: Tuple[str, ...]) -> None:
    """Process pool initializer: install the session's shared objects, import the task's
    modules, then wait until every worker is alive."""
    api.install(shared, modules)
    barrier.wait()


def ready() -> None:
    """A no-op run on each worker to prove the pool is warm."""


class PoolModel(Model):
    """A model whose workers are a concurrent.futures executor: ``start`` builds it warm
    (every worker running), every item is submitted at once, ``shutdown`` waits for it."""

    def start(self, trial: Trial) -> cf.Executor:
        """The executor, with every one of its workers running (the timed start-up)."""
        raise NotImplementedError

    def shutdown(self, pool: cf.Executor) -> None:
        pool.shutdown(wait=True, cancel_futures=True)

    def run(self, trial: Trial) -> None:
        outcome = trial.outcome
        started_s = time.perf_counter()
        pool: Optional[cf.Executor] = None
        try:
            pool = self.start(trial)
            outcome.startup_s = time.perf_counter() - started_s
            context = getattr(pool, "_mp_context", None)
            outcome.start_method = context.get_start_method() if context is not None else None
            started = pool
            trial.warm_up(trial.workers, lambda batch: _submit_all(started, trial.task, batch))
            work_started_s = time.perf_counter()
            submitted = {}
            for index in range(trial.items):
                payload, params = outcome.session.item(index)
                submitted_s = time.perf_counter()
                try:
                    future = pool.submit(tasks.run_item, trial.task, params, payload)
                except cf.BrokenExecutor as error:  # the pool broke while we were submitting
                    future = cf.Future()
                    future.set_exception(error)
                submitted[future] = (index, submitted_s)
            for future in cf.as_completed(submitted):
                index, submitted_s = submitted[future]
                outcome.record_future(index, submitted_s, future)
            outcome.work_s = time.perf_counter() - work_started_s
        finally:
            shutdown_started_s = time.perf_counter()
            if pool is not None:
                self.shutdown(pool)
            outcome.shutdown_s = time.perf_counter() - shutdown_started_s


class Threads(PoolModel):
    """``ThreadPoolExecutor(workers)``; its threads meet at a barrier as they start."""

    def start(self, trial: Trial) -> cf.Executor:
        barrier = threading.Barrier(trial.workers, timeout=trial.timeout_s)
        pool = cf.ThreadPoolExecutor(trial.workers, initializer=meet, initargs=(barrier,))
        cf.wait([pool.submit(ready) for _ in range(trial.workers)])
        return pool


class Processes(PoolModel):
    """``ProcessPoolExecutor(workers)`` with a start method (None: the platform's default);
    each process installs the session's shared objects and imports the task's modules."""

    def __init__(self, start_method: Optional[str]) -> None:
        self.start_method = start_method

    def unsupported(self) -> Optional[str]:
        import multiprocessing

        if self.start_method and self.start_method not in multiprocessing.get_all_start_methods():
            return "start method %r is not available on this platform" % self.start_method
        return None

    def mp_context(self) -> Any:
        import multiprocessing

        try:
            return multiprocessing.get_context(self.start_method)
        except ValueError as error:
            raise Unsupported(
                "start method %r is not available here: %s" % (self.start_method, error)
            ) from None

    def start(self, trial: Trial) -> cf.Executor:
        # The barrier is made here, inside the timed start-up: for spawn and forkserver its
        # semaphores start multiprocessing's resource tracker, a cost any pool pays.
        barrier = trial.context.Barrier(trial.workers, timeout=trial.timeout_s)
        pool = cf.ProcessPoolExecutor(
            trial.workers,
            mp_context=trial.context,
            initializer=_start_process,
            initargs=(
                barrier,
                trial.outcome.session.shared,
                modules(trial.task, trial.outcome.session),
            ),
        )
        cf.wait([pool.submit(ready) for _ in range(trial.workers)])
        return pool


def _submit_all(pool: cf.Executor, task: str, batch: List[Tuple[bytes, Params]]) -> None:
    """Warm-up items through a pool, all at once; waits for them (failures dropped)."""
    cf.wait([pool.submit(tasks.run_item, task, params, payload) for payload, params in batch])
