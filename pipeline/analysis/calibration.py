"""The decision rule's error rates and the intervals' coverage, measured by seeded
simulation on lognormal timing noise (multiplicative, like a machine's). The tests assert
them and ``make bench`` prints them (benchmarks/calibration.py), so the statistics are
shown to work rather than asserted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .evidence import Evidence, Outcome, decide_family, outcome
from .inference import MARGIN, Decision, Observed, decide, family_level, median_interval, ratio


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
    level = family_level(family) if level is None else level
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
class FamilyRates:
    """How often a claim of several comparisons came out each way."""

    true_ratios: tuple[float, ...]
    cv: float
    n: int
    runs: int
    all_more: float  # every comparison a practical gain
    all_no_gain: float  # every comparison rules a practical gain out
    nuanced: float  # decided both ways
    inconclusive: float


def simulate_family(
    true_ratios: tuple[float, ...],
    cv: float,
    n: int,
    *,
    runs: int = 1000,
    margin: float = MARGIN,
    seed: int = 1,
    bonferroni_only: bool = False,
) -> FamilyRates:
    """Draw ``runs`` claims of one baseline (median 1) against cells with the given true
    speedups, n trials each (as "GIL threads give no speedup" rests on threads ×2 and ×4
    against one sequential cell), and decide each family as a claim does
    (evidence.decide_family): how often it comes out all one way, both ways or undecided.
    ``bonferroni_only``: decided by the earlier rule, every interval at 1 − 2α/m."""
    rng = np.random.default_rng([seed, n, int(cv * 1000), *(int(r * 1000) for r in true_ratios)])
    sigma = sigma_of_cv(cv)
    counts = dict.fromkeys(Outcome, 0)
    for _ in range(runs):
        base = Observed(np.exp(rng.normal(0.0, sigma, n)))
        family = [
            Evidence(
                f"cell {i}",
                "speedup",
                base,
                Observed(np.exp(rng.normal(-math.log(true), sigma, n))),
                "simulated",
            )
            for i, true in enumerate(true_ratios)
        ]
        decide_family(family, margin, bonferroni_only=bonferroni_only)
        counts[outcome(family)] += 1
    return FamilyRates(
        tuple(true_ratios),
        cv,
        n,
        runs,
        all_more=counts[Outcome.ALL_MORE] / runs,
        all_no_gain=counts[Outcome.NONE_MORE] / runs,
        nuanced=counts[Outcome.BOTH] / runs,
        inconclusive=counts[Outcome.UNDECIDED] / runs,
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
