"""Tests of pipeline.stats against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from pipeline.analysis.inference import Rule
from pipeline.analysis.stats import (
    SUMMARY_COLUMNS,
    count_outliers,
    instability,
    summarise_cells,
    summarise_facts,
)


def trial(cell_id, model, workers, wall_s, *, status="ok", payload_bytes=1024, **extra):
    """One trial row with simple defaults; timings are NaN unless the trial is ok."""
    ok = status == "ok"
    row = {
        "cell_id": cell_id,
        "task": "cpu_pure",
        "model": model,
        "workers": workers,
        "payload_bytes": payload_bytes,
        "interpreter": "python3",
        "status": status,
        "wall_s": wall_s,
        "startup_s": 0.0 if ok else math.nan,
        "shutdown_s": 0.0 if ok else math.nan,
        "cpu_user_s": wall_s if ok else math.nan,
        "cpu_sys_s": 0.0 if ok else math.nan,
        "peak_rss_bytes": 1000 if ok else math.nan,
    }
    row.update(extra)
    return row


def cell(cell_id, model, workers, walls, **extra):
    """The ok trials of one cell, one per round (repetition)."""
    return [
        {**trial(cell_id, model, workers, wall_s, **extra), "repetition": round_}
        for round_, wall_s in enumerate(walls)
    ]


def summarise(rows, cores=8, **options):
    """Summary of the given trial rows, indexed by cell_id for easy lookup."""
    return summarise_cells(pd.DataFrame(rows), cores=cores, **options).set_index("cell_id")


def test_columns_and_order():
    rows = cell(2, "threads", 2, [1.0, 2.0]) + cell(1, "sequential", 1, [2.0, 4.0])
    summary = summarise_cells(pd.DataFrame(rows), cores=2)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["cell_id"]) == [1, 2]
    assert SUMMARY_COLUMNS[:10] == [
        "cell_id",
        "task",
        "variant",
        "model",
        "workers",
        "payload_bytes",
        "interpreter",
        "host",
        "n",
        "n_ok",
    ]


def test_point_statistics_of_wall_time():
    summary = summarise(cell(1, "sequential", 1, [4.0, 1.0, 10.0, 3.0, 2.0]))
    row = summary.loc[1]
    assert row["n"] == 5
    assert row["n_ok"] == 5
    assert row["median_wall_s"] == 3.0
    assert row["mean_wall_s"] == 4.0
    # deviations -3, -2, -1, 0, 6: sum of squares 50, over n - 1 = 4
    assert row["std_wall_s"] == pytest.approx(math.sqrt(12.5))
    assert row["cv_wall"] == pytest.approx(math.sqrt(12.5) / 4.0)
    assert row["min_wall_s"] == 1.0
    assert row["max_wall_s"] == 10.0
    assert row["iqr_wall_s"] == 2.0  # quartiles 2.0 and 4.0


def test_resource_medians_and_cpu_utilisation():
    rows = [
        trial(1, "sequential", 1, 3.0, startup_s=0.5, shutdown_s=0.5, cpu_user_s=1.5,
              cpu_sys_s=0.5, peak_rss_bytes=100),
        trial(1, "sequential", 1, 1.0, startup_s=0.0, shutdown_s=1.0, cpu_user_s=2.0,
              cpu_sys_s=2.0, peak_rss_bytes=300),
        trial(1, "sequential", 1, 2.0, startup_s=1.0, shutdown_s=1.0, cpu_user_s=3.0,
              cpu_sys_s=0.0, peak_rss_bytes=200),
    ]  # fmt: skip
    row = summarise(rows).loc[1]
    assert row["median_startup_s"] == 0.5
    assert row["median_shutdown_s"] == 1.0
    assert row["median_cpu_s"] == 3.0  # cpu totals 2, 4, 3
    assert row["cpu_utilisation"] == 0.75  # 2/4, 4/2, 3/4
    assert row["median_peak_rss_bytes"] == 200.0


def test_only_ok_trials_are_timed():
    rows = [
        *cell(1, "sequential", 1, [1.0, 2.0, 3.0]),
        trial(1, "sequential", 1, 100.0, status="timeout"),
        trial(1, "sequential", 1, math.nan, status="crashed"),
    ]
    row = summarise(rows).loc[1]
    assert (row["n"], row["n_ok"]) == (5, 3)
    assert row["median_wall_s"] == 2.0
    assert row["max_wall_s"] == 3.0


def test_speedup_efficiency_and_ideal():
    rows = (
        cell(1, "sequential", 1, [2.0, 4.0, 6.0])
        + cell(2, "threads", 2, [1.0, 2.0, 3.0])
        + cell(3, "processes", 4, [1.0, 2.0, 3.0])
    )
    summary = summarise(rows, cores=2)
    assert summary.loc[1, "speedup"] == 1.0
    assert summary.loc[2, "speedup"] == 2.0
    assert summary.loc[2, "efficiency"] == 1.0
    assert summary.loc[3, "speedup"] == 2.0
    assert summary.loc[3, "efficiency"] == 0.5
    assert list(summary["ideal_speedup"]) == [1, 2, 2]


def test_speedup_interval_of_constant_samples_is_exact():
    rows = cell(1, "sequential", 1, [4.0, 4.0, 4.0]) + cell(2, "threads", 2, [2.0, 2.0])
    summary = summarise(rows)
    assert (summary.loc[1, "ci_low_wall_s"], summary.loc[1, "ci_high_wall_s"]) == (4.0, 4.0)
    assert (summary.loc[2, "ci_low_wall_s"], summary.loc[2, "ci_high_wall_s"]) == (2.0, 2.0)
    assert (summary.loc[2, "speedup_ci_low"], summary.loc[2, "speedup_ci_high"]) == (2.0, 2.0)


def test_intervals_contain_the_estimates():
    rows = cell(1, "sequential", 1, [2.0, 2.2, 1.9, 2.1, 2.05]) + cell(
        2, "threads", 2, [1.0, 1.1, 0.95, 1.05, 1.2]
    )
    row = summarise(rows).loc[2]
    assert row["ci_low_wall_s"] <= row["median_wall_s"] <= row["ci_high_wall_s"]
    assert row["ci_low_wall_s"] < row["ci_high_wall_s"]
    assert row["speedup_ci_low"] <= row["speedup"] <= row["speedup_ci_high"]


def test_speedup_interval_is_scipys_t_interval_of_the_log_ratio():
    """Welch's interval when the cells ran in different rounds; the paired one when they
    ran in the same rounds (scipy's ttest_ind / ttest_rel on the logs, exponentiated)."""
    rng = np.random.default_rng(7)
    baseline = rng.lognormal(1.0, 0.2, 12)
    sample = rng.lognormal(0.3, 0.2, 12)
    unpaired = cell(1, "sequential", 1, baseline) + [
        {**row, "repetition": row["repetition"] + 100} for row in cell(2, "threads", 2, sample)
    ]
    welch = scipy_stats.ttest_ind(np.log(baseline), np.log(sample), equal_var=False)
    low, high = np.exp(welch.confidence_interval(0.95))
    row = summarise(unpaired).loc[2]
    assert (row["speedup_ci_low"], row["speedup_ci_high"]) == pytest.approx((low, high))
    paired = scipy_stats.ttest_rel(np.log(baseline), np.log(sample))
    low, high = np.exp(paired.confidence_interval(0.95))
    rows = cell(1, "sequential", 1, baseline) + cell(2, "threads", 2, sample)
    row = summarise(rows, rule=Rule(paired=True)).loc[2]
    assert (row["speedup_ci_low"], row["speedup_ci_high"]) == pytest.approx((low, high))
    # unless the spec asks for pairs (pair_rounds), the same rounds still get Welch's
    welch_again = summarise(rows).loc[2]
    assert welch_again["speedup_ci_low"] == pytest.approx(
        np.exp(welch.confidence_interval(0.95))[0]
    )


def test_the_median_interval_is_two_order_statistics_at_their_exact_level():
    walls = [5.0, 1.0, 4.0, 2.0, 3.0]
    row = summarise(cell(1, "sequential", 1, walls)).loc[1]
    # five trials cannot reach 95%: min and max, at 1 - 2 * 0.5**5 = 93.75%
    assert (row["ci_low_wall_s"], row["ci_high_wall_s"]) == (1.0, 5.0)
    assert row["ci_level_wall"] == pytest.approx(0.9375)
    ten = summarise(cell(1, "sequential", 1, [float(i) for i in range(1, 11)])).loc[1]
    assert (ten["ci_low_wall_s"], ten["ci_high_wall_s"]) == (2.0, 9.0)  # x(2), x(9): 97.9%
    assert ten["ci_level_wall"] == pytest.approx(1 - 2 * 11 / 1024)


def test_fewer_than_two_ok_trials_give_nan_intervals():
    rows = (
        cell(1, "sequential", 1, [2.0, 2.0])
        + cell(2, "threads", 2, [1.0])
        + [trial(2, "threads", 2, math.nan, status="error")]
        + [trial(3, "threads", 4, math.nan, status="crashed")]
    )
    summary = summarise(rows)
    assert (summary.loc[2, "n"], summary.loc[2, "n_ok"]) == (2, 1)
    assert summary.loc[2, "median_wall_s"] == 1.0
    assert summary.loc[2, "speedup"] == 2.0
    assert math.isnan(summary.loc[2, "std_wall_s"])
    for column in ["ci_low_wall_s", "ci_high_wall_s", "speedup_ci_low", "speedup_ci_high"]:
        assert math.isnan(summary.loc[2, column])
    assert summary.loc[3, "n_ok"] == 0
    assert summary.loc[3, ["median_wall_s", "speedup", "efficiency"]].isna().all()


def test_missing_baseline_gives_nan_speedup():
    rows = cell(1, "sequential", 1, [2.0, 2.0], payload_bytes=1024) + cell(
        2, "threads", 2, [1.0, 1.5], payload_bytes=2048
    )
    row = summarise(rows).loc[2]
    assert row["median_wall_s"] == 1.25
    for column in ["speedup", "speedup_ci_low", "speedup_ci_high", "efficiency"]:
        assert math.isnan(row[column])
    assert row["ideal_speedup"] == 2


def test_baseline_is_first_sequential_cell_with_data():
    rows = [
        trial(1, "sequential", 1, math.nan, status="error"),
        *cell(2, "sequential", 1, [4.0, 4.0]),
        *cell(3, "sequential", 1, [8.0, 8.0]),
        *cell(4, "threads", 2, [2.0, 2.0]),
    ]
    summary = summarise(rows)
    assert list(summary["speedup"].iloc[1:]) == pytest.approx([1.0, 0.5, 2.0])


def test_sequential_cell_counts_one_worker():
    summary = summarise(cell(1, "sequential", 4, [2.0, 3.0]), cores=8)
    assert summary.loc[1, "ideal_speedup"] == 1
    assert summary.loc[1, "efficiency"] == 1.0


def test_intervals_are_computed_not_resampled():
    rows = cell(1, "sequential", 1, [2.0, 2.4, 1.8, 2.2]) + cell(
        2, "threads", 2, [1.0, 1.3, 0.9, 1.2]
    )
    first = summarise(rows)
    assert first.equals(summarise(rows))
    # a cell's intervals do not depend on the other cells summarised with it
    alone = summarise(rows[:4])
    assert alone.loc[1, "ci_low_wall_s"] == first.loc[1, "ci_low_wall_s"]


def test_empty_input_gives_empty_summary():
    empty = pd.DataFrame(columns=list(trial(1, "sequential", 1, 1.0)))
    summary = summarise_cells(empty, cores=2)
    assert summary.empty
    assert list(summary.columns) == SUMMARY_COLUMNS


def test_missing_columns_are_named():
    trials = pd.DataFrame(cell(1, "sequential", 1, [1.0])).drop(columns=["wall_s", "status"])
    with pytest.raises(ValueError, match="status, wall_s"):
        summarise_cells(trials, cores=2)


walls = st.lists(
    st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=25,
)


@settings(max_examples=60, deadline=None, database=None)
@given(walls=walls)
def test_interval_contains_median_and_baseline_speedup_is_one(walls):
    row = summarise(cell(1, "sequential", 1, walls)).loc[1]
    assert row["ci_low_wall_s"] <= row["median_wall_s"] <= row["ci_high_wall_s"]
    assert row["median_wall_s"] == np.median(walls)
    assert row["speedup"] == 1.0
    assert (row["speedup_ci_low"], row["speedup_ci_high"]) == (1.0, 1.0)


def test_summarise_facts_exact() -> None:
    facts = pd.DataFrame(
        {
            "cell_id": [2, 2, 2, 1, 1],
            "name": ["lost", "lost", "lost", "bytes", "lost"],
            "value": [3.0, 0.0, 10.0, 8.0, None],
        }
    )
    summary = summarise_facts(facts)
    assert summary.columns.tolist() == ["cell_id", "name", "n", "median", "min", "max"]
    rows = summary.astype(object).where(summary.notna(), None).values.tolist()
    assert rows == [
        [1, "bytes", 1, 8.0, 8.0, 8.0],
        [1, "lost", 0, None, None, None],
        [2, "lost", 3, 3.0, 0.0, 10.0],
    ]
    assert summarise_facts(facts.iloc[:0]).empty


def test_count_outliers_by_tukey_fences() -> None:
    # quartiles of 1..8 (linear): 2.75 and 6.25, IQR 3.5, fences -2.5 and 11.5
    assert count_outliers([1, 2, 3, 4, 5, 6, 7, 8]) == 0
    assert count_outliers([1, 2, 3, 4, 5, 6, 7, 8, 30]) == 1
    assert count_outliers([1.0, 1.0, 1.0]) == 0  # too few to judge
    assert count_outliers([np.nan, 1, 2, 3, 100]) == 1


STABLE = {
    "n_ok": 5,
    "mean_wall_s": 1.0,
    "cv_wall": 0.05,
    "min_wall_s": 0.9,
    "max_wall_s": 1.1,
    "outliers": 0,
}


def test_instability_warnings_like_pyperf() -> None:
    stable = dict(STABLE)
    assert instability(stable) == ""
    noisy = {**stable, "cv_wall": 0.25, "min_wall_s": 0.4, "max_wall_s": 1.6, "outliers": 2}
    assert instability(noisy) == (
        "standard deviation is 25% of the mean (over 10%); the fastest trial is 60% below "
        "the mean; the slowest trial is 60% above the mean; 2 outlier(s) by the 1.5 IQR rule "
        "(kept)"
    )
    assert instability({**stable, "n_ok": 0}) == ""


def test_summary_counts_outliers_and_warns() -> None:
    walls = [1.0, 1.01, 0.99, 1.0, 1.02, 1.0, 0.98, 5.0]
    summary = summarise(cell(1, "sequential", 1, walls))
    assert summary.loc[1, "outliers"] == 1
    assert "1 outlier(s)" in summary.loc[1, "warnings"]
    assert "slowest trial" in summary.loc[1, "warnings"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.001, 10.0), min_size=2, max_size=12))
def test_interval_contains_the_median_and_self_speedup_is_one(walls: list[float]) -> None:
    summary = summarise(cell(1, "sequential", 1, walls))
    row = summary.iloc[0]
    assert row["ci_low_wall_s"] <= row["median_wall_s"] <= row["ci_high_wall_s"]
    assert row["speedup"] == 1.0
    assert (row["speedup_ci_low"], row["speedup_ci_high"]) == (1.0, 1.0)


def test_instability_says_when_the_asked_precision_was_not_reached() -> None:
    cell_row = {**STABLE, "median_wall_s": 1.0, "ci_low_wall_s": 0.96, "ci_high_wall_s": 1.04}
    assert instability(cell_row, target_ci=0.05) == ""
    assert instability(cell_row, target_ci=0.02) == (
        "too few trials for the precision asked: the median is known to ±4.0%, not ±2.0%"
    )


def test_the_ideal_applies_to_cpu_bound_tasks_only() -> None:
    rows = [
        {**row, "task": "io_sleep"}
        for row in cell(1, "sequential", 1, [2.0, 2.0]) + cell(2, "threads", 4, [0.5, 0.5])
    ]
    summary = summarise(rows, cores=2)
    assert summary["ideal_speedup"].isna().all()  # waits overlap whatever the cores
    cpu = summarise(
        cell(1, "sequential", 1, [2.0, 2.0]) + cell(2, "threads", 4, [2.0, 2.0]), cores=1.5
    )
    assert cpu.loc[2, "ideal_speedup"] == 1.5  # a cgroup quota of 1.5 CPUs
