"""Calibration of the decision rule and its intervals, measured by seeded simulation of
lognormal timing noise (the numbers tests/test_inference.py asserts, and more).

For each noise level (CV) and number of trials per cell: how often two samples of one
distribution are called different (A/A), how often a true ratio exactly at the margin
(1.10×) is called a gain (the test's size: 5% nominal), how often a true 1.5× is called a
gain alone and in a claim of four comparisons (power), and how often the 95% ratio
interval and the median interval hold the truth (coverage, against their levels). Then
whole claims of several comparisons against one baseline, decided as a claim is
(all one way without correction, else Bonferroni): how often each verdict comes out,
where a true ratio exactly at the margin makes "all more" or "all no gain" false.
"""

from __future__ import annotations

from pipeline.analysis.calibration import (
    simulate_family,
    simulate_median_interval,
    simulate_ratio,
)

RUNS = 2000
# (true speedups of the family's cells over one baseline, CV, trials a cell, what it shows)
FAMILIES = (
    ((1.10, 1.00), 0.10, 10, 'size: "all no gain" is false (1.10x is not under the margin)'),
    ((1.10, 2.00), 0.10, 10, 'size: "all more" is false; nuanced says 1.10x gains nothing'),
    ((1.10, 1.10, 1.10, 1.10), 0.10, 10, "size: every verdict but inconclusive is false"),
    ((1.00, 1.00), 0.13, 10, 'power: "all no gain" (GIL threads x2, x4 on this VM)'),
    ((1.00, 1.00), 0.13, 20, 'power: "all no gain"'),
    ((1.50, 1.50), 0.10, 5, 'power: "all more"'),
)


def main() -> None:
    print(f"calibration: {RUNS} simulated runs per figure, lognormal noise, margin 10%")
    header = (
        f"{'design':7} {'CV':>4} {'n':>3} {'A/A called different':>21} {'size at 1.10x':>14} "
        f"{'power 1.5x':>11} {'power 1.5x of 4':>16} {'95% CI coverage':>16}"
    )
    print(header)
    for paired in (False, True):
        for cv in (0.05, 0.10, 0.30):
            for n in (3, 5, 10, 20):
                aa = simulate_ratio(1.0, cv, n, paired=paired, runs=RUNS)
                size = simulate_ratio(1.10, cv, n, paired=paired, runs=RUNS)
                power = simulate_ratio(1.5, cv, n, paired=paired, runs=RUNS)
                power4 = simulate_ratio(1.5, cv, n, paired=paired, runs=RUNS, family=4)
                cover = simulate_ratio(1.3, cv, n, paired=paired, runs=RUNS, level=0.95)
                print(
                    f"{'paired' if paired else 'Welch':7} {cv:>4.0%} {n:>3} "
                    f"{aa.more + aa.less:>21.1%} {size.more:>14.1%} {power.more:>11.1%} "
                    f"{power4.more:>16.1%} {cover.covered:>16.1%}"
                )
    print()
    print("claims of several comparisons against one baseline (evidence.decide_family)")
    print(
        f"{'true ratios':24} {'CV':>4} {'n':>3} {'all more':>9} {'all no gain':>12} "
        f"{'nuanced':>8} {'inconclusive':>13}  what it shows"
    )
    for ratios, cv, n, what in FAMILIES:
        claim = simulate_family(ratios, cv, n, runs=RUNS)
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"{shown:24} {cv:>4.0%} {n:>3} {claim.all_more:>9.1%} {claim.all_no_gain:>12.1%} "
            f"{claim.nuanced:>8.1%} {claim.inconclusive:>13.1%}  {what}"
        )
    print()
    print("median interval (order statistics): coverage against its printed level")
    for n in (3, 5, 10, 20):
        found = simulate_median_interval(n, 0.10, runs=RUNS)
        print(f"  n={n:>2}: covered {found.covered:.1%}, printed level {found.level:.1%}")


if __name__ == "__main__":
    main()
