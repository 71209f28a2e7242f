"""asyncio: one event loop per trial; natively async tasks run as coroutines, blocking
ones through the loop's default executor.

Standard library only, Python 3.9 syntax.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time

from . import tasks
from .models import meet, ready
from .outcome import Model, Outcome, Trial

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Tuple

    from .api import Params


class Asyncio(Model):
    """One event loop per trial. Natively async tasks run as coroutines, at most ``workers``
    at once; blocking tasks go through the loop's default executor of ``workers`` threads."""

    def run(self, trial: Trial) -> None:
        _run_asyncio(trial)


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
            executor = cf.ThreadPoolExecutor(workers, initializer=meet, initargs=(barrier,))
            loop.set_default_executor(executor)
            loop.run_until_complete(
                asyncio.gather(*[loop.run_in_executor(None, ready) for _ in range(workers)])
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
        outcome.record_future(index, submitted_s, future)

    await asyncio.gather(*[one(index) for index in range(items)])
