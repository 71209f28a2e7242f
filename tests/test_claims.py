"""Verdicts on constructed result sets: each outcome of each kind of claim."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from pipeline.analysis import claims
from pipeline.analysis.stats import SUMMARY_COLUMNS
from pipeline.status import Verdict

from .claim_runs import Run


def test_every_claim_is_not_measured_on_an_empty_run() -> None:
    empty = pd.DataFrame(columns=SUMMARY_COLUMNS)
    found = claims.verdicts(empty, pd.DataFrame(), pd.DataFrame())
    assert len(found) == len(claims.CLAIMS) == 11
    assert {v.verdict for v in found} == {Verdict.NOT_MEASURED}


def test_threads_without_gain_under_the_gil_support_the_gil_claim() -> None:
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", "threads", 2, 1.05)
    run.cell("cpu_pure", "threads", 4, 1.1)
    verdict = run.verdicts()["gil_threads_cpu"]
    assert verdict.verdict == Verdict.SUPPORTED
    assert "cpu_pure threads ×2, 1 KiB: 0.95×" in verdict.evidence[0]
    assert verdict.conditions == "Python 3.11.7, GIL on"


@pytest.mark.parametrize(
    ("model", "claim", "says"),
    [
        ("threads", "gil_threads_cpu", "though the GIL was on"),
        ("subinterpreters", "subinterpreters", "subinterpreters ran pure-Python CPU work"),
    ],
)
def test_a_model_that_scales_on_cpu_pure_contradicts_its_claim(
    model: str, claim: str, says: str
) -> None:
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", model, 2, 0.5)
    verdict = run.verdicts()[claim]
    assert verdict.verdict == Verdict.CONTRADICTED
    assert says in verdict.summary
    assert "2.00×" in verdict.summary


def test_a_gil_threads_gain_on_one_core_is_said_not_to_be_parallel() -> None:
    """Threads faster than sequential with the GIL on while keeping one core busy (seen on
    the reference VM): the verdict says the gain was not parallel execution; with two
    cores' worth of CPU time it says how many cores, and no more."""
    not_parallel = (
        "one thread ran at a time, so what it gained over sequential was not parallel execution"
    )
    for cpu_s, cores, one_at_a_time in ((0.8, "1.00", True), (1.6, "2.00", False)):
        run = Run()
        run.cell("cpu_pure", "sequential", 1, 1.0)
        run.cell("cpu_pure", "threads", 2, 0.8, cpu_s=cpu_s)
        verdict = run.verdicts()["gil_threads_cpu"]
        assert verdict.verdict == Verdict.CONTRADICTED
        assert f"cpu_pure threads ×2, 1 KiB kept {cores} cores busy" in verdict.summary
        assert (not_parallel in verdict.summary) is one_at_a_time, verdict.summary


@pytest.mark.parametrize(
    ("threads_s", "verdict", "says"), [(0.925, "inconclusive", True), (1.0, "supported", False)]
)
def test_threads_faster_but_undecided_say_their_cores_too(threads_s, verdict, says) -> None:
    """An inconclusive GIL claim whose threads ran faster than sequential (interval above
    1, reaching the margin) names the cores too; threads as fast as sequential do not."""
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0, spread=0.05)
    run.cell("cpu_pure", "threads", 2, threads_s, spread=0.05, cpu_s=threads_s)
    found = run.verdicts()["gil_threads_cpu"]
    assert found.verdict == verdict, found.headline
    assert ("kept 1.00 cores busy" in found.summary) is says, found.summary


def test_the_thread_claims_are_decided_against_one_thread_where_the_run_has_it() -> None:
    """Against threads ×1 when the run has it: every thread 15% faster than the main
    thread (the reference VM's effect) is not a gain of parallelism, and the summary says
    how sequential compared; without threads ×1, the same cells contradict the claim
    against sequential. With the GIL off the free-threading claim uses threads ×1 too."""

    def cells(run: Run, *, one: bool, gil: bool = True, speedup: float = 1.0) -> None:
        run.cell("cpu_pure", "sequential", 1, 1.0, gil=gil)
        if one:
            run.cell("cpu_pure", "threads", 1, 0.85, cpu_s=0.85, gil=gil)
        for workers in (2, 4):
            run.cell("cpu_pure", "threads", workers, 0.85 / speedup, cpu_s=0.85, gil=gil)

    run = Run()
    cells(run, one=True)
    found = run.verdicts()["gil_threads_cpu"]
    assert found.verdict == Verdict.SUPPORTED, found.summary
    assert found.summary.startswith("threads ruled a gain over threads ×1 out")
    assert "sequential, on the process's main thread, took 1.18× [" in found.summary
    assert "the time of cpu_pure threads ×1, 1 KiB (Python 3.11.7, GIL on;" in found.summary
    assert found.evidence[0].startswith("cpu_pure threads ×2, 1 KiB vs threads ×1: 1.00×")
    assert found.comparisons == 2

    run = Run()
    cells(run, one=False)
    found = run.verdicts()["gil_threads_cpu"]
    assert found.verdict == Verdict.CONTRADICTED, found.summary
    assert "faster than sequential in 1 of 1 series" in found.summary
    assert "main thread" not in found.summary

    # a threads ×1 cell without an ok trial: decided against sequential, not dropped
    run = Run()
    cells(run, one=False)
    run.cell("cpu_pure", "threads", 1, 0.85, status="error")
    found = run.verdicts()["gil_threads_cpu"]
    assert found.verdict == Verdict.CONTRADICTED, found.summary
    assert found.comparisons == 2

    run = Run()
    cells(run, one=True, gil=False, speedup=2.0)
    free = run.verdicts()["free_threading"]
    assert free.verdict == Verdict.CONTRADICTED, free.summary
    assert "cpu_pure threads ×2, 1 KiB vs threads ×1: 2.00×" in free.summary
    # 2.35× over sequential is above the 2 cores; 2.00× over threads ×1 is not flagged
    assert "physically implausible" not in " ".join(free.evidence)


def test_free_threading_is_judged_apart_from_the_gil_claim() -> None:
    """Cells that ran with the GIL off make the free-threading claim out of date without
    touching the GIL claim, which the GIL-on interpreter of the same run supports."""
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", "threads", 2, 1.05)
    run.cell("cpu_pure", "sequential", 1, 1.2, gil=False, interpreter="3.13t")
    run.cell("cpu_pure", "threads", 2, 0.6, gil=False, interpreter="3.13t")
    found = run.verdicts()
    assert found["gil_threads_cpu"].verdict == Verdict.SUPPORTED
    assert found["gil_threads_cpu"].conditions == "Python 3.11.7, GIL on"
    free = found["free_threading"]
    assert free.verdict == Verdict.CONTRADICTED
    assert free.summary.startswith("out of date: with the GIL off")
    assert "free-threaded build, GIL off" in free.conditions
    assert "2.00×" in free.summary
    # one thread without the GIL is slower here: the summary says what that costs
    assert free.summary.endswith(
        "but one thread with the GIL off took 1.20× the time of python3 sequential (1.200 s "
        "vs 1.000 s, medians, 1 KiB payload), so its best threads cell (×2) was 1.67× as "
        "fast as that"
    )


def test_free_threading_and_subinterpreters_say_how_to_measure_them() -> None:
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", "threads", 2, 1.0)
    found = run.verdicts()
    assert found["free_threading"].verdict == Verdict.NOT_MEASURED
    assert "make python-ft" in found["free_threading"].summary
    assert found["subinterpreters"].verdict == Verdict.NOT_MEASURED
    assert "Python 3.14" in found["subinterpreters"].summary


def test_processes_gain_everywhere_nowhere_or_in_part() -> None:
    def processes(*walls: float, big: float | None = None) -> str:
        run = Run()
        run.cell("cpu_pure", "sequential", 1, 1.0)
        for workers, wall in zip((2, 4), walls, strict=False):
            run.cell("cpu_pure", "processes", workers, wall)
        if big is not None:  # a second payload, with its own baseline
            run.cell("cpu_pure", "sequential", 1, 1.0, payload=1 << 20)
            run.cell("cpu_pure", "processes", 4, big, payload=1 << 20)
        return run.verdicts()["processes_cpu"].verdict

    assert processes(0.55, 0.5) == Verdict.SUPPORTED
    assert processes(1.2, 1.3) == Verdict.CONTRADICTED
    assert processes(0.55, 0.5, big=1.3) == Verdict.NUANCED


def test_one_rule_for_gain_claims_some_count_gains_or_every_count_rules_it_out() -> None:
    """A series (one model on one task) gains when some worker count does, and the count
    that carried it is named; it rules a gain out only when every count does. The same
    rule holds for a claim that expects a gain and for one that expects none."""
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", "processes", 2, 1.3)  # a pool of 2 that lost
    run.cell("cpu_pure", "processes", 4, 0.5)
    run.cell("cpu_pure", "threads", 2, 0.5)  # a GIL-threads gain at 2
    run.cell("cpu_pure", "threads", 4, 1.0)
    found = run.verdicts()
    assert found["processes_cpu"].verdict == Verdict.SUPPORTED
    assert found["processes_cpu"].comparisons == 2
    assert "cpu_pure processes ×4, 1 KiB: 2.00×" in found["processes_cpu"].summary
    assert found["gil_threads_cpu"].verdict == Verdict.CONTRADICTED
    assert "cpu_pure threads ×2, 1 KiB: 2.00×" in found["gil_threads_cpu"].summary
    assert found["gil_threads_cpu"].comparisons == 2


def test_a_gain_at_fewer_workers_is_not_called_contradicted() -> None:
    """The case that made the largest-count rule print a false "contradicted": processes
    ×2 gain 1.8× while ×4 lose; the claim is supported, carried by ×2."""
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", "processes", 2, 0.55)
    run.cell("cpu_pure", "processes", 4, 1.3)
    run.cell("io_sleep", "sequential", 1, 1.0)
    run.cell("io_sleep", "threads", 2, 0.5)
    run.cell("io_sleep", "threads", 4, 1.3)
    found = run.verdicts()
    for claim, carried in (
        ("processes_cpu", "cpu_pure processes ×2, 1 KiB: 1.82×"),
        ("threads_io", "io_sleep threads ×2, 1 KiB: 2.00×"),
    ):
        assert found[claim].verdict == Verdict.SUPPORTED, found[claim]
        assert carried in found[claim].summary


def test_contradicting_a_gain_claim_needs_every_count_to_rule_a_gain_out() -> None:
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0, spread=0.02)
    run.cell("cpu_pure", "processes", 2, 1.2, spread=0.02)  # rules a gain out
    run.cell("cpu_pure", "processes", 4, 0.95, spread=0.4)  # undecided
    assert run.verdicts()["processes_cpu"].verdict == Verdict.INCONCLUSIVE
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0, spread=0.02)
    run.cell("cpu_pure", "processes", 2, 1.2, spread=0.02)
    run.cell("cpu_pure", "processes", 4, 1.3, spread=0.02)
    verdict = run.verdicts()["processes_cpu"]
    assert verdict.verdict == Verdict.CONTRADICTED
    assert "at every worker count" in verdict.summary


def test_noisy_cells_are_inconclusive_not_contradicted() -> None:
    run = Run()
    run.cell("io_sleep", "sequential", 1, 1.0, spread=0.6)
    run.cell("io_sleep", "threads", 2, 0.9, spread=0.6)
    verdict = run.verdicts()["threads_io"]
    assert verdict.verdict == Verdict.INCONCLUSIVE
    assert "more repetitions would decide" in verdict.summary


def test_gil_releasing_c_code_that_scales_says_the_explainer_is_out_of_date() -> None:
    run = Run()
    run.cell("cpu_gil_released", "sequential", 1, 1.0, payload=4 << 20)
    run.cell("cpu_gil_released", "threads", 2, 0.55, payload=4 << 20)
    verdict = run.verdicts()["gil_released_c_code"]
    assert verdict.verdict == Verdict.CONTRADICTED
    assert verdict.summary.startswith("out of date: hashlib and zlib release the GIL")


def test_memory_and_startup_of_processes_against_threads() -> None:
    run = Run()
    run.cell("memory", "threads", 2, 1.0, pss=10e6, startup_s=0.001)
    run.cell("memory", "processes", 2, 1.0, pss=25e6, startup_s=0.02)
    found = run.verdicts()
    assert found["memory"].verdict == Verdict.SUPPORTED
    assert found["memory"].summary.startswith("processes needed 2.50× to 2.50× the memory")
    assert found["startup"].verdict == Verdict.SUPPORTED


def test_less_memory_for_processes_contradicts() -> None:
    run = Run()
    run.cell("memory", "threads", 2, 1.0, pss=20e6)
    run.cell("memory", "processes-fork", 2, 1.0, pss=10e6)
    assert run.verdicts()["memory"].verdict == Verdict.CONTRADICTED


def test_communication_grows_with_payload() -> None:
    run = Run()
    for payload, extra in ((1024, 0.01), (1 << 20, 0.1)):
        run.cell("transfer", "threads", 2, 0.01, payload=payload, variant="transport=pickle")
        run.cell(
            "transfer", "processes", 2, 0.01 + extra, payload=payload, variant="transport=pickle"
        )
    verdict = run.verdicts()["communication"]
    assert verdict.verdict == Verdict.SUPPORTED
    assert "(1 KiB: +10.0 ms, 1 MiB: +100.0 ms) grows with size" in verdict.summary


@pytest.mark.parametrize(
    ("thread_lost", "locked_lost", "expected"),
    [
        (0, 0, Verdict.NUANCED),
        (120, 0, Verdict.SUPPORTED),
        (120, 5, Verdict.CONTRADICTED),
    ],
)
def test_shared_counter(thread_lost: int, locked_lost: int, expected: str) -> None:
    run = Run()
    unlocked = {"threads": thread_lost, "processes": 400}
    for model, lock in itertools.product(unlocked, ("without", "with")):
        lost = unlocked[model] if lock == "without" else locked_lost
        run.cell(
            "sync",
            model,
            2,
            0.1,
            variant=f"lock={lock}",
            facts={"lost_updates": lost, "expected_count": 1000},
        )
    verdict = run.verdicts()["shared_state"]
    assert verdict.verdict == expected
    if expected == Verdict.NUANCED:
        assert "processes sharing a multiprocessing.Value without the lock lost up to 40.0%" in (
            verdict.summary
        )


@pytest.mark.parametrize(
    ("pool_broken", "expected"), [(1.0, Verdict.NUANCED), (0.0, Verdict.SUPPORTED)]
)
def test_faults(pool_broken: float, expected: str) -> None:
    run = Run()
    crash = {"trial_process_survived": 0.0, "others_finished": 0.0}
    run.cell("fault", "threads", 2, 0.0, variant="mode=exit", status="crashed", facts=crash)
    run.cell(
        "fault",
        "processes",
        2,
        0.0,
        variant="mode=exit",
        status="error",
        facts={"trial_process_survived": 1.0, "others_finished": 1.0, "pool_broken": pool_broken},
    )
    verdict = run.verdicts()["fault_isolation"]
    assert verdict.verdict == expected
    assert verdict.evidence[0].startswith(
        "fault (mode=exit) threads ×2, 1 KiB: program survived in 0/10"
    )


def test_plain_text_lines() -> None:
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", "threads", 2, 1.0)
    lines = list(claims.iter_lines([run.verdicts()["gil_threads_cpu"]]))
    assert lines[0] == (
        "[SUPPORTED] Threads cannot run pure-Python CPU work in parallel: under the GIL they "
        "give no speedup."
    )
    assert lines[-1] == "    under: Python 3.11.7, GIL on"


def test_unrelated_cells_leave_a_claims_verdict_unchanged() -> None:
    """A claim's family is the comparisons it rests on, not the run's: adding cells of
    other tasks changes neither its verdict nor its numbers."""
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0, spread=0.05)
    run.cell("cpu_pure", "threads", 2, 1.02, spread=0.05)
    alone = run.verdicts()["gil_threads_cpu"]
    for workers in (2, 4, 8):
        run.cell("io_sleep", "sequential", 1, 1.0, spread=0.3)
        run.cell("io_sleep", "threads", workers, 1.0 / workers, spread=0.3)
        run.cell("io_sleep", "asyncio", workers, 1.0 / workers, spread=0.3)
    crowded = run.verdicts()["gil_threads_cpu"]
    assert alone.verdict == crowded.verdict == Verdict.SUPPORTED
    assert alone.evidence == crowded.evidence


def test_a_physically_implausible_speedup_is_flagged_in_the_verdict_evidence() -> None:
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", "processes", 2, 0.4)  # 2.5× from 2 workers on 2 cores
    run.cell("cpu_pure", "processes", 4, 0.55)  # 1.8×: possible
    verdict = run.verdicts()["processes_cpu"]
    flagged = [line for line in verdict.evidence if "physically implausible" in line]
    assert len(flagged) == 1  # ×2, not ×4
    run = Run()
    run.cell("cpu_pure", "sequential", 1, 1.0)
    run.cell("cpu_pure", "processes", 2, 0.4)
    (line,) = run.verdicts()["processes_cpu"].evidence
    assert "cpu_pure processes ×2, 1 KiB: 2.50×" in line
    assert "physically implausible: speedup [" in line
    assert "lies above the 2× that its usable cores allow (likely cause:" in line


def test_processes_are_set_against_the_threads_of_their_own_host() -> None:
    """hosts: each: beta's processes against beta's threads (50 MB), not alpha's (10 MB)."""
    run = Run()
    for host, threads_pss in (("alpha", 10e6), ("beta", 50e6)):
        run.cell("memory", "threads", 2, 1.0, pss=threads_pss, host=host)
        run.cell("memory", "processes", 2, 1.0, pss=25e6, host=host)
    memory = run.verdicts()["memory"]
    assert memory.verdict == Verdict.NUANCED  # more on alpha, less on beta
    assert memory.summary.startswith("processes needed 0.50× to 2.50× the memory")
    assert any(
        line.startswith("memory processes ×2, 1 KiB on beta vs threads: 0.50×")
        for line in memory.evidence
    )
