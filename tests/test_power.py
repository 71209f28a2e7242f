"""Power-aware planning: the claims a spec can test, and whether its repetitions decide,
by the rule the run will use (repeated intervals over its looks)."""

from __future__ import annotations

import pytest

from pipeline import app
from pipeline.analysis import power
from pipeline.analysis.inference import Rule
from pipeline.analysis.sequential import Schedule
from pipeline.execution.simulated import Design, Family, simulate_procedure


@pytest.mark.parametrize(("first", "last"), [(5, 5), (5, 25)])
def test_the_planners_power_is_the_procedures(first: int, last: int) -> None:
    """A single comparison: the dry run's power (the rule's looks, simulated without the
    XX
        1.5× called a gain and a true 1.0× whose gain is ruled out (CV 10%)."""
    design = Design("spec", first, last)
    gain, none = power.power([1], last, design.rule)
    found = simulate_procedure(Family(((1.5,),)), design, runs=1000)
    assert gain == pytest.approx(found.all_more, abs=0.05)
    flat = simulate_procedure(Family(((1.0,),)), design, runs=1000)
    assert none == pytest.approx(flat.all_no_gain, abs=0.05)


def test_more_trials_more_power_more_comparisons_less() -> None:
    rule = Rule(schedule=Schedule(5, 25))
    assert power.power([1], 10, rule)[0] > power.power([1], 5, rule)[0]
    assert power.power([1], 10, rule)[1] > power.power([1], 5, rule)[1]
    assert power.power([4], 5, rule)[0] < power.power([1], 5, rule)[0]  # α split 4 ways
    assert power.power([1, 1], 5, rule)[0] < power.power([1], 5, rule)[0]  # two series
    fixed = Rule()  # one look at 5% a side: the adaptive schedule's looks cost power
    assert power.power([1], 5, fixed)[1] > power.power([1], 5, rule)[1]


def test_the_dry_run_finds_the_claims_quick_yaml_tests() -> None:
    at_min, at_max = app.claim_power(app.plan("experiments/quick.yaml"))
    measured = {row.claim: row.comparisons for row in at_min if row.measured}
    assert measured == {
        "gil_threads_cpu": 2,  # every worker count, one series
        "processes_cpu": 2,
        "gil_released_c_code": 2,
        "threads_io": 2,
        "memory": 4,
        "startup": 4,
    }
    assert (at_min[0].trials, at_max[0].trials) == (5, 120)
    for small, big in zip(at_min, at_max, strict=True):
        if small.comparisons:
            assert big.detects_gain >= small.detects_gain
            assert big.rules_out_gain > small.rules_out_gain
