"""Shared fixtures and helpers: spec files in tmp_path, a database URL, the CLI runner, real
trials of built-in tasks; and the suite's markers (pyproject.toml describes them):

* the resources a test needs (cluster, postgres, browser, free_threaded, processes) are
  applied here where they follow from the test itself (its fixtures, its parameters, the
  helpers it calls), and checked while it runs: a test that starts a trial, a Dask cluster
  or the free-threaded interpreter without the marker fails, naming the marker to add;
* ``slow`` comes from the durations recorded in tests/durations.json (``make
  test-durations``): every test that took over SLOW_S, or that uses a shared fixture whose
  set-up took over SLOW_S, is slow;
* under pytest-xdist a ``timing`` test runs alone: the other workers wait until it ends."""

from __future__ import annotations

import contextlib
import multiprocessing
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

pytest_plugins = [
    "tests.markers",  # the resources a test needs, applied and checked
    "tests.scheduling",  # slow by recorded duration; the xdist scheduling
]

MINIMAL_MATRIX = """\
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [2]
  payload: [1KiB]
"""


def trial_processes_since(started: float) -> list[psutil.Process]:
    """Processes started by trials (they carry launch.TRIAL_MARK) since ``started`` that
    are still running, wherever they are now (children of init included); under xdist,
    those of this worker's tests only (a trial inherits PYTEST_XDIST_WORKER)."""
    found = []
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    for process in psutil.process_iter(["create_time", "status"]):
        if process.info["create_time"] < started or process.info["status"] == "zombie":
            continue
        with contextlib.suppress(psutil.Error):
            environ = process.environ()
            if environ.get(TRIAL_MARK) == "1" and environ.get("PYTEST_XDIST_WORKER") == worker:
                found.append(process)
    return found


@pytest.fixture(autouse=True, scope="session")
def cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """What the pipeline keeps between runs (worked-out look levels) goes to a folder of
    the test session, not the user's ~/.cache (the processes tests start inherit it)."""
    folder = tmp_path_factory.mktemp("cache")
    before = os.environ.get("PIPELINE_CACHE_DIR")
    os.environ["PIPELINE_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        del os.environ["PIPELINE_CACHE_DIR"]
    else:
        os.environ["PIPELINE_CACHE_DIR"] = before


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
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database in tmp_path: for the tests of commands and runs, which run on
    SQLite only (db_url runs the storage tests, and one end-to-end run, on both)."""
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()


def _hog() -> None:
    while True:
        pass


@pytest.fixture
def hogs() -> Iterator[Callable[[int], list[multiprocessing.Process]]]:
    """Start CPU hogs (busy processes) on demand, returning them; all killed at the end."""
    started: list[multiprocessing.Process] = []

    def start(count: int) -> list[multiprocessing.Process]:
        context = multiprocessing.get_context("fork")
        for _ in range(count):
            hog = context.Process(target=_hog, daemon=True)
            hog.start()
            started.append(hog)
        return started[-count:]

    yield start
    for hog in started:
        hog.kill()
        hog.join()
