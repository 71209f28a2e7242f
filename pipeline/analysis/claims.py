"""Verdicts on the seed explainer's claims, from a run's measurements.

Each claim of ``../shared/seed/000_8b66f138267b8003.txt`` is a testable hypothesis over
the run's cells. A claim gathers the comparisons it rests on (Mann-Whitney U on the
trials, ratio of medians with a bootstrap interval); every comparison of the run is then
Holm-corrected together; then each claim decides: supported, contradicted, nuanced, or
not measured, with the numbers, the cells, and the conditions (interpreter, GIL state)
under which it holds. Pure functions over DataFrames: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..cells import variant_text
from ..units import format_bytes
from ..worker.concurrency import PROCESS_MODELS
from .evidence import (
    ALPHA,
    CONTRADICTED,
    INCONCLUSIVE,
    IO_TASKS,
    NOT_MEASURED,
    NUANCED,
    SUPPORTED,
    Evidence,
    RunData,
    Verdict,
    adjust,
    processes_versus_threads,
    versus_baseline,
)
from .fact_claims import fault_isolation, shared_state

# A speedup is a gain when it is significant, its interval lies above 1 and its median
# ratio is above GAIN; it is no gain when its interval's high end is below NO_GAIN. A
# resource is larger when significant, with its interval above 1 and its ratio above MORE.
GAIN = 1.10
NO_GAIN = 1.20
MORE = 1.05


def _gather(data: RunData) -> None:
    for claim, spec in SPEEDUP_CLAIMS.items():
        cells = data.cells(spec.tasks, spec.models)
        if spec.gil is not None:
            gil_on = [data.gil_on(cell) for _, cell in cells.iterrows()]
            cells = cells[pd.Series(gil_on, index=cells.index, dtype=bool).eq(spec.gil)]
        versus_baseline(data, claim, cells)
    memory_tasks = ["memory"] if "memory" in set(data.summary["task"]) else data.summary["task"]
    for task in dict.fromkeys(memory_tasks):
        processes_versus_threads(data, "memory", str(task), "peak_pss_bytes")
    # start-up does not depend on the task: the plainest ones say it with fewer comparisons
    present = list(dict.fromkeys(data.summary["task"]))
    for task in [t for t in ("cpu_pure", "io_sleep") if t in present] or present:
        processes_versus_threads(data, "startup", str(task), "startup_s")
    processes_versus_threads(data, "communication", "transfer", "wall_s")


# -- deciding ---------------------------------------------------------------------------------
def _gains(e: Evidence) -> bool:
    return e.significant and e.comparison.ratio_ci_low > 1.0 and e.comparison.ratio > GAIN


def _no_gain(e: Evidence) -> bool:
    return not math.isnan(e.comparison.ratio_ci_high) and e.comparison.ratio_ci_high < NO_GAIN


def _larger(e: Evidence) -> bool:
    return e.significant and e.comparison.ratio_ci_low > 1.0 and e.comparison.ratio > MORE


def _lines(evidence: list[Evidence], unit: str = "×") -> tuple[str, ...]:
    return tuple(f"{e.label}: {e.ratio_text(unit)} ({e.conditions})" for e in evidence)


def _conditions(evidence: list[Evidence]) -> str:
    return "; ".join(dict.fromkeys(e.conditions for e in evidence))


INCONCLUSIVE_TEXT = (
    "no comparison is significant after Holm's correction over the run's comparisons and "
    "the intervals do not rule a gain out (best: {best}, {ratio:.2f}×): more repetitions "
    "would decide"
)


def _or(value: float, default: float) -> float:
    return default if math.isnan(value) else value


def _speedup_claim(
    data: RunData, claim: str, statement: str, expect_gain: bool, explain: dict[str, str]
) -> Verdict:
    """A claim about whether a model speeds a task up (against its sequential baseline)."""
    evidence = data.evidence.get(claim, [])
    if not evidence:
        return Verdict(claim, statement, NOT_MEASURED, explain["missing"])
    gains = [e for e in evidence if _gains(e)]
    flat = [e for e in evidence if _no_gain(e)]
    best = max(evidence, key=lambda e: _or(e.comparison.ratio, -1.0))
    if len(gains) == len(evidence):
        verdict = SUPPORTED if expect_gain else CONTRADICTED
    elif len(flat) == len(evidence):
        verdict = CONTRADICTED if expect_gain else SUPPORTED
    elif gains:
        verdict = NUANCED
    else:
        verdict = INCONCLUSIVE
    summary = explain.get(verdict, INCONCLUSIVE_TEXT).format(
        best=best.label, ratio=best.comparison.ratio, gains=len(gains), n=len(evidence)
    )
    return Verdict(claim, statement, verdict, summary, _lines(evidence), _conditions(evidence))


def _resource_claim(data: RunData, claim: str, statement: str, what: str, unit: str) -> Verdict:
    """A claim that processes need more of a resource than threads."""
    evidence = data.evidence.get(claim, [])
    if not evidence:
        return Verdict(
            claim, statement, NOT_MEASURED, f"no cell pairs of threads and processes for {what}"
        )
    larger = [e for e in evidence if _larger(e)]
    smaller = [
        e
        for e in evidence
        if e.significant and e.comparison.ratio_ci_high < 1.0 and e.comparison.ratio < 1 / MORE
    ]
    low = min(e.comparison.ratio for e in evidence)
    high = max(e.comparison.ratio for e in evidence)
    if len(larger) == len(evidence):
        verdict = SUPPORTED
    elif smaller and not larger:
        verdict = CONTRADICTED
    else:
        verdict = NUANCED if larger or smaller else INCONCLUSIVE
    summary = (
        f"processes needed {low:.2f}× to {high:.2f}× the {what} of threads; significantly "
        f"more in {len(larger)} and less in {len(smaller)} of {len(evidence)} comparisons "
        f"(Holm-corrected, α={ALPHA})"
    )
    return Verdict(
        claim, statement, verdict, summary, _lines(evidence, unit), _conditions(evidence)
    )


def _communication(data: RunData) -> Verdict:
    statement = (
        "Moving data to processes (IPC) costs more than sharing it between threads, and more "
        "with bigger payloads."
    )
    verdict = _resource_claim(data, "communication", statement, "time to move the same data", "×")
    evidence = data.evidence.get("communication", [])
    if verdict.verdict == NOT_MEASURED:
        return verdict
    growth = _growth_with_payload(evidence)
    summary = f"{verdict.summary}; {growth}"
    return Verdict(
        verdict.claim, statement, verdict.verdict, summary, verdict.evidence, verdict.conditions
    )


def _growth_with_payload(evidence: list[Evidence]) -> str:
    """How the extra time of processes over threads grows with the payload."""
    extra: dict[int, list[float]] = {}
    for e in evidence:
        c = e.comparison
        extra.setdefault(e.payload_bytes, []).append(c.median_second - c.median_first)
    if len(extra) < 2:
        return "one payload size only, so growth with size is not measured"
    points = ", ".join(
        f"{format_bytes(size)}: +{np.median(values) * 1e3:.1f} ms"
        for size, values in sorted(extra.items())
    )
    rising = all(
        np.median(extra[a]) < np.median(extra[b])
        for a, b in zip(sorted(extra), sorted(extra)[1:], strict=False)
    )
    trend = "grows" if rising else "does not grow steadily"
    return f"extra time of processes by payload ({points}) {trend} with size"


BEST = " (best: {best}, {ratio:.2f}×)"


class SpeedupClaim(NamedTuple):
    """A claim about whether some models speed some tasks up against sequential."""

    tasks: tuple[str, ...]
    models: tuple[str, ...]
    statement: str
    expect_gain: bool
    explain: dict[str, str]  # summary per verdict, and "missing"
    gil: bool | None = None  # only cells that ran with the GIL on (True) or off (False)


SPEEDUP_CLAIMS = {
    "gil_threads_cpu": SpeedupClaim(
        ("cpu_pure",),
        ("threads",),
        "Threads cannot run pure-Python CPU work in parallel: under the GIL they give no speedup.",
        False,
        {
            "missing": "no cpu_pure cells with threads and a sequential baseline",
            SUPPORTED: "no threads cell of cpu_pure was faster than sequential" + BEST,
            CONTRADICTED: "threads ran pure-Python CPU work faster than sequential in {gains} "
            "of {n} cells" + BEST + ", though the GIL was on",
            NUANCED: "threads gained in {gains} of {n} cells" + BEST,
        },
        gil=True,
    ),
    "free_threading": SpeedupClaim(
        ("cpu_pure",),
        ("threads",),
        "Python threads can never run Python code in parallel (the explainer predates "
        "free-threaded CPython, 3.13 and later, where the GIL can be off).",
        False,
        {
            "missing": "no cpu_pure threads cells ran with the GIL off: add a free-threaded "
            "interpreter with PYTHON_GIL=0 (make python-ft; experiments/interpreters.yaml)",
            SUPPORTED: "even with the GIL off, threads did not beat sequential" + BEST,
            CONTRADICTED: "out of date: with the GIL off (free-threaded build) threads ran "
            "pure-Python CPU work in parallel in {gains} of {n} cells" + BEST,
            NUANCED: "with the GIL off threads gained in {gains} of {n} cells" + BEST,
        },
        gil=False,
    ),
    "subinterpreters": SpeedupClaim(
        ("cpu_pure",),
        ("subinterpreters",),
        "Only processes get around the GIL for CPU work (the explainer predates "
        "subinterpreters, each with a GIL of its own: InterpreterPoolExecutor, Python 3.14).",
        False,
        {
            "missing": "no subinterpreters cells of cpu_pure ran: they need Python 3.14 or "
            "later, or the interpreters-pep-734 backport (skipped cells say why)",
            SUPPORTED: "subinterpreters did not beat sequential" + BEST,
            CONTRADICTED: "out of date: subinterpreters ran pure-Python CPU work in parallel "
            "in {gains} of {n} cells" + BEST,
            NUANCED: "subinterpreters gained in {gains} of {n} cells" + BEST + "; compare "
            "the payloads of the others: every item's arguments are pickled into the "
            "interpreter that runs it",
        },
    ),
    "processes_cpu": SpeedupClaim(
        ("cpu_pure",),
        PROCESS_MODELS,
        "Processes run CPU-bound work in parallel on several cores.",
        True,
        {
            "missing": "no cpu_pure cells with processes and a sequential baseline",
            SUPPORTED: "every processes cell of cpu_pure beat sequential" + BEST,
            CONTRADICTED: "no processes cell of cpu_pure beat sequential" + BEST,
            NUANCED: "processes beat sequential in {gains} of {n} cells" + BEST + "; the "
            "others had too few cores or too much overhead",
        },
    ),
    "gil_released_c_code": SpeedupClaim(
        ("cpu_gil_released",),
        ("threads",),
        "CPU-bound work gains nothing from threads (the explainer makes no exception for C "
        "code that releases the GIL).",
        False,
        {
            "missing": "no cpu_gil_released cells with threads and a sequential baseline",
            SUPPORTED: "threads did not speed up the C work here" + BEST + "; payloads under "
            "2 KiB keep hashlib's GIL held",
            CONTRADICTED: "out of date: hashlib and zlib release the GIL, and threads ran them "
            "in parallel in {gains} of {n} cells" + BEST,
            NUANCED: "threads gained on C code that releases the GIL in {gains} of {n} cells"
            + BEST,
        },
        gil=True,
    ),
    "threads_io": SpeedupClaim(
        IO_TASKS,
        ("threads",),
        "Threads suit I/O-bound work: while one waits, the others run.",
        True,
        {
            "missing": "no I/O cells (io_sleep, io_network, io_file) with threads",
            SUPPORTED: "threads beat sequential on every I/O cell" + BEST,
            CONTRADICTED: "threads did not beat sequential on any I/O cell" + BEST,
            NUANCED: "threads beat sequential in {gains} of {n} I/O cells" + BEST + "; the "
            "others are bound by something threads do not overlap (a disk's fsync, for one)",
        },
    ),
}
RESOURCE_CLAIMS = {
    "memory": (
        "Processes use more memory per worker than threads.",
        "memory (peak PSS of the process tree)",
    ),
    "startup": (
        "Creating processes costs more than creating threads.",
        "start-up time (until every worker is ready)",
    ),
}


def _speedup(claim: str) -> Callable[[RunData], Verdict]:
    spec = SPEEDUP_CLAIMS[claim]

    def judge(data: RunData) -> Verdict:
        verdict = _speedup_claim(data, claim, spec.statement, spec.expect_gain, spec.explain)
        if claim == "free_threading" and verdict.verdict != NOT_MEASURED:
            cost = _single_thread_cost(data)
            if cost:
                verdict = replace(verdict, summary=f"{verdict.summary}; {cost}")
        return verdict

    return judge


def _single_thread_cost(data: RunData) -> str:
    """What free threading costs one thread: the GIL-off sequential cpu_pure time against
    the fastest GIL-on interpreter's, and the best GIL-off threads cell against that (the
    first variant and payload that has all three)."""
    cells = data.cells("cpu_pure", ("sequential", "threads")).dropna(subset=["median_wall_s"])
    cells = cells.assign(variant=cells["variant"].map(variant_text))
    gil_on = pd.Series(
        [data.gil_on(cell) for _, cell in cells.iterrows()], index=cells.index, dtype=bool
    )
    for _, same in cells.groupby(["variant", "payload_bytes"], sort=False):
        on, off = same[gil_on[same.index]], same[~gil_on[same.index]]
        quickest = [
            group[group["model"].eq(model)].sort_values("median_wall_s").head(1)
            for group, model in ((on, "sequential"), (off, "sequential"), (off, "threads"))
        ]
        if not any(found.empty for found in quickest):
            fastest, free, best = (found.iloc[0] for found in quickest)
            break
    else:
        return ""
    slower = free["median_wall_s"] / fastest["median_wall_s"]
    versus = fastest["median_wall_s"] / best["median_wall_s"]
    return (
        f"but one thread with the GIL off took {slower:.2f}× the time of "
        f"{fastest['interpreter']} sequential ({free['median_wall_s']:.3f} s vs "
        f"{fastest['median_wall_s']:.3f} s, medians, {format_bytes(int(best['payload_bytes']))} "
        f"payload), so its best threads cell (×{int(best['workers'])}) was {versus:.2f}× as "
        "fast as that"
    )


def _resource(claim: str) -> Callable[[RunData], Verdict]:
    statement, what = RESOURCE_CLAIMS[claim]
    return lambda data: _resource_claim(data, claim, statement, what, "×")


CLAIMS: tuple[Callable[[RunData], Verdict], ...] = (
    *(_speedup(claim) for claim in SPEEDUP_CLAIMS),
    *(_resource(claim) for claim in RESOURCE_CLAIMS),
    _communication,
    shared_state,
    fault_isolation,
)


def verdicts(
    summary: pd.DataFrame, trials: pd.DataFrame, facts: pd.DataFrame, cores: int
) -> list[Verdict]:
    """A verdict on every claim of the explainer, from one run's cell summary, trials
    (the ``trial_results`` view) and task facts (the ``trial_facts`` view)."""
    summary = (
        summary.assign(variant=summary["variant"].map(variant_text))
        if "variant" in summary
        else summary.assign(variant="")
    )
    data = RunData(summary, trials, facts, cores)
    if not summary.empty:
        _gather(data)
        adjust(data)
    return [claim(data) for claim in CLAIMS]


def iter_lines(found: list[Verdict]) -> Iterator[str]:
    """Plain-text lines for a terminal: verdict, statement, summary, evidence."""
    for verdict in found:
        yield f"[{verdict.verdict.upper()}] {verdict.statement}"
        yield f"    {verdict.summary}"
        for line in verdict.evidence:
            yield f"      - {line}"
        if verdict.conditions:
            yield f"    under: {verdict.conditions}"
