"""Reaping: a trial's whole process tree killed and reaped, orphans included.

A worker runs in its own session, so its group is killed at once; descendants that left
the group are found through the tree the observer saw and, on Linux, through this
process being their subreaper (they are re-parented to us, not to init).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil

from . import observer
from .observer import TreeSampler
from .trial import DEFAULT_INTERVAL_S, Worker

KILL_GRACE_S = 5.0
TRACKER_GRACE_S = 1.0


def kill_group(process: Worker, sampler: TreeSampler | None) -> None:
    """Kill the worker's whole process group and every descendant seen, then reap.

    multiprocessing's resource tracker is spared for a moment: once every other process of
    the trial is gone it unlinks the shared memory blocks and semaphores they left, then
    exits by itself. Killed with the others, it would leave them in /dev/shm.
    """
    if sampler is not None:
        _wait_until_gone(sampler.kill_all(spare=_is_resource_tracker), TRACKER_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if sampler is not None:
        sampler.kill_all(rescan=False)  # the spared tracker, and any other member left
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_GRACE_S)
    if sampler is not None:
        _kill_orphans(process.pid, sampler.root.create_time())


_SUBREAPER = {"set": False}


def adopt_orphans() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux
    PR_SET_CHILD_SUBREAPER), so that a trial's process that double-forks and leaves its
    session still becomes our child, and is killed with the trial. Returns whether set."""
    if not _SUBREAPER["set"] and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_child_subreaper = 36
            libc = ctypes.CDLL(None, use_errno=True)
            _SUBREAPER["set"] = libc.prctl(pr_set_child_subreaper, 1) == 0
    return _SUBREAPER["set"]


def _kill_orphans(worker_pid: int, worker_born: float) -> None:
    """Kill and reap every child of ours born since the trial's worker (``worker_born``:
    its psutil create_time, on the same clock as its descendants'), but the worker itself:
    descendants of the trial orphaned while it ran, and adopted by us, the subreaper (this
    process starts nothing else while a trial runs). Zombies among them are reaped."""
    adopted = []
    for child in _children_of_self():
        with contextlib.suppress(psutil.Error):
            if child.pid != worker_pid and child.create_time() >= worker_born:
                adopted.append(child)
    for child in adopted:
        with contextlib.suppress(psutil.Error):
            for descendant in child.children(recursive=True):
                descendant.kill()
            child.kill()
    for child in adopted:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(child.pid, 0)


def _children_of_self() -> list[psutil.Process]:
    """This process's children (the cheap /proc listing where there is one)."""
    found = observer.child_processes(os.getpid())
    return psutil.Process().children() if found is None else found


def _wait_until_gone(processes: list[psutil.Process], timeout_s: float) -> None:
    """Wait until every process has exited (a zombie counts: its parent is gone, and
    whoever adopted it may reap it late) or the timeout passes."""
    deadline_s = time.monotonic() + timeout_s
    while processes and time.monotonic() < deadline_s:
        time.sleep(DEFAULT_INTERVAL_S)
        processes = [process for process in processes if _running(process)]


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _is_resource_tracker(process: psutil.Process) -> bool:
    """Whether a process is multiprocessing's resource tracker."""
    return any("resource_tracker" in part for part in process.cmdline())
