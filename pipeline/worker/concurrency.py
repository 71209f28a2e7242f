"""Concurrency models: build a pool (or loop), run the work items, shut it down, time each phase.

Standard library only, Python 3.9 syntax. Start-up ends when every one of the ``workers``
threads or processes is running (they meet at a barrier before taking work), so work time
never includes a late worker's boot and start-up is the full price of a warm pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib
import os
import sys
import threading
import time

from . import api, tasks, usage
from .api import Unsupported

__all__ = [
    "MODELS",
    "MODEL_REGISTRY",
    "PROCESS_MODELS",
    "Model",
    "Outcome",
    "Unsupported",
    "run",
    "unsupported",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from .api import Params


class Outcome:
    """What one trial measured: phase times, one record per work item, the task's facts.

    Each finished item is also appended to the progress file at once, so that if the whole
    trial process dies (a crash, ``os._exit``), the orchestrator still knows what finished.
    """

    def __init__(self, session: tasks.Session, progress_path: Optional[str] = None) -> None:
        self.session = session
        self.startup_s = 0.0
        self.work_s = 0.0
        self.shutdown_s = 0.0
        self.items: List[Dict[str, Any]] = []
        self.facts: Dict[str, Optional[float]] = {}
        # CPU time and context switches over the timed phases (see usage.py)
        self.usage: Dict[str, Optional[float]] = {}
        self.warmup_usage: Dict[str, Optional[float]] = {}  # of the warm-up items, left out
        self.warmup_items = 0  # warm-up items run (untimed)
        self.start_method: Optional[str] = None
        self._progress = (
            os.open(progress_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if progress_path
            else None
        )

    def record(self, index: int, submitted_s: float, future: "cf.Future[Dict[str, Any]]") -> None:
        """Store one finished item: its latency from submission and its result or error."""
        item: Dict[str, Any] = {"index": index, "latency_s": time.perf_counter() - submitted_s}
        error = future.exception()
        if error is None:
            item.update(future.result())
        try:
            value = self.session.finish(index, item.get("value"))
        except Exception as finish_error:  # a failing hand-back is the item's failure
            error = error or finish_error
        if error is None:
            item["value"] = _jsonable(value)
        else:
            item.pop("value", None)
            item["error"] = f"{type(error).__name__}: {error}"
        self.items.append(item)
        if self._progress is not None:
            os.write(self._progress, b"%d %d\n" % (index, error is None))

    def close(self) -> None:
        """Let the session clean up and report its facts; close the progress file."""
        try:
            self.facts = self.session.close(self.items)
        finally:
            if self._progress is not None:
                os.close(self._progress)
                self._progress = None


def _jsonable(value: Any) -> Any:
    """Results go into the JSON result file: bytes are recorded by their length."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": len(value)}
    return value


def _meet(barrier: Any) -> None:
    """Thread pool initializer: each new worker waits until all of them are alive."""
    barrier.wait()


def _start_process(barrier: Any, shared: Dict[str, Any], modules: Tuple[str, ...]) -> None:
    """Process pool initializer: install the session's shared objects, import the task's
    modules, then wait until every worker is alive."""
    api.install(shared, modules)
    barrier.wait()


# Run by exec() in each new subinterpreter (the initializer must itself be importable there,
# and the builtin exec is): the trial's sys.path, then the task's modules, before timing.
SUBINTERPRETER_SETUP = (
    "import importlib, sys\n"
    "sys.path[:] = path + [entry for entry in sys.path if entry not in path]\n"
    "for name in modules:\n"
    "    importlib.import_module(name)\n"
)


def _ready() -> None:
    """A no-op run on each worker to prove the pool is warm."""


def _arrive(arrived_fd: int, go_fd: int) -> None:
    """Start-up barrier of a subinterpreter worker (a threading.Barrier cannot reach one;
    file descriptors are the process's, so every interpreter can use them): say it is
    here, then block until told to go. A worker blocked here takes no other call, so each
    of the pool's workers takes exactly one."""
    os.write(arrived_fd, b"a")
    if not os.read(go_fd, 1):
        raise RuntimeError("start-up was abandoned: another worker did not start")


def warm_subinterpreters(pool: cf.Executor, workers: int, timeout_s: float, fds: List[int]) -> None:
    """Start ``workers`` workers of ``pool`` and hold each at :func:`_arrive` until all are
    there. Raises the first worker's failure at once, or TimeoutError after ``timeout_s``;
    either way the waiting workers are released. The pipes' other file descriptors are
    added to ``fds``, for the caller to close once the pool is shut down."""
    import select

    arrived_r, arrived_w = os.pipe()
    go_r, go_w = os.pipe()
    fds.extend([arrived_r, arrived_w, go_r])
    arrivals = [pool.submit(_arrive, arrived_w, go_r) for _ in range(workers)]
    try:
        deadline_s = time.monotonic() + timeout_s
        count = 0
        while count < workers:
            failed = [f for f in arrivals if f.done() and f.exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            left_s = deadline_s - time.monotonic()
            if left_s <= 0:
                raise TimeoutError(
                    "only %d of %d workers started within %g s" % (count, workers, timeout_s)
                )
            if select.select([arrived_r], [], [], min(left_s, 0.05))[0]:
                count += len(os.read(arrived_r, workers - count))
        os.write(go_w, b"g" * workers)
        for arrival in arrivals:
            arrival.result()
    finally:
        os.close(go_w)  # end of file for any worker still waiting: it gives up


def run(
    model: str,
    workers: int,
    task: str,
    params: Params,
    payload: bytes,
    items: int,
    timeout_s: float,
    progress_path: Optional[str] = None,
    warmup_items: int = 0,
) -> Outcome:
    """Run ``items`` work items of ``task`` under ``model`` with ``workers`` workers (after
    ``warmup_items`` untimed items per worker)."""
    runner = MODEL_REGISTRY[model]
    reason = runner.unsupported()
    if reason:
        raise Unsupported(reason)
    context = runner.mp_context()
    session = tasks.open_session(
        task, params, payload, tasks.Setting(model, workers, items, context)
    )
    outcome = Outcome(session, progress_path)
    try:
        api.install(session.shared, modules(task, session))
        before = usage.snapshot()
        try:
            runner.run(Trial(outcome, workers, task, items, timeout_s, context, warmup_items))
        finally:
            usage.stop_forkserver()
            outcome.usage = usage.less(usage.since(before), outcome.warmup_usage)
    finally:
        outcome.close()
    return outcome


def modules(task: str, session: api.Session) -> Tuple[str, ...]:
    """What every worker imports before timing starts: the task's modules and the
    trial's own (a user function's module)."""
    return tasks.imports(task) + session.imports()


def unsupported(model: str) -> Optional[str]:
    """Why this interpreter cannot run ``model`` at all, or None when it can."""
    return MODEL_REGISTRY[model].unsupported()


class Trial:
    """What a model needs to run one trial's items (and where it records them)."""

    def __init__(
        self,
        outcome: Outcome,
        workers: int,
        task: str,
        items: int,
        timeout_s: float,
        context: Any,
        warmup_items: int = 0,
    ) -> None:
        self.outcome = outcome
        self.workers = workers
        self.task = task
        self.items = items
        self.timeout_s = timeout_s
        self.context = context  # multiprocessing context of a process model, else None
        self.warmup_items = warmup_items  # per worker, after start-up, untimed

    def warm_up(self, workers: int, run_all: Callable[[List[Tuple[bytes, Params]]], None]) -> None:
        """Run ``warmup_items`` items per worker (``workers``) through ``run_all``, which
        waits for them all; untimed, their results and failures dropped, their CPU time
        kept apart. They use the item indices after the measured ones."""
        count = self.warmup_items * workers
        if not count:
            return
        session = self.outcome.session
        before = usage.snapshot()
        indices = range(self.items, self.items + count)
        try:
            run_all([session.item(index) for index in indices])
        finally:
            for index in indices:
                with contextlib.suppress(Exception):  # a warm-up's failure is not the trial's
                    session.finish(index, None)
            self.outcome.warmup_usage = usage.since(before)
            self.outcome.warmup_items = count


class Model:
    """A concurrency model: how a trial's items run. ``run`` times the three phases
    (start-up, work, shutdown) into the trial's outcome."""

    name = ""
    kind = ""  # what the claims group models by: sequential, threads, processes, ...

    def unsupported(self) -> Optional[str]:
        """Why this interpreter cannot run the model, or None."""
        return None

    def mp_context(self) -> Any:
        """The multiprocessing context the model's workers start with (None: no processes)."""
        return None

    def run(self, trial: Trial) -> None:
        raise NotImplementedError


class Sequential(Model):
    """The baseline: one item after another on the main thread, no pool at all."""

    name = kind = "sequential"

    def run(self, trial: Trial) -> None:
        outcome = trial.outcome
        trial.warm_up(1, lambda batch: _run_each(trial.task, batch))
        started_s = time.perf_counter()
        for index in range(trial.items):
            payload, params = outcome.session.item(index)
            future: cf.Future[Dict[str, Any]] = cf.Future()
            submitted_s = time.perf_counter()
            try:
                future.set_result(tasks.run_item(trial.task, params, payload))
            except Exception as error:  # a failing item is data, not a crash
                future.set_exception(error)
            outcome.record(index, submitted_s, future)
        outcome.work_s = time.perf_counter() - started_s


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
                outcome.record(index, submitted_s, future)
            outcome.work_s = time.perf_counter() - work_started_s
        finally:
            shutdown_started_s = time.perf_counter()
            if pool is not None:
                self.shutdown(pool)
            outcome.shutdown_s = time.perf_counter() - shutdown_started_s


class Threads(PoolModel):
    """``ThreadPoolExecutor(workers)``; its threads meet at a barrier as they start."""

    name = kind = "threads"

    def start(self, trial: Trial) -> cf.Executor:
        barrier = threading.Barrier(trial.workers, timeout=trial.timeout_s)
        pool = cf.ThreadPoolExecutor(trial.workers, initializer=_meet, initargs=(barrier,))
        cf.wait([pool.submit(_ready) for _ in range(trial.workers)])
        return pool


class Processes(PoolModel):
    """``ProcessPoolExecutor(workers)`` with a start method (None: the platform's default);
    each process installs the session's shared objects and imports the task's modules."""

    kind = "processes"

    def __init__(self, name: str, start_method: Optional[str]) -> None:
        self.name = name
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
        cf.wait([pool.submit(_ready) for _ in range(trial.workers)])
        return pool


class Subinterpreters(PoolModel):
    """``InterpreterPoolExecutor(workers)`` (3.14, or the backport): each worker is a thread
    with an interpreter of its own; sys.path and the imports are set up in each."""

    name = kind = "subinterpreters"

    def unsupported(self) -> Optional[str]:
        if interpreter_pool_class() is not None:
            return None
        version = "%d.%d" % sys.version_info[:2]
        return (
            "subinterpreters need concurrent.futures.InterpreterPoolExecutor (Python 3.14 or "
            "later) or the interpreters-pep-734 backport; this is Python " + version
        )

    def start(self, trial: Trial) -> cf.Executor:
        setup = (
            SUBINTERPRETER_SETUP,
            {"path": list(sys.path), "modules": modules(trial.task, trial.outcome.session)},
        )
        pool: cf.Executor = interpreter_pool_class()(
            trial.workers, initializer=exec, initargs=setup
        )
        self._pipes: List[int] = []
        try:
            # half the trial's timeout: a worker that cannot start fails the trial saying
            # so, before the orchestrator kills it
            warm_subinterpreters(pool, trial.workers, trial.timeout_s / 2, self._pipes)
        except BaseException:
            self.shutdown(pool)
            raise
        return pool

    def shutdown(self, pool: cf.Executor) -> None:
        try:
            super().shutdown(pool)
        finally:
            for fd in getattr(self, "_pipes", []):
                os.close(fd)
            self._pipes = []


# Where the interpreters-pep-734 backport (PyPI; Python 3.12 and 3.13) keeps the executor:
# ``interpreters_backport`` in the releases on PyPI, ``interpreters_backports`` in its README.
BACKPORTS = ("interpreters_backport", "interpreters_backports")


def interpreter_pool_class() -> Any:
    """concurrent.futures.InterpreterPoolExecutor (Python 3.14 and later), else the one of
    the interpreters-pep-734 backport where it is installed, else None."""
    found = getattr(cf, "InterpreterPoolExecutor", None)
    for name in BACKPORTS if found is None else ():
        try:
            module = importlib.import_module(name + ".concurrent.futures")
        except ImportError:
            continue
        found = getattr(module, "InterpreterPoolExecutor", None)
        if found is not None:
            break
    return found


class Asyncio(Model):
    """One event loop per trial. Natively async tasks run as coroutines, at most ``workers``
    at once; blocking tasks go through the loop's default executor of ``workers`` threads."""

    name = kind = "asyncio"

    def run(self, trial: Trial) -> None:
        _run_asyncio(trial)


def _run_each(task: str, batch: List[Tuple[bytes, Params]]) -> None:
    """Warm-up items one after another on this thread (failures dropped)."""
    for payload, params in batch:
        with contextlib.suppress(Exception):  # a warm-up item's failure is not the trial's
            tasks.run_item(task, params, payload)


def _submit_all(pool: cf.Executor, task: str, batch: List[Tuple[bytes, Params]]) -> None:
    """Warm-up items through a pool, all at once; waits for them (failures dropped)."""
    cf.wait([pool.submit(tasks.run_item, task, params, payload) for payload, params in batch])


def _warm_on_loop(loop: Any, native: bool, task: str, batch: List[Tuple[bytes, Params]]) -> None:
    """Warm-up items on the event loop (its executor for blocking tasks), failures dropped."""
    import asyncio

    if native:
        runs = [tasks.run_item_async(task, params, payload) for payload, params in batch]
    else:
        runs = [loop.run_in_executor(None, tasks.run_item, task, params, payload)
                for payload, params in batch]  # fmt: skip
    loop.run_until_complete(asyncio.gather(*runs, return_exceptions=True))


def _run_asyncio(trial: Trial) -> None:
    import asyncio

    outcome, workers, task = trial.outcome, trial.workers, trial.task
    items, timeout_s = trial.items, trial.timeout_s
    started_s = time.perf_counter()
    loop = asyncio.new_event_loop()
    native = tasks.async_function(task) is not None
    try:
        if not native:
            barrier = threading.Barrier(workers, timeout=timeout_s)
            executor = cf.ThreadPoolExecutor(workers, initializer=_meet, initargs=(barrier,))
            loop.set_default_executor(executor)
            loop.run_until_complete(
                asyncio.gather(*[loop.run_in_executor(None, _ready) for _ in range(workers)])
            )
        outcome.startup_s = time.perf_counter() - started_s
        trial.warm_up(workers, lambda batch: _warm_on_loop(loop, native, task, batch))
        work_started_s = time.perf_counter()
        loop.run_until_complete(_gather_items(outcome, native, workers, task, items))
        outcome.work_s = time.perf_counter() - work_started_s
    finally:
        shutdown_started_s = time.perf_counter()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        outcome.shutdown_s = time.perf_counter() - shutdown_started_s


async def _gather_items(
    outcome: Outcome, native: bool, workers: int, task: str, items: int
) -> None:
    """Run every item on the running loop, recording each as it completes."""
    import asyncio

    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(workers)

    async def one(index: int) -> None:
        payload, params = outcome.session.item(index)
        submitted_s = time.perf_counter()
        future: cf.Future[Dict[str, Any]] = cf.Future()
        try:
            if native:
                async with limit:
                    future.set_result(await tasks.run_item_async(task, params, payload))
            else:
                future.set_result(
                    await loop.run_in_executor(None, tasks.run_item, task, params, payload)
                )
        except Exception as error:  # a failing item is data, not a crash
            future.set_exception(error)
        outcome.record(index, submitted_s, future)

    await asyncio.gather(*[one(index) for index in range(items)])


# Every concurrency model, by the name specs use: the one list of models.
MODEL_REGISTRY: Dict[str, Model] = {
    model.name: model
    for model in (
        Sequential(),
        Threads(),
        Asyncio(),
        Processes("processes", None),
        Processes("processes-fork", "fork"),
        Processes("processes-spawn", "spawn"),
        Processes("processes-forkserver", "forkserver"),
        Subinterpreters(),
    )
}
MODELS = tuple(MODEL_REGISTRY)
PROCESS_MODELS = tuple(name for name, model in MODEL_REGISTRY.items() if model.kind == "processes")
