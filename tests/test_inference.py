"""The decision rule and its intervals: exact cases, and calibration shown by seeded
simulation of lognormal timing noise (false alarms, power, coverage)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.analysis import calibration, evidence, inference, sequential
from pipeline.analysis.inference import Decision, Ratio, Rule, decide
from pipeline.analysis.sequential import Schedule


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


def test_one_look_levels_are_bonferroni() -> None:
    assert Rule().level(1) == pytest.approx(0.90)
    assert Rule().level(4) == pytest.approx(0.975)


def test_an_adaptive_schedule_holds_every_look_to_a_stricter_level() -> None:
    """Pocock's constant level for 5 to 25 trials a cell (21 looks): about 1.1% a side
    per look keeps 5% over all of them (the figure the issue estimated); more looks need
    a stricter level, a later first look a laxer one; the same for every run (seeded)."""
    quick = sequential.look_alpha(0.05, Schedule(5, 25))
    assert quick == pytest.approx(0.011, abs=0.0015)
    assert sequential.look_alpha(0.05, Schedule(5, 40)) < quick
    assert sequential.look_alpha(0.05, Schedule(8, 25)) > quick
    assert sequential.look_alpha(0.05, Schedule(5, 5)) == 0.05
    assert Rule(schedule=Schedule(5, 25)).level() == pytest.approx(1 - 2 * quick)
    sequential.look_alpha.cache_clear()
    sequential._smallest_p_values.cache_clear()
    shutil.rmtree(sequential.cache_root(), ignore_errors=True)  # simulated again
    assert sequential.look_alpha(0.05, Schedule(5, 25)) == quick


@pytest.mark.parametrize(
    ("first", "last", "paired"), [(5, 25, False), (5, 120, True), (8, 80, True), (10, 40, False)]
)
def test_leaving_out_p_values_above_the_tail_changes_no_level(first, last, paired) -> None:
    """The look levels work out only the smallest p-values at or below TAIL (the rest
    read 1): every quantile a run asks for (α split up to 15 ways) is the full
    simulation's, and so is every smallest p-value at or below TAIL (the schedules of
    quick, claims and interpreters.yaml, and 5 to 25 unpaired)."""
    full = sequential._smallest_p_values(first, last, paired, 1.0)
    tail = sequential._smallest_p_values(first, last, paired, sequential.TAIL)
    for alpha in (0.1, 0.05, 0.025, 0.05 / 3, 0.05 / 15):
        assert np.quantile(tail, alpha, method="inverted_cdf") == np.quantile(
            full, alpha, method="inverted_cdf"
        )
    kept = full <= sequential.TAIL
    assert kept.mean() > 0.1
    np.testing.assert_array_equal(tail[kept], full[kept])
    assert (tail[~kept] > sequential.TAIL).all()
    with pytest.raises(ValueError, match=r"cutoff 0\.6"):
        sequential._smallest_p_values(first, last, paired, 0.6)


@pytest.mark.parametrize("paired", [False, True])
def test_the_look_level_is_the_quantile_of_the_smallest_p_value(paired: bool) -> None:
    """Checked against an independent simulation: the share of paths whose interval at
    the look level excludes the truth at some look is α."""
    schedule = Schedule(5, 25)
    one_sided = sequential.look_alpha(0.05, schedule, paired=paired)
    rng = np.random.default_rng(99)
    looks = sequential.simulate_looks(rng, 20_000, 5, 25, paired=paired, log_ratio=0.0)
    above, _ = looks.decided(one_sided, 0.0)
    assert above.any(axis=1).mean() == pytest.approx(0.05, abs=0.006)


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
    # a trial missing on one side: paired over the six rounds both have
    unmatched = inference.ratio(a, b[:6], level=0.9, pairs=(rounds, rounds[:6]))
    expected = stats.ttest_rel(np.log(a[:6]), np.log(b[:6])).confidence_interval(0.9)
    assert unmatched.paired
    assert unmatched.n_first == 6
    assert (unmatched.low, unmatched.high) == pytest.approx(tuple(np.exp(expected)))


@pytest.mark.parametrize("paired", [False, True])
def test_a_comparison_uses_the_rounds_both_cells_ran(paired: bool) -> None:
    """A cell stopped after round 7 while its baseline went on to round 19: the baseline's
    later trials are left out (and counted), so the comparison is the one the run decided
    when the cell stopped, and a paired interval stays paired."""
    rng = np.random.default_rng(5)
    base = inference.Observed(rng.lognormal(0.0, 0.1, 20), np.arange(20))
    cell = inference.Observed(rng.lognormal(-0.5, 0.1, 8), np.arange(8))
    found = inference.ratio_of(base, cell, level=0.9, paired=paired)
    alone = inference.ratio(
        base.values[:8], cell.values, level=0.9, pairs=(np.arange(8),) * 2 if paired else None
    )
    assert (found.ratio, found.low, found.high) == pytest.approx(
        (alone.ratio, alone.low, alone.high)
    )
    assert found.paired is paired
    assert found.left_out == 12
    assert "12 trials of rounds only one cell ran left out" in found.how()


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
    evidence.decide_family(family, Rule())
    assert [e.estimate.level for e in family] == pytest.approx([0.90] * 3)
    assert all(e.decision.rules_out_more for e in family)


def test_a_family_answering_both_ways_is_decided_again_at_bonferronis_level() -> None:
    family = _family(1.0, 2.0)
    evidence.decide_family(family, Rule())
    assert [e.estimate.level for e in family] == pytest.approx([0.95] * 2)
    assert [e.decision.rules_out_more for e in family] == [True, False]
    assert family[1].decision is Decision.MORE


@pytest.mark.parametrize(
    ("speedups", "answer", "levels"),
    [
        ((1.0, 2.0), evidence.Outcome.ALL_MORE, [0.90, 0.95]),  # ×2 rules out; ×4 gains
        ((1.0, 0.98), evidence.Outcome.NONE_MORE, [0.90] * 2),  # every count, uncorrected
    ],
)
def test_a_series_gains_at_bonferronis_level_over_its_counts(speedups, answer, levels) -> None:
    """Two worker counts of one series: ruling a gain out needs both at 90%; a gain may
    rest on one, at 95% (α split over the two counts)."""
    family = _family(*speedups)
    for e in family:
        e.series = ("one series",)
    evidence.decide_family(family, Rule())
    assert evidence.outcome(family) is answer
    assert [e.estimate.level for e in family] == pytest.approx(levels)
    assert all(e.settled for e in family)


def test_a_bound_on_the_margins_edge_gets_a_third_decimal() -> None:
    """1.0996 decides "no practical gain" against 1.10: printed as 1.10 it would seem not
    to; other bounds keep two decimals."""
    found = Ratio(1.01, 0.92, 1.0996, 0.9, 5, 5, False)
    assert found.text(0.10) == "1.01× [0.92, 1.100]"
    assert decide(found, 0.10) is Decision.SAME
    assert Ratio(1.9, 1.7, 2.1, 0.9, 5, 5, False).text(0.10) == "1.90× [1.70, 2.10]"
    assert Ratio(0.97, 0.906, 1.05, 0.9, 5, 5, False).text(0.10) == "0.97× [0.906, 1.05]"


def test_real_a_a_splits_a_cells_trials_by_round() -> None:
    """Two halves of one steady cell are not called different; a cell whose later rounds
    ran 30% slower (drift) is, when split early / late, and not when interleaved."""
    rng = np.random.default_rng(8)
    steady = rng.lognormal(0.0, 0.03, 12)
    drifting = rng.lognormal(0.0, 0.03, 12) * np.where(np.arange(12) < 6, 1.0, 1.3)
    trials = pd.DataFrame(
        {
            "cell_id": np.repeat([1, 2], 12),
            "repetition": np.tile(np.arange(12), 2),
            "status": "ok",
            "wall_s": np.concatenate([steady, drifting]),
        }
    )
    interleaved, early_late = calibration.real_a_a(trials)
    assert (interleaved.cells, interleaved.different) == (2, 0)
    assert (early_late.cells, early_late.different) == (2, 1)


def test_worked_out_look_levels_are_kept_between_runs(tmp_path, monkeypatch) -> None:
    """A schedule's smallest p-values are simulated once per machine: a later run (a new
    process, whose in-memory cache is empty) reads them back without simulating, the
    same to the last bit wherever a level can be asked for; a damaged file is simulated
    again and replaced; a cache that cannot be written, or no home folder to keep it in,
    only costs the simulation; what an older method simulated is removed."""
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path))
    older = tmp_path / "looks" / "an-older-method"
    older.mkdir(parents=True)
    (older / "5-25-0-0.1.npy").write_bytes(b"simulated by older code")
    sequential._smallest_p_values.cache_clear()
    simulated = sequential._smallest_p_values(5, 25, False, sequential.TAIL)
    (kept_file,) = (tmp_path / "looks").rglob("*.npy")  # the older method's are gone

    def read_back() -> np.ndarray:
        sequential._smallest_p_values.cache_clear()
        return sequential._smallest_p_values(5, 25, False, sequential.TAIL)

    with monkeypatch.context() as patched:
        patched.setattr(sequential, "_simulate_smallest", lambda *_: pytest.fail("simulated"))
        read = read_back()
    kept = simulated <= sequential.TAIL
    np.testing.assert_array_equal(read[kept], simulated[kept])
    assert (read[~kept] == 1.0).all()
    for alpha in (0.1, 0.05, 0.025, 0.05 / 15):
        assert np.quantile(read, alpha, method="inverted_cdf") == np.quantile(
            simulated, alpha, method="inverted_cdf"
        )
    for damage in (b"not a numpy file", None):
        if damage is None:  # a real array, but not sorted smallest p-values
            np.save(kept_file, simulated[kept][::-1], allow_pickle=False)
        else:
            kept_file.write_bytes(damage)
        np.testing.assert_array_equal(read_back()[kept], simulated[kept])
        np.testing.assert_array_equal(np.load(kept_file), simulated[kept])
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(kept_file))  # a file: no folder under it
    np.testing.assert_array_equal(read_back()[kept], simulated[kept])
    monkeypatch.delenv("PIPELINE_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(sequential.Path, "home", lambda: (_ for _ in ()).throw(RuntimeError))
    np.testing.assert_array_equal(read_back()[kept], simulated[kept])
    sequential._smallest_p_values.cache_clear()
