"""The decision rule and its intervals: exact cases, and calibration shown by seeded
simulation of lognormal timing noise (false alarms, power, coverage)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pipeline.analysis import calibration, evidence, inference
from pipeline.analysis.inference import Decision, Ratio, decide, family_level


def interval(low: float, high: float) -> Ratio:
    return Ratio(math.sqrt(low * high), low, high, 0.9, 5, 5, False)


@pytest.mark.parametrize(
    ("low", "high", "decision"),
    [
        (1.2, 1.5, Decision.MORE),
        (0.5, 0.8, Decision.LESS),
        (0.95, 1.05, Decision.SAME),
        (0.85, 0.95, Decision.NOT_MORE),  # rules a gain out, not a loss
        (1.05, 1.30, Decision.NOT_LESS),
        (0.80, 1.30, Decision.UNDECIDED),
    ],
)
def test_decisions_by_where_the_interval_lies(low, high, decision) -> None:
    assert decide(interval(low, high), margin=0.10) is decision


def test_outcomes_exclude_each_other_and_say_what_they_rule_out() -> None:
    assert [d for d in Decision if d.rules_out_more] == [
        Decision.LESS,
        Decision.SAME,
        Decision.NOT_MORE,
    ]
    assert not any(d.rules_out_more and d is Decision.MORE for d in Decision)
    assert decide(inference.NO_RATIO) is Decision.UNDECIDED


def test_family_levels_are_bonferroni() -> None:
    assert family_level(1) == pytest.approx(0.90)
    assert family_level(4) == pytest.approx(0.975)


def test_welch_and_paired_intervals_are_scipys() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0.5, 0.1, 7), rng.lognormal(0.0, 0.2, 7)
    welch = inference.ratio(a, b, level=0.9)
    expected = stats.ttest_ind(np.log(a), np.log(b), equal_var=False).confidence_interval(0.9)
    assert (welch.low, welch.high) == pytest.approx(tuple(np.exp(expected)))
    assert not welch.paired
    rounds = np.arange(7)
    paired = inference.ratio(a, b, level=0.9, pairs=(rounds, rounds[::-1]))
    expected = stats.ttest_rel(np.log(a), np.log(b[::-1])).confidence_interval(0.9)
    assert (paired.low, paired.high) == pytest.approx(tuple(np.exp(expected)))
    assert paired.paired
    # rounds that do not match (a trial missing on one side) fall back to Welch
    unmatched = inference.ratio(a, b[:6], level=0.9, pairs=(rounds, rounds[:6]))
    assert not unmatched.paired


def test_identical_trials_give_a_point_interval_and_too_few_give_none() -> None:
    point = inference.ratio([0.4, 0.4, 0.4], [0.1, 0.1, 0.1])
    assert (point.ratio, point.low, point.high) == pytest.approx((4.0, 4.0, 4.0))
    assert not inference.ratio([0.4], [0.1, 0.1]).known


@pytest.mark.parametrize("n", [3, 5, 10, 20])
def test_median_interval_levels(n: int) -> None:
    found = inference.median_interval(np.arange(1.0, n + 1))
    expected = {3: 0.75, 5: 0.9375, 10: 1 - 2 * 11 / 1024, 20: 0.9586}[n]
    assert found.level == pytest.approx(expected, abs=1e-4)
    assert found.low <= np.median(np.arange(1.0, n + 1)) <= found.high


# -- calibration by simulation (seeded; 1000+ runs each) ---------------------------------------
@pytest.mark.parametrize("cv", [0.05, 0.10, 0.30])
@pytest.mark.parametrize("paired", [False, True])
def test_a_a_comparisons_are_rarely_called_different(cv: float, paired: bool) -> None:
    """Two samples of one distribution: called more or less in at most 5% of runs."""
    rates = calibration.simulate_ratio(1.0, cv, 5, paired=paired, runs=1000)
    assert rates.more + rates.less <= 0.05


@pytest.mark.parametrize("cv", [0.05, 0.10, 0.30])
@pytest.mark.parametrize("paired", [False, True])
def test_false_gains_at_the_margin_are_at_the_nominal_rate(cv: float, paired: bool) -> None:
    """A true ratio exactly at the margin (1.10×) is called a gain in 5% ± 1.5 pp of runs:
    the one-sided test at α = 5% that the decision is."""
    rates = calibration.simulate_ratio(1.10, cv, 10, paired=paired, runs=2000)
    assert rates.more == pytest.approx(0.05, abs=0.015)


@pytest.mark.parametrize("paired", [False, True])
def test_power_for_a_real_gain_at_the_default_repetitions(paired: bool) -> None:
    """A true 1.5× at CV 10% is called a gain in at least 90% of runs with 5 trials a cell
    (the default). (In a claim of four comparisons each interval is wider: make bench
    prints that power too.)"""
    rates = calibration.simulate_ratio(1.5, 0.10, 5, paired=paired)
    assert rates.more >= 0.90, rates


@pytest.mark.parametrize("n", [3, 5, 10, 20])
@pytest.mark.parametrize("paired", [False, True])
def test_ratio_intervals_cover_the_truth_at_their_level(n: int, paired: bool) -> None:
    rates = calibration.simulate_ratio(1.3, 0.10, n, paired=paired, runs=4000, level=0.95)
    assert rates.covered == pytest.approx(0.95, abs=0.02)


@pytest.mark.parametrize("n", [3, 5, 10, 20])
def test_median_intervals_cover_the_truth_at_their_printed_level(n: int) -> None:
    found = calibration.simulate_median_interval(n, 0.10, runs=2000)
    assert found.covered == pytest.approx(found.level, abs=0.02)


# -- a claim's family: all one way without correction, both ways at Bonferroni's level --------
def _family(*speedups: float) -> list[evidence.Evidence]:
    """Comparisons of one baseline against cells with these exact speedups, a little
    spread (so every interval has width)."""
    spread = np.array([0.97, 1.0, 1.03, 0.99, 1.01])
    base = inference.Observed(spread.copy())
    return [
        evidence.Evidence(
            f"cell {i}", "speedup", base, inference.Observed(spread[::-1] / s), "simulated"
        )
        for i, s in enumerate(speedups)
    ]


def test_a_family_answering_one_way_is_decided_at_the_uncorrected_level() -> None:
    family = _family(1.0, 0.95, 0.9)
    evidence.decide_family(family, 0.10)
    assert [e.estimate.level for e in family] == pytest.approx([0.90] * 3)
    assert all(e.decision.rules_out_more for e in family)


def test_a_family_answering_both_ways_is_decided_again_at_bonferronis_level() -> None:
    family = _family(1.0, 2.0)
    evidence.decide_family(family, 0.10)
    assert [e.estimate.level for e in family] == pytest.approx([0.95] * 2)
    assert [e.decision.rules_out_more for e in family] == [True, False]
    assert family[1].decision is Decision.MORE


@pytest.mark.parametrize(
    ("speedups", "false_verdict"),
    [
        ((1.10, 1.00), "all_no_gain"),  # 1.10× is not under the margin
        ((1.10, 2.00), "all_more"),  # nor over it
        ((1.10, 1.10, 1.10, 1.10), "all_more"),
        ((1.10, 1.10, 1.10, 1.10), "all_no_gain"),
    ],
)
def test_a_claims_false_verdicts_stay_at_the_nominal_rate(speedups, false_verdict) -> None:
    """With a true ratio exactly at the margin, "every comparison gains" and "none does"
    are false: each comes out in at most 5% + 1.5 pp of 2000 seeded runs (CV 10%, 10
    trials a cell, one shared baseline)."""
    rates = calibration.simulate_family(speedups, 0.10, 10, runs=2000)
    assert getattr(rates, false_verdict) <= 0.065, rates


def test_a_claims_false_nuance_stays_under_the_nominal_rate() -> None:
    """A cell that truly gains 2× and one exactly at the margin: calling the claim nuanced
    says the second rules a gain out, which is false; at most 5% of runs do."""
    rates = calibration.simulate_family((1.10, 2.00), 0.10, 10, runs=2000)
    assert rates.nuanced <= 0.05, rates


def test_no_correction_for_an_all_one_way_verdict_buys_power() -> None:
    """Two cells without a gain (CV 13%, 20 trials): the claim that neither gains is
    decided more often than Bonferroni's level would allow, computed on the same draws."""
    found = calibration.simulate_family((1.0, 1.0), 0.13, 20, runs=1000)
    corrected = calibration.simulate_family((1.0, 1.0), 0.13, 20, runs=1000, bonferroni_only=True)
    assert found.all_no_gain > corrected.all_no_gain + 0.05, (found, corrected)


def test_a_bound_on_the_margins_edge_gets_a_third_decimal() -> None:
    """1.0996 decides "no practical gain" against 1.10: printed as 1.10 it would seem not
    to; other bounds keep two decimals."""
    found = Ratio(1.01, 0.92, 1.0996, 0.9, 5, 5, False)
    assert found.text(0.10) == "1.01× [0.92, 1.100]"
    assert decide(found, 0.10) is Decision.SAME
    assert Ratio(1.9, 1.7, 2.1, 0.9, 5, 5, False).text(0.10) == "1.90× [1.70, 2.10]"
    assert Ratio(0.97, 0.906, 1.05, 0.9, 5, 5, False).text(0.10) == "0.97× [0.906, 1.05]"
