"""pipeline run stopped and resumed: Ctrl-C keeps the finished trials; an orchestrator
killed mid-run resumes without losing or doubling a trial; two runs write to one database
at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import cli
from pipeline.execution import orchestrator

from .helpers import TESTS_DIR
from .test_cli import TINY


def _count_trials(db_file: Path) -> int:
    try:
        with sqlite3.connect(db_file) as connection:
            return int(connection.execute("SELECT count(*) FROM trial").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.processes
def test_interrupt_keeps_finished_trials(write_spec, tmp_path) -> None:
    spec = write_spec(
        TINY.replace("repetitions: 2", "repetitions: 40").replace("seconds: 0.02", "seconds: 0.1")
    )
    db_file = tmp_path / "results.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(spec),
            "--db",
            f"sqlite:///{db_file}",
            "--no-report",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # a run that does not stop is aborted, and faulthandler prints where it was
        env={**os.environ, "PYTHONPATH": str(TESTS_DIR.parent), "PYTHONFAULTHANDLER": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if _count_trials(db_file) >= 6:
                break
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            _, stderr = process.communicate()
            pytest.fail(f"no stop within 30 s of SIGINT; where it was:\n{stderr.decode()[-6000:]}")
    finally:  # never left running for the next test
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert b"interrupted: run 1 keeps its finished trials" in stderr
    with sqlite3.connect(db_file) as connection:
        (status,) = connection.execute("SELECT status FROM run").fetchone()
        stored = connection.execute("SELECT count(*) FROM trial").fetchone()[0]
    assert status == "interrupted"
    assert 6 <= stored < 164


RESUMABLE = """\
name: resumable
repetitions: 5
warmup: 1
items: 2
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [2]
  payload: [1KiB]
params:
  io_sleep: {seconds: 0.1}
"""


def _trial_keys(url: str) -> list[tuple]:
    from pipeline.storage import readonly

    frame = readonly.query(
        url,
        "SELECT t.id, c.position, t.repetition, t.warmup, t.started_at "
        "FROM trial t JOIN cell c ON c.id = t.cell_id ORDER BY t.id",
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


def _stored(url: str) -> int:
    """Trials stored so far (0 before the database exists)."""
    from pipeline.errors import PipelineError

    try:
        return len(_trial_keys(url))
    except PipelineError:  # no database, or no tables, yet
        return 0


@pytest.mark.processes
def test_resume_after_the_orchestrator_is_killed(cli_runner, write_spec, tmp_path, db_url):
    """The end-to-end run on both databases: a real run SIGKILLed mid-way keeps its
    finished trials, refuses a resume with a changed spec, resumes to every planned trial
    exactly once, and refuses a resume once finished."""
    from pipeline.storage import readonly

    spec = write_spec(RESUMABLE)
    db = db_url
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(spec), "--db", db, "--no-report", "-q"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(TESTS_DIR.parent)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _stored(db) < 4:
        time.sleep(0.1)
    process.kill()  # SIGKILL: no chance to mark the run interrupted
    process.wait(timeout=30)
    time.sleep(0.5)  # the trial in flight, in its own session, finishes or is lost
    before = _trial_keys(db)
    assert 4 <= len(before) < 12
    assert readonly.query(db, "SELECT status FROM run")["status"].tolist() == ["running"]

    changed = write_spec(RESUMABLE.replace("workers: [2]", "workers: [2, 4]"), "changed.yaml")
    refused = cli_runner.invoke(cli, ["run", str(changed), "--db", db, "--resume", "1"])
    assert refused.exit_code == 2
    assert refused.stderr == (
        "error: run 1 cannot be resumed: its spec changed since (matrix.workers: [2] -> [2, 4])\n"
    )

    resumed = subprocess.run(  # the console entry point: a bare --resume means the latest
        [sys.executable, "-m", "pipeline", "run", str(spec), "--db", db, "--resume", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS_DIR.parent)},
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == "run 1 finished: 10 ok"
    after = _trial_keys(db)
    assert after[: len(before)] == before  # the finished trials are untouched
    keys = [(position, repetition, warmup) for _, position, repetition, warmup, _ in after]
    assert len(keys) == len(set(keys)) == 12  # every planned trial exactly once

    again = cli_runner.invoke(cli, ["run", str(spec), "--db", db, "--resume", "1"])
    assert again.exit_code == 2
    assert again.stderr == "error: run 1 cannot be resumed: it finished\n"


@pytest.mark.processes
def test_two_runs_write_to_one_database_at_once(write_spec, tmp_path, db_url) -> None:
    """Two writers on one database, each creating the schema and storing its trials, on
    both databases (SQLite's locks and PostgreSQL's concurrent DDL differ)."""
    spec = write_spec(RESUMABLE.replace("seconds: 0.1", "seconds: 0.02"))
    db = db_url
    command = [sys.executable, "-m", "pipeline", "run", str(spec), "--db", db, "--no-report", "-q"]
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR.parent)}
    runs = [
        subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in runs]
    for process, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()
        assert b"database is locked" not in stderr
        assert stdout.decode().endswith(" finished: 10 ok\n")
    from pipeline.storage import readonly

    per_run = readonly.query(
        db,
        "SELECT run_id, count(*) AS n, sum(CASE WHEN warmup THEN 1 ELSE 0 END) AS warmups "
        "FROM trial GROUP BY run_id ORDER BY run_id",
    )
    assert per_run.values.tolist() == [[1, 12, 2], [2, 12, 2]]


def test_a_signal_while_trials_are_stored_interrupts_once_they_are() -> None:
    """Ctrl-C or SIGTERM that comes while trials are being stored waits until the write
    is done, then interrupts the run; the control: outside a write, it interrupts at once."""
    interrupts = orchestrator.Interrupts()
    written: list[str] = []

    def signalled(number: int, what: str) -> None:
        os.kill(os.getpid(), number)
        time.sleep(0.05)  # the handler has run by now
        written.append(what)

    def stored(number: int) -> None:
        with interrupts.storing_trials():
            signalled(number, signal.Signals(number).name)

    with interrupts.installed():
        for number in (signal.SIGINT, signal.SIGTERM):
            with pytest.raises(KeyboardInterrupt):
                stored(number)
        with pytest.raises(KeyboardInterrupt):
            signalled(signal.SIGTERM, "outside a write")
    assert written == ["SIGINT", "SIGTERM"]
