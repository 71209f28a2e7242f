"""What every model shares: the Trial (what to run, and the untimed warm-up), its Outcome
(phase times, one record per item, written to the progress file as it finishes) and the
Model base class. Imports nothing a model does not need (no concurrent.futures).

Standard library only, Python 3.9 syntax.
"""

from __future__ import annotations

import contextlib
import os
import time

from . import tasks, usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    import concurrent.futures as cf
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

    def record_future(
        self, index: int, submitted_s: float, future: cf.Future[Dict[str, Any]]
    ) -> None:
        """Store one finished item of a pool from its future."""
        error = future.exception()
        self.record(index, submitted_s, None if error is not None else future.result(), error)

    def record(
        self,
        index: int,
        submitted_s: float,
        result: Optional[Dict[str, Any]],
        error: Optional[BaseException] = None,
    ) -> None:
        """Store one finished item: its latency from submission and its result or error."""
        item: Dict[str, Any] = {"index": index, "latency_s": time.perf_counter() - submitted_s}
        if error is None and result is not None:
            item.update(result)
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

    name = ""  # set from concurrency.MODEL_REGISTRY, the one list of models
    kind = ""  # what the claims group models by: sequential, threads, processes, ...

    def unsupported(self) -> Optional[str]:
        """Why this interpreter cannot run the model, or None."""
        return None

    def mp_context(self) -> Any:
        """The multiprocessing context the model's workers start with (None: no processes)."""
        return None

    def run(self, trial: Trial) -> None:
        raise NotImplementedError
