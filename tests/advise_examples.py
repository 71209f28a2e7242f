"""The functions ``pipeline advise`` is tested on (tests/test_advice.py, make
bench-advise): one of each archetype, with the answer each should get, and one that is
not thread-safe. Importable by the trials through the spec's python_path."""

from __future__ import annotations

import hashlib
import time
from typing import Any

BLOCK = bytes(range(256)) * 4096  # 1 MiB


def pure_python() -> int:
    """About 15 ms of a pure-Python loop, the GIL held throughout: processes."""
    total = 0
    for i in range(300_000):
        total += i
    return total


def hash_block() -> str:
    """sha256 over 1 MiB four times (hashlib releases the GIL): threads or processes."""
    digest = hashlib.sha256()
    for _ in range(4):
        digest.update(BLOCK)
    return digest.hexdigest()


def wait() -> None:
    """50 ms of waiting: threads, as many as there are items."""
    time.sleep(0.05)


def tiny(item: int) -> int:
    """A few microseconds of work: nothing pays for a pool; sequential."""
    return sum(range(item % 7, 40))


def tiny_items() -> list[int]:
    return list(range(64))


def consume(data: bytes) -> int:
    """Trivial work on an 8 MiB argument: moving it costs more than the work;
    sequential or threads."""
    return len(data)


def big_items() -> list[bytes]:
    return [bytes(8 * 1024 * 1024)] * 8


_scratch = {"total": 0}


def unsafe_sum(count: int) -> int:
    """A sum kept in a shared scratch dict, reset per call: right one call at a time,
    wrong when threads interleave (not thread-safe)."""
    _scratch["total"] = 0
    for i in range(count):
        _scratch["total"] += i
    return _scratch["total"]


def counts() -> list[int]:
    return [300_000] * 16


def failing_items() -> list[int]:
    raise RuntimeError("the data is not there")


def no_items() -> list[int]:
    return []


def lazy() -> object:
    """A result that cannot be pickled (a generator): processes cannot return it."""
    return (i for i in range(3))


async def fetch() -> int:
    """A coroutine function waiting 20 ms: asyncio."""
    import asyncio

    await asyncio.sleep(0.02)
    return 1


# function, inputs factory, the kinds a right answer names (best, or tied with the best)
ARCHETYPES = {
    "pure_python": ("", {"processes"}),
    "hash_block": ("", {"threads", "processes", "free-threaded threads"}),
    "wait": ("", {"threads"}),
    "tiny": ("tiny_items", {"sequential"}),
    "consume": ("big_items", {"sequential", "threads"}),
}


def right(function: str, answer: Any) -> bool:
    """Whether ``pipeline advise``'s answer for an archetype names what it should: the
    expected kind as the best or tied with it; for ``wait``, threads as many as items."""
    _, allowed = ARCHETYPES[function]
    best = answer.best
    if best is None:
        return False
    if function == "wait":
        return bool(best.kind == "threads" and best.workers == 32)
    named = {best.kind, *(option.kind for option in answer.ties)}
    return bool(named & allowed)
