"""Every built-in task under every model, in real processes: the recorded numbers agree.

Physical sanity checks (marked timing: they run alone) are judged as the product judges a
comparison: an interval at its level against a stated margin, measuring more rounds where
the machine is noisy (helpers.judge_in_rounds), each with a control the same judgement
must refuse.
"""

from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

import pytest

from pipeline.analysis.inference import Decision
from pipeline.execution import records
from pipeline.planning import matrix
from pipeline.worker.concurrency import MODELS

from .helpers import (
    Question,
    judge_in_rounds,
    measure,
    other_programs_now,
    payload_bytes,
    work_s,
)

pytestmark = pytest.mark.processes  # every test runs real trials
RUNNABLE = [m for m in MODELS if m != "subinterpreters"]
PROCESS_MODELS = [m for m in RUNNABLE if m.startswith("processes")]
IN_PROCESS_MODELS = [m for m in RUNNABLE if m not in PROCESS_MODELS]


def facts(task: str, model: str, measured) -> dict:
    """The facts as the run loop stores them (worker facts plus orchestrator facts)."""
    return records.trial_facts(task, 2, measured)


def ok(measured) -> dict:
    assert measured.status == "ok", measured.error
    return measured.result


@pytest.mark.parametrize("model", RUNNABLE)
@pytest.mark.parametrize("algorithm", ["sha256", "zlib"])
def test_cpu_gil_released(model: str, algorithm: str) -> None:
    result = ok(measure("cpu_gil_released", model, payload=8192, algorithm=algorithm, rounds=2))
    assert result["items_done"] == 4
    values = {item["value"] for item in result["items"]}
    assert len(values) == 1  # the same payload gives the same digest / size everywhere


@pytest.mark.parametrize("model", RUNNABLE)
def test_io_file_writes_reads_and_cleans_up(model: str, tmp_path: Path) -> None:
    measured = measure("io_file", model, payload=65536, directory=str(tmp_path))
    result = ok(measured)
    assert [item["value"] for item in result["items"]] == [65536] * 4
    assert facts("io_file", model, measured) == {
        "bytes_written": 4 * 65536,
        "bytes_read": 4 * 65536,
    }
    assert list(tmp_path.iterdir()) == []  # the trial's folder is gone


@pytest.mark.parametrize("model", RUNNABLE)
def test_io_network_round_trips_reach_the_server(model: str) -> None:
    measured = measure("io_network", model, payload=100_000, latency=0.01)
    result = ok(measured)
    expected = zlib.crc32(payload_bytes(100_000))
    assert [item["value"] for item in result["items"]] == [expected] * 4
    assert facts("io_network", model, measured)["requests"] == 4
    assert min(item["latency_s"] for item in result["items"]) >= 0.01


@pytest.mark.parametrize("model", RUNNABLE)
def test_mixed_spends_the_cpu_share_on_cpu(model: str) -> None:
    result = ok(measure("mixed", model, seconds=0.04, cpu_share=0.5))
    assert result["items_done"] == 4
    for item in result["items"]:
        assert item["service_s"] >= 0.04 * 0.95  # 20 ms of CPU time, then a 20 ms wait
        if item["item_cpu_s"] is not None:
            assert item["item_cpu_s"] >= 0.02 * 0.95


def shared_memory_blocks() -> set[str]:
    """multiprocessing.shared_memory blocks (POSIX names start with psm_)."""
    shm = Path("/dev/shm")
    return {name for name in os.listdir(shm) if name.startswith("psm_")} if shm.is_dir() else set()


@pytest.mark.parametrize("model", RUNNABLE)
@pytest.mark.parametrize("transport", ["pickle", "shared_memory"])
def test_transfer_moves_the_payload_both_ways(model: str, transport: str) -> None:
    before = shared_memory_blocks()
    measured = measure("transfer", model, payload=300_000, transport=transport)
    result = ok(measured)
    assert [item["value"] for item in result["items"]] == [300_000] * 4
    crosses = model in PROCESS_MODELS
    assert facts("transfer", model, measured) == {
        "bytes_moved": 4 * 2 * 300_000,
        "crosses_processes": float(crosses),
        "shared_memory": float(crosses and transport == "shared_memory"),
    }
    assert shared_memory_blocks() <= before  # every block was unlinked
    assert "leaked" not in result.get("output", "")


@pytest.mark.parametrize("model", RUNNABLE)
@pytest.mark.parametrize("lock", ["with", "without"])
def test_sync_counts_lost_updates_and_loses_none_under_a_lock(model: str, lock: str) -> None:
    measured = measure("sync", model, workers=2, items=4, increments=5000, lock=lock)
    assert [item["value"] for item in ok(measured)["items"]] == [5000] * 4
    found = facts("sync", model, measured)
    assert found["expected_count"] == 4 * 5000
    assert found["final_count"] + found["lost_updates"] == 4 * 5000
    if lock == "with":
        assert found["lost_updates"] == 0
    else:
        assert 0 <= found["lost_updates"] < 4 * 5000


@pytest.mark.parametrize("model", RUNNABLE)
def test_fault_exception_fails_one_item_only(model: str) -> None:
    measured = measure("fault", model, items=6, mode="exception", item=2)
    assert measured.status == "error"
    assert measured.result["items_done"] == 5
    assert "fault injected into item 2" in measured.error
    assert facts("fault", model, measured) == {
        "others_finished": 5,
        "items_failed": 1,
        "pool_broken": 0.0,
        "trial_process_survived": 1.0,
    }


@pytest.mark.parametrize("mode", ["exit", "segfault"])
@pytest.mark.parametrize("model", RUNNABLE)
def test_fault_hard_crash_outcome_per_model(model: str, mode: str) -> None:
    measured = measure("fault", model, items=6, mode=mode, item=2)
    found = facts("fault", model, measured)
    if model in PROCESS_MODELS:
        # the trial's own process lives on; ProcessPoolExecutor marks the whole pool broken
        assert measured.status == "error"
        assert "BrokenProcessPool" in measured.error
        assert found["pool_broken"] == 1.0
        assert found["trial_process_survived"] == 1.0
        assert found["items_failed"] >= 1
        assert found["others_finished"] + found["items_failed"] == 6
    else:
        # a thread (or the main loop) that exits or segfaults takes the whole process down
        assert measured.status == "crashed"
        assert ("SIGSEGV" if mode == "segfault" else "exit code 70") in measured.error
        assert found["trial_process_survived"] == 0.0
        assert found["pool_broken"] is None
        assert 0 <= found["others_finished"] <= 2  # only items before the fault can finish
    if model == "sequential":
        assert found["others_finished"] == 2  # items 0 and 1, recorded in the progress file


@pytest.mark.parametrize("model", ["threads", "processes-fork", "processes-spawn"])
def test_memory_footprint_counts_every_worker(model: str) -> None:
    size = 32 * 2**20
    measured = measure("memory", model, workers=2, items=2, payload=size, seconds=0.3)
    ok(measured)
    found = facts("memory", model, measured)
    # both workers hold a private copy at once: at least half of it per worker is seen
    assert found["uss_per_worker_bytes"] >= 0.5 * size
    assert found["pss_per_worker_bytes"] >= found["uss_per_worker_bytes"]
    assert measured.peak_uss_bytes <= measured.peak_pss_bytes <= measured.peak_rss_bytes


@pytest.mark.parametrize("model", ["sequential", "threads", "processes-fork"])
def test_every_trial_records_tree_measurements(model: str) -> None:
    measured = measure("cpu_pure", model, iterations=200_000)
    result = ok(measured)
    switches = (result["ctx_switches_voluntary"], result["ctx_switches_involuntary"])
    assert all(isinstance(count, int) for count in switches), switches  # getrusage's counts
    if model != "sequential":
        assert switches[0] > 0  # the main thread blocked, waiting for its workers
    row = records.trial_row(1, 1, matrix.TrialPlan(0, matrix_cell(model), 0, False), measured)
    assert (row.ctx_switches_voluntary, row.ctx_switches_involuntary) == switches
    assert row.throughput_items_s == pytest.approx(4 / result["work_s"])
    assert 0 < row.cpu_utilisation <= (os.cpu_count() or 1) * 1.2
    assert row.peak_uss_bytes is not None
    assert row.switch_interval_s == sys.getswitchinterval()
    assert row.python_implementation == sys.implementation.name


def matrix_cell(model: str) -> matrix.Cell:
    return matrix.Cell(0, "cpu_pure", model, 2, 1024, sys.executable)


# -- physical sanity, judged by the product's rule (helpers.judge_in_rounds) ---------------------
@pytest.mark.timing
def test_io_network_four_threads_beat_sequential() -> None:
    """Eight requests with 50 ms of server latency: four threads are more than 2.5× as fast
    as sequential (the interval of the speedup lies above 2.5: margin 1.5). The control:
    two threads (2× at best) are judged the same way and ruled out, so the bound bites."""
    options = {"items": 8, "latency": 0.05}
    workers = {"sequential": 1, "threads": 4, "two threads": 2}
    claim, control = judge_in_rounds(
        lambda name: work_s("io_network", name.split()[-1], workers=workers[name], **options),
        list(workers),
        [
            Question("sequential", "threads", 1.5),
            Question("sequential", "two threads", 1.5, control=True),
        ],
    )
    assert claim.decision is Decision.MORE, claim
    assert control.decision.rules_out_more, control


@pytest.mark.timing
def test_gil_released_c_code_scales_on_two_threads() -> None:
    """sha256 over 4 MiB blocks releases the GIL: two threads are more than 1.3× as fast as
    sequential (margin 0.30). The control is test_worker.py's
    test_cpu_pure_two_threads_gain_nothing_under_the_gil: the same judgement (margin,
    rule, rounds) rules that gain out for pure-Python work, which holds the GIL."""
    # about 0.25 s of hashing per sequential trial: scheduler noise on a shared VM is small
    options = {"items": 4, "payload": 4 * 2**20, "algorithm": "sha256", "rounds": 24}
    workers = {"sequential": 1, "threads": 2}
    busy = other_programs_now()
    (claim,) = judge_in_rounds(
        lambda model: work_s("cpu_gil_released", model, workers=workers[model], **options),
        list(workers),
        [Question("sequential", "threads", 0.30)],
    )
    # beside a busy program (a core of two taken) two threads have nothing to gain, and a
    # run would warn (test_advice_runs checks the warning on a real one)
    busy += other_programs_now()
    assert claim.decision is Decision.MORE or busy, (claim, busy)


@pytest.mark.timing
def test_transfer_to_processes_costs_more_per_byte_than_to_threads() -> None:
    """The same bytes moved (4 items of 16 MiB, both ways): processes take more than 1.1×
    the threads' time (the product's default margin), so more per byte. The control: a
    second threads cell, judged against the first the same way, is not called costlier."""
    options = {"items": 4, "payload": 16 * 2**20, "workers": 2}
    claim, control = judge_in_rounds(
        lambda name: work_s("transfer", name.split()[-1], **options),
        ["threads", "processes-fork", "again threads"],
        [
            Question("processes-fork", "threads", 0.10),
            Question("again threads", "threads", 0.10, control=True),
        ],
    )
    assert claim.decision is Decision.MORE, claim
    assert control.decision is not Decision.MORE, control


def test_a_pool_that_breaks_while_items_are_submitted_still_reports_every_item() -> None:
    measured = measure("fault", "processes-fork", items=3000, mode="exit", item=0, seconds=0.0)
    assert measured.status == "error"
    found = facts("fault", "processes-fork", measured)
    assert found["pool_broken"] == 1.0
    assert found["others_finished"] + found["items_failed"] == 3000
    assert len(measured.result["items"]) == 3000
