"""Two runs (or two hosts of one run) compared cell by cell on the margin rule.

For each cell both have, the ratio B / A of the geometric means of their ok wall times
with Welch's t-interval of the log ratio (inference.ratio), at level 1 − 2α/m over the m
compared cells (Bonferroni: the chance that any cell's statement is false is at most α
each way), placed against a threshold: **slower** when the interval lies above it (the
cell got slower by more than the threshold), **not slower** when it lies at or below it,
and **undecided** otherwise (more trials would decide). ``--fail-above PCT`` fails on a
cell only when its interval's lower bound is above 1 + PCT/100. The medians are printed
beside it as descriptive numbers. Pure functions on frames.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..cells import CELL_KEYS
from ..status import TrialStatus
from .inference import ALPHA, MARGIN, ratio

SLOWER, NOT_SLOWER, UNDECIDED = "slower", "not slower", "undecided"
ADVICE = "rerun both with more trials"


def trials(
    first: pd.DataFrame,
    second: pd.DataFrame,
    *,
    threshold: float | None = None,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """The cells two runs share, side by side: n and median wall time of each (medians:
    descriptive), the ratio B / A of geometric means as ``change`` (ratio − 1) with its
    interval at ``level``, and the verdict against ``threshold`` (a share: 0.10 is 10%
    slower; by default the margin). Sides with one interpreter (or one host) each are
    matched whatever it is (to compare interpreters or machines); otherwise it is part of
    the match."""
    threshold = MARGIN if threshold is None else threshold
    sides = [first, second]
    keys = list(CELL_KEYS)
    for key in ("interpreter", "host"):
        missing = key not in first or key not in second
        if missing or all(frame[key].nunique() <= 1 for frame in sides):
            keys.remove(key)
    ok = [frame[frame["status"].eq(TrialStatus.OK)] for frame in sides]
    walls = [dict(iter(frame.groupby(keys)["wall_s"])) for frame in ok]
    shared = [key for key in walls[0] if key in walls[1]]
    level = 1.0 - 2.0 * alpha / max(len(shared), 1)
    rows = []
    for key in shared:
        a, b = (side[key].to_numpy(dtype="float64") for side in walls)
        found = ratio(b, a, level=level)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_first": a.size,
                "n_second": b.size,
                "median_first_s": float(np.median(a)),
                "median_second_s": float(np.median(b)),
                "change": found.ratio - 1,
                "change_ci_low": found.low - 1,
                "change_ci_high": found.high - 1,
                "level": level,
                "threshold": threshold,
                "verdict": verdict(found.low, found.high, threshold),
            }
        )
    return pd.DataFrame(rows)


def verdict(low: float, high: float, threshold: float) -> str:
    """Where the interval [low, high] of B / A lies against 1 + threshold."""
    if math.isnan(low) or math.isnan(high):
        return f"{UNDECIDED}: too few ok trials"
    bound = 1.0 + threshold
    if low > bound:
        return SLOWER
    if high <= bound:
        return NOT_SLOWER
    return f"{UNDECIDED}: {ADVICE}"


def with_threshold(compared: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The comparison's verdicts against another threshold (same intervals)."""
    if compared.empty:
        return compared
    return compared.assign(
        threshold=threshold,
        verdict=[
            verdict(1 + low, 1 + high, threshold)
            for low, high in zip(compared["change_ci_low"], compared["change_ci_high"], strict=True)
        ],
    )


def regressions(compared: pd.DataFrame, fail_above_percent: float) -> pd.DataFrame:
    """The compared cells whose interval lies wholly above 1 + PCT/100: slower by more
    than that percent, with the error rate the comparison's level gives."""
    if compared.empty:
        return compared
    return compared[compared["change_ci_low"] > fail_above_percent / 100.0]
