"""Hostile tasks (real processes): each trial that allocates, forks or prints without
bound, ignores SIGTERM or escapes its session is recorded with the right status, and
nothing it started is left running (the autouse check in conftest.py asserts the last)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline import app
from pipeline.execution.runner import execute_in_process
from pipeline.execution.trial import Limits, Measurement, TrialRequest
from pipeline.status import TrialStatus
from pipeline.worker import PROTOCOL
from tests.helpers import ROOT, TESTS_DIR, fake_python

pytestmark = pytest.mark.processes  # real trials (slow: tests/durations.json)


NO_LIMITS = Limits()


def hostile(
    task: str, limits: Limits = NO_LIMITS, timeout_s: float = 30.0, model: str = "sequential"
) -> Measurement:
    return execute_in_process(
        TrialRequest(
            sys.executable,
            f"user_tasks:{task}",
            model,
            1 if model == "sequential" else 2,
            0,
            1,
            timeout_s,
            1,
            python_path=(str(TESTS_DIR),),
            limits=limits,
        )
    )


@pytest.mark.parametrize("model", ["sequential", "threads", "processes-fork", "asyncio"])
def test_a_value_that_cannot_be_recorded_is_an_error_not_a_crash(model: str) -> None:
    """A task returning a list that contains itself: under every model the trial ends as
    an error that says so, not as a worker that died writing its result."""
    found = hostile("recursive_value", model=model)
    assert found.status == TrialStatus.ERROR, found
    assert "the value cannot be recorded: ValueError: Circular reference detected" in (
        found.error or ""
    )


def test_a_task_that_allocates_without_bound_is_stopped_at_the_memory_limit() -> None:
    found = hostile("allocate_forever", Limits(memory_bytes=256 * 1024**2))
    assert found.status == TrialStatus.MEMORY_LIMIT
    assert "over the 256.0 MiB limit" in (found.error or "")
    assert found.peak_rss_bytes is not None
    assert found.peak_rss_bytes > 256 * 1024**2


def test_a_task_that_forks_without_bound_is_stopped_at_the_process_limit() -> None:
    found = hostile("fork_forever", Limits(processes=40))
    assert found.status == TrialStatus.PROCESS_LIMIT
    assert "over the limit of 40" in (found.error or "")


def test_a_task_that_prints_without_bound_is_cut_at_the_output_limit() -> None:
    found = hostile("print_forever", Limits(output_bytes=4 * 1024**2))
    assert found.status == TrialStatus.OUTPUT_LIMIT
    assert "over the 4.0 MiB limit" in (found.error or "")


def test_a_task_that_ignores_sigterm_is_killed_at_its_timeout() -> None:
    found = hostile("ignore_sigterm", timeout_s=1.0)
    assert found.status == TrialStatus.TIMEOUT
    assert found.process_s < 10


def test_a_grandchild_that_leaves_the_session_is_still_killed() -> None:
    found = hostile("escape_session")
    assert found.status == TrialStatus.OK  # the item itself ends; its escapee is reaped


# -- the database under faults ---------------------------------------------------------------
SMALL_SPEC = """\
name: {name}
repetitions: {repetitions}
warmup: 1
items: 2
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [2]
  payload: [1KiB]
params:
  io_sleep: {{seconds: 0.02}}
"""


def small_spec(folder: Path, name: str = "small", repetitions: int = 3) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SMALL_SPEC.format(name=name, repetitions=repetitions))
    return path


def pipeline(*arguments: str, **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *arguments],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **options,
    )


def stored(path: Path) -> list[tuple[int, int, int, int]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT run_id, cell_id, repetition, warmup FROM trial ORDER BY id"
        ).fetchall()


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def test_eight_runs_at_once_on_one_sqlite_database_all_finish(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    runs = [
        pipeline(
            "run",
            str(small_spec(tmp_path, f"at-once-{n}", 2)),
            "--db",
            f"sqlite:///{database}",
            "--no-report",
            "-q",
        )
        for n in range(8)
    ]
    for process in runs:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    trials = stored(database)
    assert len(trials) == 8 * 2 * (2 + 1)  # runs x cells x (repetitions + warm-up)
    assert len(set(trials)) == len(trials)
    assert integrity(database) == "ok"


def test_a_run_waits_for_a_write_lock_held_elsewhere_then_stores_everything(
    tmp_path: Path,
) -> None:
    database = tmp_path / "locked.db"
    url = f"sqlite:///{database}"
    app.run(app.plan(small_spec(tmp_path, "first", 1)), url, reports_dir=None)  # the schema
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction, held
    process = pipeline(
        "run", str(small_spec(tmp_path, "second", 3)), "--db", url, "--no-report", "-q"
    )
    time.sleep(4.0)
    assert process.poll() is None  # it waits (busy timeout 30 s) instead of failing
    holder.execute("COMMIT")
    holder.close()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert len([t for t in stored(database) if t[0] == 2]) == 2 * (3 + 1)


def wait_for_more_trials(database: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(sqlite3.Error):
            if database.exists() and len(stored(database)) > count:
                return
        time.sleep(0.02)
    raise AssertionError(f"no new trial in 60 s (exit {process.poll()})")


KILL_MOMENTS_S = (0.0, 0.1, 0.2, 0.3, 0.4)  # after a new trial is stored


def test_an_orchestrator_killed_again_and_again_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """SIGKILL once a new trial is stored, then 0 to 0.4 s later (the moments spread over
    the next trial's start, run and store, where 12 random ones fell before); each kill
    checked at once: the database is intact, every trial stored before it is still there
    and none is doubled; then resumed. The finished run has every trial exactly once."""
    database = tmp_path / "killed.db"
    url = f"sqlite:///{database}"
    spec = small_spec(tmp_path, "killed", 30)
    kept: list[tuple[int, int, int, int]] = []
    for kill, moment in enumerate(KILL_MOMENTS_S, start=1):
        resume = ["--resume"] if kept else []
        process = pipeline("run", str(spec), "--db", url, "--no-report", "-q", *resume)
        wait_for_more_trials(database, len(kept), process)  # it is running: kill it mid-way
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert integrity(database) == "ok", f"after kill {kill}"
        now = stored(database)
        assert now[: len(kept)] == kept, f"kill {kill} lost stored trials"
        assert len(set(now)) == len(now) > len(kept), f"after kill {kill}: {now}"
        kept = now
    done = pipeline("run", str(spec), "--db", url, "--no-report", "-q", "--resume")
    _, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    trials = stored(database)
    assert len(trials) == 2 * (30 + 1)
    assert len(set(trials)) == len(trials)
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT status FROM run").fetchall() == [("finished",)]


def test_a_full_file_system_stops_the_run_clearly_and_it_resumes_later(tmp_path: Path) -> None:
    """RLIMIT_FSIZE stands in for a full disk: the database cannot grow past its size. The
    run stops with a one-line error, the database stays intact, and a later resume (room
    again) completes the run."""
    database = tmp_path / "full.db"
    url = f"sqlite:///{database}"
    spec = small_spec(tmp_path, "full", 40)
    app.run(app.plan(small_spec(tmp_path, "first", 1)), url, reports_dir=None)
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    room = database.stat().st_size + 24 * 1024

    def no_room() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    process = pipeline("run", str(spec), "--db", url, "--no-report", "-q", preexec_fn=no_room)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "full" in stderr.lower()
    assert integrity(database) == "ok"
    done = pipeline("run", str(spec), "--db", url, "--no-report", "-q", "--resume")
    _, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    assert len([t for t in stored(database) if t[0] == 2]) == 2 * (40 + 1)


def test_sigterm_while_a_report_is_written_leaves_no_half_written_file(tmp_path: Path) -> None:
    """A report computes for about 2 s, then writes its files within some 50 ms: each
    SIGTERM is sent as a stage of that writing is seen (the run's folder made, before its
    page; its data files written, before the index), so that it lands while files are being
    written (six fixed delays from the start landed before the first file or after the
    last). No ``.part`` file is left and every page is whole."""
    database = tmp_path / "report.db"
    url = f"sqlite:///{database}"
    app.run(app.plan(small_spec(tmp_path, "report", 3)), url, reports_dir=None)
    for stage, written in enumerate(("run-1", "run-1/trials.csv")):
        out = tmp_path / f"reports-{stage}"
        process = pipeline("report", "--db", url, "--out", str(out))
        deadline = time.monotonic() + 60
        while not (out / written).exists() and process.poll() is None:
            assert time.monotonic() < deadline, f"no {written} in 60 s"
            time.sleep(0.001)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        assert not [path for path in out.rglob("*") if path.name.endswith(".part")], written
        for page in out.rglob("*.html"):
            assert page.read_text().rstrip().endswith("</html>"), page


# -- result files are checked, not trusted ----------------------------------------------------
def forged(tmp_path: Path, content: str) -> Measurement:
    """A trial whose 'interpreter' writes ``content`` as its result file and exits 0."""
    (tmp_path / "result.txt").write_text(content)
    script = f'cat "{tmp_path / "result.txt"}" > "$5"'  # $5: the result path
    python = fake_python(tmp_path, script)
    return execute_in_process(TrialRequest(python, "io_sleep", "threads", 2, 0, 4, 10.0, 1))


GOOD_RESULT = {"protocol": PROTOCOL, "status": "ok", "work_s": 0.5, "items_done": 4}


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        ("[1, 2]", TrialStatus.ERROR, "worker result is not a JSON object: list"),
        (
            json.dumps({**GOOD_RESULT, "protocol": 999}),
            TrialStatus.ERROR,
            f"worker result has protocol 999, this orchestrator reads {PROTOCOL}",
        ),
        (
            json.dumps({**GOOD_RESULT, "work_s": -1.0}),
            TrialStatus.ERROR,
            "worker result field work_s is -1.0, not a non-negative number",
        ),
        (
            json.dumps({**GOOD_RESULT, "startup_s": float("nan")}),
            TrialStatus.ERROR,
            "worker result field startup_s is nan, not a non-negative number",
        ),
        (
            json.dumps({**GOOD_RESULT, "work_s": "fast"}),
            TrialStatus.ERROR,
            "worker result field work_s is 'fast', not a non-negative number",
        ),
        (
            json.dumps({**GOOD_RESULT, "items_done": 99}),
            TrialStatus.ERROR,
            "worker result says 99 + 0 items ended, of 4",
        ),
        (
            json.dumps({**GOOD_RESULT, "facts": {"lost": "many"}}),
            TrialStatus.ERROR,
            "worker result field facts is not a mapping of names to numbers",
        ),
        (
            json.dumps(GOOD_RESULT)[:25],
            TrialStatus.CRASHED,
            "worker died (exit code 0) without a result",
        ),
    ],
)
def test_a_forged_or_truncated_result_file_is_refused_with_the_reason(
    tmp_path: Path, content: str, status: TrialStatus, error: str
) -> None:
    found = forged(tmp_path, content)
    assert found.status == status
    assert (found.error or "").startswith(error)
    assert "work_s" not in found.result  # none of its numbers reach the columns


def test_a_good_result_file_is_accepted(tmp_path: Path) -> None:
    found = forged(tmp_path, json.dumps(GOOD_RESULT))
    assert found.status == TrialStatus.OK
    assert found.result["work_s"] == 0.5
