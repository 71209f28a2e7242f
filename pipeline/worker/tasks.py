"""The task registry: built-in tasks by name and user tasks named ``module:function``.

Standard library only, and Python 3.9 syntax: any CPython the spec names runs this file.
A task receives the payload bytes and its parameters and returns a small JSON-able value.
"""

from __future__ import annotations

import importlib
import time

from .api import Session, Setting, Unsupported
from .builtin import TASKS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

    from .api import Params

__all__ = ["TASKS", "Session", "Setting", "Unsupported"]


def is_user_task(name: str) -> bool:
    """A user task is named ``module:function``; built-in names have no colon."""
    return ":" in name


def resolve_params(name: str, params: Params) -> Params:
    """The task's defaults overlaid with the spec's values (user tasks take params as given)."""
    task = TASKS.get(name)
    if task is None:
        return dict(params)
    merged = {key: spec.default for key, spec in task.params.items()}
    merged.update(params)
    return merged


_user_functions: Dict[str, Callable[[bytes, Params], Any]] = {}


def user_function(name: str) -> Callable[[bytes, Params], Any]:
    """Import ``module:function`` (only ever called for a task a spec names)."""
    if name not in _user_functions:
        module_name, _, attribute = name.partition(":")
        function = getattr(importlib.import_module(module_name), attribute)
        if not callable(function):
            raise TypeError(f"{name} is not callable")
        _user_functions[name] = function
    return _user_functions[name]


def blocking_function(name: str) -> Callable[[bytes, Params], Any]:
    """The blocking callable behind a task name."""
    task = TASKS.get(name)
    return task.run if task is not None else user_function(name)


def async_function(name: str) -> Optional[Callable[[bytes, Params], Awaitable[Any]]]:
    """The natively async callable of a task, or None when it must go through an executor."""
    task = TASKS.get(name)
    return task.arun if task is not None else None


def imports(name: str) -> Tuple[str, ...]:
    """Modules to import in every worker before timing starts (user tasks: their module)."""
    task = TASKS.get(name)
    if task is not None:
        return task.imports
    return (name.partition(":")[0],)


def open_session(name: str, params: Params, payload: bytes, setting: Setting) -> Session:
    """The task's per-trial state for this model (user tasks get the plain Session)."""
    task = TASKS.get(name)
    factory = task.session if task is not None else Session
    if getattr(factory, "needs_shared", False) and setting.model == "subinterpreters":
        raise Unsupported(f"{name} shares objects between workers, which subinterpreters cannot")
    return factory(params, payload, setting)


def run_item(name: str, params: Params, payload: bytes) -> Dict[str, Any]:
    """Run one work item and time it from inside the thread or process that runs it."""
    started_s = time.perf_counter()
    cpu_started_s = time.thread_time()
    value = blocking_function(name)(payload, params)
    return {
        "value": value,
        "service_s": time.perf_counter() - started_s,
        "item_cpu_s": time.thread_time() - cpu_started_s,
    }


async def run_item_async(name: str, params: Params, payload: bytes) -> Dict[str, Any]:
    """``run_item`` for a natively async task on the running event loop."""
    coroutine_function = async_function(name)
    if coroutine_function is None:
        raise TypeError(f"{name} has no async form")
    started_s = time.perf_counter()
    value = await coroutine_function(payload, params)
    return {"value": value, "service_s": time.perf_counter() - started_s, "item_cpu_s": None}
