"""Before a run: which claims can its cells test, and can its repetitions decide them?

Each claim's family of comparisons is found as the run will find it (the same gathering,
on placeholder trials), and the chance that a claim decides is estimated at a typical
noise level (CV 10%, lognormal) with the normal approximation of the log-ratio
t-interval (Welch's, or paired by round) at the level of an all-one-way verdict (1 − 2α:
evidence.decide_family), for every comparison of the family at once (as if independent):
the power to call a true 1.5× a gain, and to rule a gain out when there is none (a true
1.0×). Claims decided by counts (lost updates, crashes) need no power: any trial decides
them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ..cells import CELL_KEYS
from . import claims
from .calibration import sigma_of_cv
from .inference import MARGIN, family_level

TYPICAL_CV = 0.10
CLEAR_GAIN = 1.5


@dataclass(frozen=True)
class ClaimPower:
    """What a spec can say about one claim with n trials a cell."""

    claim: str
    title: str
    comparisons: int  # 0: decided by counts, or not measured (see ``measured``)
    measured: bool
    trials: int
    detects_gain: float  # power to call a true 1.5× a gain (NaN for claims by counts)
    rules_out_gain: float  # power to rule a gain out at a true 1.0×


def power(
    comparisons: int,
    trials: int,
    margin: float = MARGIN,
    cv: float = TYPICAL_CV,
    *,
    paired: bool = False,
) -> tuple[float, float]:
    """(power to call a true 1.5× more, power to rule a gain out at a true 1.0×) of a
    claim of ``comparisons`` that must all come out that way, with ``trials`` trials a
    cell (Welch's interval, about 2n − 2 degrees of freedom; paired by round: n − 1). The
    comparisons are taken as independent; sharing a baseline makes them agree more often,
    so the real power is somewhat higher."""
    if trials < 2:
        return 0.0, 0.0
    se = sigma_of_cv(cv) * math.sqrt(2.0 / trials)
    level = family_level(1)  # an all-one-way verdict: no correction (decide_family)
    df = trials - 1 if paired else 2 * trials - 2
    half = float(special.stdtrit(df, 0.5 + level / 2.0)) * se
    bound = math.log1p(margin)
    gain = float(special.ndtr((math.log(CLEAR_GAIN) - bound - half) / se))
    none = float(special.ndtr((bound - half) / se))
    return gain ** max(comparisons, 1), none ** max(comparisons, 1)


def claim_power(
    cells: pd.DataFrame, trials: int, margin: float = MARGIN, cv: float = TYPICAL_CV
) -> list[ClaimPower]:
    """Every claim, with the comparisons ``cells`` give it and their power at ``trials``
    trials a cell. ``cells``: one row per cell with the cell keys, ``cell_id`` and
    ``gil_enabled`` (as the interpreter's probe found it)."""
    placeholder = _placeholder_trials(cells)
    from .stats import numeric_summary, summarize_cells

    summary = numeric_summary(summarize_cells(placeholder, cores=2))
    data = claims.gather_evidence(summary, placeholder, _no_facts(), 2, margin)
    found = []
    for verdict in claims.judge(data):
        family = data.evidence.get(verdict.claim, [])
        measured = bool(family) or _counted(verdict.claim, cells)
        gain, none = power(len(family), trials, margin, cv) if family else (math.nan, math.nan)
        found.append(
            ClaimPower(verdict.claim, verdict.title, len(family), measured, trials, gain, none)
        )
    return found


def _counted(claim: str, cells: pd.DataFrame) -> bool:
    """Whether a claim decided by counts has its cells: sync for shared state, fault cells
    that exit or crash for fault isolation."""
    if claim == "shared_state":
        return bool(cells["task"].eq("sync").any())
    if claim == "fault_isolation":
        faults = cells[cells["task"].eq("fault")]
        return any(("mode=exit" in v or "mode=segfault" in v) for v in faults["variant"])
    return False


def _placeholder_trials(cells: pd.DataFrame) -> pd.DataFrame:
    """Two ok trials of every cell, all alike: enough for the claims to find their
    comparisons (the numbers mean nothing)."""
    rows = []
    for cell in cells.to_dict("records"):
        for repetition in range(2):
            rows.append(
                {
                    **{key: cell[key] for key in ("cell_id", *CELL_KEYS)},
                    "repetition": repetition,
                    "status": "ok",
                    "wall_s": 1.0,
                    "startup_s": 1.0,
                    "shutdown_s": 0.0,
                    "cpu_user_s": 1.0,
                    "cpu_sys_s": 0.0,
                    "peak_rss_bytes": 1.0,
                    "peak_uss_bytes": 1.0,
                    "peak_pss_bytes": 1.0,
                    "gil_enabled": cell["gil_enabled"],
                    "free_threaded_build": not cell["gil_enabled"],
                    "python_version": "",
                }
            )
    return pd.DataFrame(rows)


def _no_facts() -> pd.DataFrame:
    return pd.DataFrame(
        {"cell_id": np.array([], dtype="int64"), "name": [], "value": [], "trial_id": []}
    )
