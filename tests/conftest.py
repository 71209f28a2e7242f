"""Shared fixtures and helpers: spec files in tmp_path, a database URL, the CLI runner, real
trials of built-in tasks."""

from __future__ import annotations

import contextlib
import os
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from pipeline.execution.launch import TRIAL_MARK

MINIMAL_MATRIX = """\
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [2]
  payload: [1KiB]
"""


def trial_processes_since(started: float) -> list[psutil.Process]:
    """Processes started by trials (they carry launch.TRIAL_MARK) since ``started`` that
    are still running, wherever they are now (children of init included)."""
    found = []
    for process in psutil.process_iter(["create_time", "status"]):
        if process.info["create_time"] < started or process.info["status"] == "zombie":
            continue
        with contextlib.suppress(psutil.Error):
            if process.environ().get(TRIAL_MARK) == "1":
                found.append(process)
    return found


@pytest.fixture(autouse=True)
def no_trial_process_outlives_its_test() -> Iterator[None]:
    """After every test: nothing a trial started is still running (a grace of 10 s for
    trials a killed orchestrator's Dask worker is still finishing)."""
    started = time.time() - 1.0
    yield
    deadline = time.monotonic() + 10.0
    while (left := trial_processes_since(started)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, "left running: " + "; ".join(
        f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in left
    )


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write a spec (dedented) to tmp_path/spec.yaml and return its path."""

    def write(body: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return path

    return write


POSTGRES = os.environ.get("PIPELINE_TEST_POSTGRES")  # a server URL; .ci/run starts one


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file in tmp_path, and a new database on the
    PostgreSQL server of $PIPELINE_TEST_POSTGRES (the same tests run on both). Without a
    server the PostgreSQL runs skip, saying so, except under PIPELINE_REQUIRE_POSTGRES=1
    (set by .ci/run), where they fail."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.db'}"
        return
    if not POSTGRES:
        if os.environ.get("PIPELINE_REQUIRE_POSTGRES") == "1":
            pytest.fail("PIPELINE_REQUIRE_POSTGRES=1 but PIPELINE_TEST_POSTGRES is not set")
        pytest.skip("no PostgreSQL server: set PIPELINE_TEST_POSTGRES (.ci/run does)")
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(POSTGRES)
    name = f"pipeline_test_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()
