"""Work items: the built-in tasks and user tasks named ``module:function``.

Standard library only, and Python 3.9 syntax: any CPython the spec names runs this file.
A task receives the payload bytes and its parameters and returns a small JSON-able value.
Every task touches the payload (a CRC-32), so moving it to a worker is part of the cost.
"""

from __future__ import annotations

import importlib
import time
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time in every trial; annotations only need it here
    from typing import Any, Awaitable, Callable, Dict, Optional

    Params = Dict[str, Any]


class Param:
    """One task parameter: its default (whose type is the parameter's type) and lower bound."""

    def __init__(self, default: Any, minimum: Optional[float] = None, doc: str = "") -> None:
        self.default = default
        self.minimum = minimum
        self.doc = doc


class Task:
    """A built-in task: a blocking function and, where the work is natively async, a coroutine."""

    def __init__(
        self,
        name: str,
        summary: str,
        run: Callable[[bytes, Params], Any],
        arun: Optional[Callable[[bytes, Params], Awaitable[Any]]] = None,
        params: Optional[Dict[str, Param]] = None,
    ) -> None:
        self.name = name
        self.summary = summary
        self.run = run
        self.arun = arun
        self.params = params or {}


def _cpu_pure(payload: bytes, params: Params) -> int:
    """The seed's ``cpu_intensive_task``: a pure-Python loop that holds the GIL throughout."""
    total = zlib.crc32(payload)
    for i in range(params["iterations"]):
        total += i
    return total & 0xFFFFFFFF


def _io_sleep(payload: bytes, params: Params) -> int:
    """The seed's ``time.sleep`` example: waits without using the CPU (and without the GIL)."""
    checksum = zlib.crc32(payload)
    time.sleep(params["seconds"])
    return checksum


async def _io_sleep_async(payload: bytes, params: Params) -> int:
    """``io_sleep`` for the asyncio model: ``asyncio.sleep`` on the event loop."""
    import asyncio

    checksum = zlib.crc32(payload)
    await asyncio.sleep(params["seconds"])
    return checksum


TASKS: Dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "cpu_pure",
            "pure-Python arithmetic loop (holds the GIL)",
            _cpu_pure,
            params={"iterations": Param(200_000, 1, "loop iterations per work item")},
        ),
        Task(
            "io_sleep",
            "simulated I/O wait: time.sleep, asyncio.sleep under asyncio",
            _io_sleep,
            _io_sleep_async,
            params={"seconds": Param(0.05, 0, "seconds each work item waits")},
        ),
    )
}


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
