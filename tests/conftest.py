"""Shared fixtures and helpers: spec files in tmp_path, a database URL, the CLI runner, real
trials of built-in tasks."""

from __future__ import annotations

import random
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.runner import Measurement, TrialRequest, execute_in_process

TESTS_DIR = Path(__file__).resolve().parent

MINIMAL_MATRIX = """\
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [2]
  payload: [1KiB]
"""


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write a spec (dedented) to tmp_path/spec.yaml and return its path."""

    def write(body: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return path

    return write


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite database file in tmp_path (not created until something writes)."""
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()


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
