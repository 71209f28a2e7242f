"""The decision rule's error rates and the intervals' coverage at a single look,
measured by seeded simulation on lognormal timing noise (multiplicative, like a
machine's), and on real trials (A/A: one cell's trials split in two). The tests assert
them and ``make bench`` prints them (benchmarks/calibration.py), so the statistics are
shown to work rather than asserted. The adaptive procedure as a run performs it, with its
many looks, is simulated in execution/simulated.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..status import TrialStatus
from .inference import MARGIN, Decision, Rule, decide, median_interval, ratio


def sigma_of_cv(cv: float) -> float:
    """The log-scale standard deviation of a lognormal with coefficient of variation cv."""
    return math.sqrt(math.log1p(cv * cv))


@dataclass(frozen=True)
class Rates:
    """How often each decision came out, and how often the interval held the truth."""

    true_ratio: float
    cv: float
    n: int
    paired: bool
    runs: int
    more: float
    less: float
    rules_out_more: float
    covered: float
    level: float


def simulate_ratio(
    true_ratio: float,
    cv: float,
    n: int,
    *,
    paired: bool = False,
    runs: int = 1000,
    family: int = 1,
    margin: float = MARGIN,
    level: float | None = None,
    seed: int = 1,
) -> Rates:
    """Draw ``runs`` pairs of samples (baseline with median 1, cell with median
    1/true_ratio, so the speedup is true_ratio), n trials each, and decide each at the
    family's level. ``paired``: both samples share a per-round factor (the machine's
    drift between rounds, as large as the noise), which a paired interval cancels."""
    rng = np.random.default_rng([seed, n, int(cv * 1000), int(true_ratio * 1000), paired])
    sigma = sigma_of_cv(cv)
    level = Rule(margin).level(family) if level is None else level
    rounds = np.arange(n)
    counts = {"more": 0, "less": 0, "rules_out_more": 0, "covered": 0}
    for _ in range(runs):
        drift = rng.normal(0.0, sigma, n) if paired else np.zeros(n)
        base = np.exp(drift + rng.normal(0.0, sigma, n))
        cell = np.exp(drift + rng.normal(-math.log(true_ratio), sigma, n))
        found = ratio(base, cell, level=level, pairs=(rounds, rounds) if paired else None)
        decision = decide(found, margin)
        counts["more"] += decision is Decision.MORE
        counts["less"] += decision is Decision.LESS
        counts["rules_out_more"] += decision.rules_out_more
        counts["covered"] += found.low <= true_ratio <= found.high
    return Rates(
        true_ratio,
        cv,
        n,
        paired,
        runs,
        **{key: value / runs for key, value in counts.items()},
        level=level,
    )


@dataclass(frozen=True)
class Coverage:
    """How often a median interval held the true median, against its printed level."""

    n: int
    cv: float
    runs: int
    covered: float
    level: float


def simulate_median_interval(n: int, cv: float, *, runs: int = 1000, seed: int = 1) -> Coverage:
    """Coverage of the order-statistic interval of a median (true median 1)."""
    rng = np.random.default_rng([seed, n, int(cv * 1000)])
    sigma = sigma_of_cv(cv)
    covered = 0
    level = math.nan
    for _ in range(runs):
        found = median_interval(np.exp(rng.normal(0.0, sigma, n)))
        covered += found.low <= 1.0 <= found.high
        level = found.level
    return Coverage(n, cv, runs, covered / runs, level)


@dataclass(frozen=True)
class AA:
    """Real A/A: cells' trials split in two halves and compared as two cells would be."""

    split: str
    cells: int
    different: int  # called more or less than the margin: false, the halves are one cell
    same: int  # no practical difference
    one_sided: int  # rules out only a gain, or only a loss
    undecided: int


def _even_rounds(rounds: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    return np.asarray(rounds % 2 == 0)


def _early_rounds(rounds: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    return np.asarray(rounds < np.median(rounds))


SPLITS: dict[str, Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]]] = {
    "interleaved (even / odd rounds)": _even_rounds,
    "early / late (first / second half of rounds)": _early_rounds,
}


def real_a_a(trials: pd.DataFrame, rule: Rule | None = None, min_trials: int = 4) -> list[AA]:
    """Every cell with at least ``min_trials`` ok wall times, split by round both ways of
    SPLITS and the halves decided by ``rule`` at one look (Welch's interval at 1 − 2α,
    against the margin): how often two halves of one cell are called different. Early /
    late shows the machine's drift within a run, which interleaved halves share."""
    rule = rule or Rule()
    ok = trials[trials["status"].eq(TrialStatus.OK) & trials["wall_s"].gt(0)]
    found = []
    for name, first_half in SPLITS.items():
        decisions = []
        for _, cell in ok.groupby(["run_id", "cell_id"] if "run_id" in ok else "cell_id"):
            if len(cell) < min_trials:
                continue
            rounds = cell["repetition"].to_numpy(dtype="int64")
            walls = cell["wall_s"].to_numpy(dtype="float64")
            side = first_half(rounds)
            found_ratio = ratio(walls[side], walls[~side], level=rule.level())
            decisions.append(decide(found_ratio, rule.margin))
        found.append(
            AA(
                name,
                len(decisions),
                sum(d in (Decision.MORE, Decision.LESS) for d in decisions),
                sum(d is Decision.SAME for d in decisions),
                sum(d in (Decision.NOT_MORE, Decision.NOT_LESS) for d in decisions),
                sum(d is Decision.UNDECIDED for d in decisions),
            )
        )
    return found


@dataclass(frozen=True)
class GateRates:
    """How often ``pipeline compare --fail-above`` failed over simulated pairs of runs."""

    cells: int
    n: int
    cv: float
    fail_above_percent: float
    slowdown: float  # the true ratio B / A of the one regressed cell (1.0: none)
    runs: int
    failed: float  # runs in which the gate failed
    caught: float  # runs in which it failed on the regressed cell


def simulate_gate(
    slowdown: float,
    *,
    cells: int = 15,
    n: int = 5,
    cv: float = 0.10,
    fail_above_percent: float = 10.0,
    runs: int = 1000,
    seed: int = 1,
) -> GateRates:
    """Pairs of runs of ``cells`` cells, ``n`` trials each, lognormal noise ``cv``; in the
    second run one cell is truly ``slowdown`` times slower. Compared as ``pipeline compare
    --fail-above`` compares them (compare.trials, compare.regressions)."""
    from . import compare

    rng = np.random.default_rng([seed, cells, n, int(cv * 1000), int(slowdown * 1000)])
    sigma = sigma_of_cv(cv)
    keys = {"variant": "", "model": "threads", "payload_bytes": 0, "interpreter": "python3"}
    task = np.repeat([f"cell{i}" for i in range(cells)], n)
    truth = np.ones(cells)
    truth[0] = slowdown
    failed = caught = 0
    threshold = fail_above_percent / 100.0
    for _ in range(runs):
        sides = [
            pd.DataFrame(
                {
                    "task": task,
                    **keys,
                    "workers": 2,
                    "host": "",
                    "status": "ok",
                    "wall_s": np.repeat(scale, n) * np.exp(rng.normal(0.0, sigma, cells * n)),
                }
            )
            for scale in (np.ones(cells), truth)
        ]
        slower = compare.regressions(
            compare.trials(*sides, threshold=threshold), fail_above_percent
        )
        failed += not slower.empty
        caught += bool(slower["task"].eq("cell0").any())
    return GateRates(cells, n, cv, fail_above_percent, slowdown, runs, failed / runs, caught / runs)
