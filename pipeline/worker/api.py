"""What a task is made of: parameters, the work function, and per-trial state (a Session).

Standard library only, Python 3.9 syntax. A Session lives in the trial's own process: it is
opened before the pool starts and closed after the pool stops (neither is timed), hands
each work item its payload and parameters, sees each result come back, and reports the
task's facts (bytes moved, lost updates, ...) at the end. Objects in ``Session.shared``
reach every worker: pool processes get them through the pool initializer (inheritance, as
multiprocessing requires for locks and shared values); threads see the module global.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time in every trial; annotations only need it here
    from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

    Params = Dict[str, Any]
    Facts = Dict[str, Optional[float]]

# The objects of the running trial's Session.shared, in whichever process or thread runs items.
SHARED: Dict[str, Any] = {}


class Unsupported(Exception):
    """This interpreter, platform or model cannot run the trial; it is recorded as skipped."""


class Param:
    """One task parameter: its default (whose type is the parameter's type), bounds, choices."""

    def __init__(
        self,
        default: Any,
        minimum: Optional[float] = None,
        doc: str = "",
        *,
        maximum: Optional[float] = None,
        choices: Sequence[str] = (),
    ) -> None:
        self.default = default
        self.minimum = minimum
        self.maximum = maximum
        self.choices = tuple(choices)
        self.doc = doc


class Setting:
    """Where a trial runs: the model, its size, and the multiprocessing context if any."""

    def __init__(self, model: str, workers: int, items: int, mp_context: Any = None) -> None:
        self.model = model
        self.workers = workers
        self.items = items
        self.mp_context = mp_context

    @property
    def crosses_processes(self) -> bool:
        """Whether work items run in other processes (payloads are pickled to reach them)."""
        return self.mp_context is not None


class Session:
    """Per-trial state of a task. The base class passes the payload and params unchanged."""

    needs_shared = False  # True when items need Session.shared (not possible everywhere)

    def __init__(self, params: Params, payload: bytes, setting: Setting) -> None:
        self.params = params
        self.payload = payload
        self.setting = setting
        self.shared: Dict[str, Any] = {}

    def item(self, index: int) -> Tuple[bytes, Params]:
        """The payload and parameters that work item ``index`` is submitted with."""
        return self.payload, self.params

    def imports(self) -> Tuple[str, ...]:
        """Modules of this trial's own (beyond the task's) that every worker imports
        before timing starts."""
        return ()

    def finish(self, index: int, value: Any) -> Any:
        """Called in the trial's process as item ``index`` comes back (value None on error)."""
        return value

    def close(self, items: List[Dict[str, Any]]) -> Facts:
        """Release what the session holds; return the task's facts about the trial."""
        return {}


class Task:
    """A built-in task: a blocking function and, where the work is natively async, a coroutine."""

    def __init__(
        self,
        name: str,
        summary: str,
        run: Callable[[Any, Params], Any],  # (payload bytes, or a work item's own object)
        arun: Optional[Callable[[Any, Params], Awaitable[Any]]] = None,
        params: Optional[Dict[str, Param]] = None,
        session: Callable[[Params, bytes, Setting], Session] = Session,
        imports: Tuple[str, ...] = (),
        cpu_bound: bool = False,
        work_items: Optional[Callable[[Params, int], int]] = None,
    ) -> None:
        self.name = name
        self.summary = summary
        self.run = run
        self.arun = arun
        self.params = params or {}
        self.session = session
        # modules the work function uses, imported before timing starts in every worker
        self.imports = imports
        # all CPU work that can run in parallel: its ideal speedup is min(workers, cores)
        self.cpu_bound = cpu_bound
        # how many work items a trial of ``items`` runs, where the task groups them (call:
        # chunks); None: one work item per item
        self.work_items = work_items


def items_done(items: List[Dict[str, Any]]) -> int:
    """How many of a trial's items ended without an error."""
    return sum("error" not in item for item in items)


def install(shared: Dict[str, Any], imports: Tuple[str, ...] = ()) -> None:
    """Make a session's shared objects visible here and import the task's modules."""
    SHARED.clear()
    SHARED.update(shared)
    for name in imports:
        importlib.import_module(name)
