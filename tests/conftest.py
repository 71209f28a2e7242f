"""Shared fixtures: spec files in tmp_path, a database URL, the CLI runner."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

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
