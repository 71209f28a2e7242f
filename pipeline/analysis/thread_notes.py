"""What the thread claims add to their verdicts: how many cores a gain of GIL threads kept
busy, how sequential compared with one pool thread (when a claim was decided against
threads ×1), and what free threading costs one thread. Pure functions over a run's data."""

from __future__ import annotations

import math

import pandas as pd

from ..cells import BASELINE_MODEL, row_label, variant_text
from ..status import Verdict
from ..units import format_bytes
from .evidence import Evidence
from .gathering import RunData
from .inference import Decision, ratio_of

# verdicts where GIL threads may have run faster than their baseline: a gain, or an
# interval above 1 that does not rule the margin out
GAINED = (Verdict.CONTRADICTED, Verdict.NUANCED, Verdict.INCONCLUSIVE)
ONE_CORE = 1.2  # CPU time over wall time below this: one thread ran at a time
DESCRIPTIVE_LEVEL = 0.90  # the interval of a number shown beside a verdict, not deciding it


def or_nan(value: float, default: float) -> float:
    """``value``, or ``default`` where it is NaN."""
    return default if math.isnan(value) else value


def best_of(evidence: list[Evidence]) -> Evidence:
    """The comparison with the highest ratio (an unknown ratio counts as lowest)."""
    return max(evidence, key=lambda e: or_nan(e.estimate.ratio, -1.0))


def cores_of_gain(data: RunData, claim: str, verdict: Verdict) -> str:
    """How many cores the fastest cell of ``claim`` that gained, or ran faster than its
    baseline (an interval above 1), kept busy (its median CPU time over wall time): about
    one means its threads ran one at a time, so what it gained was not parallel execution
    (docs/statistics.md: threads faster without parallelism). '' unless ``verdict`` is
    one where that may be (GAINED)."""
    if verdict not in GAINED:
        return ""
    gaining = [
        e
        for e in data.evidence.get(claim, [])
        if len(e.cell_ids) == 2
        and (e.decision is Decision.MORE or (e.estimate.known and e.estimate.low > 1))
    ]
    if not gaining or "cpu_utilisation" not in data.summary:
        return ""
    best = best_of(gaining)
    row = data.summary[data.summary["cell_id"].eq(best.cell_ids[1])]
    cores = float(row["cpu_utilisation"].iloc[0]) if not row.empty else math.nan
    if not math.isfinite(cores):
        return ""
    cell = row_label(row.iloc[0])
    if cores >= ONE_CORE:
        return f"{cell} kept {cores:.2f} cores busy (CPU time over wall time)"
    why = (
        "the same Python code running faster in that process than in the sequential one"
        if best.baseline == BASELINE_MODEL
        else f"something other than parallelism that {best.baseline} did not have"
    )
    return (
        f"yet {cell} kept {cores:.2f} cores busy (CPU time over wall time): one thread ran "
        f"at a time, so what it gained over {best.baseline} was not parallel execution but " + why
    )


def against_sequential(data: RunData, claim: str) -> str:
    """Sequential against the one-worker cell that ``claim``'s first comparison was decided
    against (named, with its interpreter and GIL state): the part of a speedup over
    sequential that one pool thread already has, so not parallelism (docs/statistics.md).
    '' when the claim used no such baseline, or the run has no sequential cell beside it."""
    one = next((e for e in data.evidence.get(claim, []) if e.baseline != BASELINE_MODEL), None)
    if one is None:
        return ""
    base = data.summary[data.summary["cell_id"].eq(one.cell_ids[0])]
    sequential = data.baseline(base.iloc[0]) if not base.empty else None
    if sequential is None:
        return ""
    found = ratio_of(
        data.sample(int(sequential["cell_id"]), "wall_s"),
        one.first,
        level=DESCRIPTIVE_LEVEL,
        paired=data.rule.paired,
    )
    if not found.known:
        return ""
    return (
        f"sequential, on the process's main thread, took {found.text(data.rule.margin)} the "
        f"time of {row_label(base.iloc[0])} ({one.conditions}; geometric means, "
        f"{DESCRIPTIVE_LEVEL:.0%} CI; {found.how()}): what threads gain over sequential "
        "beyond that is what running them in parallel adds"
    )


def single_thread_cost(data: RunData) -> str:
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
            for group, model in (
                (on, "sequential"),
                (off, "sequential"),
                (off[off["workers"].ge(2)], "threads"),  # a pool of one is no parallel cell
            )
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
