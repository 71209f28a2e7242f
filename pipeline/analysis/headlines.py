"""One line per task: which model is fastest at the most workers, and whether the decision
rule separates it from the others. A model is named best only when it is faster than
every other by more than the margin (inference.decide on their paired times); otherwise
the models that tie with it are named together, and when none beats sequential, that is
what the line says. Pure functions on frames."""

from __future__ import annotations

import pandas as pd

from ..cells import BASELINE_MODEL
from ..metrics import Unit, format_with_interval
from ..status import TrialStatus
from ..units import format_bytes
from .inference import Decision, Observed, Rule, decide, ratio_of


def task_headlines(
    summary: pd.DataFrame, trials: pd.DataFrame | None = None, rule: Rule | None = None
) -> dict[str, str]:
    """A headline per task of a (numeric) cell summary; ``trials`` (the run's measured
    trials) let the decision rule (the run's: margin, looks, pairing) separate the best
    model from the rest; without them a headline only says which model has the highest
    speedup."""
    if summary.empty:
        return {}
    return {
        str(task): _headline(str(task), cells, trials, rule or Rule())
        for task, cells in summary.groupby("task", sort=False)
    }


def _walls(trials: pd.DataFrame, cell_id: int) -> Observed:
    """A cell's ok wall times, with their rounds where the trials have them."""
    rows = trials[trials["cell_id"].eq(cell_id) & trials["status"].eq(TrialStatus.OK)]
    rounds = rows["repetition"].to_numpy(dtype="int64") if "repetition" in rows else None
    return Observed(rows["wall_s"].to_numpy(dtype="float64"), rounds)


def _headline(task: str, cells: pd.DataFrame, trials: pd.DataFrame | None, rule: Rule) -> str:
    measured = cells[cells["speedup"].notna() & cells["model"].ne(BASELINE_MODEL)]
    if measured.empty:
        return f"{task}: no speedup available (no sequential baseline or no ok trials)"
    top = measured[measured["workers"] == measured["workers"].max()]
    best = top.loc[top["speedup"].idxmax()]
    workers = int(best["workers"])
    # rivals: the other models at those workers on the same work (variant, payload, interpreter)
    same = top[
        top["variant"].eq(best["variant"])
        & top["payload_bytes"].eq(best["payload_bytes"])
        & top["interpreter"].eq(best["interpreter"])
        & top["cell_id"].ne(best["cell_id"])
    ]
    where = _where(cells, best)
    speedup = format_with_interval(
        best["speedup"], best["speedup_ci_low"], best["speedup_ci_high"], Unit.RATIO
    )
    if best["speedup_ci_high"] < 1.0 / (1.0 + rule.margin):
        return (
            f"{task}: at {workers} workers no model beats sequential{where} (the least slow, "
            f"{best['model']}, runs at {speedup})"
        )
    if trials is None or same.empty:
        lead = "is best" if same.empty else "has the highest speedup"
        return (
            f"{task}: at {workers} workers, {best['model']} {lead} with {speedup} vs "
            f"sequential{where}"
        )
    level = rule.level(len(same))
    ties = []
    for _, rival in same.iterrows():
        theirs = _walls(trials, int(rival["cell_id"]))
        found = ratio_of(
            theirs, _walls(trials, int(best["cell_id"])), level=level, paired=rule.paired
        )
        if decide(found, rule.margin) is not Decision.MORE:
            ties.append(rival)
    if not ties:
        return (
            f"{task}: at {workers} workers, {best['model']} is best with {speedup} vs "
            f"sequential{where}, faster than every other model by more than {rule.margin:.0%}"
        )
    names = [str(best["model"]), *(str(rival["model"]) for rival in ties)]
    together = ", ".join(names[:-1]) + f" and {names[-1]}"
    low = min(float(rival["speedup"]) for rival in ties)
    return (
        f"{task}: at {workers} workers {together} tie ({low:.2f}× to {best['speedup']:.2f}× "
        f"vs sequential{where}; no difference of more than {rule.margin:.0%} is established)"
    )


def _where(cells: pd.DataFrame, best: pd.Series) -> str:
    where = []
    if cells["payload_bytes"].nunique() > 1:
        where.append(f"payload {format_bytes(int(best['payload_bytes']))}")
    if cells["interpreter"].nunique() > 1:
        where.append(f"interpreter {best['interpreter']}")
    return f" ({', '.join(where)})" if where else ""
