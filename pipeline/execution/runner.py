"""Run one trial in a fresh worker process and measure it from outside.

The worker runs with the cell's interpreter in its own session (process group), so the
whole tree can be killed at once. While it runs, psutil samples the tree's summed RSS
(every SAMPLE_INTERVAL_S) and its summed USS and PSS (which need /proc/PID/smaps, about
1 ms per process, so they are sampled at most every USS_INTERVAL_S and never more than
USS_BUDGET of the orchestrator's time). A trial past its timeout is killed with its tree;
after every trial, whatever is left of the group is killed too, so no process outlives
its trial.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from ..status import TrialStatus
from ..worker import PROTOCOL
from .launch import trial_command

SAMPLE_INTERVAL_S = 0.01
TREE_REFRESH_S = 0.05
USS_INTERVAL_S = 0.05
USS_BUDGET = 0.05  # share of one core the USS/PSS sweeps may take
_KILL_GRACE_S = 5.0
_TRACKER_GRACE_S = 1.0
_OUTPUT_TAIL_CHARS = 2000


@dataclass(frozen=True)
class TrialRequest:
    """Everything a worker needs to run one trial (serialised to its request file)."""

    interpreter: str
    task: str
    model: str
    workers: int
    payload_bytes: int
    items: int
    timeout_s: float
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    python_path: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # added to the worker's environment


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """What the orchestrator saw of one trial: how it ended, the worker's report (its result
    file, checked), the worker process's lifetime and the tree's memory peaks."""

    status: TrialStatus
    result: dict[str, Any] = field(default_factory=dict)
    process_s: float = 0.0  # from starting the worker until it was reaped
    peak_rss_bytes: int | None = None
    peak_uss_bytes: int | None = None
    peak_pss_bytes: int | None = None
    error: str | None = None  # the first error, for people
    started_at: datetime | None = None  # when the worker process was about to start

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TrialStatus(self.status))  # refuses unknown ones


Execute = Callable[[TrialRequest], Measurement]


class TreeSampler:
    """Peak memory summed over a process and its descendants, sampled from outside."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.members: dict[int, psutil.Process] = {pid: self.root}
        self.peak_rss_bytes = 0
        self.peak_uss_bytes = 0
        self.peak_pss_bytes = 0
        self._refreshed_s = -float("inf")
        self._next_uss_s = -float("inf")

    def sample(self) -> None:
        """Refresh the tree (every TREE_REFRESH_S), add up the members' RSS, and their USS
        and PSS when the budget allows."""
        now_s = time.monotonic()
        if now_s - self._refreshed_s >= TREE_REFRESH_S:
            self._refreshed_s = now_s
            with contextlib.suppress(psutil.Error):
                for child in self.root.children(recursive=True):
                    self.members.setdefault(child.pid, child)
        self.peak_rss_bytes = max(self.peak_rss_bytes, self._sum(lambda p: p.memory_info().rss))
        if now_s >= self._next_uss_s:
            full = [info for info in self._each(psutil.Process.memory_full_info) if info]
            self.peak_uss_bytes = max(self.peak_uss_bytes, sum(info.uss for info in full))
            self.peak_pss_bytes = max(self.peak_pss_bytes, sum(info.pss for info in full))
            cost_s = time.monotonic() - now_s
            self._next_uss_s = now_s + max(USS_INTERVAL_S, cost_s / USS_BUDGET)

    def _each(self, read: Callable[[psutil.Process], Any]) -> list[Any]:
        """``read`` of every live member (members that have exited are dropped)."""
        values = []
        for pid, process in list(self.members.items()):
            try:
                values.append(read(process))
            except psutil.Error:
                del self.members[pid]
        return values

    def _sum(self, read: Callable[[psutil.Process], int]) -> int:
        return sum(self._each(read))

    def kill_all(
        self, spare: Callable[[psutil.Process], bool] | None = None
    ) -> list[psutil.Process]:
        """SIGKILL every process seen in the tree (those that left the group included),
        except those ``spare`` picks, which are returned."""
        with contextlib.suppress(psutil.Error):
            for child in self.root.children(recursive=True):
                self.members.setdefault(child.pid, child)
        spared = []
        for process in self.members.values():
            with contextlib.suppress(psutil.Error):
                if spare is not None and spare(process):
                    spared.append(process)
                else:
                    process.kill()
        return spared


def worker_environment(folder: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The orchestrator's environment, less PYTHONDONTWRITEBYTECODE (imports, the worker's
    and those of spawned pool processes, which count in start-up, then use bytecode caches,
    as in most installations), with TMPDIR set to the trial's own folder: whatever the
    trial leaves in temporary files (multiprocessing's pymp-* folders, io_file's files
    after a kill) goes when the folder is removed. ``extra`` is the interpreter entry's own
    variables (such as PYTHON_GIL)."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environment.update(extra or {})
    environment["TMPDIR"] = folder
    return environment


@dataclass(frozen=True)
class Peaks:
    """Peak memory of a trial's process tree (None where nothing was sampled)."""

    rss_bytes: int | None = None
    uss_bytes: int | None = None
    pss_bytes: int | None = None

    @classmethod
    def of(cls, sampler: TreeSampler | None) -> Peaks:
        if sampler is None:
            return cls()
        return cls(
            sampler.peak_rss_bytes or None,
            sampler.peak_uss_bytes or None,
            sampler.peak_pss_bytes or None,
        )


def execute_in_process(request: TrialRequest) -> Measurement:
    """Run ``request`` in a fresh worker process; never raises for a failing trial."""
    started_at = datetime.now(UTC)
    return replace(_execute(request), started_at=started_at)


def _execute(request: TrialRequest) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="pipeline-trial-") as folder:
        request_path = Path(folder, "request.json")
        result_path = Path(folder, "result.json")
        progress_path = Path(folder, "progress.log")
        request_path.write_text(
            json.dumps(
                {**asdict(request), "progress_path": str(progress_path), "watcher_pid": os.getpid()}
            )
        )
        with Path(folder, "output.log").open("w+b") as output:
            executable = str(
                Path(shutil.which(request.interpreter) or request.interpreter).absolute()
            )
            command = trial_command(executable, str(request_path), str(result_path))
            started_s = time.perf_counter()
            try:
                process = subprocess.Popen(
                    command,
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=worker_environment(folder, request.env),
                )
            except OSError as error:
                return Measurement(
                    status=TrialStatus.CRASHED, error=f"cannot start worker: {error}"
                )
            timed_out, peaks = _watch(process, started_s + request.timeout_s)
            process_s = time.perf_counter() - started_s
            output.seek(0)
            tail = output.read()[-_OUTPUT_TAIL_CHARS:].decode(errors="replace").strip()
        progress = _read_progress(progress_path)
        if timed_out:
            return _measurement(
                TrialStatus.TIMEOUT,
                progress,
                process_s,
                peaks,
                f"killed after the {request.timeout_s:g} s timeout",
            )
        return _read_result(result_path, process.returncode, process_s, peaks, tail, progress)


def _measurement(
    status: TrialStatus,
    result: dict[str, Any],
    process_s: float,
    peaks: Peaks,
    error: str | None,
) -> Measurement:
    return Measurement(
        status=status,
        result=result,
        process_s=process_s,
        peak_rss_bytes=peaks.rss_bytes,
        peak_uss_bytes=peaks.uss_bytes,
        peak_pss_bytes=peaks.pss_bytes,
        error=error,
    )


def _read_progress(path: Path) -> dict[str, Any]:
    """What the progress file says about items that finished before the worker stopped."""
    try:
        lines = path.read_text().split()
    except OSError:
        return {}
    outcomes = lines[1::2]
    done = outcomes.count("1")
    return {"items_done": done, "items_failed": len(outcomes) - done, "partial": True}


def _watch(process: subprocess.Popen[bytes], deadline_s: float) -> tuple[bool, Peaks]:
    """Sample the tree until the worker exits or the deadline passes; always clean up."""
    sampler: TreeSampler | None = None
    timed_out = False
    try:
        with contextlib.suppress(psutil.Error):
            sampler = TreeSampler(process.pid)
        while True:
            if sampler is not None:
                sampler.sample()
            remaining_s = deadline_s - time.perf_counter()
            if remaining_s <= 0:
                timed_out = True
                break
            try:
                process.wait(timeout=min(SAMPLE_INTERVAL_S, remaining_s))
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        _kill_group(process, sampler)
    return timed_out, Peaks.of(sampler)


def _kill_group(process: subprocess.Popen[bytes], sampler: TreeSampler | None) -> None:
    """Kill the worker's whole process group and every descendant seen, then reap.

    multiprocessing's resource tracker is spared for a moment: once every other process of
    the trial is gone it unlinks the shared memory blocks and semaphores they left, then
    exits by itself. Killed with the others, it would leave them in /dev/shm.
    """
    if sampler is not None:
        _wait_until_gone(sampler.kill_all(spare=_is_resource_tracker), _TRACKER_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if sampler is not None:
        sampler.kill_all()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_KILL_GRACE_S)


def _wait_until_gone(processes: list[psutil.Process], timeout_s: float) -> None:
    """Wait until every process has exited (a zombie counts: its parent is gone, and
    whoever adopted it may reap it late) or the timeout passes."""
    deadline_s = time.monotonic() + timeout_s
    while processes and time.monotonic() < deadline_s:
        time.sleep(SAMPLE_INTERVAL_S)
        processes = [process for process in processes if _running(process)]


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _is_resource_tracker(process: psutil.Process) -> bool:
    """Whether a process is multiprocessing's resource tracker."""
    return any("resource_tracker" in part for part in process.cmdline())


def _read_result(
    path: Path,
    returncode: int,
    process_s: float,
    peaks: Peaks,
    tail: str,
    progress: dict[str, Any],
) -> Measurement:
    """Turn the worker's result file (or its absence) into a Measurement."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        how = _describe_exit(returncode)
        detail = f": {tail.splitlines()[-1]}" if tail else ""
        return _measurement(
            TrialStatus.CRASHED,
            {"output": tail, **progress},
            process_s,
            peaks,
            f"worker died ({how}) without a result{detail}",
        )
    problem = _protocol_problem(result)
    if problem:
        return _measurement(TrialStatus.ERROR, result, process_s, peaks, problem)
    errors = result.get("errors") or []
    status = TrialStatus(result["status"])
    return _measurement(status, result, process_s, peaks, errors[0] if errors else None)


WORKER_STATUSES = {TrialStatus.OK, TrialStatus.ERROR, TrialStatus.SKIPPED}


def _protocol_problem(result: Any) -> str | None:
    """Why a worker's result file cannot be read as this orchestrator's protocol, or None:
    a worker from another version of the project, or a file that is not a result."""
    if not isinstance(result, dict):
        return f"worker result is not a JSON object: {type(result).__name__}"
    if result.get("protocol") != PROTOCOL:
        return (
            f"worker result has protocol {result.get('protocol')!r}, this orchestrator "
            f"reads {PROTOCOL}"
        )
    if result.get("status") not in WORKER_STATUSES:
        return f"worker result has status {result.get('status')!r}"
    return None


def _describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by signal SIGSEGV``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"
