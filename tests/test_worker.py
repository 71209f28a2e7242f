"""The worker side in real processes: every model runs every task; physical sanity, judged
as the product judges a comparison (helpers.judge_in_rounds), each with a control."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.analysis.inference import Decision
from pipeline.execution.launch import BOOTSTRAP, WORKER_ROOT
from pipeline.worker.concurrency import MODELS
from pipeline.worker.tasks import TASKS, resolve_params

from .helpers import Question, judge_in_rounds, measure

pytestmark = pytest.mark.processes  # every test runs the worker in a process of its own
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


def _work(task: str, workers: dict[str, int], **params):
    """One trial's work time of a configuration named '[label ]model'."""

    def work(name: str) -> float:
        run = trial(name.split()[-1], task, workers=workers[name], items=8, **params)
        assert run.status == "ok", run.error
        return float(run.result["work_s"])

    return work


@pytest.mark.timing
def test_io_sleep_four_threads_are_about_four_times_faster() -> None:
    """Eight sleeps of 50 ms: four threads are 3.2 to 4.4× as fast as sequential (the
    interval of the speedup lies within 3.75× ± 17.5%). The control: two threads (2×) are
    judged the same way and found below that range."""
    workers = {"sequential": 1, "threads": 4, "two threads": 2}
    claim, control = judge_in_rounds(
        _work("io_sleep", workers, seconds=0.05),
        list(workers),
        [
            Question("sequential", "threads", 0.175, scale=3.75, within=True),
            Question("sequential", "two threads", 0.175, scale=3.75, within=True, control=True),
        ],
    )
    assert claim.decision is Decision.SAME, claim
    assert control.decision is Decision.LESS, control


@pytest.mark.timing
def test_cpu_pure_two_threads_gain_nothing_under_the_gil() -> None:
    """Judged as the product judges a comparison (geometric means, an interval paired by
    round at the level of the looks, measuring more rounds while it is undecided: this VM's
    speed jumps by up to 1.6× for a few hundred milliseconds): two threads on pure-Python
    work (about 0.3 s a trial) rule a gain of over 30% out. The control is test_tasks.py's
    test_gil_released_c_code_scales_on_two_threads: the same judgement finds that gain
    where the C code releases the GIL."""
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        pytest.skip("this interpreter runs without the GIL")
    workers = {"sequential": 1, "threads": 2}
    (claim,) = judge_in_rounds(
        _work("cpu_pure", workers, iterations=1_000_000),
        list(workers),
        [Question("sequential", "threads", 0.30)],
    )
    assert claim.decision.rules_out_more, claim


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
