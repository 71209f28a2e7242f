"""Faults become statuses: error, crashed, timeout; and no process outlives its trial."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from pipeline.execution.runner import execute_in_process
from pipeline.execution.trial import TrialRequest

from .helpers import TESTS_DIR

pytestmark = pytest.mark.processes  # every test starts a trial


def user_trial(function: str, model: str = "threads", timeout_s: float = 30.0, **params):
    return execute_in_process(
        TrialRequest(
            sys.executable,
            f"user_tasks:{function}",
            model,
            2,
            128,
            3,
            timeout_s,
            1,
            params,
            (str(TESTS_DIR),),
        )
    )


def test_user_task_runs_when_named() -> None:
    measured = user_trial("echo_size", offset=5)
    assert measured.status == "ok", measured.error
    assert [item["value"] for item in measured.result["items"]] == [133, 133, 133]


@pytest.mark.parametrize("model", ["sequential", "threads", "processes", "asyncio"])
def test_raising_task_is_an_error_with_its_message(model: str) -> None:
    measured = user_trial("raise_error", model)
    assert measured.status == "error"
    assert measured.error == "ValueError: task failed on purpose"
    assert measured.result["items_done"] == 0
    assert measured.result["items_failed"] == 3


def test_worker_that_dies_is_crashed() -> None:
    measured = user_trial("hard_exit", "sequential")
    assert measured.status == "crashed"
    assert measured.error.startswith("worker died (exit code 7) without a result")


def test_unknown_user_module_is_an_error() -> None:
    measured = user_trial("no_such_function")
    assert measured.status == "error"
    assert "no_such_function" in measured.error


def _wait_gone(pids: list[int], within_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within_s
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [
            pid
            for pid in alive
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("new_session", [False, True])
@pytest.mark.parametrize("model", ["threads", "processes"])
def test_timeout_kills_the_whole_tree(tmp_path: Path, model: str, new_session: bool) -> None:
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    measured = user_trial(
        "hang_with_child", model, timeout_s=1.5, pid_file=str(pid_file), new_session=new_session
    )
    assert measured.status == "timeout"
    assert measured.error == "killed after the 1.5 s timeout"
    assert time.monotonic() - started < 10
    grandchildren = [int(line) for line in pid_file.read_text().split()]
    assert grandchildren, "the task should have started its grandchildren"
    assert _wait_gone(grandchildren) == []


def test_finished_trial_leaves_no_process_behind() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    measured = user_trial("echo_size", "processes-forkserver")
    assert measured.status == "ok"
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after - before == set()


def test_missing_interpreter_is_crashed_not_an_exception() -> None:
    measured = execute_in_process(
        TrialRequest("/no/such/python", "io_sleep", "threads", 1, 0, 1, 5.0, 1)
    )
    assert measured.status == "crashed"
    assert measured.error.startswith("cannot start worker:")


def test_timeout_keeps_the_count_of_items_that_finished() -> None:
    # 50 items of 0.3 s one after another cannot finish in 1 s: a few do, then the kill
    measured = execute_in_process(
        TrialRequest(sys.executable, "io_sleep", "sequential", 1, 64, 50, 1.0, 1, {"seconds": 0.3})
    )
    assert measured.status == "timeout"
    assert 1 <= measured.result["items_done"] <= 4  # from the progress file
    assert measured.result["partial"] is True


def test_memory_samples_are_ordered() -> None:
    measured = user_trial("echo_size", "processes-fork")
    assert measured.status == "ok"
    assert 0 < measured.peak_uss_bytes <= measured.peak_pss_bytes <= measured.peak_rss_bytes


def test_a_killed_trial_leaves_no_semaphore_or_shared_memory_behind() -> None:
    shm = Path("/dev/shm")
    before = set(shm.iterdir()) if shm.is_dir() else set()
    # a lock-guarded counter under spawn: named semaphores, tracked by the resource
    # tracker, which must be left alive long enough to unlink them after the kill
    measured = execute_in_process(
        TrialRequest(
            sys.executable,
            "sync",
            "processes-spawn",
            2,
            64,
            4,
            1.5,
            1,
            {"increments": 10**9, "lock": "with"},
        )
    )
    assert measured.status == "timeout"
    assert (set(shm.iterdir()) if shm.is_dir() else set()) <= before
