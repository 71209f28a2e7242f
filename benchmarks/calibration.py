"""Calibration of the decision rule as the product runs it (the numbers the tests assert,
and more), by seeded simulation and on real trials.

1. The adaptive procedure as run (pipeline/execution/simulated.py): the real Repetitions
   loop and rule under the schedules and budgets of quick.yaml, claims.yaml and
   full.yaml, with i.i.d. lognormal noise, outliers and drift, cells stopping at
   different rounds: how often each verdict comes out where it is false (a true ratio
   exactly at the margin), how often it is reached where it is true (power), how often
   the published 95% intervals hold the truth, and what it costs in trials. A control row
   looks at every round at the fixed-design level (the rule before 2026-12-06).
2. The regression gate (``pipeline compare --fail-above 10``, 15 cells of 5 trials).
3. One look (a fixed number of trials): A/A, size at the margin, power, coverage.
4. Real A/A: cells of stored runs split in two by round, and two runs of one spec
   compared cell by cell, all of it the same cells measured again: how often called
   different. ``python -m benchmarks.calibration [DB_URL]`` (default: two fresh runs of
   experiments/quick.yaml in a temporary database).
"""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from pipeline import app
from pipeline.analysis.calibration import (
    real_a_a,
    simulate_gate,
    simulate_median_interval,
    simulate_ratio,
)
from pipeline.analysis.inference import Rule
from pipeline.execution.simulated import (
    CPU_PURE_TRIAL_S,
    DRIFT,
    IID,
    NOISES,
    NOISY,
    NOISY_DAY,
    Design,
    Family,
    simulate_all,
    simulate_procedure,
)

RUNS = 2000
SPECS = ("quick", "claims", "full")
# (true speedups per series, noise, what it shows); every row under every spec's schedule
PROCEDURE = (
    *((Family(((1.10,),)), noise, "size: 'more' and 'no gain' are false") for noise in NOISES),
    (Family(((1.10, 1.00),), partner=True), IID, "size, counts stopping at different rounds"),
    (Family(((1.10,), (2.0,))), IID, "size: 'nuanced' is false"),
    (Family(((0.95, 0.93),)), NOISY, "power: 'no gain at every count' (GIL threads)"),
    (Family(((1.0, 1.0),)), NOISY, "power: 'no gain', threads exactly as fast"),
    (Family(((1.5, 1.5),)), IID, "power: 'gain' (1.5x at x2 and x4)"),
)
# GIL threads on a noisy day, trials as short as the specs' cpu_pure trials
NOISY_DAY_ROWS = (
    (Family(((1.03, 0.97),)), NOISY_DAY, "power, noisy day: GIL threads x2 3% ahead"),
    (Family(((1.05, 0.97),)), NOISY_DAY, "power, noisy day: GIL threads x2 5% ahead"),
)


def procedure_table() -> None:
    designs = {name: Design.of_spec(f"experiments/{name}.yaml") for name in SPECS}
    short = {name: dataclasses.replace(d, trial_s=CPU_PURE_TRIAL_S) for name, d in designs.items()}
    # quick.yaml before 2026-12-06's redesign: 5 to 25 trials of 0.4 s, unpaired
    before = Design("before", 5, 25, 40.0)
    jobs = [
        *((family, designs[name], noise) for name in SPECS for family, noise, _ in PROCEDURE),
        *((family, short[name], noise) for name in SPECS for family, noise, _ in NOISY_DAY_ROWS),
        *((family, before, noise) for family, noise, _ in NOISY_DAY_ROWS),
    ]
    whats = [
        *(what for _ in SPECS for _, _, what in PROCEDURE),
        *(what for _ in SPECS for _, _, what in NOISY_DAY_ROWS),
        *(what + " (5-25 trials of 0.4 s, Welch)" for _, _, what in NOISY_DAY_ROWS),
    ]
    found = simulate_all(jobs, runs=RUNS)
    print(f"the adaptive procedure as run: {RUNS} simulated runs per row, margin 10%")
    for name, design in designs.items():
        print(
            f"  {name}: {design.first} to {design.last} trials a cell, budget {design.budget_s} s"
        )
    print(
        f"  a trial takes {designs['quick'].trial_s} s a round on the budget's clock "
        f"({CPU_PURE_TRIAL_S} s in the noisy-day rows: the specs' cpu_pure trials)"
    )
    print(
        f"{'spec':7} {'noise':22} {'true speedups':20} {'all more':>9} {'all no gain':>12} "
        f"{'nuanced':>8} {'inconcl.':>9} {'95% cover':>10} {'trials':>7}  what it shows"
    )
    for rates, what in zip(found, whats, strict=True):
        print(
            f"{rates.design:7} {rates.noise:22} {rates.family.text():20} {rates.all_more:>9.1%} "
            f"{rates.all_no_gain:>12.1%} {rates.nuanced:>8.1%} {rates.inconclusive:>9.1%} "
            f"{rates.coverage:>10.1%} {rates.trials:>7.1f}  {what}"
        )
    quick = designs["quick"]
    welch = dataclasses.replace(quick, paired=False)
    for family, noise, label in (
        (Family(((1.10,),)), DRIFT, "Welch's interval (pair_rounds: false), drift"),
        (Family(((1.10,),)), IID, "control: every look at 5% a side (the rule before)"),
    ):
        rule = Rule(quick.margin, paired=quick.paired) if label.startswith("control") else None
        design = quick if rule else welch
        rates = simulate_procedure(family, design, noise, runs=RUNS, rule=rule)
        print(
            f"{'quick':7} {noise.name:22} {family.text():20} {rates.all_more:>9.1%} "
            f"{rates.all_no_gain:>12.1%} {rates.nuanced:>8.1%} {rates.inconclusive:>9.1%} "
            f"{rates.coverage:>10.1%} {rates.trials:>7.1f}  {label}"
        )


def gate_table() -> None:
    print()
    print("pipeline compare --fail-above 10: 15 cells of 5 trials a run, 2000 simulated pairs")
    header = ("CV", "1.5x regression caught", "fails at 1.10x", "fails, none slower")
    print(f"{header[0]:>4} {header[1]:>23} {header[2]:>15} {header[3]:>19}")
    for cv in (0.05, 0.08, 0.09, 0.10, 0.13):
        caught = simulate_gate(1.5, cv=cv, runs=RUNS).caught
        edge = simulate_gate(1.10, cv=cv, runs=RUNS).failed
        none = simulate_gate(1.0, cv=cv, runs=RUNS).failed
        print(f"{cv:>4.0%} {caught:>23.1%} {edge:>15.1%} {none:>19.1%}")


def single_look_table() -> None:
    print()
    print(f"one look (a fixed number of trials): {RUNS} simulated runs per figure")
    print(
        f"{'design':7} {'CV':>4} {'n':>3} {'A/A called different':>21} {'size at 1.10x':>14} "
        f"{'power 1.5x':>11} {'95% CI coverage':>16}"
    )
    for paired in (False, True):
        for cv in (0.05, 0.10, 0.30):
            for n in (3, 5, 10, 20):
                aa = simulate_ratio(1.0, cv, n, paired=paired, runs=RUNS)
                size = simulate_ratio(1.10, cv, n, paired=paired, runs=RUNS)
                power = simulate_ratio(1.5, cv, n, paired=paired, runs=RUNS)
                cover = simulate_ratio(1.3, cv, n, paired=paired, runs=RUNS, level=0.95)
                print(
                    f"{'paired' if paired else 'Welch':7} {cv:>4.0%} {n:>3} "
                    f"{aa.more + aa.less:>21.1%} {size.more:>14.1%} {power.more:>11.1%} "
                    f"{cover.covered:>16.1%}"
                )
    print("median interval (order statistics): coverage against its printed level")
    for n in (3, 5, 10, 20):
        found = simulate_median_interval(n, 0.10, runs=RUNS)
        print(f"  n={n:>2}: covered {found.covered:.1%}, printed level {found.level:.1%}")


def real_a_a_table(url: str | None) -> None:
    print()
    with tempfile.TemporaryDirectory() as folder:
        if url is None:
            url = f"sqlite:///{Path(folder, 'aa.db')}"
            for _ in range(2):
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pipeline",
                        "run",
                        "experiments/quick.yaml",
                        "--db",
                        url,
                        "--no-report",
                        "-q",
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
        results = app.open_store(url)
        runs = app.runs_frame(results).sort_values("id")
        print(f"real A/A: {len(runs)} stored run(s) in {url}")
        trials = [results.trials_frame(int(run)) for run in runs["id"]]
        for found in real_a_a(pd.concat(trials)):
            print(
                f"  {found.split:45} {found.cells:>4} cells: called different {found.different}, "
                f"no practical difference {found.same}, one side ruled out {found.one_sided}, "
                f"undecided {found.undecided}"
            )
        by_spec = runs.groupby("name")["id"].apply(list)
        for name, ids in by_spec.items():
            for first, second in itertools.pairwise(ids):
                compared = app.compare_runs(results, int(first), int(second))
                verdicts = compared["verdict"].str.split(":").str[0].value_counts()
                print(
                    f"  runs {first} and {second} of {name} compared ({len(compared)} cells): "
                    + ", ".join(f"{verdict} {count}" for verdict, count in verdicts.items())
                )


def main() -> None:
    procedure_table()
    gate_table()
    single_look_table()
    real_a_a_table(sys.argv[1] if len(sys.argv) > 1 else None)


if __name__ == "__main__":
    main()
