"""The worker side in real processes: every model runs every task; physical sanity."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.analysis import inference
from pipeline.execution.launch import BOOTSTRAP, WORKER_ROOT
from pipeline.worker.concurrency import MODELS
from pipeline.worker.tasks import TASKS, resolve_params

from .helpers import measure

POOL_MODELS = [m for m in MODELS if m not in ("sequential", "subinterpreters")]


def trial(model: str, task: str = "io_sleep", workers: int = 2, items: int = 4, **params):
    defaults = {"seconds": 0.01} if task == "io_sleep" else {"iterations": 1000}
    return measure(task, model, workers=workers, items=items, **(params or defaults))


@pytest.mark.parametrize("task", ["cpu_pure", "io_sleep"])
@pytest.mark.parametrize("model", [m for m in MODELS if m != "subinterpreters"])
def test_every_model_runs_every_task(model: str, task: str) -> None:
    measured = trial(model, task)
    assert measured.status == "ok", measured.error
    result = measured.result
    assert result["items_done"] == 4
    assert result["items_failed"] == 0
    assert sorted(item["index"] for item in result["items"]) == [0, 1, 2, 3]
    assert result["work_s"] > 0
    assert result["startup_s"] >= 0
    assert result["cpu_user_s"] + result["cpu_sys_s"] >= 0
    assert measured.peak_rss_bytes is not None
    assert measured.peak_rss_bytes > 1_000_000
    assert result["interpreter"]["version"].startswith(f"{sys.version_info.major}.")
    expected_method = {
        "processes-fork": "fork",
        "processes-spawn": "spawn",
        "processes-forkserver": "forkserver",
    }.get(model)
    if expected_method:
        assert result["start_method"] == expected_method


def test_processes_count_their_children_in_rss_and_cpu() -> None:
    sequential = trial("sequential", "cpu_pure", items=4, iterations=300_000)
    processes = trial("processes-spawn", "cpu_pure", workers=2, items=4, iterations=300_000)
    assert processes.status == sequential.status == "ok"
    # two extra interpreters in the tree: clearly more memory than one process
    assert processes.peak_rss_bytes > 1.5 * sequential.peak_rss_bytes
    # the children's CPU time (spawned interpreters + the loop) is counted
    assert processes.result["cpu_user_s"] >= 0.5 * sequential.result["cpu_user_s"]


def test_subinterpreters_are_skipped_with_a_reason_before_3_14() -> None:
    measured = trial("subinterpreters")
    if sys.version_info >= (3, 14):
        assert measured.status == "ok"
    else:
        assert measured.status == "skipped"
        assert "Python 3.14" in measured.error


def _median_work(model: str, workers: int, task: str, **params) -> float:
    runs = [trial(model, task, workers=workers, items=8, **params) for _ in range(3)]
    assert all(run.status == "ok" for run in runs)
    return statistics.median(run.result["work_s"] for run in runs)


@pytest.mark.slow
def test_io_sleep_four_threads_are_about_four_times_faster() -> None:
    sequential = _median_work("sequential", 1, "io_sleep", seconds=0.05)
    threads = _median_work("threads", 4, "io_sleep", seconds=0.05)
    assert 3.2 <= sequential / threads <= 4.4


@pytest.mark.slow
def test_cpu_pure_two_threads_gain_nothing_under_the_gil() -> None:
    """Judged as the product judges a comparison (inference.ratio: geometric means with a
    t-interval, as the verdicts), over 7 interleaved pairs of trials of about 0.3 s: the
    interval rules out a gain of over 30%. This VM's speed jumps by up to 1.6× for a few
    hundred milliseconds, which the median of 3 trials of 0.1 s a side did not survive."""
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        pytest.skip("this interpreter runs without the GIL")
    sequential, threads = [], []
    for _ in range(7):
        for model, workers, times in (("sequential", 1, sequential), ("threads", 2, threads)):
            run = trial(model, "cpu_pure", workers=workers, items=8, iterations=1_000_000)
            assert run.status == "ok", run.error
            times.append(run.result["work_s"])
    found = inference.ratio(sequential, threads, level=inference.Rule().level())
    assert inference.decide(found, margin=0.30).rules_out_more, found


def _run_worker(
    interpreter: str,
    flags: list[str],
    tmp_path: Path,
    model: str,
    task: str = "cpu_pure",
    params: dict | None = None,
) -> dict:
    request = tmp_path / "request.json"
    result = tmp_path / "result.json"
    request.write_text(
        json.dumps(
            {
                "task": task,
                "params": resolve_params(task, params or {"iterations": 100}),
                "model": model,
                "workers": 2,
                "payload_bytes": 4096,
                "items": 3,
                "timeout_s": 30,
                "seed": 1,
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    subprocess.run(
        [interpreter, *flags, "-c", BOOTSTRAP, WORKER_ROOT, str(request), str(result)],
        check=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    return json.loads(result.read_text())


@pytest.mark.parametrize("model", ["threads", "processes-spawn"])
def test_worker_needs_only_the_standard_library(tmp_path: Path, model: str) -> None:
    # -I -S: no site-packages at all, in the worker and in its spawned children
    result = _run_worker(sys.executable, ["-I", "-S"], tmp_path, model)
    assert result["status"] == "ok", result
    assert result["items_done"] == 3


PYTHON_3_9 = Path.home() / ".pyenv" / "versions" / "3.9.18" / "bin" / "python3.9"


# short waits, so the 3.9 round stays quick; every other parameter keeps its default
QUICK_PARAMS = {
    "seconds": 0.01,
    "latency": 0.01,
    "increments": 100,
    "iterations": 100,
    "function": "os:getpid",  # the call task: a standard-library function, 3 calls
    "count": 3,
}


@pytest.mark.skipif(not PYTHON_3_9.exists(), reason=f"no CPython 3.9 at {PYTHON_3_9}")
@pytest.mark.parametrize("task", [name for name in TASKS if name != "fault"])
def test_every_task_runs_on_python_3_9(tmp_path: Path, task: str) -> None:
    params = {k: v for k, v in QUICK_PARAMS.items() if k in TASKS[task].params}
    result = _run_worker(
        str(PYTHON_3_9), ["-I", "-S"], tmp_path, "processes-forkserver", task, params
    )
    assert result["status"] == "ok", result
    assert result["items_done"] == 3
    assert result["interpreter"]["version"].startswith("3.9.")
