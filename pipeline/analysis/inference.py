"""Deciding from measurements: intervals with a stated level and a practical margin.

A comparison asks how many times larger one cell's metric is than another's (a speedup is
baseline time / cell time). Its interval is a t-interval on the log scale, where timing
noise is close to normal (it is multiplicative):

* **paired** when both cells were measured in the same rounds (a round holds one trial of
  every cell in a shuffled order, so the two trials of a pair ran moments apart): the
  interval of the mean of the per-round log ratios, which cancels the machine's drift
  between rounds;
* **Welch** otherwise (different rounds, or trials missing): the interval of the
  difference of the two mean logs, with Welch-Satterthwaite degrees of freedom.

The estimate is the ratio of geometric means (for lognormal noise, the ratio of medians).

The **decision** places the interval against a practical margin δ (10% by default), on the
ratio scale: above 1+δ is *more*; inside [1/(1+δ), 1+δ] is *no practical difference*
(an equivalence test, as TOST); below 1/(1+δ) is *less*; an interval that rules out only
one side is *not more* or *not less*; one that crosses both bounds is *undecided*. With
intervals at level 1 − 2α each statement is a one-sided test at level α. A claim that
every comparison of its family answers one way needs no correction (an intersection-union
test); comparisons that answer both ways are decided again at 1 − 2α/m (Bonferroni):
evidence.decide_family.

A comparison uses the rounds both of its cells ran: when one stopped earlier (its
comparisons were decided while a shared baseline went on), the other's later trials are
left out, so that the comparison is the one the adaptive run decided when it stopped, and
a paired interval stays paired. The **levels** are those of a :class:`Rule`: in an adaptive
run, repeated confidence intervals whose error rates hold over every look
(sequential.py).

A cell's own median gets a distribution-free interval from order statistics (binomial),
whose actual level is printed when it cannot reach 95% (5 trials: 93.8%; 3: 75%).
Pure functions; docs/statistics.md justifies the choices and gives the calibration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special  # not scipy.stats: a second of import, in every run

from .sequential import FIXED, Schedule, look_alpha, schedule_of

ALPHA = 0.05  # per direction, for the whole family of comparisons of one claim
MARGIN = 0.10  # default practical margin δ: a difference under 10% is no practical one
LEVEL = 0.95  # the level of the intervals published per cell (cell_summary)


class Decision(StrEnum):
    """Where a comparison's interval lies against the margin [1/(1+δ), 1+δ]."""

    MORE = "more"  # entirely above 1+δ: a practical gain (faster, larger)
    LESS = "less"  # entirely below 1/(1+δ)
    SAME = "no practical difference"  # entirely inside the margin
    NOT_MORE = "no practical gain"  # below 1+δ, but reaching below 1/(1+δ)
    NOT_LESS = "no practical loss"  # above 1/(1+δ), but reaching above 1+δ
    UNDECIDED = "undecided"  # crosses both bounds, or too few trials

    @property
    def rules_out_more(self) -> bool:
        """The interval excludes a practical gain."""
        return self in (Decision.LESS, Decision.SAME, Decision.NOT_MORE)

    @property
    def rules_out_less(self) -> bool:
        """The interval excludes a practical loss."""
        return self in (Decision.MORE, Decision.SAME, Decision.NOT_LESS)


@dataclass(frozen=True)
class Ratio:
    """How many times ``first`` is ``second`` (for times: second's speedup over first),
    with an interval at ``level``."""

    ratio: float
    low: float
    high: float
    level: float
    n_first: int
    n_second: int
    paired: bool
    left_out: int = 0  # trials of rounds only one side ran, left out to keep rounds matched

    @property
    def known(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def text(self, margin: float = MARGIN) -> str:
        """'0.97× [0.86, 1.09]': two decimals, or three for a bound that two would show
        on the margin's edge (1.0996 is under 1.10 and decides; 1.10 would seem not to)."""
        edges = (round(1.0 + margin, 2), round(1.0 / (1.0 + margin), 2))

        def bound(value: float) -> str:
            return f"{value:.3f}" if round(value, 2) in edges else f"{value:.2f}"

        return f"{self.ratio:.2f}× [{bound(self.low)}, {bound(self.high)}]"

    def how(self) -> str:
        """Which interval this is and on what: 'paired by round, 12 rounds' or 'Welch, 8
        and 12 trials (13 trials of later rounds left out)'."""
        if self.paired:
            kind = f"paired by round, {self.n_first} rounds"
        else:
            kind = f"Welch, {self.n_first} and {self.n_second} trials"
        if self.left_out:
            kind += f" ({self.left_out} trials of rounds only one cell ran left out)"
        return kind


NO_RATIO = Ratio(math.nan, math.nan, math.nan, math.nan, 0, 0, False)


@dataclass(frozen=True)
class Rule:
    """How comparisons are decided: the practical margin δ, the error rate α per direction
    of one statement, the looks the run takes (an adaptive run's intervals are repeated
    confidence intervals held at every look: sequential.py) and whether trials are paired
    by round (the spec's pair_rounds)."""

    margin: float = MARGIN
    alpha: float = ALPHA
    schedule: Schedule = FIXED
    paired: bool = False

    def level(self, split: int = 1) -> float:
        """The level of an interval whose one-sided statements share α with ``split`` − 1
        others (Bonferroni), held at every look of the schedule."""
        one_sided = look_alpha(self.alpha / max(split, 1), self.schedule, paired=self.paired)
        return 1.0 - 2.0 * one_sided

    def with_alpha(self, alpha: float) -> Rule:
        return Rule(self.margin, alpha, self.schedule, self.paired)


def run_rule(run: Mapping[str, Any]) -> Rule:
    """How a stored run's comparisons are decided, from its row's values: its margin, and
    repeated intervals over the looks its repetitions allow (one look when it was not
    adaptive)."""
    return Rule(
        margin=run.get("margin") or MARGIN,
        schedule=schedule_of(run.get("repetitions") or 0, run.get("repetitions_max")),
        paired=bool(run.get("pair_rounds")),
    )


@dataclass(frozen=True)
class Observed:
    """One metric over a cell's ok trials, with the round (repetition) of each value where
    it is known (None: rounds unknown, never paired)."""

    values: npt.NDArray[np.float64]
    rounds: npt.NDArray[np.int64] | None = None

    @property
    def median(self) -> float:
        return float(np.median(self.values)) if self.values.size else math.nan

    def until(self, last_round: int) -> Observed:
        """The values of rounds up to ``last_round`` (all of them when rounds are unknown)."""
        if self.rounds is None or self.rounds.max() <= last_round:
            return self
        keep = self.rounds <= last_round
        return Observed(self.values[keep], self.rounds[keep])


def ratio_of(first: Observed, second: Observed, *, level: float, paired: bool) -> Ratio:
    """:func:`ratio` of two observed cells on the rounds both ran (where rounds are known,
    the later trials of the side that ran longer are left out), paired by round when
    ``paired``."""
    if (
        first.rounds is None
        or second.rounds is None
        or not (first.values.size and second.values.size)
    ):
        return ratio(first.values, second.values, level=level)
    last = min(int(first.rounds.max()), int(second.rounds.max()))
    a, b = first.until(last), second.until(last)
    if a.values.size < 2 or b.values.size < 2:  # rounds that hardly overlap: all of both
        a, b = first, second
    left_out = first.values.size - a.values.size + second.values.size - b.values.size
    pairs = (a.rounds, b.rounds) if paired else None
    found = ratio(a.values, b.values, level=level, pairs=pairs)  # type: ignore[arg-type]
    return replace(found, left_out=left_out) if left_out else found


def _clean(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    sample = np.asarray(values, dtype="float64")
    clean: npt.NDArray[np.float64] = sample[np.isfinite(sample) & (sample > 0)]
    return clean


def ratio(
    first: npt.ArrayLike,
    second: npt.ArrayLike,
    *,
    level: float = LEVEL,
    pairs: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> Ratio:
    """first / second (geometric means) with a t-interval on the log scale at ``level``.

    ``pairs``: the round of each value of ``first`` and of ``second``; the interval is the
    paired one over the rounds both sides have (at least two; Welch's otherwise). Values
    that are not positive and finite are left out."""
    a, b = np.asarray(first, dtype="float64"), np.asarray(second, dtype="float64")
    if pairs is not None:
        paired = _paired_logs(a, b, pairs)
        if paired is not None:
            return _t_ratio(paired, level, paired.size, paired.size, paired=True)
    a, b = _clean(a), _clean(b)
    if a.size < 2 or b.size < 2:  # an estimate from one trial a side, but no interval
        known = a.size and b.size
        estimate = math.exp(np.log(a).mean() - np.log(b).mean()) if known else math.nan
        return Ratio(estimate, math.nan, math.nan, level, a.size, b.size, False)
    (mean_a, var_a), (mean_b, var_b) = _moments(np.log(a)), _moments(np.log(b))
    difference = mean_a - mean_b
    var_a, var_b = var_a / a.size, var_b / b.size  # of each mean
    se = math.sqrt(var_a + var_b)
    if se == 0.0:
        return _interval(difference, 0.0, 1.0, level, a.size, b.size, paired=False)
    df = (var_a + var_b) ** 2 / (
        var_a**2 / (a.size - 1) + var_b**2 / (b.size - 1)
    )  # Welch-Satterthwaite
    return _interval(difference, se, df, level, a.size, b.size, paired=False)


def _moments(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Mean and sample variance (written out: numpy's mean and var cost more than the
    arithmetic on a few dozen values, and adaptive runs ask after every round)."""
    mean = float(values.sum()) / values.size
    deviations = values - mean
    return mean, float(deviations.dot(deviations)) / (values.size - 1)


def _paired_logs(
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    pairs: tuple[npt.ArrayLike, npt.ArrayLike],
) -> npt.NDArray[np.float64] | None:
    """The log ratios of the rounds both sides have (a positive, finite value each), or
    None when fewer than two rounds are shared or a round appears twice on a side."""
    rounds_a, rounds_b = (np.asarray(side) for side in pairs)
    if len(rounds_a) != len(a) or len(rounds_b) != len(b):
        raise ValueError("pairs must give the round of every value")
    if len(set(rounds_a)) != len(rounds_a) or len(set(rounds_b)) != len(rounds_b):
        return None
    usable_a = np.isfinite(a) & (a > 0)
    usable_b = np.isfinite(b) & (b > 0)
    shared, in_a, in_b = np.intersect1d(
        rounds_a[usable_a], rounds_b[usable_b], assume_unique=True, return_indices=True
    )
    if shared.size < 2:
        return None
    return np.log(a[usable_a][in_a]) - np.log(b[usable_b][in_b])


def _t_ratio(
    logs: npt.NDArray[np.float64], level: float, n_first: int, n_second: int, *, paired: bool
) -> Ratio:
    mean, variance = _moments(logs)
    se = math.sqrt(variance / logs.size)
    return _interval(mean, se, logs.size - 1, level, n_first, n_second, paired=paired)


def _interval(
    log_ratio: float,
    se: float,
    df: float,
    level: float,
    n_first: int,
    n_second: int,
    *,
    paired: bool,
) -> Ratio:
    half = float(special.stdtrit(df, 0.5 + level / 2.0)) * se if se > 0 else 0.0
    return Ratio(
        math.exp(log_ratio),
        math.exp(log_ratio - half),
        math.exp(log_ratio + half),
        level,
        n_first,
        n_second,
        paired,
    )


def decide(found: Ratio, margin: float = MARGIN) -> Decision:
    """Where ``found``'s interval lies against [1/(1+margin), 1+margin]."""
    if not found.known:
        return Decision.UNDECIDED
    upper, lower = 1.0 + margin, 1.0 / (1.0 + margin)
    if found.low > upper:
        return Decision.MORE
    if found.high < lower:
        return Decision.LESS
    if found.high <= upper:
        return Decision.SAME if found.low >= lower else Decision.NOT_MORE
    if found.low >= lower:
        return Decision.NOT_LESS
    return Decision.UNDECIDED


# -- a cell's median ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MedianInterval:
    """A distribution-free interval of a median from two order statistics, with its exact
    level (for continuous data): the level asked for, or the most the trials allow."""

    low: float
    high: float
    level: float


def median_interval(values: npt.ArrayLike, level: float = LEVEL) -> MedianInterval:
    """The narrowest symmetric pair of order statistics (x_(k), x_(n+1-k)) whose coverage
    of the median, 1 − 2·P(Binomial(n, 1/2) < k), is at least ``level``; with too few
    values for that, the widest pair (min, max), at its own lower level."""
    sample = np.sort(_finite(values))
    n = sample.size
    if n < 2:
        return MedianInterval(math.nan, math.nan, math.nan)
    k = 1  # 1-based rank of the lower order statistic
    while k + 1 <= n // 2 and _coverage(n, k + 1) >= level:
        k += 1
    return MedianInterval(float(sample[k - 1]), float(sample[n - k]), _coverage(n, k))


def _coverage(n: int, k: int) -> float:
    """P(x_(k) <= median <= x_(n+1-k)) for n continuous values."""
    return float(1.0 - 2.0 * special.bdtr(k - 1, n, 0.5))


def _finite(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    sample = np.asarray(values, dtype="float64")
    finite: npt.NDArray[np.float64] = sample[np.isfinite(sample)]
    return finite
