"""Before a run: which claims can its cells test, and can its repetitions decide them?

Each claim's family of comparisons is found as the run will find it (the same gathering,
on placeholder trials), and the chance that a claim decides is estimated at a typical
noise level (CV 10%, lognormal) by seeded simulation of the rule the run will use: the
interval (Welch's, or paired by round) at the level each look gets (sequential.py: in an
adaptive run, repeated intervals over all its looks), looked at after every round up to
the given number of trials. A series gains when one of its counts does (each at α split
over the series' counts) and rules a gain out when every count does; the series are taken
as independent (sharing a baseline makes them agree more often, so the real power is
somewhat higher): the power to call a true 1.5× a gain in every series, and to rule a
gain out everywhere when there is none (a true 1.0×). Claims decided by counts (lost
updates, crashes) need no power: any trial decides them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cells import CELL_KEYS
from . import claims
from .calibration import sigma_of_cv
from .evidence import series_of
from .inference import Rule
from .sequential import simulate_looks

TYPICAL_CV = 0.10
CLEAR_GAIN = 1.5
PATHS = 4000


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
    series: list[int], trials: int, rule: Rule | None = None, cv: float = TYPICAL_CV
) -> tuple[float, float]:
    """(power to call a true 1.5× more in every series, power to rule a gain out at a true
    1.0× at every count) of a claim whose series have the given numbers of worker counts,
    looked at by ``rule`` from its first look up to ``trials`` trials a cell."""
    rule = rule or Rule()
    first = max(min(rule.schedule.first or trials, trials), 2)
    if trials < 2:
        return 0.0, 0.0
    gain = math.prod(_decides(first, trials, rule, cv, CLEAR_GAIN, m)[0] for m in series)
    none = _decides(first, trials, rule, cv, 1.0, 1)[1] ** sum(series)
    return gain, none


@functools.lru_cache(maxsize=256)
def _decides(
    first: int, trials: int, rule: Rule, cv: float, true_ratio: float, split: int
) -> tuple[float, float]:
    """How often one comparison's interval lies above the margin, and below it, at some
    look from ``first`` to ``trials`` trials a cell, with α split ``split`` ways."""
    one_sided = (1.0 - rule.level(split)) / 2.0
    rng = np.random.default_rng([7, first, trials, int(true_ratio * 1000), split])
    looks = simulate_looks(
        rng,
        PATHS,
        first,
        trials,
        paired=rule.paired,
        log_ratio=math.log(true_ratio),
        sigma=sigma_of_cv(cv),
    )
    above, below = looks.decided(one_sided, math.log1p(rule.margin))
    return float(above.any(axis=1).mean()), float(below.any(axis=1).mean())


def claim_power(
    cells: pd.DataFrame, trials: int, rule: Rule | None = None, cv: float = TYPICAL_CV
) -> list[ClaimPower]:
    """Every claim, with the comparisons ``cells`` give it and their power by ``trials``
    trials a cell under ``rule`` (the spec's margin, looks and pairing). ``cells``: one
    row per cell with the cell keys, ``cell_id`` and ``gil_enabled`` (as the
    interpreter's probe found it)."""
    rule = rule or Rule()
    placeholder = _placeholder_trials(cells)
    from .stats import numeric_summary, summarise_cells

    summary = numeric_summary(summarise_cells(placeholder, cores=2))
    data = claims.gather_evidence(summary, placeholder, claims.no_facts(), rule)
    found = []
    for verdict in claims.judge(data):
        family = data.evidence.get(verdict.claim, [])
        measured = bool(family) or _counted(verdict.claim, cells)
        sizes = [len(series) for series in series_of(family)]
        gain, none = power(sizes, trials, rule, cv) if family else (math.nan, math.nan)
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
