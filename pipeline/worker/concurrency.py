"""Concurrency models: build a pool (or loop), run the work items, shut it down, time each phase.

Standard library only, Python 3.9 syntax. Start-up ends when every one of the ``workers``
threads or processes is running (they meet at a barrier before taking work), so work time
never includes a late worker's boot and start-up is the full price of a warm pool.
"""

from __future__ import annotations

from . import api, tasks, usage
from .aio import Asyncio
from .api import Unsupported
from .models import Model, Processes, Sequential, Threads, modules
from .outcome import Outcome, Trial
from .subinterpreters import Subinterpreters

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


def unsupported(model: str) -> Optional[str]:
    """Why this interpreter cannot run ``model`` at all, or None when it can."""
    return MODEL_REGISTRY[model].unsupported()


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
