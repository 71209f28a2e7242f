"""Two runs compared cell by cell: the change in median wall time with its interval, and
Mann-Whitney p-values Holm-corrected over the shared cells. Pure functions on frames."""

from __future__ import annotations

import pandas as pd

from ..cells import CELL_KEYS
from ..status import TrialStatus
from . import stats


def trials(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """The cells two runs share, side by side: median wall times, the change (second /
    first - 1) with its bootstrap interval, and Mann-Whitney p-values Holm-corrected over
    the shared cells. Sides with one interpreter (or one host) each are matched whatever
    it is (to compare interpreters or machines); otherwise it is part of the match."""
    trials = [first, second]
    keys = list(CELL_KEYS)
    for key in ("interpreter", "host"):
        missing = key not in first or key not in second
        if missing or all(frame[key].nunique() <= 1 for frame in trials):
            keys.remove(key)
    ok = [frame[frame["status"].eq(TrialStatus.OK)] for frame in trials]
    walls = [dict(iter(frame.groupby(keys)["wall_s"])) for frame in ok]
    rows = []
    for key in [key for key in walls[0] if key in walls[1]]:
        found = stats.compare(walls[0][key].to_numpy(), walls[1][key].to_numpy())
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_first": found.n_first,
                "n_second": found.n_second,
                "median_first_s": found.median_first,
                "median_second_s": found.median_second,
                "change": found.ratio - 1,
                "change_ci_low": found.ratio_ci_low - 1,
                "change_ci_high": found.ratio_ci_high - 1,
                "p_value": found.p_value,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_holm"] = stats.holm(frame["p_value"].to_numpy())
    significant = frame["p_holm"] < 0.05
    frame["verdict"] = "no significant change"
    frame.loc[significant & (frame["change_ci_low"] > 0), "verdict"] = "slower"
    frame.loc[significant & (frame["change_ci_high"] < 0), "verdict"] = "faster"
    return frame


def regressions(compared: pd.DataFrame, fail_above_percent: float) -> pd.DataFrame:
    """The compared cells that got significantly slower by more than the given percent."""
    if compared.empty:
        return compared
    return compared[
        compared["verdict"].eq("slower") & (compared["change"] * 100 > fail_above_percent)
    ]
