"""Power-aware planning: the claims a spec can test, and whether its repetitions decide."""

from __future__ import annotations

import pytest

from pipeline import app
from pipeline.analysis import calibration, power


def test_the_approximation_agrees_with_the_simulation() -> None:
    """The closed-form power is the simulated one (CV 10%) within 5 pp for Welch's
    interval (the default) and 10 pp for the paired one (its few degrees of freedom make
    the estimated spread vary more than the approximation allows for), from five trials a
    cell (with three, Welch's degrees of freedom vary too much for it)."""
    for paired, tolerance in ((False, 0.05), (True, 0.10)):
        for trials in (5, 10):
            gain, none = power.power(1, trials, paired=paired)
            simulated = calibration.simulate_ratio(1.5, 0.10, trials, paired=paired, runs=1000)
            assert gain == pytest.approx(simulated.more, abs=tolerance), (paired, trials)
            flat = calibration.simulate_ratio(1.0, 0.10, trials, paired=paired, runs=1000)
            assert none == pytest.approx(flat.rules_out_more, abs=tolerance), (paired, trials)


def test_more_trials_more_power_more_comparisons_less() -> None:
    assert power.power(1, 10)[0] > power.power(1, 5)[0]
    assert power.power(1, 10)[1] > power.power(1, 5)[1]
    assert power.power(4, 5)[0] < power.power(1, 5)[0]


def test_the_dry_run_finds_the_claims_quick_yaml_tests() -> None:
    at_min, at_max = app.claim_power(app.plan("experiments/quick.yaml"))
    measured = {row.claim: row.comparisons for row in at_min if row.measured}
    assert measured == {
        "gil_threads_cpu": 2,  # no gain: at every worker count
        "processes_cpu": 1,  # a gain: at the most workers
        "gil_released_c_code": 2,
        "threads_io": 1,
        "memory": 4,
        "startup": 4,
    }
    assert (at_min[0].trials, at_max[0].trials) == (5, 25)
    for small, big in zip(at_min, at_max, strict=True):
        if small.comparisons:
            assert big.detects_gain >= small.detects_gain
            assert big.rules_out_gain > small.rules_out_gain
