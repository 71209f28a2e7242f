"""The observer: its own cost recorded per trial, its settings (sampling), warm-up items,
the machine's speed over a run (drift), and physically implausible speedups flagged."""

from __future__ import annotations

import math
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from pipeline import app
from pipeline.analysis import stats
from pipeline.analysis.inference import Decision
from pipeline.execution import observer
from pipeline.execution.observer import Sampling
from pipeline.execution.runner import execute_in_process
from pipeline.execution.trial import TrialRequest

from .helpers import TESTS_DIR, Question, judge_in_rounds


def sleep_trial(seconds: float, sampling: Sampling) -> TrialRequest:
    return TrialRequest(
        sys.executable, "io_sleep", "sequential", 1, 64, 1, 30.0, 1, {"seconds": seconds},
        sampling=sampling,
    )  # fmt: skip


@pytest.mark.processes
def test_the_observer_records_its_own_cost_and_sampling_more_costs_more() -> None:
    eager = execute_in_process(sleep_trial(0.6, Sampling(interval_s=0.001, memory="uss")))
    off = execute_in_process(sleep_trial(0.6, Sampling(memory="off")))
    assert eager.status == off.status == "ok"
    for measured in (eager, off):
        assert measured.observer_cpu_s is not None
        assert measured.sampler_cpu_s is not None
        assert 0 <= measured.sampler_cpu_s <= measured.observer_cpu_s + 0.002
        assert measured.observer_cpu_s < measured.process_s  # one process, mostly waiting
        assert measured.reference_s is not None
        assert measured.reference_s > 0
    # hundreds of samples (and USS sweeps) against none
    assert eager.sampler_cpu_s > 0.005
    assert eager.observer_cpu_s > off.observer_cpu_s
    assert eager.peak_rss_bytes
    assert eager.peak_pss_bytes
    assert off.peak_rss_bytes is None
    assert off.peak_pss_bytes is None


@pytest.mark.processes
def test_rss_mode_samples_rss_only() -> None:
    measured = execute_in_process(sleep_trial(0.2, Sampling(memory="rss")))
    assert measured.status == "ok"
    assert measured.peak_rss_bytes
    assert measured.peak_uss_bytes is None


def test_a_steady_tree_is_sampled_less_often_and_a_change_resets_the_interval() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sampler = observer.TreeSampler(child.pid, Sampling(interval_s=0.01))
        time.sleep(0.3)  # let the interpreter finish starting
        for _ in range(12):
            sampler.sample()
        assert sampler.interval_s == pytest.approx(0.01 * observer.STEADY_FACTOR)
        sampler._last_rss //= 2  # as if RSS had just doubled
        sampler.sample()
        assert sampler.interval_s == pytest.approx(0.01)
    finally:
        child.kill()
        child.wait()


def test_memory_that_grows_is_swept_at_its_new_high(monkeypatch) -> None:
    """USS and PSS are swept again as soon as the tree's RSS reaches a new high, whatever
    the spacing of the regular sweeps (here a minute): short trials' peaks come and go
    between them."""
    monkeypatch.setattr(observer, "USS_INTERVAL_S", 60.0)
    sweeps: list[int] = []
    sweep = observer._uss_pss_bytes

    def counted(process):  # type: ignore[no-untyped-def]
        sweeps.append(process.pid)
        return sweep(process)

    monkeypatch.setattr(observer, "_uss_pss_bytes", counted)
    script = "import sys, time\nsys.stdin.readline()\nheld = b'x' * (40 << 20)\ntime.sleep(30)\n"
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)
    try:
        time.sleep(0.3)  # let the interpreter finish starting
        sampler = observer.TreeSampler(child.pid, Sampling(interval_s=0.01))
        sampler.sample()
        before = sampler.peak_pss_bytes
        assert before > 0
        assert len(sweeps) == 1
        sampler.sample()  # nothing grew: no sweep before the minute is up
        assert len(sweeps) == 1
        assert child.stdin is not None
        child.stdin.write(b"grow\n")
        child.stdin.flush()
        deadline = time.monotonic() + 10
        while observer._rss_bytes(sampler.root) < sampler._last_rss + (30 << 20):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sampler.sample()
        assert len(sweeps) == 2
        assert sampler.peak_pss_bytes > before + (30 << 20)
    finally:
        child.kill()
        child.wait()
        if child.stdin is not None:
            child.stdin.close()


def test_the_sampler_finds_the_tree_and_its_memory() -> None:
    script = (
        "import subprocess, sys, time\n"
        "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "time.sleep(30)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        sampler = observer.TreeSampler(parent.pid)
        deadline = time.monotonic() + 10
        while len(sampler.members) < 2 and time.monotonic() < deadline:
            sampler.sample()
            time.sleep(0.02)
        assert len(sampler.members) == 2
        sampler.sample()
        assert 0 < sampler.peak_uss_bytes <= sampler.peak_pss_bytes <= sampler.peak_rss_bytes
    finally:
        for process in sampler.kill_all():
            process.kill()
        parent.wait()


def test_the_reference_loop_is_measured_at_most_every_quarter_second() -> None:
    observer._last_reference.clear()
    clock = iter([100.0, 100.1, 100.3])
    first = observer.reference_s(lambda: next(clock))
    assert first > 0
    assert observer.reference_s(lambda: next(clock)) == first  # 0.1 s later: reused
    observer.reference_s(lambda: next(clock))  # 0.3 s later: measured again
    assert observer._last_reference["at"] == 100.3


# -- warm-up items ----------------------------------------------------------------------------
@pytest.mark.processes
@pytest.mark.parametrize("model", ["sequential", "threads", "processes-fork", "asyncio"])
def test_warmup_items_run_untimed_before_the_work(tmp_path: Path, model: str) -> None:
    calls = tmp_path / "calls.log"
    request = TrialRequest(
        sys.executable, "user_tasks:count_calls", model, 2, 64, 4, 30.0, 1,
        {"path": str(calls)}, (str(TESTS_DIR),), warmup_items=1,
    )  # fmt: skip
    measured = execute_in_process(request)
    assert measured.status == "ok", measured.error
    workers = 1 if model == "sequential" else 2
    assert measured.result["items_done"] == 4
    assert measured.result["warmup_items"] == workers
    assert len(calls.read_text().splitlines()) == 4 + workers
    assert sorted(item["index"] for item in measured.result["items"]) == [0, 1, 2, 3]


# -- in a run ---------------------------------------------------------------------------------
SPEC = """\
name: observed
repetitions: 3
warmup: 0
items: 2
sampling: {interval: 5ms, memory: uss}
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [2]
  payload: [1KiB]
params:
  io_sleep: {seconds: 0.05}
"""


@pytest.mark.processes
def test_a_run_stores_the_observer_cost_and_the_machine_speed_of_every_trial(
    write_spec: Callable[[str], Path], sqlite_url: str
) -> None:
    outcome = app.run(app.plan(write_spec(SPEC)), sqlite_url, reports_dir=None)
    assert outcome.status == "finished"
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        trials = pd.read_sql(text("SELECT * FROM trial_results"), connection)
        cells = pd.read_sql(text("SELECT * FROM cell_summary"), connection)
        run = connection.execute(text("SELECT sample_interval_s, sampling_memory FROM run"))
        assert tuple(run.one()) == (0.005, "uss")
    engine.dispose()
    assert len(trials) == 6
    assert (trials["observer_cpu_s"] > 0).all()
    assert (trials["sampler_cpu_s"] <= trials["observer_cpu_s"] + 0.002).all()
    assert (trials["reference_s"] > 0).all()
    assert cells["median_observer_cpu_s"].notna().all()
    assert cells["relative_speed"].between(0.5, 2).all()
    assert cells["median_wall_s_adjusted"].notna().all()


@pytest.mark.processes
@pytest.mark.timing  # it loads every core itself
def test_the_drift_line_shows_a_period_slowed_by_competing_programs(hogs) -> None:
    """The reference loop, timed as trials run, is more than 1.3× slower while CPU hogs
    compete for the cores (two per core) than without them, judged as the product judges a
    comparison (helpers.judge_in_rounds: rounds of one trial each way, the hogs started and
    stopped between them): what the report's drift chart draws. The control: a second
    series without hogs, judged against the first the same way, is not called slower (the
    line comes back once they stop)."""
    cores = len(__import__("os").sched_getaffinity(0))
    request = sleep_trial(0.3, Sampling())
    running: list[multiprocessing.Process] = []

    def reference_s(name: str) -> float:
        if name == "slowed" and not running:
            running.extend(hogs(2 * cores))
            time.sleep(0.5)
        elif name != "slowed":
            while running:
                hog = running.pop()
                hog.kill()
                hog.join()
        execute_in_process(request)
        return float(observer._last_reference["seconds"])

    claim, control = judge_in_rounds(
        reference_s,
        ["calm", "again calm", "slowed"],
        [Question("slowed", "calm", 0.30), Question("again calm", "calm", 0.30, control=True)],
    )
    assert claim.decision is Decision.MORE, claim
    assert control.decision is not Decision.MORE, control


# -- what the statistics say ------------------------------------------------------------------
def _trials(cell_id: int, model: str, workers: int, walls: list[float], **extra: object):
    return pd.DataFrame(
        {
            "cell_id": cell_id, "task": "cpu_pure", "variant": "", "model": model,
            "workers": workers, "payload_bytes": 1024, "interpreter": "python", "host": "",
            "status": "ok", "wall_s": walls, "startup_s": 0.0, "shutdown_s": 0.0,
            "cpu_user_s": [w * workers for w in walls], "cpu_sys_s": 0.0,
            "peak_rss_bytes": 1e7, "repetition": range(len(walls)), **extra,
        }
    )  # fmt: skip


def test_a_speedup_above_the_cores_is_flagged_as_implausible_with_a_cause() -> None:
    rng = np.random.default_rng(3)
    sequential = list(1.0 * np.exp(rng.normal(0, 0.01, 10)))
    threads = list(0.45 * np.exp(rng.normal(0, 0.01, 10)))  # 2.2× on 2 workers
    trials = pd.concat([_trials(1, "sequential", 1, sequential), _trials(2, "threads", 2, threads)])
    summary = stats.summarise_cells(trials, cores=2)
    flagged = summary.set_index("cell_id")["warnings"]
    assert "physically implausible" in flagged[2]
    assert "lies above the 2×" in flagged[2]
    assert "baseline does more per item than the workers do" in flagged[2]
    assert "physically implausible" not in flagged[1]


def test_a_pool_of_one_faster_than_sequential_is_not_flagged() -> None:
    """One pool thread 13% faster than sequential (the reference VM's main-thread effect):
    no parallelism, so no physical bound is passed; two threads at 2.2× still are."""
    rng = np.random.default_rng(4)
    sequential = list(1.0 * np.exp(rng.normal(0, 0.01, 10)))
    one = list(0.885 * np.exp(rng.normal(0, 0.01, 10)))
    two = list(0.45 * np.exp(rng.normal(0, 0.01, 10)))
    trials = pd.concat(
        [
            _trials(1, "sequential", 1, sequential),
            _trials(2, "threads", 1, one),
            _trials(3, "threads", 2, two),
        ]
    )
    summary = stats.summarise_cells(trials, cores=2).set_index("cell_id")
    assert summary.loc[2, "speedup_ci_low"] > 1.05
    assert "physically implausible" not in str(summary.loc[2, "warnings"])
    assert "physically implausible" in summary.loc[3, "warnings"]
    assert "a pool thread runs the code faster than the sequential" in summary.loc[3, "warnings"]


def test_an_implausible_speedup_names_a_slow_baseline_when_the_drift_shows_it() -> None:
    sequential = [1.0, 1.01, 0.99, 1.0, 1.02]
    threads = [0.45, 0.46, 0.44, 0.45, 0.45]
    trials = pd.concat(
        [
            _trials(1, "sequential", 1, sequential, reference_s=0.0013, observer_cpu_s=0.001),
            _trials(2, "threads", 2, threads, reference_s=0.001, observer_cpu_s=0.001),
        ]
    )
    summary = stats.summarise_cells(trials, cores=2).set_index("cell_id")
    assert "the baseline was measured while the machine ran" in summary.loc[2, "warnings"]
    assert "ran 12% slower than over the run" in summary.loc[1, "warnings"]
    # the slow baseline's wall times, scaled to the usual speed
    usual = 0.00115  # the median reference over the run's 10 trials
    assert summary.loc[1, "median_wall_s_adjusted"] == pytest.approx(
        np.median(sequential) * usual / 0.0013
    )
    assert summary.loc[2, "relative_speed"] > 1 > summary.loc[1, "relative_speed"]


def test_the_observer_share_is_warned_about_where_the_cell_needs_its_cores_only() -> None:
    # sampling took 0.06 s over a 1.2 s worker life: 0.05 s of it during the 1 s of work
    busy = _trials(
        1, "sequential", 1, [1.0] * 4, observer_cpu_s=0.08, sampler_cpu_s=0.06, process_s=1.2
    )
    summary = stats.summarise_cells(busy, cores=1)  # the cell keeps the only core busy
    assert summary.loc[0, "observer_share"] == pytest.approx(0.05)
    assert "the observer's sampling used 5.0% as much CPU" in summary.loc[0, "warnings"]
    # a second core is spare: the observer's 0.05 cores take nothing from the cell
    assert "observer" not in stats.summarise_cells(busy, cores=2).loc[0, "warnings"]
    idle = busy.assign(cpu_user_s=0.01)  # a sleep: 1% of a core busy
    summary = stats.summarise_cells(idle, cores=1)
    assert summary.loc[0, "observer_share"] == pytest.approx(5.0)
    assert "observer" not in summary.loc[0, "warnings"]
    assert math.isnan(
        stats.summarise_cells(_trials(1, "sequential", 1, [1.0] * 4), cores=2).loc[
            0, "median_observer_cpu_s"
        ]
    )
