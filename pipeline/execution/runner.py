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
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from ..status import TrialStatus
from . import observer, reaping, result_file
from .launch import executable_path, trial_command, worker_environment
from .observer import TreeSampler
from .trial import Limits, Measurement, TrialRequest, Worker
from .warm import ForkServer, WarmStarts

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
    reaping.adopt_orphans()
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
        reaping.kill_group(process, sampler)
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
        how = result_file.describe_exit(returncode)
        detail = f": {tail.splitlines()[-1]}" if tail else ""
        return _measurement(
            TrialStatus.CRASHED,
            {"output": tail, **progress},
            process_s,
            peaks,
            f"worker died ({how}) without a result{detail}",
        )
    problem = result_file.problem(result, items)
    if problem:  # nothing of it reaches the measurement columns
        rejected = {"rejected_result": repr(result)[:_OUTPUT_TAIL_CHARS], **progress}
        return _measurement(TrialStatus.ERROR, rejected, process_s, peaks, problem)
    errors = result.get("errors") or []
    status = TrialStatus(result["status"])
    return _measurement(status, result, process_s, peaks, errors[0] if errors else None)
