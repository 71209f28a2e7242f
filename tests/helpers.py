"""Plain helpers the tests share (fixtures are in conftest.py): real trials of built-in
tasks, a fake executor with exact timings, interpreters for the interpreter tests."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

from pipeline.execution.runner import Measurement, TrialRequest, execute_in_process

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
