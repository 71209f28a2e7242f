"""Concurrency models: build a pool (or loop), run the work items, shut it down, time each phase.

Standard library only, Python 3.9 syntax. Start-up ends when every one of the ``workers``
threads or processes is running (they meet at a barrier before taking work), so work time
never includes a late worker's boot and start-up is the full price of a warm pool.
"""

from __future__ import annotations

import importlib

from . import api, tasks, usage
from .api import Unsupported
from .outcome import Model, Outcome, Trial

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
    from typing import Dict, Optional

    from .api import Params


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
    runner = MODEL_REGISTRY[model].load()
    reason = runner.unsupported()
    if reason:
        raise Unsupported(reason)
    context = runner.mp_context()
    session = tasks.open_session(
        task, params, payload, tasks.Setting(model, workers, items, context)
    )
    outcome = Outcome(session, progress_path)
    try:
        api.install(session.shared, tasks.imports(task) + session.imports())
        before = usage.snapshot()
        try:
            runner.run(Trial(outcome, workers, task, items, timeout_s, context, warmup_items))
        finally:
            usage.stop_forkserver()
            outcome.usage = usage.less(usage.since(before), outcome.warmup_usage)
    finally:
        outcome.close()
    return outcome


def unsupported(model: str) -> Optional[str]:
    """Why this interpreter cannot run ``model`` at all, or None when it can."""
    return MODEL_REGISTRY[model].load().unsupported()


class Entry:
    """A model in the registry, by name: its kind (what the claims group models by) and
    where it lives. The module is imported only when a trial runs the model, so that a
    sequential trial's worker never imports concurrent.futures, and a thread's never
    imports multiprocessing."""

    def __init__(self, name: str, kind: str, module: str, *args: Optional[str]) -> None:
        self.name, self.kind, self.module, self.args = name, kind, module, args
        self._model: Optional[Model] = None

    def load(self) -> Model:
        if self._model is None:
            found = importlib.import_module(__package__ + "." + self.module)
            self._model = getattr(found, _CLASSES[self.kind])(*self.args)
            self._model.name, self._model.kind = self.name, self.kind
        return self._model


_CLASSES = {
    "sequential": "Sequential",
    "threads": "Threads",
    "asyncio": "Asyncio",
    "processes": "Processes",
    "subinterpreters": "Subinterpreters",
}

# Every concurrency model, by the name specs use: the one list of models.
MODEL_REGISTRY: Dict[str, Entry] = {
    entry.name: entry
    for entry in (
        Entry("sequential", "sequential", "sequential"),
        Entry("threads", "threads", "models"),
        Entry("asyncio", "asyncio", "aio"),
        Entry("processes", "processes", "models", None),
        Entry("processes-fork", "processes", "models", "fork"),
        Entry("processes-spawn", "processes", "models", "spawn"),
        Entry("processes-forkserver", "processes", "models", "forkserver"),
        Entry("subinterpreters", "subinterpreters", "subinterpreters"),
    )
}
MODELS = tuple(MODEL_REGISTRY)
PROCESS_MODELS = tuple(name for name, entry in MODEL_REGISTRY.items() if entry.kind == "processes")
