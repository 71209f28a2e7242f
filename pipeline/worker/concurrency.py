"""Concurrency models: build a pool (or loop), run the work items, shut it down, time each phase.

Standard library only, Python 3.9 syntax. Start-up ends when every one of the ``workers``
threads or processes is running (they meet at a barrier before taking work), so work time
never includes a late worker's boot and start-up is the full price of a warm pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import os
import sys
import threading
import time

from . import api, tasks, usage
from .api import Unsupported

__all__ = ["MODELS", "START_METHODS", "Outcome", "Unsupported", "run", "unsupported"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from .api import Params

MODELS = (
    "sequential",
    "threads",
    "asyncio",
    "processes",
    "processes-fork",
    "processes-spawn",
    "processes-forkserver",
    "subinterpreters",
)
START_METHODS = {
    "processes-fork": "fork",
    "processes-spawn": "spawn",
    "processes-forkserver": "forkserver",
}


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
) -> Outcome:
    """Run ``items`` work items of ``task`` under ``model`` with ``workers`` workers."""
    reason = unsupported(model)
    if reason:
        raise Unsupported(reason)
    context = _mp_context(model)
    session = tasks.open_session(
        task, params, payload, tasks.Setting(model, workers, items, context)
    )
    outcome = Outcome(session, progress_path)
    try:
        api.install(session.shared, tasks.imports(task))
        before = usage.snapshot()
        try:
            if model == "sequential":
                _run_sequential(outcome, task, items)
            elif model == "asyncio":
                _run_asyncio(outcome, workers, task, items, timeout_s)
            else:
                factory = _pool_factory(model, workers, timeout_s, context, outcome, task)
                _run_pool(outcome, factory, workers, task, items, timeout_s)
        finally:
            usage.stop_forkserver()
            outcome.usage = usage.since(before)
    finally:
        outcome.close()
    return outcome


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


def unsupported(model: str) -> Optional[str]:
    """Why this interpreter cannot run ``model`` at all, or None when it can."""
    if model == "subinterpreters" and interpreter_pool_class() is None:
        version = "%d.%d" % sys.version_info[:2]
        return (
            "subinterpreters need concurrent.futures.InterpreterPoolExecutor (Python 3.14 or "
            "later) or the interpreters-pep-734 backport; this is Python " + version
        )
    method = START_METHODS.get(model)
    if method is not None:
        import multiprocessing

        if method not in multiprocessing.get_all_start_methods():
            return "start method %r is not available on this platform" % method
    return None


def _mp_context(model: str) -> Any:
    """The multiprocessing context of a process model (None for the others)."""
    if not model.startswith("processes"):
        return None
    import multiprocessing

    method = START_METHODS.get(model)
    try:
        return multiprocessing.get_context(method)
    except ValueError as error:
        raise Unsupported(f"start method {method!r} is not available here: {error}") from None


def _run_sequential(outcome: Outcome, task: str, items: int) -> None:
    """The baseline: one item after another on the main thread, no pool at all."""
    started_s = time.perf_counter()
    for index in range(items):
        payload, params = outcome.session.item(index)
        future: cf.Future[Dict[str, Any]] = cf.Future()
        submitted_s = time.perf_counter()
        try:
            future.set_result(tasks.run_item(task, params, payload))
        except Exception as error:  # a failing item is data, not a crash
            future.set_exception(error)
        outcome.record(index, submitted_s, future)
    outcome.work_s = time.perf_counter() - started_s


def _pool_factory(
    model: str, workers: int, timeout_s: float, context: Any, outcome: Outcome, task: str
) -> Callable[[], cf.Executor]:
    """A callable that builds the model's executor with the start-up barrier installed."""
    if model == "threads":
        barrier: Any = threading.Barrier(workers, timeout=timeout_s)
        return lambda: cf.ThreadPoolExecutor(workers, initializer=_meet, initargs=(barrier,))
    if model == "subinterpreters":
        pool_class = interpreter_pool_class()
        # Each worker is a thread with its own interpreter: sys.path and the imports must be
        # set up in each (functions and arguments reach them pickled, by reference).
        setup = (SUBINTERPRETER_SETUP, {"path": list(sys.path), "modules": tasks.imports(task)})
        return lambda: pool_class(workers, initializer=exec, initargs=setup)

    def make_pool() -> cf.Executor:
        # The barrier is made here, inside the timed start-up: for spawn and forkserver its
        # semaphores start multiprocessing's resource tracker, a cost any pool pays.
        barrier = context.Barrier(workers, timeout=timeout_s)
        return cf.ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_process,
            initargs=(barrier, outcome.session.shared, tasks.imports(task)),
        )

    return make_pool


def _run_pool(
    outcome: Outcome,
    factory: Callable[[], cf.Executor],
    workers: int,
    task: str,
    items: int,
    timeout_s: float,
) -> None:
    """Start a warm pool, submit every item at once, collect results as they finish."""
    started_s = time.perf_counter()
    pool = factory()
    pipes: List[int] = []
    try:
        if outcome.session.setting.model == "subinterpreters":
            # half the trial's timeout: a worker that cannot start fails the trial saying
            # so, before the orchestrator kills it
            warm_subinterpreters(pool, workers, timeout_s / 2, pipes)
        else:
            cf.wait([pool.submit(_ready) for _ in range(workers)])
        outcome.startup_s = time.perf_counter() - started_s
        context = getattr(pool, "_mp_context", None)
        outcome.start_method = context.get_start_method() if context is not None else None
        work_started_s = time.perf_counter()
        submitted = {}
        for index in range(items):
            payload, params = outcome.session.item(index)
            submitted_s = time.perf_counter()
            try:
                future = pool.submit(tasks.run_item, task, params, payload)
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
        pool.shutdown(wait=True, cancel_futures=True)
        outcome.shutdown_s = time.perf_counter() - shutdown_started_s
        for fd in pipes:
            os.close(fd)


def _run_asyncio(outcome: Outcome, workers: int, task: str, items: int, timeout_s: float) -> None:
    """One event loop per trial. Natively async tasks run as coroutines, at most ``workers``
    at once; blocking tasks go through the loop's default executor of ``workers`` threads."""
    import asyncio

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
