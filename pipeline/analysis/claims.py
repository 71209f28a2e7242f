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
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..units import format_bytes
from .stats import Comparison, compare, holm

ALPHA = 0.05  # family-wise error rate over all comparisons of a run (Holm)
# A speedup is a gain when it is significant, its interval lies above 1 and its median
# ratio is above GAIN; it is no gain when its interval's high end is below NO_GAIN. A
# resource is larger when significant, with its interval above 1 and its ratio above MORE.
GAIN = 1.10
NO_GAIN = 1.20
MORE = 1.05

SUPPORTED, CONTRADICTED, NUANCED, INCONCLUSIVE, NOT_MEASURED = (
    "supported",
    "contradicted",
    "nuanced",
    "inconclusive",  # measured, but no comparison is significant after Holm's correction
    "not measured",
)
PROCESS_MODELS = ("processes", "processes-fork", "processes-spawn", "processes-forkserver")
IO_TASKS = ("io_sleep", "io_network", "io_file")


@dataclass
class Evidence:
    """One comparison a verdict rests on: ``second`` against ``first`` for one metric."""

    label: str
    metric: str
    comparison: Comparison
    conditions: str
    payload_bytes: int = 0
    p_adjusted: float = float("nan")

    @property
    def significant(self) -> bool:
        return not math.isnan(self.p_adjusted) and self.p_adjusted < ALPHA

    def ratio_text(self, unit: str = "×") -> str:
        c = self.comparison
        interval = (
            f" [{c.ratio_ci_low:.2f}, {c.ratio_ci_high:.2f}]"
            if not math.isnan(c.ratio_ci_low)
            else ""
        )
        p = "" if math.isnan(self.p_adjusted) else f", Holm p={self.p_adjusted:.3g}"
        return f"{c.ratio:.2f}{unit}{interval}{p}"


@dataclass(frozen=True)
class Verdict:
    """A claim of the explainer and what this run says of it."""

    claim: str
    statement: str
    verdict: str
    summary: str
    evidence: tuple[str, ...] = ()
    conditions: str = ""


@dataclass
class RunData:
    """What the claims look at: the run's cell summary, its trials and its task facts."""

    summary: pd.DataFrame
    trials: pd.DataFrame
    facts: pd.DataFrame
    cores: int
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def cells(self, task: str | tuple[str, ...], models: tuple[str, ...]) -> pd.DataFrame:
        """The cells of a task (or tasks) under the given models, ordered by position."""
        tasks = (task,) if isinstance(task, str) else task
        found = self.summary[self.summary["task"].isin(tasks) & self.summary["model"].isin(models)]
        return found.sort_values("cell_id")

    def baseline(self, cell: pd.Series) -> pd.Series | None:
        """The sequential cell of the same task, variant, payload and interpreter."""
        s = self.summary
        match = s[
            s["model"].eq("sequential")
            & s["task"].eq(cell["task"])
            & s["variant"].fillna("").eq(cell["variant"] or "")
            & s["payload_bytes"].eq(cell["payload_bytes"])
            & s["interpreter"].eq(cell["interpreter"])
        ]
        return None if match.empty else match.iloc[0]

    def sample(self, cell_id: int, metric: str) -> np.ndarray:
        """One metric over the ok trials of a cell."""
        t = self.trials
        rows = t[t["cell_id"].eq(cell_id) & t["status"].eq("ok")]
        return pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype="float64")

    def gil_on(self, cell: pd.Series) -> bool:
        """Whether the GIL was on in a cell's trials (on unless every one says off)."""
        t = self.trials
        states = t.loc[t["cell_id"].eq(cell["cell_id"]), "gil_enabled"].dropna()
        return states.empty or bool(states.astype(bool).any())

    def conditions(self, cell: pd.Series) -> str:
        """Interpreter and GIL state of a cell's trials, e.g. 'CPython 3.11.7, GIL on'."""
        t = self.trials[self.trials["cell_id"].eq(cell["cell_id"])]
        version = next(iter(t["python_version"].dropna()), "?") if "python_version" in t else "?"
        gil = t["gil_enabled"].dropna() if "gil_enabled" in t else pd.Series(dtype=bool)
        state = "GIL state unknown" if gil.empty else ("GIL on" if gil.all() else "GIL off")
        free = "free-threaded build, " if t.get("free_threaded_build", pd.Series()).any() else ""
        return f"Python {version}, {free}{state}"

    def fact(self, cell_id: int, name: str) -> np.ndarray:
        f = self.facts
        rows = f[f["cell_id"].eq(cell_id) & f["name"].eq(name)]
        return pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype="float64")

    def add(self, claim: str, evidence: Evidence) -> None:
        """Keep a comparison that has data on both sides."""
        if evidence.comparison.n_first and evidence.comparison.n_second:
            self.evidence.setdefault(claim, []).append(evidence)


def label(cell: pd.Series) -> str:
    """'cpu_pure threads ×2, 64 KiB' (with the variant when there is one)."""
    variant = f" ({cell['variant']})" if cell["variant"] else ""
    return (
        f"{cell['task']}{variant} {cell['model']} ×{int(cell['workers'])}, "
        f"{format_bytes(int(cell['payload_bytes']))}"
    )


# -- gathering comparisons --------------------------------------------------------------------
def _versus_baseline(data: RunData, claim: str, cells: pd.DataFrame) -> None:
    """Speedup evidence: each cell's wall times against its sequential baseline's (the
    ratio is baseline / cell, so above 1 means faster)."""
    for _, cell in cells[cells["workers"] >= 2].iterrows():
        base = data.baseline(cell)
        if base is None:
            continue
        comparison = compare(
            data.sample(int(cell["cell_id"]), "wall_s"), data.sample(int(base["cell_id"]), "wall_s")
        )
        data.add(
            claim,
            Evidence(
                label(cell),
                "speedup",
                comparison,
                data.conditions(cell),
                int(cell["payload_bytes"]),
            ),
        )


def _processes_versus_threads(data: RunData, claim: str, task: str, metric: str) -> None:
    """Evidence of processes against threads in the same (variant, workers, payload)."""
    threads = data.cells(task, ("threads",))
    for _, proc in data.cells(task, PROCESS_MODELS).iterrows():
        same = threads[
            threads["workers"].eq(proc["workers"])
            & threads["payload_bytes"].eq(proc["payload_bytes"])
            & threads["variant"].fillna("").eq(proc["variant"] or "")
            & threads["interpreter"].eq(proc["interpreter"])
        ]
        if same.empty or proc["workers"] < 2:
            continue
        thread = same.iloc[0]
        comparison = compare(
            data.sample(int(thread["cell_id"]), metric), data.sample(int(proc["cell_id"]), metric)
        )
        text = f"{label(proc)} vs threads"
        conditions = data.conditions(proc)
        data.add(claim, Evidence(text, metric, comparison, conditions, int(proc["payload_bytes"])))


def _gather(data: RunData) -> None:
    for claim, spec in SPEEDUP_CLAIMS.items():
        cells = data.cells(spec.tasks, spec.models)
        if spec.gil is not None:
            gil_on = [data.gil_on(cell) for _, cell in cells.iterrows()]
            cells = cells[pd.Series(gil_on, index=cells.index, dtype=bool).eq(spec.gil)]
        _versus_baseline(data, claim, cells)
    memory_tasks = ["memory"] if "memory" in set(data.summary["task"]) else data.summary["task"]
    for task in dict.fromkeys(memory_tasks):
        _processes_versus_threads(data, "memory", str(task), "peak_pss_bytes")
    # start-up does not depend on the task: the plainest ones say it with fewer comparisons
    present = list(dict.fromkeys(data.summary["task"]))
    for task in [t for t in ("cpu_pure", "io_sleep") if t in present] or present:
        _processes_versus_threads(data, "startup", str(task), "startup_s")
    _processes_versus_threads(data, "communication", "transfer", "wall_s")


def _adjust(data: RunData) -> None:
    """Holm-correct every comparison of the run together."""
    everything = [e for group in data.evidence.values() for e in group]
    adjusted = holm([e.comparison.p_value for e in everything])
    for evidence, p in zip(everything, adjusted, strict=True):
        evidence.p_adjusted = float(p)


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


def _variant(cell: pd.Series) -> dict[str, str]:
    """A cell's swept parameters: 'lock=with mode=exit' -> {'lock': 'with', 'mode': 'exit'}."""
    return dict(pair.split("=", 1) for pair in str(cell["variant"] or "").split())


def _sync(data: RunData) -> Verdict:
    statement = (
        "Threads sharing a counter need a lock to avoid lost updates; processes cannot share "
        "it without explicit shared memory."
    )
    cells = data.cells("sync", ("threads", *PROCESS_MODELS))
    if cells.empty:
        return Verdict("shared_state", statement, NOT_MEASURED, "no sync cells in this run")
    lines: list[str] = []
    lost_by: dict[tuple[str, str], list[float]] = {}
    for _, cell in cells.iterrows():
        lost = data.fact(int(cell["cell_id"]), "lost_updates")
        expected = data.fact(int(cell["cell_id"]), "expected_count")
        if not lost.size:
            continue
        share = (
            float(np.nansum(lost) / np.nansum(expected)) if np.nansum(expected) else float("nan")
        )
        kind = "threads" if cell["model"] == "threads" else "processes"
        lock = _variant(cell).get("lock", "without")
        lost_by.setdefault((kind, lock), []).append(share)
        lines.append(
            f"{label(cell)}: {np.nansum(lost):.0f} updates lost in {lost.size} trials "
            f"({share:.1%}) ({data.conditions(cell)})"
        )
    locked_loss = any(max(v) > 0 for (kind, lock), v in lost_by.items() if lock == "with")
    thread_loss = max(lost_by.get(("threads", "without"), [float("nan")]))
    process_loss = max(lost_by.get(("processes", "without"), [float("nan")]))
    if locked_loss:
        verdict, summary = (
            CONTRADICTED,
            "updates were lost even under the lock: the lock did not protect the counter",
        )
    elif thread_loss > 0:
        verdict, summary = (
            SUPPORTED,
            f"without the lock threads lost up to {thread_loss:.1%} of the updates; with it none",
        )
    elif thread_loss == 0:
        verdict = NUANCED
        summary = (
            "without the lock threads lost no update here: on this GIL build a bare `+= 1` is "
            "not interrupted between its read and its write in practice (still a race by the "
            "language's rules, and a real one on free-threaded builds)"
        )
        if process_loss > 0:
            summary += (
                "; processes sharing a multiprocessing.Value without the lock lost up to "
                f"{process_loss:.1%}"
            )
    else:
        verdict, summary = NOT_MEASURED, "no run of the counter without the lock"
    return Verdict("shared_state", statement, verdict, summary, tuple(lines), "")


def _faults(data: RunData) -> Verdict:
    statement = (
        "A crash in a thread can take the whole program down; a crashing process leaves the "
        "others running."
    )
    cells = data.cells("fault", ("sequential", "threads", "asyncio", *PROCESS_MODELS))
    hard = cells[
        [_variant(cell).get("mode") in ("exit", "segfault") for _, cell in cells.iterrows()]
    ]
    if hard.empty:
        return Verdict(
            "fault_isolation", statement, NOT_MEASURED, "no fault cells with mode exit or segfault"
        )
    lines: list[str] = []
    thread_died: list[float] = []
    pool_broke: list[float] = []
    proc_survived: list[float] = []
    for _, cell in hard.iterrows():
        cid = int(cell["cell_id"])
        survived = data.fact(cid, "trial_process_survived")
        others = data.fact(cid, "others_finished")
        broken = data.fact(cid, "pool_broken")
        if not survived.size:
            continue
        in_process = cell["model"] not in PROCESS_MODELS
        (thread_died if in_process else proc_survived).append(float(np.nanmean(survived)))
        if not in_process:
            pool_broke.append(float(np.nanmean(broken)) if broken.size else float("nan"))
        lines.append(
            f"{label(cell)}: program survived in {np.nansum(survived):.0f}/{survived.size} trials, "
            f"median {np.nanmedian(others):.0f} other items finished"
            + (
                f", pool broken in {np.nansum(broken):.0f}/{broken.size}"
                if broken.size and not in_process
                else ""
            )
        )
    threads_kill = bool(thread_died) and max(thread_died) == 0
    processes_isolate = bool(proc_survived) and min(proc_survived) == 1
    pools_break = bool(pool_broke) and min(pool_broke) == 1
    if threads_kill and processes_isolate and pools_break:
        verdict = NUANCED
        summary = (
            "a hard crash in a thread ended the whole program every time, and the program "
            "survived a crashing pool process — but ProcessPoolExecutor then marks the whole "
            "pool broken and fails every pending item, so the other workers do not go on"
        )
    elif threads_kill and processes_isolate:
        verdict, summary = SUPPORTED, "thread crashes ended the program; process crashes did not"
    else:
        verdict, summary = CONTRADICTED, "the outcomes do not follow the claim; see the cells"
    return Verdict("fault_isolation", statement, verdict, summary, tuple(lines), "")


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
    cells = cells.assign(variant=cells["variant"].fillna(""))
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
    _sync,
    _faults,
)


def verdicts(
    summary: pd.DataFrame, trials: pd.DataFrame, facts: pd.DataFrame, cores: int
) -> list[Verdict]:
    """A verdict on every claim of the explainer, from one run's cell summary, trials
    (the ``trial_results`` view) and task facts (the ``trial_facts`` view)."""
    summary = (
        summary.assign(variant=summary["variant"].fillna(""))
        if "variant" in summary
        else summary.assign(variant="")
    )
    data = RunData(summary, trials, facts, cores)
    if not summary.empty:
        _gather(data)
        _adjust(data)
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
