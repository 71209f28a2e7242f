"""The adaptive procedure as a run performs it, on simulated trials: how often its verdicts
are false, how often they are reached, and how often its intervals hold the truth.

A simulated run has a claim's cells (a baseline per series and one cell per worker
count, with true speedups), measures every cell for the spec's minimum of rounds, then
asks the real :class:`adaptive.Repetitions` for each next round, with the undecided cells
found by the real rule (evidence.decide_family at the spec's levels), one trial per cell
per round on a simulated clock (the spec's budget), until the rule, the maximum or the
budget stops every cell; the final verdict is decided as a report decides it. Beyond
i.i.d. lognormal noise, trials can carry outliers (a share slowed 1.3-1.5×), a slow
drift of the machine's speed over the run and a speed of each round's own that its trials
share (the speed wandering over seconds, which pairing by round cancels); and a
baseline can be held open to the last round by another claim's undecided comparison
(``partner``), so that cells stop at different rounds. Used by the tests and ``make
bench`` (benchmarks/calibration.py); analysis/calibration.py has the single-look figures.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.evidence import Evidence, Outcome, decide_family, outcome, unsettled_cells
from ..analysis.inference import Observed, Rule, ratio_of
from ..analysis.sequential import schedule_of
from ..planning.matrix import Cell
from ..planning.spec import load_spec
from ..status import TrialStatus
from .adaptive import Repetitions


@dataclass(frozen=True)
class Noise:
    """How a simulated trial's time varies around its cell's true time."""

    name: str
    cv: float = 0.10  # lognormal, coefficient of variation
    outliers: float = 0.0  # share of trials slowed by a factor drawn from ``slowdown``
    slowdown: tuple[float, float] = (1.3, 1.5)
    drift: float = 0.0  # the machine's speed drifts by up to this (log scale) over the run
    shared: float = 0.0  # log SD of a speed factor every trial of a round shares

    def factors(self, rng: np.random.Generator, last: int) -> np.ndarray:
        """The machine's speed factor of each round: a slow sine of random phase, times a
        factor of its own (``shared``: the speed wandering over seconds, which trials run
        moments apart share)."""
        log_speed = np.zeros(last)
        if self.drift:
            phase = rng.uniform(0, 2 * math.pi)
            log_speed += self.drift * np.sin(phase + 2 * math.pi * np.arange(last) / last)
        if self.shared:
            log_speed += rng.normal(0.0, self.shared, last)
        return np.exp(log_speed)

    def trial(self, rng: np.random.Generator, true_s: float, speed: float) -> float:
        sigma = math.sqrt(math.log1p(self.cv * self.cv))
        slowed = rng.uniform(*self.slowdown) if rng.random() < self.outliers else 1.0
        return float(true_s * speed * slowed * math.exp(rng.normal(0.0, sigma)))


IID = Noise("lognormal CV 10%")
OUTLIERS = Noise("15% outliers 1.3-1.5x", outliers=0.15)
DRIFT = Noise("drift ±10%", drift=0.10)
NOISES = (IID, OUTLIERS, DRIFT)
NOISY = Noise("lognormal CV 13%", cv=0.13)  # cpu_pure's CV on the reference VM, most days
# cpu_pure on the reference VM on a noisy day (2026-12-06): log SD 0.12-0.14 a trial, about
# half of it a speed the trials of a round share (paired SD 0.13 against 0.18 unpaired)
NOISY_DAY = Noise("9% + 8% shared a round", cv=0.09, shared=0.08)
# what a cpu_pure trial of the bundled specs takes a round there (0.13 s of work, the fresh
# process and the orchestrator), for the budget's clock
CPU_PURE_TRIAL_S = 0.2


@dataclass(frozen=True)
class Design:
    """A spec's adaptive schedule: trials a cell at the first and last look, the seconds
    extra rounds may take and the time one trial takes on the simulated clock."""

    name: str
    first: int
    last: int
    budget_s: float | None = None
    trial_s: float = 0.5
    margin: float = 0.10
    paired: bool = False

    @property
    def rule(self) -> Rule:
        return Rule(self.margin, schedule=schedule_of(self.first, self.last), paired=self.paired)

    @classmethod
    def of_spec(cls, path: str | Path, trial_s: float = 0.5) -> Design:
        """The schedule of a spec file (a fixed count: one look)."""
        spec = load_spec(path)
        last = spec.adaptive.max if spec.adaptive else spec.min_repetitions
        return cls(
            spec.name,
            spec.min_repetitions,
            last,
            spec.budget,
            trial_s,
            spec.margin,
            spec.pair_rounds,
        )


@dataclass(frozen=True)
class Family:
    """A claim's cells: per series, the true speedups of its worker counts over the
    series' own baseline (true time 1 s)."""

    series: tuple[tuple[float, ...], ...]
    partner: bool = False  # the baselines stay open to the last round (cells stop apart)

    def text(self) -> str:
        shown = " | ".join(", ".join(f"{r:.2f}" for r in counts) for counts in self.series)
        return shown + (" +partner" if self.partner else "")


@dataclass(frozen=True)
class ProcedureRates:
    """How often each verdict came out over simulated runs, and what the runs cost."""

    family: Family
    design: str
    noise: str
    runs: int
    all_more: float  # every series gains
    all_no_gain: float  # every series rules a gain out at every count
    nuanced: float
    inconclusive: float
    coverage: float  # share of comparisons whose final 95% interval held the true ratio
    trials: float  # mean trials a run took, all cells


def simulate_procedure(
    family: Family,
    design: Design,
    noise: Noise = IID,
    *,
    runs: int = 1000,
    seed: int = 1,
    rule: Rule | None = None,
) -> ProcedureRates:
    """``runs`` simulated adaptive runs of ``family`` under ``design`` and ``noise``,
    decided by the design's rule (or ``rule``: another one, to compare)."""
    rule = rule or design.rule
    counts: Counter[Outcome] = Counter()
    covered = compared = trials = 0
    for run in range(runs):
        rng = np.random.default_rng([seed, run, int(design.first), int(design.last)])
        found = _one_run(family, design, noise, rule, rng)
        counts[found.outcome] += 1
        covered += found.covered
        compared += found.compared
        trials += found.trials
    return ProcedureRates(
        family,
        design.name,
        noise.name,
        runs,
        all_more=counts[Outcome.ALL_MORE] / runs,
        all_no_gain=counts[Outcome.NONE_MORE] / runs,
        nuanced=counts[Outcome.BOTH] / runs,
        inconclusive=counts[Outcome.UNDECIDED] / runs,
        coverage=covered / max(compared, 1),
        trials=trials / runs,
    )


def simulate_all(
    jobs: list[tuple[Family, Design, Noise]], *, runs: int = 1000, processes: int | None = None
) -> list[ProcedureRates]:
    """:func:`simulate_procedure` of every (family, design, noise), on ``processes``
    processes (default: one per usable CPU), in the order given."""
    workers = processes or len(os.sched_getaffinity(0))
    simulate = functools.partial(_simulate_job, runs=runs)
    if workers <= 1 or len(jobs) <= 1:
        return [simulate(job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(simulate, jobs))


def _simulate_job(job: tuple[Family, Design, Noise], runs: int) -> ProcedureRates:
    return simulate_procedure(*job, runs=runs)


@dataclass(frozen=True)
class _Run:
    outcome: Outcome
    covered: int
    compared: int
    trials: int


class _Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def _one_run(
    family: Family, design: Design, noise: Noise, rule: Rule, rng: np.random.Generator
) -> _Run:
    cells: list[Cell] = []
    truths: dict[int, float] = {}  # cell position -> true time
    pairs: list[tuple[int, int, float]] = []  # baseline, cell, true speedup
    baselines: set[int] = set()
    for number, speedups in enumerate(family.series):
        base = _cell(len(cells), number, 1)
        cells.append(base)
        baselines.add(base.position)
        truths[base.position] = 1.0
        for workers, speedup in enumerate(speedups, start=2):
            cell = _cell(len(cells), number, workers)
            cells.append(cell)
            truths[cell.position] = 1.0 / speedup
            pairs.append((base.position, cell.position, speedup))
    speed = noise.factors(rng, design.last)
    values: dict[int, list[float]] = {cell.position: [] for cell in cells}
    clock = _Clock()
    repetitions = Repetitions(cells, None, design.last, design.budget_s, clock=clock)

    def measure(cell: Cell) -> None:
        done = repetitions.counts.get(cell.position, 0)
        wall = noise.trial(rng, truths[cell.position], speed[min(done, design.last - 1)])
        values[cell.position].append(wall)
        repetitions.record(cell, TrialStatus.OK, wall)
        clock.now_s += wall * design.trial_s

    def decided() -> list[Evidence]:
        evidence = [
            Evidence(
                f"cell {cell}",
                "speedup",
                _observed(values[base]),
                _observed(values[cell]),
                "simulated",
                cell_ids=(base, cell),
                series=(base,),
            )
            for base, cell, _ in pairs
        ]
        decide_family(evidence, rule)
        return evidence

    for _ in range(design.first):
        for cell in rng.permutation(len(cells)):
            measure(cells[int(cell)])
    while True:
        undecided = unsettled_cells([decided()])
        if family.partner:
            undecided |= baselines
        chosen = repetitions.next_round(undecided)
        if not chosen:
            break
        for cell in chosen:
            measure(cell)
    final = decided()
    wide = rule.with_alpha(0.025)  # the cell summary's 95% interval, as published
    covered = 0
    for e, (_, _, truth) in zip(final, pairs, strict=True):
        interval = ratio_of(e.first, e.second, level=wide.level(), paired=rule.paired)
        covered += interval.low <= truth <= interval.high
    return _Run(outcome(final), covered, len(final), sum(map(len, values.values())))


def _cell(position: int, series: int, workers: int) -> Cell:
    model = "sequential" if workers == 1 else "threads"
    return Cell(position, f"series{series}", model, workers, 0, "simulated")


def _observed(walls: list[float]) -> Observed:
    return Observed(np.asarray(walls), np.arange(len(walls)))
