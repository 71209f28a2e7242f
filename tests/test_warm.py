"""Warm starts (trial_process: warm): trials forked from fork servers keep what fresh
interpreters give (statuses, kills, no survivors, memory counted in full) and never share
a server within a cell."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import psutil
import pytest

from pipeline import app
from pipeline.execution import observer
from pipeline.execution.runner import execute_in_process
from pipeline.execution.trial import Limits, TrialRequest
from pipeline.execution.warm import WarmStarts
from pipeline.status import TrialStatus
from pipeline.worker import memory
from tests.helpers import TESTS_DIR, fake_python, free_threaded_python
from tests.test_faults import pipeline, small_spec, wait_for_more_trials

pytestmark = pytest.mark.processes  # real trials (slow: tests/durations.json)


def user_request(task: str, model: str = "sequential", timeout_s: float = 30.0, **kw):
    return TrialRequest(
        sys.executable,
        f"user_tasks:{task}",
        model,
        1 if model == "sequential" else 2,
        0,
        2,
        timeout_s,
        1,
        python_path=(str(TESTS_DIR),),
        **kw,
    )


def test_warm_trials_run_and_each_server_runs_a_cell_once() -> None:
    sequential = TrialRequest(sys.executable, "io_sleep", "sequential", 1, 0, 2, 30.0, 1)
    processes = TrialRequest(sys.executable, "cpu_pure", "processes", 2, 0, 2, 30.0, 1)
    with WarmStarts() as warm:
        first = execute_in_process(sequential, warm)
        (server,) = warm.servers.values()
        other_cell = execute_in_process(processes, warm)
        assert list(warm.servers.values()) == [server]  # another cell: the same server
        again = execute_in_process(sequential, warm)  # the same cell: a new server
        (replacement,) = warm.servers.values()
        assert replacement is not server
        assert not server.alive()
    for measured in (first, other_cell, again):
        assert measured.status == TrialStatus.OK, measured.error
        assert measured.result["items_done"] == 2
        assert measured.peak_rss_bytes
    # each trial is a process of its own, a child of its server, not of this process
    assert len({first.result["pid"], other_cell.result["pid"], again.result["pid"]}) == 3
    assert first.result["pid"] != os.getpid()
    assert not replacement.alive()  # closed with the WarmStarts


def test_a_warm_worker_that_dies_is_crashed_with_its_exit_code() -> None:
    with WarmStarts() as warm:
        measured = execute_in_process(user_request("hard_exit"), warm)
        assert measured.status == TrialStatus.CRASHED
        assert (measured.error or "").startswith("worker died (exit code 7) without a result")
        # the server survives its child's death and runs the next cell
        after = execute_in_process(user_request("echo_size", "threads"), warm)
    assert after.status == TrialStatus.OK, after.error


@pytest.mark.parametrize("new_session", [False, True])
def test_a_warm_trial_past_its_timeout_is_killed_with_its_tree(
    tmp_path: Path, new_session: bool
) -> None:
    pid_file = tmp_path / "pids"
    request = user_request(
        "hang_with_child",
        "threads",
        timeout_s=1.0,
        params={"pid_file": str(pid_file), "new_session": new_session},
    )
    with WarmStarts() as warm:
        measured = execute_in_process(request, warm)
        assert measured.status == TrialStatus.TIMEOUT, measured.error
        assert measured.error == "killed after the 1 s timeout"
        assert measured.process_s < 10
        grandchildren = [int(line) for line in pid_file.read_text().split()]
        assert grandchildren
        _, alive = psutil.wait_procs(
            [psutil.Process(pid) for pid in grandchildren if psutil.pid_exists(pid)], timeout=5
        )
        assert not alive
        (server,) = warm.servers.values()
        assert server.alive()  # the kill took the trial's tree, not its server


def test_a_warm_trial_over_its_process_limit_is_killed() -> None:
    with WarmStarts() as warm:
        measured = execute_in_process(
            user_request("fork_forever", limits=Limits(processes=40)), warm
        )
    assert measured.status == TrialStatus.PROCESS_LIMIT


def test_a_warm_grandchild_that_leaves_the_session_is_still_killed() -> None:
    with WarmStarts() as warm:
        measured = execute_in_process(user_request("escape_session"), warm)
    assert measured.status == TrialStatus.OK, measured.error


def test_a_broken_interpreter_falls_back_to_a_fresh_worker_that_says_why(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'this is no python' >&2\nexit 9\n")
    broken.chmod(0o755)
    request = TrialRequest(str(broken), "io_sleep", "sequential", 1, 0, 1, 30.0, 1)
    with WarmStarts() as warm:
        measured = execute_in_process(request, warm)
        assert not warm.servers
    assert measured.status == TrialStatus.CRASHED
    assert "exit code 9" in (measured.error or "")
    assert "this is no python" in (measured.error or "")


def smaps_rollup(pid: int) -> dict[str, int]:
    figures = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, value = line.partition(":")
        figures[name] = int(value.split()[0])
    return figures


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc and madvise")
def test_a_forked_child_copies_the_heap_it_shares_with_its_parent() -> None:
    ballast = [bytearray(b"x" * 4096) for _ in range(2048)]  # 8 MiB of heap, all touched
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: shared, then copied
        before = smaps_rollup(os.getpid())
        copied = memory.adopt([])
        after = smaps_rollup(os.getpid())
        os.write(write, json.dumps([before, after, copied]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        before, after, copied = json.loads(handle.read())
    os.waitpid(pid, 0)
    assert len(ballast) == 2048
    assert copied is not None
    assert copied * 4 >= 8 * 1024
    assert before["Shared_Dirty"] >= 8 * 1024  # KiB: the ballast was shared
    assert after["Shared_Dirty"] < before["Shared_Dirty"] / 10
    assert after["Private_Dirty"] >= before["Private_Dirty"] + 8 * 1024
    # pages never touched are not allocated: RSS grows by no more than what was shared
    assert after["Rss"] - before["Rss"] <= before["Shared_Dirty"]


def test_the_proc_children_listing_agrees_with_psutil() -> None:
    started = [psutil.Popen(["sleep", "5"]) for _ in range(3)]
    try:
        me = psutil.Process()
        listed = observer.children(os.getpid())
        assert listed is not None
        assert sorted(listed) == sorted(child.pid for child in me.children())
        assert {p.pid for p in started} <= set(listed)
        assert {p.pid for p in observer.descendants(me)} == {
            p.pid for p in me.children(recursive=True)
        }
    finally:
        for process in started:
            process.kill()
            process.wait()


def test_a_warm_run_is_stored_as_warm_with_every_trial(tmp_path: Path) -> None:
    spec = small_spec(tmp_path, "warm", 2)
    spec.write_text(spec.read_text() + "trial_process: warm\n")
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    outcome = app.run(app.plan(spec), url, reports_dir=None)
    assert outcome.status == "finished"
    with sqlite3.connect(tmp_path / "warm.db") as connection:
        assert connection.execute("SELECT trial_process FROM run").fetchall() == [("warm",)]
        statuses = connection.execute("SELECT status, count(*) FROM trial GROUP BY 1").fetchall()
    assert statuses == [("ok", 2 * (2 + 1))]


def test_a_killed_orchestrator_takes_its_fork_servers_with_it(tmp_path: Path) -> None:
    spec = small_spec(tmp_path, "warmkilled", 30)
    spec.write_text(spec.read_text() + "trial_process: warm\n")
    database = tmp_path / "warm.db"
    process = pipeline("run", str(spec), "--db", f"sqlite:///{database}", "--no-report", "-q")
    wait_for_more_trials(database, 2, process)
    servers = [
        child
        for child in psutil.Process(process.pid).children()
        if "serve()" in " ".join(child.cmdline())
    ]
    assert servers, "no fork server was running"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    _gone, alive = psutil.wait_procs(servers, timeout=10)
    assert not alive
    # and nothing a trial started is left: the autouse fixture checks


def test_a_server_that_cannot_make_memory_fresh_is_refused_and_trials_run_fresh(
    tmp_path: Path,
) -> None:
    python = fake_python(tmp_path, "echo 'unusable this kernel has no MADV_POPULATE'")
    request = TrialRequest(python, "io_sleep", "sequential", 1, 0, 1, 30.0, 1)
    with WarmStarts() as warm:
        assert warm.server_for(request) is None
        assert warm.server_for(request) is None  # asked once, remembered
        (why,) = warm.refused.values()
    assert why.endswith(": this kernel has no MADV_POPULATE")


def test_a_warm_spec_says_before_the_run_which_interpreters_will_run_fresh(
    tmp_path: Path,
) -> None:
    spec = small_spec(tmp_path, "warmnote", 1)
    spec.write_text(spec.read_text() + "trial_process: warm\n")
    planned = app.plan(spec)
    assert planned.warnings() == []  # this machine can
    (label, probe) = next(iter(planned.probes.items()))
    refused = dataclasses.replace(probe, facts={**probe.facts, "warm_starts": "needs Linux"})
    assert dataclasses.replace(planned, probes={label: refused}).warnings() == [
        f"interpreter {label}: trial_process: warm is not available (needs Linux); its "
        "trials run in fresh interpreters"
    ]


def test_a_free_threaded_interpreter_gets_a_server_per_gil_setting() -> None:
    python = free_threaded_python()
    found = {}
    with WarmStarts() as warm:
        for gil in ("0", "1"):
            request = TrialRequest(
                python, "cpu_pure", "threads", 2, 0, 2, 30.0, 1, {"iterations": 20000},
                env={"PYTHON_GIL": gil},
            )  # fmt: skip
            measured = execute_in_process(request, warm)
            assert measured.status == TrialStatus.OK, measured.error
            found[gil] = measured.result["interpreter"]
        assert len(warm.servers) == 2  # the environment is read as the interpreter starts
    assert found["0"]["gil_enabled"] is False
    assert found["1"]["gil_enabled"] is True
    assert found["0"]["free_threaded_build"] is True
