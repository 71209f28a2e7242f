"""CPU time and context switches of a trial's process tree, over its timed phases only.

Standard library only, Python 3.9. Both come from the kernel's accounting of this process
plus its reaped children, so a snapshot is taken when the phases start (after the task's
session is set up) and another when they end (after the pool is shut down and its
processes reaped, and before the session is torn down: an io_network server reaped then
is not counted).
"""

from __future__ import annotations

import contextlib
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional

    Usage = Dict[str, Optional[float]]


def snapshot() -> Usage:
    """CPU seconds and context switches so far, of this process and its reaped children
    (getrusage, to the microsecond; where it is missing, os.times, in clock ticks)."""
    try:
        import resource
    except ImportError:  # not POSIX: CPU time from os.times, no context switch counts
        times = os.times()
        return {
            "cpu_user_s": times.user + times.children_user,
            "cpu_sys_s": times.system + times.children_system,
            "ctx_switches_voluntary": None,
            "ctx_switches_involuntary": None,
        }
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_user_s": own.ru_utime + children.ru_utime,
        "cpu_sys_s": own.ru_stime + children.ru_stime,
        "ctx_switches_voluntary": own.ru_nvcsw + children.ru_nvcsw,
        "ctx_switches_involuntary": own.ru_nivcsw + children.ru_nivcsw,
    }


def since(before: Usage) -> Usage:
    """What was used since ``before`` (None where either side is unknown)."""
    after = snapshot()
    return {
        key: None if after[key] is None or value is None else after[key] - value  # type: ignore[operator]
        for key, value in before.items()
    }


def less(used: Usage, apart: Usage) -> Usage:
    """``used`` without what ``apart`` used (unchanged where ``apart`` has no value)."""
    return {
        key: value if apart.get(key) is None or value is None else value - apart[key]  # type: ignore[operator]
        for key, value in used.items()
    }


def stop_forkserver() -> None:
    """Stop (and reap) multiprocessing's fork server, which is the parent of forkserver pool
    processes, so their CPU time is in our children's times before we read them. Private
    API, hence the guards; the orchestrator kills any leftover helper process anyway."""
    server = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        with contextlib.suppress(Exception):  # best effort, see above
            stop()
