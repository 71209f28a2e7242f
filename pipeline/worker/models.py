"""Concurrency models: build a pool (or loop), run the work items, shut it down, time each phase.

Standard library only, Python 3.9 syntax. Start-up ends when every one of the ``workers``
threads or processes is running (they meet at a barrier before taking work), so work time
never includes a late worker's boot and start-up is the full price of a warm pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time

from . import tasks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional

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


class Unsupported(Exception):
    """This interpreter or platform cannot run the model; the trial is recorded as skipped."""


class Outcome:
    """What one trial measured: phase times and one record per work item."""

    def __init__(self) -> None:
        self.startup_s = 0.0
        self.work_s = 0.0
        self.shutdown_s = 0.0
        self.items: List[Dict[str, Any]] = []
        self.start_method: Optional[str] = None

    def record(self, index: int, submitted_s: float, future: "cf.Future[Dict[str, Any]]") -> None:
        """Store one finished item: its latency from submission and its result or error."""
        item: Dict[str, Any] = {"index": index, "latency_s": time.perf_counter() - submitted_s}
        error = future.exception()
        if error is None:
            item.update(future.result())
        else:
            item["error"] = f"{type(error).__name__}: {error}"
        self.items.append(item)


def _meet(barrier: Any) -> None:
    """Pool initializer: each new worker waits until all of them are alive."""
    barrier.wait()


def _ready() -> None:
    """A no-op run on each worker to prove the pool is warm."""


def run(
    model: str,
    workers: int,
    task: str,
    params: tasks.Params,
    payload: bytes,
    items: int,
    timeout_s: float,
) -> Outcome:
    """Run ``items`` work items of ``task`` under ``model`` with ``workers`` workers."""
    if model == "sequential":
        return _run_sequential(task, params, payload, items)
    if model == "asyncio":
        return _run_asyncio(workers, task, params, payload, items, timeout_s)
    return _run_pool(
        _pool_factory(model, workers, timeout_s), workers, task, params, payload, items
    )


def _run_sequential(task: str, params: tasks.Params, payload: bytes, items: int) -> Outcome:
    """The baseline: one item after another on the main thread, no pool at all."""
    outcome = Outcome()
    started_s = time.perf_counter()
    for index in range(items):
        future: cf.Future[Dict[str, Any]] = cf.Future()
        submitted_s = time.perf_counter()
        try:
            future.set_result(tasks.run_item(task, params, payload))
        except Exception as error:  # a failing item is data, not a crash
            future.set_exception(error)
        outcome.record(index, submitted_s, future)
    outcome.work_s = time.perf_counter() - started_s
    return outcome


def _pool_factory(model: str, workers: int, timeout_s: float) -> Callable[[], cf.Executor]:
    """A callable that builds the model's executor with the start-up barrier installed."""
    if model == "threads":
        barrier: Any = threading.Barrier(workers, timeout=timeout_s)
        return lambda: cf.ThreadPoolExecutor(workers, initializer=_meet, initargs=(barrier,))
    if model == "subinterpreters":
        pool_class = getattr(cf, "InterpreterPoolExecutor", None)
        if pool_class is None:
            raise Unsupported(
                "subinterpreters need concurrent.futures.InterpreterPoolExecutor "
                "(Python 3.14 or later)"
            )
        return lambda: pool_class(workers)
    import multiprocessing

    method = START_METHODS.get(model)
    try:
        context = multiprocessing.get_context(method)
    except ValueError as error:
        raise Unsupported(f"start method {method!r} is not available here: {error}") from None

    def make_pool() -> cf.Executor:
        # The barrier is made here, inside the timed start-up: for spawn and forkserver its
        # semaphores start multiprocessing's resource tracker, a cost any pool pays.
        barrier = context.Barrier(workers, timeout=timeout_s)
        return cf.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_meet, initargs=(barrier,)
        )

    return make_pool


def _run_pool(
    factory: Callable[[], cf.Executor],
    workers: int,
    task: str,
    params: tasks.Params,
    payload: bytes,
    items: int,
) -> Outcome:
    """Start a warm pool, submit every item at once, collect results as they finish."""
    outcome = Outcome()
    started_s = time.perf_counter()
    pool = factory()
    try:
        cf.wait([pool.submit(_ready) for _ in range(workers)])
        outcome.startup_s = time.perf_counter() - started_s
        context = getattr(pool, "_mp_context", None)
        outcome.start_method = context.get_start_method() if context is not None else None
        work_started_s = time.perf_counter()
        submitted = {}
        for index in range(items):
            submitted[pool.submit(tasks.run_item, task, params, payload)] = (
                index,
                time.perf_counter(),
            )
        for future in cf.as_completed(submitted):
            index, submitted_s = submitted[future]
            outcome.record(index, submitted_s, future)
        outcome.work_s = time.perf_counter() - work_started_s
    finally:
        shutdown_started_s = time.perf_counter()
        pool.shutdown(wait=True, cancel_futures=True)
        outcome.shutdown_s = time.perf_counter() - shutdown_started_s
    return outcome


def _run_asyncio(
    workers: int, task: str, params: tasks.Params, payload: bytes, items: int, timeout_s: float
) -> Outcome:
    """One event loop per trial. Natively async tasks run as coroutines, at most ``workers``
    at once; blocking tasks go through the loop's default executor of ``workers`` threads."""
    import asyncio

    outcome = Outcome()
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
        loop.run_until_complete(
            _gather_items(outcome, native, workers, task, params, payload, items)
        )
        outcome.work_s = time.perf_counter() - work_started_s
    finally:
        shutdown_started_s = time.perf_counter()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        outcome.shutdown_s = time.perf_counter() - shutdown_started_s
    return outcome


async def _gather_items(
    outcome: Outcome,
    native: bool,
    workers: int,
    task: str,
    params: tasks.Params,
    payload: bytes,
    items: int,
) -> None:
    """Run every item on the running loop, recording each as it completes."""
    import asyncio

    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(workers)

    async def one(index: int) -> None:
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
