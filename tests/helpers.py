"""Plain helpers the tests share (fixtures are in conftest.py): real trials of built-in
tasks, a fake executor with exact timings, interpreters for the interpreter tests."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.execution.runner import execute_in_process
from pipeline.execution.trial import Measurement, TrialRequest

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent

# A spec for the fake executor: io_sleep sequential and threads x4, three repetitions.
FAKE_SPEC = """\
name: fake
repetitions: 3
warmup: 1
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [4]
  payload: [1KiB]
"""


def fake_execute(request: TrialRequest) -> Measurement:
    """Sequential takes 0.4 s, four threads 0.1 s: a speedup of exactly 4."""
    wall_s = 0.4 if request.model == "sequential" else 0.1
    result = {
        "work_s": wall_s,
        "startup_s": 0.0,
        "shutdown_s": 0.0,
        "cpu_user_s": 0.01,
        "cpu_sys_s": 0.0,
        "items_done": request.items,
        "items_failed": 0,
        "items": [{"index": i, "latency_s": wall_s} for i in range(request.items)],
    }
    return Measurement(
        status="ok", result=result, process_s=wall_s + 0.05, peak_rss_bytes=10_000_000
    )


def measure(
    task: str,
    model: str,
    *,
    workers: int = 2,
    items: int = 4,
    payload: int = 1024,
    timeout_s: float = 60.0,
    **params: object,
) -> Measurement:
    """Run one real trial of a built-in task in a fresh worker process."""
    return execute_in_process(
        TrialRequest(sys.executable, task, model, workers, payload, items, timeout_s, 1, params)
    )


def payload_bytes(size: int, seed: int = 1) -> bytes:
    """The payload a worker makes for ``size`` and ``seed`` (reproducible random bytes)."""
    return random.Random(seed).randbytes(size)


def free_threaded_python() -> str:
    """A free-threaded interpreter for the tests, or skip (fail where CI requires one)."""
    candidates = [os.environ.get("PIPELINE_TEST_PYTHON_FT", ""), ROOT / ".python-ft/bin/python3t"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    if os.environ.get("PIPELINE_REQUIRE_PYTHON_FT") == "1":
        pytest.fail("PIPELINE_REQUIRE_PYTHON_FT=1 but no free-threaded interpreter was found")
    pytest.skip("no free-threaded interpreter: run `make python-ft` (.ci/run does)")


def fake_python(tmp_path: Path, script: str) -> str:
    """An executable that answers the probe like a (broken or old) interpreter would."""
    path = tmp_path / "fakepython"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


class LocalCluster:
    """A real Dask scheduler and named workers on 127.0.0.1, started as docs/spec.md's cluster
    section says (``--nthreads 1 --resources host=1``); a context manager that stops them
    all (``kill(name)`` SIGKILLs one worker mid-run)."""

    def __init__(
        self, folder: Path, names: tuple[str, ...] = ("alpha", "beta"), *, pin: bool = False
    ) -> None:
        self.folder = folder
        self.names = names
        self.pin = pin  # each worker (and its trials) on a CPU of its own, like a host
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.address = ""

    def _start(self, name: str, *arguments: str, cpu: int | None = None) -> None:
        dask = str(Path(sys.executable).parent / "dask")
        pinned = ["taskset", "--cpu-list", str(cpu)] if cpu is not None else []
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        with (self.folder / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            self.processes[name] = subprocess.Popen(
                [*pinned, dask, *arguments], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
            )

    def __enter__(self) -> LocalCluster:
        try:
            return self._start_all()
        except BaseException:
            self.__exit__()  # nothing started may outlive a failed start
            raise

    def _start_all(self) -> LocalCluster:
        scheduler_file = self.folder / "scheduler.json"
        self._start(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        )
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if time.monotonic() > deadline or self.processes["scheduler"].poll() is not None:
                raise RuntimeError(f"dask scheduler did not start: {self.log('scheduler')}")
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for name in self.names:
            self.add(name)
        if self.names:
            self.wait_for(len(self.names))
        return self

    def add(self, name: str) -> None:
        """Start one more worker (no nanny: a killed worker stays dead)."""
        cpus = sorted(os.sched_getaffinity(0))
        cpu = cpus[len(self.processes) % len(cpus)] if self.pin else None
        self._start(
            name,
            "worker",
            self.address,
            "--nthreads",
            "1",
            "--resources",
            "host=1",
            "--name",
            name,
            "--no-nanny",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
            cpu=cpu,
        )

    def wait_for(self, count: int) -> None:
        """Wait until ``count`` workers are registered with the scheduler."""
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=60)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-2000:]

    def kill(self, name: str) -> None:
        """SIGKILL one worker."""
        self.processes[name].kill()
        self.processes[name].wait(timeout=10)

    def __exit__(self, *_exc: object) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
