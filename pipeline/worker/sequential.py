"""The baseline: one item after another on the main thread, no pool at all (and nothing
imported that a pool needs).

Standard library only, Python 3.9 syntax.
"""

from __future__ import annotations

import contextlib
import time

from . import tasks
from .outcome import Model, Trial

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Tuple

    from .api import Params


class Sequential(Model):
    """The baseline: one item after another on the main thread, no pool at all."""

    def run(self, trial: Trial) -> None:
        outcome = trial.outcome
        trial.warm_up(1, lambda batch: _run_each(trial.task, batch))
        started_s = time.perf_counter()
        for index in range(trial.items):
            payload, params = outcome.session.item(index)
            submitted_s = time.perf_counter()
            try:
                result = tasks.run_item(trial.task, params, payload)
            except Exception as error:  # a failing item is data, not a crash
                outcome.record(index, submitted_s, None, error)
            else:
                outcome.record(index, submitted_s, result)
        outcome.work_s = time.perf_counter() - started_s


def _run_each(task: str, batch: List[Tuple[bytes, Params]]) -> None:
    """Warm-up items one after another on this thread (failures dropped)."""
    for payload, params in batch:
        with contextlib.suppress(Exception):  # a warm-up item's failure is not the trial's
            tasks.run_item(task, params, payload)
