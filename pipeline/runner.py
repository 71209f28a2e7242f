"""Run one trial in a fresh worker process and measure it from outside.

The worker runs with the cell's interpreter in its own session (process group), so the
whole tree can be killed at once. While it runs, psutil samples the tree's summed RSS;
a trial past its timeout is killed with its tree; after every trial, whatever is left of
the group is killed too, so no process outlives its trial.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

WORKER_ROOT = str(Path(__file__).resolve().parent.parent)
# Appends the project's root at the END of sys.path, so the interpreter's own standard
# library always wins, then checks that the worker really came from this project. Once the
# result file is written, os._exit skips interpreter teardown, which no trial measures
# (the orchestrator kills whatever is left of the process group anyway).
BOOTSTRAP = (
    "import os, sys; root = sys.argv[1]; sys.path.append(root)\n"
    "import pipeline.worker.__main__ as worker\n"
    "if not worker.__file__.startswith(root):\n"
    "    sys.exit('pipeline worker imported from ' + worker.__file__ + ', not ' + root)\n"
    "code = worker.main(sys.argv[2:]); sys.stdout.flush(); sys.stderr.flush(); os._exit(code)\n"
)
SAMPLE_INTERVAL_S = 0.01
TREE_REFRESH_S = 0.05
_KILL_GRACE_S = 5.0
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


@dataclass(frozen=True)
class Measurement:
    """What the orchestrator saw of one trial: status, the worker's report, and the tree."""

    status: str  # ok | error | timeout | crashed | skipped
    result: dict[str, Any]
    process_s: float
    peak_rss_bytes: int | None
    error: str | None = None


Execute = Callable[[TrialRequest], Measurement]


class TreeSampler:
    """Peak RSS summed over a process and its descendants, sampled from outside."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.members: dict[int, psutil.Process] = {pid: self.root}
        self.peak_rss_bytes = 0
        self._refreshed_s = -float("inf")

    def sample(self) -> None:
        """Refresh the tree (every TREE_REFRESH_S) and add up the members' RSS."""
        now_s = time.monotonic()
        if now_s - self._refreshed_s >= TREE_REFRESH_S:
            self._refreshed_s = now_s
            with contextlib.suppress(psutil.Error):
                for child in self.root.children(recursive=True):
                    self.members.setdefault(child.pid, child)
        total = 0
        for pid, process in list(self.members.items()):
            try:
                total += process.memory_info().rss
            except psutil.Error:
                del self.members[pid]
        self.peak_rss_bytes = max(self.peak_rss_bytes, total)

    def kill_all(self) -> None:
        """SIGKILL every process seen in the tree (those that left the group included)."""
        with contextlib.suppress(psutil.Error):
            for child in self.root.children(recursive=True):
                self.members.setdefault(child.pid, child)
        for process in self.members.values():
            with contextlib.suppress(psutil.Error):
                process.kill()


def worker_environment() -> dict[str, str]:
    """The orchestrator's environment, less PYTHONDONTWRITEBYTECODE: imports (the worker's,
    and those of spawned pool processes, which count in start-up) then use bytecode caches,
    as in most installations."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def execute_in_process(request: TrialRequest) -> Measurement:
    """Run ``request`` in a fresh worker process; never raises for a failing trial."""
    with tempfile.TemporaryDirectory(prefix="pipeline-trial-") as folder:
        request_path = Path(folder, "request.json")
        result_path = Path(folder, "result.json")
        request_path.write_text(json.dumps(asdict(request)))
        with Path(folder, "output.log").open("w+b") as output:
            executable = str(
                Path(shutil.which(request.interpreter) or request.interpreter).absolute()
            )
            command = [
                executable,
                "-c",
                BOOTSTRAP,
                WORKER_ROOT,
                str(request_path),
                str(result_path),
            ]
            started_s = time.perf_counter()
            try:
                process = subprocess.Popen(
                    command,
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=worker_environment(),
                )
            except OSError as error:
                return Measurement("crashed", {}, 0.0, None, f"cannot start worker: {error}")
            timed_out, peak_rss_bytes = _watch(process, started_s + request.timeout_s)
            process_s = time.perf_counter() - started_s
            output.seek(0)
            tail = output.read()[-_OUTPUT_TAIL_CHARS:].decode(errors="replace").strip()
        if timed_out:
            return Measurement(
                "timeout",
                {},
                process_s,
                peak_rss_bytes,
                f"killed after the {request.timeout_s:g} s timeout",
            )
        return _read_result(result_path, process.returncode, process_s, peak_rss_bytes, tail)


def _watch(process: subprocess.Popen[bytes], deadline_s: float) -> tuple[bool, int | None]:
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
    peak = sampler.peak_rss_bytes if sampler is not None and sampler.peak_rss_bytes else None
    return timed_out, peak


def _kill_group(process: subprocess.Popen[bytes], sampler: TreeSampler | None) -> None:
    """Kill the worker's whole process group and every descendant seen, then reap."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if sampler is not None:
        sampler.kill_all()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_KILL_GRACE_S)


def _read_result(
    path: Path, returncode: int, process_s: float, peak_rss_bytes: int | None, tail: str
) -> Measurement:
    """Turn the worker's result file (or its absence) into a Measurement."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        how = _describe_exit(returncode)
        detail = f": {tail.splitlines()[-1]}" if tail else ""
        return Measurement(
            "crashed",
            {"output": tail},
            process_s,
            peak_rss_bytes,
            f"worker died ({how}) without a result{detail}",
        )
    errors = result.get("errors") or []
    return Measurement(
        result.get("status", "error"),
        result,
        process_s,
        peak_rss_bytes,
        errors[0] if errors else None,
    )


def _describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by signal SIGSEGV``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"
