"""The built-in tasks: one per claim of the seed explainer. Standard library only, Python 3.9.

Each work function receives the payload bytes and the task's parameters and returns a small
JSON-able value. Parameters whose names start with ``_`` are filled in by the task's Session
(file folder, server address, item index...), never by the spec.
"""

from __future__ import annotations

import os
import sys
import time
import zlib

from . import api, call
from .api import Param, Session, Setting, Task, items_done
from .io_tasks import (
    FolderSession,
    ServerSession,
    io_file,
    io_network,
    io_network_async,
    io_sleep,
    io_sleep_async,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Tuple

    from .api import Facts, Params


# -- CPU --------------------------------------------------------------------------------------
def _cpu_pure(payload: bytes, params: Params) -> int:
    """The seed's ``cpu_intensive_task``: a pure-Python loop that holds the GIL throughout."""
    total = zlib.crc32(payload)
    for i in range(params["iterations"]):
        total += i
    return total & 0xFFFFFFFF


def _cpu_gil_released(payload: bytes, params: Params) -> Any:
    """CPU work done in C with the GIL released: sha256 (hashlib releases it for data over
    2 KiB) or zlib compression, ``rounds`` passes over the payload."""
    if params["algorithm"] == "sha256":
        import hashlib

        digest = hashlib.sha256()
        for _ in range(params["rounds"]):
            digest.update(payload)
        return digest.hexdigest()[:16]
    size = 0
    for _ in range(params["rounds"]):
        size = len(zlib.compress(payload, params["level"]))
    return size


# -- mixed ------------------------------------------------------------------------------------
def _spin(cpu_seconds: float) -> int:
    """Pure-Python work until this thread has used ``cpu_seconds`` of CPU time (so the
    amount of CPU work is the same under every model, however long the GIL keeps us out)."""
    total = 0
    deadline = time.thread_time() + cpu_seconds
    while time.thread_time() < deadline:
        for i in range(2000):
            total += i
    return total & 0xFFFF


def _mixed(payload: bytes, params: Params) -> int:
    """``cpu_share`` of ``seconds`` as pure-Python CPU work, then the rest as an I/O wait."""
    checksum = zlib.crc32(payload) ^ _spin(params["seconds"] * params["cpu_share"])
    time.sleep(params["seconds"] * (1 - params["cpu_share"]))
    return checksum


async def _mixed_async(payload: bytes, params: Params) -> int:
    """``mixed`` under asyncio: the CPU part runs on (and blocks) the event loop."""
    import asyncio

    checksum = zlib.crc32(payload) ^ _spin(params["seconds"] * params["cpu_share"])
    await asyncio.sleep(params["seconds"] * (1 - params["cpu_share"]))
    return checksum


# -- transfer ---------------------------------------------------------------------------------
class _TransferSession(Session):
    """transfer: with ``transport: shared_memory`` and a process pool, each item's payload
    goes into a shared memory block made here and the worker writes its result into a
    second one; only their names cross the pipe. Otherwise the payload is an argument
    (pickled to processes, a reference for threads) and the result a return value."""

    def __init__(self, params: Params, payload: bytes, setting: Setting) -> None:
        super().__init__(params, payload, setting)
        self.use_shared_memory = (
            params["transport"] == "shared_memory" and setting.crosses_processes
        )
        self.blocks: Dict[int, Tuple[Any, Any]] = {}
        if self.use_shared_memory:
            # Start the resource tracker before the pool, so that every pool process shares
            # it (a worker that started its own would warn about, and unlink, our blocks).
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()

    def item(self, index: int) -> Tuple[bytes, Params]:
        if not self.use_shared_memory:
            return self.payload, self.params
        from multiprocessing import shared_memory

        size = len(self.payload)
        source = shared_memory.SharedMemory(create=True, size=max(size, 1))
        try:
            source.buf[:size] = self.payload  # type: ignore[index]
            target = shared_memory.SharedMemory(create=True, size=max(size, 1))
        except BaseException:
            source.close()
            source.unlink()
            raise
        self.blocks[index] = (source, target)
        return b"", dict(self.params, _source=source.name, _target=target.name, _size=size)

    def finish(self, index: int, value: Any) -> Any:
        blocks = self.blocks.pop(index, None)
        if blocks is None:
            return len(value) if isinstance(value, (bytes, bytearray)) else value
        target = blocks[1]
        try:
            result = bytes(target.buf[: len(self.payload)]) if value is not None else b""
        finally:
            for block in blocks:
                block.close()
                block.unlink()
        return len(result)

    def close(self, items: List[Dict[str, Any]]) -> Facts:
        for index in list(self.blocks):
            self.finish(index, None)
        return {
            "bytes_moved": items_done(items) * 2 * len(self.payload),
            "crosses_processes": float(self.setting.crosses_processes),
            "shared_memory": float(self.use_shared_memory),
        }


def _attach(name: str) -> Any:
    """Attach to a shared memory block without registering it with a resource tracker
    where Python allows that (3.13+); before, the pool shares the trial's tracker."""
    from multiprocessing import shared_memory

    try:
        return shared_memory.SharedMemory(name, track=False)  # type: ignore[call-arg]
    except TypeError:
        return shared_memory.SharedMemory(name)


def _transfer(payload: bytes, params: Params) -> Any:
    """Receive the payload and send a result of the same size back; nothing else."""
    if "_source" not in params:
        return memoryview(payload).tobytes()
    source, target = _attach(params["_source"]), _attach(params["_target"])
    try:
        size = params["_size"]
        target.buf[:size] = source.buf[:size]
    finally:
        source.close()
        target.close()
    return size


# -- sync -------------------------------------------------------------------------------------
class _Counter:
    """A plain Python counter object, shared by reference between threads."""

    def __init__(self) -> None:
        self.value = 0


class _SyncSession(Session):
    """sync: one shared counter and a lock. Between processes they must be shared
    explicitly (multiprocessing.Value and Lock); threads share a plain object."""

    needs_shared = True

    def __init__(self, params: Params, payload: bytes, setting: Setting) -> None:
        super().__init__(params, payload, setting)
        context = setting.mp_context
        if context is not None:
            self.shared = {"counter": context.Value("q", 0, lock=False), "lock": context.Lock()}
        else:
            import threading

            self.shared = {"counter": _Counter(), "lock": threading.Lock()}

    def close(self, items: List[Dict[str, Any]]) -> Facts:
        expected = items_done(items) * self.params["increments"]
        final = int(self.shared["counter"].value)
        # dropping the lock and counter now releases their semaphore and shared memory,
        # before the worker's fast exit could leave them to the resource tracker's warning
        self.shared.clear()
        api.SHARED.clear()
        return {"expected_count": expected, "final_count": final, "lost_updates": expected - final}


def _sync(payload: bytes, params: Params) -> int:
    """Increment the shared counter ``increments`` times, under the shared lock with
    ``lock: with``, bare with ``lock: without`` (``+= 1`` is a read, an add and a write,
    which other threads or processes can interleave)."""
    counter = api.SHARED["counter"]
    if params["lock"] == "with":
        lock = api.SHARED["lock"]
        for _ in range(params["increments"]):
            with lock:
                counter.value += 1
    else:
        for _ in range(params["increments"]):
            counter.value += 1
    return int(params["increments"])


# -- fault ------------------------------------------------------------------------------------
class _FaultSession(Session):
    """fault: tells each item its index, so exactly the chosen one fails."""

    def item(self, index: int) -> Tuple[bytes, Params]:
        return self.payload, dict(self.params, _index=index)

    def close(self, items: List[Dict[str, Any]]) -> Facts:
        errors = [item["error"] for item in items if "error" in item]
        return {
            "others_finished": items_done(items),
            "items_failed": len(errors),
            "pool_broken": float(any("BrokenProcessPool" in error for error in errors)),
            "trial_process_survived": 1.0,
        }


def _fault(payload: bytes, params: Params) -> int:
    """Item ``item`` fails at once (an exception, ``os._exit`` or a real SIGSEGV); the
    others wait ``seconds`` like I/O-bound work and succeed."""
    if params["_index"] == params["item"]:
        mode = params["mode"]
        if mode == "exception":
            raise RuntimeError(f"fault injected into item {params['item']}")
        sys.stdout.flush()
        if mode == "exit":
            os._exit(70)
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV
    time.sleep(params["seconds"])
    return zlib.crc32(payload)


# -- memory -----------------------------------------------------------------------------------
def _memory(payload: bytes, params: Params) -> int:
    """Hold a private copy of the payload (every page written) for ``seconds``, so the
    orchestrator's memory samples see each worker's footprint."""
    block = bytearray(payload)
    time.sleep(params["seconds"])
    return len(block)


_SECONDS = "seconds each work item waits"
TASKS: Dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "cpu_pure",
            "pure-Python arithmetic loop (holds the GIL)",
            _cpu_pure,
            params={"iterations": Param(200_000, 1, "loop iterations per work item")},
            cpu_bound=True,
        ),
        Task(
            "cpu_gil_released",
            "sha256 or zlib over the payload in C, with the GIL released",
            _cpu_gil_released,
            params={
                "algorithm": Param("sha256", doc="sha256 or zlib", choices=("sha256", "zlib")),
                "rounds": Param(4, 1, "passes over the payload per work item"),
                "level": Param(6, 0, "zlib compression level", maximum=9),
            },
            imports=("hashlib",),
            cpu_bound=True,
        ),
        Task(
            "io_sleep",
            "simulated I/O wait: time.sleep, asyncio.sleep under asyncio",
            io_sleep,
            io_sleep_async,
            params={"seconds": Param(0.05, 0, _SECONDS)},
        ),
        Task(
            "io_file",
            "write the payload to temporary files, fsync, read them back, delete them",
            io_file,
            params={
                "fsync": Param(True, doc="fsync each file before reading it back"),
                "files": Param(
                    1, 1, "files written, fsynced and read back per work item", maximum=1000
                ),
                "directory": Param(
                    "", doc="where the trial's folder goes (default: the trial's own folder)"
                ),
            },
            session=FolderSession,
        ),
        Task(
            "io_network",
            "one TCP request per item to a local server in another process",
            io_network,
            io_network_async,
            params={
                "latency": Param(0.05, 0, "seconds the server waits before each reply"),
                "timeout": Param(30.0, 0.001, "seconds a request may take"),
            },
            session=ServerSession,
            imports=("socket", "pipeline.worker.netserver"),
        ),
        Task(
            "mixed",
            "cpu_share of each item as pure-Python CPU work, the rest as an I/O wait",
            _mixed,
            _mixed_async,
            params={
                "seconds": Param(0.05, 0, "nominal length of a work item (CPU + wait)"),
                "cpu_share": Param(0.5, 0, "share of the item that is CPU work", maximum=1),
            },
        ),
        Task(
            "transfer",
            "move the payload to a worker and a same-size result back; nothing else",
            _transfer,
            params={
                "transport": Param(
                    "pickle",
                    doc="pickle (through the pool) or shared_memory (processes only)",
                    choices=("pickle", "shared_memory"),
                ),
            },
            session=_TransferSession,
            imports=("multiprocessing.shared_memory",),
        ),
        Task(
            "sync",
            "a shared counter incremented with or without a lock; counts lost updates",
            _sync,
            params={
                "increments": Param(20_000, 1, "increments of the counter per work item"),
                "lock": Param(
                    "without", doc="with or without the lock", choices=("with", "without")
                ),
            },
            session=_SyncSession,
        ),
        Task(
            "fault",
            "one chosen item fails: exception, os._exit or SIGSEGV",
            _fault,
            params={
                "mode": Param(
                    "exception",
                    doc="exception, exit or segfault",
                    choices=("exception", "exit", "segfault"),
                ),
                "item": Param(0, 0, "index of the item that fails"),
                "seconds": Param(0.02, 0, "seconds each other item waits"),
            },
            session=_FaultSession,
        ),
        Task(
            "memory",
            "each item holds a private copy of the payload for a moment",
            _memory,
            params={"seconds": Param(0.2, 0, "seconds each copy is held")},
        ),
        call.TASK,
    )
}
