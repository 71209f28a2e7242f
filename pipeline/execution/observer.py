"""The observer: what the orchestrator does while a trial runs, made cheap and accounted for.

* **Memory** of the trial's process tree, sampled from outside (``Sampling``): the summed
  RSS every interval, read straight from ``/proc/PID/statm``; with ``memory: uss`` also the
  summed USS and PSS from ``/proc/PID/smaps_rollup`` (the kernel walks the page tables, so
  these sweeps get at most USS_BUDGET of one core, and come every USS_INTERVAL_S at most
  while the tree's RSS is not at a new high, every USS_EVERY intervals after the trial's
  first DENSE_S: while the tree is steady, every 0.64 s; but as soon as the budget allows
  when the tree's RSS reaches a new high,
  where a peak may come and go between sweeps; a budget of 1%, or the same spacing from
  the start, missed short trials' PSS peaks). The interval starts at
  ``Sampling.interval_s`` and grows by half at each sample that finds the tree unchanged (no
  new process, RSS within 1% of the last), up to STEADY_FACTOR times it; any change brings
  it back. A spike shorter than the current interval can be missed; a steady tree costs
  little. The tree is found every TREE_REFRESH_S (every USS_EVERY intervals while steady)
  by reading ``/proc/PID/stat`` of the
  processes that appeared since the last look and are newer than the worker (process ids
  grow), with a full scan every FULL_SCAN_S in case they wrapped.
* **Waiting** for the worker to exit blocks on a pidfd (Linux 5.3+) with the interval as
  timeout, instead of Popen.wait's polling; elsewhere, Popen.wait.
* **Its own cost**: the CPU time of the observing process during the trial (every thread:
  the sampler, the progress display, a Dask worker's own threads) and the sampler's share.
* **The machine's speed** (``reference_s``): a fixed, tiny pure-Python loop (about 1 ms)
  timed between trials, in REFERENCE_CHUNKS chunks that each give up the CPU
  (``sched_yield``). Its wall time rises when the CPU runs slower (frequency, a noisy
  neighbour's steal) and when other programs compete for it (at each yield a waiting one
  runs first; one short burst alone would not see them, as the scheduler favours a task
  that just woke), so a run can see drift and adjust for it.

Other platforms fall back to psutil for everything.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .trial import Sampling, Worker

MEMORY_MODES: dict[str, str] = {  # what each mode measures, for help and docs
    "uss": "summed RSS every interval, USS and PSS from smaps_rollup (sparser after 1 s)",
    "rss": "summed RSS only (no USS or PSS: the memory claim cannot be judged)",
    "off": "nothing: no memory figures, and no memory or process limits",
}
STEADY_FACTOR = 8  # the interval grows up to this many times the set one while steady
STEADY_GROWTH = 1.5
STEADY_CHANGE = 0.01  # RSS within this share of the last sample counts as unchanged
# USS and PSS are swept at most this often, and sooner where the tree's RSS reaches a new
# high: a trial of 40 ms (sha256 of 1 MiB) has its PSS peak between two sweeps 50 ms
# apart, which read it 20% low fresh and 60% low warm (docs/methodology.md)
USS_INTERVAL_S = 0.05
USS_BUDGET = 0.05  # share of one core the USS/PSS sweeps may take
USS_EVERY = 8  # and, after the first DENSE_S, every 8 sampling intervals (steady: 0.64 s)
TREE_REFRESH_S = 0.05  # new descendants looked for this often
FULL_SCAN_S = 2.0  # and a full /proc scan for them this often
DENSE_S = 1.0  # a trial's first second is sampled densely whatever its steadiness
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PROC = "/proc"
_LINUX = sys.platform.startswith("linux") and Path("/proc/self/statm").exists()


@dataclass
class Cost:
    """What observing one trial cost the observing process."""

    cpu_s: float = 0.0  # the whole process, every thread, from start to reaping
    sampler_s: float = 0.0  # the sampler's own CPU within that


@contextlib.contextmanager
def accounted() -> Iterator[Cost]:
    """Measure the observing process's CPU time over the block into a Cost."""
    cost = Cost()
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        yield cost
    finally:
        after = resource.getrusage(resource.RUSAGE_SELF)
        cost.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# -- the machine's speed ----------------------------------------------------------------------
REFERENCE_LOOPS = 10_000  # about 1 ms of pure-Python work on a 2020s core
REFERENCE_CHUNKS = 4  # the CPU is given up between chunks
REFERENCE_REPEATS = 3
REFERENCE_EVERY_S = 0.25  # no more often than this; trials in between share the last value
_last_reference: dict[str, float] = {}


def _reference_loop(loops: int) -> int:
    total = 0
    for i in range(loops):
        total += i * i % 7
    return total


def reference_s(now_s: Callable[[], float] = time.monotonic) -> float:
    """The wall time of the reference loop (median of REFERENCE_REPEATS), measured at most
    every REFERENCE_EVERY_S; in between, the last value."""
    now = now_s()
    if _last_reference and now - _last_reference["at"] < REFERENCE_EVERY_S:
        return _last_reference["seconds"]
    give_up = getattr(os, "sched_yield", lambda: time.sleep(0))
    times = []
    for _ in range(REFERENCE_REPEATS):
        started = time.perf_counter()
        for _ in range(REFERENCE_CHUNKS):
            _reference_loop(REFERENCE_LOOPS // REFERENCE_CHUNKS)
            give_up()
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    _last_reference.update(at=now, seconds=seconds)
    return seconds


# -- waiting for the worker -------------------------------------------------------------------
class ExitWaiter:
    """Blocks until the worker exits or a timeout passes (a pidfd where there is one)."""

    def __init__(self, process: Worker) -> None:
        self.process = process
        self._poll: select.poll | None = None
        self._fd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self._fd = os.pidfd_open(process.pid)
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)

    def wait(self, timeout_s: float) -> bool:
        """Whether the worker has exited (and been reaped) within ``timeout_s``."""
        if self._poll is not None:
            if not self._poll.poll(max(0, int(timeout_s * 1000))):
                return False
            self.process.wait()
            return True
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# -- the process tree -------------------------------------------------------------------------
def _read(path: str) -> str | None:
    """A small /proc file's text (os-level calls: a third of open()'s cost), or None."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(descriptor, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    except OSError:
        return None
    finally:
        os.close(descriptor)


def _parent_of(pid: int) -> int | None:
    """A process's parent id from /proc/PID/stat (None if it is gone)."""
    text = _read(f"{_PROC}/{pid}/stat")
    if text is None:
        return None
    return int(text[text.rindex(")") + 2 :].split(None, 2)[1])


def children(pid: int) -> list[int] | None:
    """A process's children from /proc/PID/task/*/children (only the process's own
    entries are read, where psutil reads every process's stat for its parent); None where
    the kernel has no such file, [] if the process is gone."""
    try:
        threads = os.listdir(f"{_PROC}/{pid}/task")  # noqa: PTH208 (names only)
    except OSError:
        return []
    found: list[int] = []
    for thread in threads:
        text = _read(f"{_PROC}/{pid}/task/{thread}/children")
        if text is None:
            if not _LINUX or Path(f"{_PROC}/{pid}/task/{thread}").exists():
                return None  # no children file in this kernel
            continue  # the thread has just ended
        found.extend(int(word) for word in text.split())
    return found


def child_processes(pid: int) -> list[psutil.Process] | None:
    """:func:`children` as psutil processes (those still there), or None likewise."""
    pids = children(pid)
    if pids is None:
        return None
    found = []
    for child in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(child))
    return found


def descendants(root: psutil.Process) -> list[psutil.Process]:
    """Every descendant of ``root``, parents before children (psutil's full scan where the
    kernel lists no children)."""
    level = child_processes(root.pid) if _LINUX else None
    if level is None:
        return root.children(recursive=True)
    found: list[psutil.Process] = []
    while level:
        found += level
        level = [grandchild for child in level for grandchild in child_processes(child.pid) or ()]
    return found


def _rss_bytes(process: psutil.Process) -> int:
    if _LINUX:
        text = _read(f"{_PROC}/{process.pid}/statm")
        if text is None:
            raise psutil.NoSuchProcess(process.pid)
        return int(text.split()[1]) * _PAGE
    return int(process.memory_info().rss)


def _uss_pss_bytes(process: psutil.Process) -> tuple[int, int]:
    """USS and PSS of one process: smaps_rollup where there is one, else psutil."""
    text = _read(f"{_PROC}/{process.pid}/smaps_rollup") if _LINUX else None
    if text is None:
        info = process.memory_full_info()
        return int(info.uss), int(getattr(info, "pss", 0))
    fields = {}
    for line in text.splitlines()[1:]:
        name, _, rest = line.partition(":")
        value = rest.split()
        if value:
            fields[name] = int(value[0]) * 1024
    uss = sum(fields.get(name, 0) for name in ("Private_Clean", "Private_Dirty", "Private_Hugetlb"))
    return uss, fields.get("Pss", 0)


class TreeSampler:
    """Peak memory summed over a process and its descendants, sampled from outside."""

    def __init__(self, pid: int, sampling: Sampling | None = None) -> None:
        self.root = psutil.Process(pid)
        self.sampling = sampling or Sampling()
        self.members: dict[int, psutil.Process] = {pid: self.root}
        self.peak_rss_bytes = 0
        self.peak_uss_bytes = 0
        self.peak_pss_bytes = 0
        self.interval_s = self.sampling.interval_s
        self._last_rss = 0
        self._seen: set[str] = set()  # /proc entries already looked at
        self._born_s = time.monotonic()
        self._full_scan_s = self._born_s  # the tree is the root alone as it starts
        self._refreshed_s = -float("inf")
        self._next_uss_s = -float("inf")
        self._allowed_uss_s = -float("inf")  # the budget's earliest next sweep
        self._swept_rss = 0  # the highest RSS a sweep has seen

    def refresh(self) -> bool:
        """Add the tree's new descendants (at most every TREE_REFRESH_S, or every USS_EVERY
        intervals while steady); whether any was found."""
        now_s = time.monotonic()
        if now_s - self._refreshed_s < max(TREE_REFRESH_S, self._steady_gap_s(now_s)):
            return False
        self._refreshed_s = now_s
        before = len(self.members)
        if not _LINUX or now_s - self._full_scan_s >= FULL_SCAN_S:
            self._full_scan_s = now_s
            with contextlib.suppress(psutil.Error):
                for child in descendants(self.root):
                    self.members.setdefault(child.pid, child)
        else:
            self._scan_newer()
        return len(self.members) > before

    def _scan_newer(self) -> None:
        """Descendants among the processes that appeared since the last look and are newer
        than the root (ids above its id)."""
        try:
            names = set(os.listdir(_PROC))  # noqa: PTH208 (names only: the cheapest call)
        except OSError:
            return
        fresh, self._seen = names - self._seen, names
        newer = sorted(int(n) for n in fresh if n.isdigit() and int(n) > self.root.pid)
        for pid in newer:  # parents come before their children, ids growing
            if pid not in self.members and _parent_of(pid) in self.members:
                with contextlib.suppress(psutil.Error):
                    self.members[pid] = psutil.Process(pid)

    def sample(self) -> None:
        """Refresh the tree, add up the members' RSS (and their USS and PSS when the budget
        allows), and set the next interval: longer while the tree is steady."""
        if self.sampling.memory == "off":
            return
        grew = self.refresh()
        rss = self._sum(_rss_bytes)
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        steady = not grew and abs(rss - self._last_rss) <= STEADY_CHANGE * max(self._last_rss, 1)
        self._last_rss = rss
        limit = self.sampling.interval_s * STEADY_FACTOR
        self.interval_s = (
            min(self.interval_s * STEADY_GROWTH, limit) if steady else self.sampling.interval_s
        )
        now_s = time.monotonic()
        higher = rss > self._swept_rss * (1.0 + STEADY_CHANGE)  # memory grew since a sweep
        if self.sampling.memory == "uss" and (
            now_s >= self._next_uss_s or (higher and now_s >= self._allowed_uss_s)
        ):
            both = self._each(_uss_pss_bytes)
            self.peak_uss_bytes = max(self.peak_uss_bytes, sum(uss for uss, _ in both))
            self.peak_pss_bytes = max(self.peak_pss_bytes, sum(pss for _, pss in both))
            cost_s = time.monotonic() - now_s
            self._swept_rss = max(self._swept_rss, rss)
            self._allowed_uss_s = now_s + cost_s / USS_BUDGET
            self._next_uss_s = now_s + max(
                USS_INTERVAL_S, cost_s / USS_BUDGET, self._steady_gap_s(now_s)
            )

    def _steady_gap_s(self, now_s: float) -> float:
        """How long the tree refresh and the USS sweeps wait: nothing more in a trial's
        first DENSE_S (short trials, whose memory peaks come and go, keep every sweep),
        then USS_EVERY sampling intervals (0.64 s while steady)."""
        return 0.0 if now_s - self._born_s < DENSE_S else USS_EVERY * self.interval_s

    def _each(self, read: Callable[[psutil.Process], Any]) -> list[Any]:
        """``read`` of every live member (members that have exited are dropped)."""
        values = []
        for pid, process in list(self.members.items()):
            try:
                values.append(read(process))
            except (psutil.Error, ValueError, IndexError):
                del self.members[pid]
        return values

    def _sum(self, read: Callable[[psutil.Process], int]) -> int:
        return sum(self._each(read))

    def kill_all(
        self, spare: Callable[[psutil.Process], bool] | None = None, *, rescan: bool = True
    ) -> list[psutil.Process]:
        """SIGKILL every process seen in the tree (those that left the group included;
        with ``rescan``, after a full scan for descendants), except those ``spare`` picks,
        which are returned."""
        with contextlib.suppress(psutil.Error):
            for child in descendants(self.root) if rescan else ():
                self.members.setdefault(child.pid, child)
        spared = []
        for process in self.members.values():
            with contextlib.suppress(psutil.Error):
                if spare is not None and spare(process):
                    spared.append(process)
                else:
                    process.kill()
        return spared
