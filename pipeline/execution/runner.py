"""Run one trial in a worker process of its own and measure it from outside.

The worker is a fresh interpreter, or a child forked from a warm fork server of it
(warm.py). It runs with the cell's interpreter in its own session (process group), so the
whole tree can be killed at once. While it runs, the observer (observer.py) samples the
tree's memory and checks its limits, at a cost it records. A trial past its timeout is
killed with its tree; after every trial, whatever is left of the group is killed too, so
no process outlives its trial. Before each trial, the observer times its reference loop:
the machine's speed at that moment.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from ..status import TrialStatus
from ..worker import PROTOCOL
from . import observer
from .launch import TRIAL_MARK as TRIAL_MARK
from .launch import executable_path, trial_command, worker_environment
from .observer import TreeSampler
from .trial import DEFAULT_INTERVAL_S, Limits, Measurement, TrialRequest, Worker
from .warm import ForkServer
from .warm import WarmStarts as WarmStarts

SAMPLE_INTERVAL_S = DEFAULT_INTERVAL_S
_KILL_GRACE_S = 5.0
_TRACKER_GRACE_S = 1.0
_OUTPUT_TAIL_CHARS = 2000


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


def execute_in_process(request: TrialRequest, warm: WarmStarts | None = None) -> Measurement:
    """Run ``request`` in a worker process of its own: a fresh interpreter, or with
    ``warm`` a child forked from a fork server of the request's interpreter (see
    WarmStarts); never raises for a failing trial."""
    server = warm.server_for(request) if warm is not None else None
    reference_s = observer.reference_s()
    started_at = datetime.now(UTC)
    with observer.accounted() as cost:
        measurement = _execute(request, cost, server)
    return replace(
        measurement,
        started_at=started_at,
        observer_cpu_s=cost.cpu_s,
        sampler_cpu_s=cost.sampler_s,
        reference_s=reference_s,
    )


def _execute(request: TrialRequest, cost: observer.Cost, server: ForkServer | None) -> Measurement:
    adopt_orphans()
    with tempfile.TemporaryDirectory(prefix="pipeline-trial-") as folder:
        request_path = Path(folder, "request.json")
        result_path = Path(folder, "result.json")
        progress_path = Path(folder, "progress.log")
        watcher_pid = os.getpid() if server is None else server.pid
        request_path.write_text(
            json.dumps(
                {**asdict(request), "progress_path": str(progress_path), "watcher_pid": watcher_pid}
            )
        )
        with Path(folder, "output.log").open("w+b") as output:
            started_s = time.perf_counter()
            try:
                process: Worker
                if server is None:
                    process = subprocess.Popen(
                        trial_command(
                            executable_path(request.interpreter),
                            str(request_path),
                            str(result_path),
                        ),
                        cwd=folder,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        env=worker_environment(folder, request.env),
                    )
                else:
                    process = server.fork(request_path, result_path, folder, output.name)
            except OSError as error:
                return Measurement(
                    status=TrialStatus.CRASHED, error=f"cannot start worker: {error}"
                )
            stopped, peaks = _watch(process, request, output.fileno(), cost)
            process_s = time.perf_counter() - started_s
            size = os.fstat(output.fileno()).st_size
            output.seek(max(0, size - _OUTPUT_TAIL_CHARS))  # never read it whole
            tail = output.read().decode(errors="replace").strip()
        progress = _read_progress(progress_path)
        if stopped is not None:
            status, why = stopped
            return _measurement(status, progress, process_s, peaks, why)
        return _read_result(
            result_path,
            -signal.SIGKILL if process.returncode is None else process.returncode,
            process_s,
            peaks,
            tail,
            progress,
            request.items,
        )


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


Stopped = tuple[TrialStatus, str]  # why the watcher killed a trial, in words


def _watch(
    process: Worker, request: TrialRequest, output: int, cost: observer.Cost
) -> tuple[Stopped | None, Peaks]:
    """Sample the tree until the worker exits, the timeout passes or a limit is crossed
    (``output``: the descriptor its stdout and stderr go to); always clean up."""
    sampler: TreeSampler | None = None
    stopped: Stopped | None = None
    timeout_s = request.timeout_s
    deadline_s = time.perf_counter() + timeout_s
    waiter = observer.ExitWaiter(process)
    try:
        with contextlib.suppress(psutil.Error):
            sampler = TreeSampler(process.pid, request.sampling)
        interval_s = request.sampling.interval_s
        while True:
            if sampler is not None:
                started_s = time.thread_time()
                sampler.sample()
                stopped = _over_limit(sampler, request.limits, output)
                cost.sampler_s += time.thread_time() - started_s
                interval_s = sampler.interval_s
                if stopped is not None:
                    break
            remaining_s = deadline_s - time.perf_counter()
            if remaining_s <= 0:
                stopped = (TrialStatus.TIMEOUT, f"killed after the {timeout_s:g} s timeout")
                break
            if waiter.wait(min(interval_s, remaining_s)):
                break
    finally:
        waiter.close()
        _kill_group(process, sampler)
    return stopped, Peaks.of(sampler)


def _over_limit(sampler: TreeSampler, limits: Limits, output: int) -> Stopped | None:
    """The limit the trial has crossed, if any."""
    from ..units import format_size

    if limits.memory_bytes is not None and sampler.peak_rss_bytes > limits.memory_bytes:
        return (
            TrialStatus.MEMORY_LIMIT,
            f"killed: its processes used {format_size(sampler.peak_rss_bytes)} of memory, "
            f"over the {format_size(limits.memory_bytes)} limit",
        )
    if limits.processes is not None and len(sampler.members) > limits.processes:
        return (
            TrialStatus.PROCESS_LIMIT,
            f"killed: it ran {len(sampler.members)} processes, over the limit of "
            f"{limits.processes}",
        )
    if limits.output_bytes is not None:
        printed = os.fstat(output).st_size
        if printed > limits.output_bytes:
            return (
                TrialStatus.OUTPUT_LIMIT,
                f"killed: it printed {format_size(printed)}, over the "
                f"{format_size(limits.output_bytes)} limit",
            )
    return None


def _kill_group(process: Worker, sampler: TreeSampler | None) -> None:
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
        sampler.kill_all(rescan=False)  # the spared tracker, and any other member left
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_KILL_GRACE_S)
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
    items: int,
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
    problem = _protocol_problem(result) or _content_problem(result, items)
    if problem:  # nothing of it reaches the measurement columns
        rejected = {"rejected_result": repr(result)[:_OUTPUT_TAIL_CHARS], **progress}
        return _measurement(TrialStatus.ERROR, rejected, process_s, peaks, problem)
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


# result fields that are numbers: seconds, counts; each finite and not negative when given
_RESULT_NUMBERS = (
    "startup_s", "work_s", "shutdown_s", "cpu_user_s", "cpu_sys_s",
    "ctx_switches_voluntary", "ctx_switches_involuntary",
)  # fmt: skip


def _content_problem(result: dict[str, Any], items: int) -> str | None:
    """What is wrong with a result file's fields (types, ranges, counts against the
    request's ``items``), or None: a worker's report is checked, never trusted."""
    for name in _RESULT_NUMBERS:
        value = result.get(name)
        if value is not None and not _non_negative(value):
            return f"worker result field {name} is {value!r}, not a non-negative number"
    done, failed = result.get("items_done", 0), result.get("items_failed", 0)
    for name, count in (("items_done", done), ("items_failed", failed)):
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return f"worker result field {name} is {count!r}, not a count"
    if done + failed > items:
        return f"worker result says {done} + {failed} items ended, of {items}"
    records, facts = result.get("items", []), result.get("facts") or {}
    errors = result.get("errors")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "worker result field items is not a list of records"
    if any(not _non_negative(r.get("latency_s", 0.0)) for r in records):
        return "worker result has an item latency that is not a non-negative number"
    if not isinstance(facts, dict) or not all(
        isinstance(k, str) and (v is None or _finite(v)) for k, v in facts.items()
    ):
        return "worker result field facts is not a mapping of names to numbers"
    if errors is not None and not (
        isinstance(errors, list) and all(isinstance(e, str) for e in errors)
    ):
        return "worker result field errors is not a list of messages"
    if not isinstance(result.get("interpreter", {}), dict):
        return "worker result field interpreter is not a mapping"
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _non_negative(value: Any) -> bool:
    return _finite(value) and value >= 0


def _describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by signal SIGSEGV``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"
