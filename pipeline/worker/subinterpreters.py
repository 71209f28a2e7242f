"""Subinterpreters: ``InterpreterPoolExecutor`` (Python 3.14, or the interpreters-pep-734
backport), each worker a thread with an interpreter of its own, held at a start-up barrier
of pipes until all are running.

Standard library only, Python 3.9 syntax.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import os
import sys
import time

from .models import PoolModel, modules
from .outcome import Trial

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional


# Run by exec() in each new subinterpreter (the initializer must itself be importable there,
# and the builtin exec is): the trial's sys.path, then the task's modules, before timing.
SUBINTERPRETER_SETUP = (
    "import importlib, sys\n"
    "sys.path[:] = path + [entry for entry in sys.path if entry not in path]\n"
    "for name in modules:\n"
    "    importlib.import_module(name)\n"
)


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


class Subinterpreters(PoolModel):
    """``InterpreterPoolExecutor(workers)`` (3.14, or the backport): each worker is a thread
    with an interpreter of its own; sys.path and the imports are set up in each."""

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
