"""Verdicts on the seed explainer's claims, from a run's measurements.

Each claim of ``../shared/seed/000_8b66f138267b8003.txt`` is a testable hypothesis over
the run's cells. A claim gathers the comparisons it rests on (its family: for a speedup,
every worker count of every series against its baseline: the sequential cell, or for the
claims about parallel threads the one-worker pool where the run has it); each is estimated
with an interval and decided against the practical margin (more / no practical gain or
difference / less / undecided: see inference.py) at the level the family's rule gives it
(evidence.decide_family: a series gains when some count does, rules a gain out when every
count does); then the claim decides from its own family only: supported, contradicted,
nuanced (series decided both ways), inconclusive (a series is undecided: more trials would
decide) or not measured, with the numbers, the cells that carried it, and the conditions
(interpreter, GIL state) under which it holds. Pure functions over DataFrames: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import pandas as pd

from ..cells import CELL_KEYS, with_optional_keys
from ..status import Verdict
from ..units import format_bytes
from .evidence import (
    ClaimVerdict,
    Evidence,
    Outcome,
    decide_family,
    outcome,
    series_of,
    series_outcome,
    unsettled_cells,
)
from .fact_claims import fault_isolation, shared_state
from .gathering import RunData, processes_versus_threads, versus_baseline
from .inference import Decision, Rule
from .statements import RESOURCE_CLAIMS, SPEEDUP_CLAIMS, TITLES
from .thread_notes import against_sequential, best_of, cores_of_gain, or_nan, single_thread_cost


def _gather(data: RunData) -> None:
    for claim, spec in SPEEDUP_CLAIMS.items():
        cells = data.cell_rows(spec.tasks, spec.models)
        if spec.gil is not None:
            cells = [cell for cell in cells if data.gil_on(cell) == spec.gil]
        versus_baseline(data, claim, cells, one_worker=spec.one_worker)
    memory_tasks = ["memory"] if "memory" in set(data.summary["task"]) else data.summary["task"]
    for task in dict.fromkeys(memory_tasks):
        processes_versus_threads(data, "memory", str(task), "peak_pss_bytes")
    # start-up does not depend on the task: the plainest ones say it with fewer comparisons
    present = list(dict.fromkeys(data.summary["task"]))
    for task in [t for t in ("cpu_pure", "io_sleep") if t in present] or present:
        processes_versus_threads(data, "startup", str(task), "startup_s")
    processes_versus_threads(data, "communication", "transfer", "wall_s")
    for family in data.evidence.values():
        decide_family(family, data.rule)


# -- deciding ---------------------------------------------------------------------------------
def _gains(e: Evidence) -> bool:
    return e.decision is Decision.MORE


def _no_gain(e: Evidence) -> bool:
    return e.decision.rules_out_more


def _lines(evidence: list[Evidence]) -> tuple[str, ...]:
    return tuple(
        f"{e.label}: {e.ratio_text()} ({e.conditions})" + (f"; {e.flag}" if e.flag else "")
        for e in evidence
    )


def _conditions(evidence: list[Evidence]) -> str:
    return "; ".join(dict.fromkeys(e.conditions for e in evidence))


INCONCLUSIVE_TEXT = (
    "{open} of {n} series undecided at the ±{margin:.0%} margin (best: {best}, "
    "{ratio:.2f}×): more repetitions would decide"
)


def _verdict(evidence: list[Evidence], *, expect: bool) -> Verdict:
    """A claim's verdict from its family's series: every series answering one way
    supports or contradicts it; answering both ways, it is nuanced; any undecided one
    (and no contrary pair) leaves it inconclusive."""
    found = outcome(evidence)
    if found is Outcome.BOTH:
        return Verdict.NUANCED
    if found is Outcome.ALL_MORE:
        return Verdict.SUPPORTED if expect else Verdict.CONTRADICTED
    if found is Outcome.NONE_MORE:
        return Verdict.CONTRADICTED if expect else Verdict.SUPPORTED
    return Verdict.INCONCLUSIVE


def _speedup_claim(
    data: RunData, claim: str, statement: str, expect_gain: bool, explain: dict[str, str]
) -> ClaimVerdict:
    """A claim about whether a model speeds a task up (against its baseline):
    each series gains when some worker count does (the count that carried it is named),
    and rules a gain out only when every count does."""
    evidence = data.evidence.get(claim, [])
    if not evidence:
        return ClaimVerdict(claim, statement, Verdict.NOT_MEASURED, explain["missing"])
    answers = [(series_outcome(series), series) for series in series_of(evidence)]
    carried = [
        best_of([e for e in series if _gains(e)])
        for found, series in answers
        if found is Outcome.ALL_MORE
    ]
    best = best_of(evidence)
    verdict = _verdict(evidence, expect=expect_gain)
    summary = explain.get(verdict, INCONCLUSIVE_TEXT).format(
        best=best.label,
        ratio=best.estimate.ratio,
        gains=len(carried),
        n=len(answers),
        open=sum(found is Outcome.UNDECIDED for found, _ in answers),
        margin=data.rule.margin,
        carried="; ".join(f"{e.label}: {e.estimate.ratio:.2f}×" for e in carried),
        baseline=" or ".join(dict.fromkeys(e.baseline for e in evidence)),
    )
    return _family_verdict(
        claim, statement, verdict, summary, evidence, shown=best_of(carried or evidence)
    )


def _family_verdict(
    claim: str,
    statement: str,
    verdict: Verdict,
    summary: str,
    evidence: list[Evidence],
    shown: Evidence,
) -> ClaimVerdict:
    """A verdict that rests on a family of comparisons: every one as a line, ``shown`` as
    the headline numbers."""
    return ClaimVerdict(
        claim,
        statement,
        verdict,
        summary,
        _lines(evidence),
        _conditions(evidence),
        headline=_headline(shown),
        comparisons=len(evidence),
    )


def _headline(e: Evidence) -> str:
    """One comparison's numbers: '3.99× [3.99, 3.99] (io_sleep threads ×4, 1 KiB)'."""
    r = e.estimate
    if not r.known:
        return f"too few trials ({e.label})"
    return f"{r.text(e.margin)} ({e.label})"


def _resource_claim(data: RunData, claim: str, statement: str, what: str) -> ClaimVerdict:
    """A claim that processes need more of a resource than threads."""
    evidence = data.evidence.get(claim, [])
    if not evidence:
        return ClaimVerdict(
            claim,
            statement,
            Verdict.NOT_MEASURED,
            f"no cell pairs of threads and processes for {what}",
        )
    larger = [e for e in evidence if _gains(e)]
    not_larger = [e for e in evidence if _no_gain(e)]
    low = min(e.estimate.ratio for e in evidence)
    high = max(e.estimate.ratio for e in evidence)
    verdict = _verdict(evidence, expect=True)
    undecided = len(evidence) - len(larger) - len(not_larger)
    summary = (
        f"processes needed {low:.2f}× to {high:.2f}× the {what} of threads: more by over "
        f"{data.rule.margin:.0%} in {len(larger)}, not more in {len(not_larger)} and undecided in "
        f"{undecided} of {len(evidence)} comparisons"
    )
    weakest = min(evidence, key=lambda e: or_nan(e.estimate.ratio, math.inf))
    return _family_verdict(claim, statement, verdict, summary, evidence, shown=weakest)


def _communication(data: RunData) -> ClaimVerdict:
    statement = (
        "Moving data to processes (IPC) costs more than sharing it between threads, and more "
        "with bigger payloads."
    )
    verdict = _resource_claim(data, "communication", statement, "time to move the same data")
    evidence = data.evidence.get("communication", [])
    if verdict.verdict == Verdict.NOT_MEASURED:
        return verdict
    growth = _growth_with_payload(evidence)
    summary = f"{verdict.summary}; {growth}"
    return replace(verdict, statement=statement, summary=summary)


def _growth_with_payload(evidence: list[Evidence]) -> str:
    """How the extra time of processes over threads grows with the payload."""
    extra: dict[int, list[float]] = {}
    for e in evidence:
        extra.setdefault(e.payload_bytes, []).append(e.first.median - e.second.median)
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


def _speedup(claim: str) -> Callable[[RunData], ClaimVerdict]:
    spec = SPEEDUP_CLAIMS[claim]

    def judge(data: RunData) -> ClaimVerdict:
        verdict = _speedup_claim(data, claim, spec.statement, spec.expect_gain, spec.explain)
        notes = [
            single_thread_cost(data) if claim == "free_threading" else "",
            cores_of_gain(data, claim, verdict.verdict) if claim == "gil_threads_cpu" else "",
            against_sequential(data, claim) if spec.one_worker else "",
        ]
        if verdict.verdict == Verdict.NOT_MEASURED or not any(notes):
            return verdict
        return replace(verdict, summary="; ".join([verdict.summary, *filter(None, notes)]))

    return judge


def _resource(claim: str) -> Callable[[RunData], ClaimVerdict]:
    statement, what = RESOURCE_CLAIMS[claim]
    return lambda data: _resource_claim(data, claim, statement, what)


CLAIMS: tuple[Callable[[RunData], ClaimVerdict], ...] = (
    *(_speedup(claim) for claim in SPEEDUP_CLAIMS),
    *(_resource(claim) for claim in RESOURCE_CLAIMS),
    _communication,
    shared_state,
    fault_isolation,
)


def verdicts(
    summary: pd.DataFrame,
    trials: pd.DataFrame,
    facts: pd.DataFrame,
    rule: Rule | None = None,
) -> list[ClaimVerdict]:
    """A verdict on every claim of the explainer, from one run's cell summary, trials
    (the ``trial_results`` view) and task facts (the ``trial_facts`` view), decided by
    ``rule`` (the run's margin, α, looks and pairing; by default a fixed design at 10%)."""
    return judge(gather_evidence(summary, trials, facts, rule or Rule()))


def judge(data: RunData) -> list[ClaimVerdict]:
    """Every claim's verdict from the evidence already gathered (:func:`gather_evidence`)."""
    return [
        replace(found, title=TITLES[found.claim]) for found in (claim(data) for claim in CLAIMS)
    ]


def undecided_cells(data: RunData) -> set[int]:
    """The ids of the cells in a comparison that still needs trials (from
    :func:`gather_evidence`): the cells more trials should go to."""
    return unsettled_cells(data.evidence.values())


SUMMARY_READ = ("warnings", "median_wall_s", "cpu_utilisation")  # read besides the keys


def no_facts() -> pd.DataFrame:
    """An empty facts frame: the comparisons read no task facts (only the verdicts of the
    claims decided by counts do), so deciding where trials go next needs none."""
    return pd.DataFrame(
        {"cell_id": np.array([], dtype="int64"), "name": [], "value": [], "trial_id": []}
    )


def gather_evidence(
    summary: pd.DataFrame,
    trials: pd.DataFrame,
    facts: pd.DataFrame,
    rule: Rule,
) -> RunData:
    """Every claim's comparisons, estimated and decided by ``rule`` (``RunData.evidence``
    by claim)."""
    summary = with_optional_keys(summary)
    # only what the claims read, in one block per type: a third faster after every round
    summary = summary[[c for c in ("cell_id", *CELL_KEYS, *SUMMARY_READ) if c in summary]].copy()
    data = RunData(summary, trials, facts, rule)
    if not summary.empty:
        _gather(data)
    return data


def iter_lines(found: list[ClaimVerdict]) -> Iterator[str]:
    """Plain-text lines for a terminal: verdict, statement, summary, evidence."""
    for verdict in found:
        yield f"[{verdict.verdict.upper()}] {verdict.statement}"
        yield f"    {verdict.summary}"
        for line in verdict.evidence:
            yield f"      - {line}"
        if verdict.conditions:
            yield f"    under: {verdict.conditions}"
