"""``pipeline advise``'s decision: which configuration (model, workers, start method,
chunksize, interpreter) runs a user's batch fastest, whether the rule separates it from
the rest, and what else the measurements say. Pure functions on the run's frames.

The measure is the **batch time** of a trial: the pool's start-up, the work and the
shutdown (what a program that makes a pool for its batch waits for). The best
configuration has the smallest geometric mean of batch times; every other one is compared
with it as a claim's comparisons are (evidence.decide_family, the run's repeated
intervals): *slower* by more than the margin separates it, an interval within the margin
makes it a tie, anything else needs more trials. Within a series (one model, start
method, chunksize and interpreter), a doubling of workers whose gain is ruled out stops
the counts above it. Results are compared item by item with the sequential baseline's
(digests), the way a function that is not thread-safe shows itself.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from ..status import TrialStatus
from .evidence import Evidence, decide_family, unsettled_cells
from .inference import Decision, Observed, Ratio, Rule, ratio_of
from .inference import decide as decide_ratio

BATCH = ("startup_s", "wall_s", "shutdown_s")
BASELINE = "sequential"


@dataclass(frozen=True)
class Config:
    """One measured configuration (a cell of the advise run)."""

    cell_id: int
    model: str
    workers: int
    interpreter: str
    chunksize: int
    free_threaded: bool = False

    @property
    def series(self) -> tuple[str, str, int]:
        return (self.model, self.interpreter, self.chunksize)

    @property
    def kind(self) -> str:
        """threads, processes, asyncio, subinterpreters, sequential (free-threaded: its
        threads are their own kind)."""
        kind = self.model.split("-")[0]
        return f"free-threaded {kind}" if self.free_threaded and kind != BASELINE else kind

    def label(self) -> str:
        """'processes-forkserver ×2, chunksize 8 (python3.13t)'."""
        text = BASELINE if self.model == BASELINE else f"{self.model} ×{self.workers}"
        if self.chunksize > 1:
            text += f", chunksize {self.chunksize}"
        return text + (f" ({self.interpreter})" if self.free_threaded else "")


@dataclass
class Measured:
    """A run's configurations with their ok batch times (by round)."""

    configs: list[Config]
    batches: dict[int, Observed]
    failed: dict[int, str] = field(default_factory=dict)  # cell id -> first error

    def baseline(self) -> Config | None:
        found = [c for c in self.configs if c.model == BASELINE and not c.free_threaded]
        return found[0] if found else None

    def usable(self) -> list[Config]:
        """Configurations with two ok trials or more and no failed trial."""
        return [
            c
            for c in self.configs
            if c.cell_id not in self.failed and self.batches[c.cell_id].values.size >= 2
        ]

    def best(self) -> Config | None:
        usable = self.usable()
        if not usable:
            return None
        return min(usable, key=lambda c: float(np.mean(np.log(self.batches[c.cell_id].values))))


def measured(trials: pd.DataFrame) -> Measured:
    """The configurations of an advise run's trials (``trial_results`` rows of the call
    task), their ok batch times and failures."""
    configs, batches, failed = [], {}, {}
    for cell_id, rows in trials.groupby("cell_id", sort=True):
        first = rows.iloc[0]
        config = Config(
            int(cast(int, cell_id)),
            str(first["model"]),
            int(first["workers"]),
            str(first["interpreter"]),
            chunksize_of(first.get("variant")),
            bool(rows["free_threaded_build"].fillna(False).astype(bool).any()),
        )
        configs.append(config)
        ok = rows[rows["status"].eq(TrialStatus.OK)]
        totals = ok[list(BATCH)].astype("float64").sum(axis=1, min_count=len(BATCH))
        known = totals.notna().to_numpy()
        batches[config.cell_id] = Observed(
            totals.to_numpy(dtype="float64")[known], ok["repetition"].to_numpy(dtype="int64")[known]
        )
        bad = rows[~rows["status"].isin([TrialStatus.OK, TrialStatus.SKIPPED])]
        if not bad.empty:
            failed[config.cell_id] = f"{bad.iloc[0]['status']}: {bad.iloc[0].get('error') or ''}"
        elif ok.empty and not rows.empty:
            failed[config.cell_id] = f"skipped: {rows.iloc[0].get('error') or ''}"
    return Measured(configs, batches, failed)


def chunksize_of(variant: Any) -> int:
    """The chunksize a cell's variant ('chunksize=8') names, else 1."""
    for part in str(variant or "").split():
        name, _, value = part.partition("=")
        if name == "chunksize" and value.isdigit():
            return int(value)
    return 1


@dataclass
class Decided:
    """The best configuration against every other one."""

    best: Config | None
    rivals: list[Evidence]  # each rival's batch time over the best's (>1: the best is faster)
    pruned: dict[int, str]  # cell id -> why no more trials: a doubling that gained nothing

    def settled(self) -> bool:
        """Every rival is separated from the best, tied with it, or above a doubling of
        its series that gained nothing."""
        return all(e.settled or e.cell_ids[0] in self.pruned for e in self.rivals)

    def ties(self) -> list[Evidence]:
        """The rivals the rule shows are not slower than the best by more than the margin."""
        return [e for e in self.rivals if e.decision.rules_out_more]

    def unseparated(self) -> list[Evidence]:
        """The rivals neither separated from the best nor tied with it: more trials would
        tell."""
        return [
            e
            for e in self.rivals
            if e.decision is not Decision.MORE and not e.decision.rules_out_more
        ]


def decide(data: Measured, rule: Rule) -> Decided:
    """The best configuration and each rival's comparison with it (decided as a claim's
    family: all separated without correction, else Bonferroni over the rivals), and the
    series counts a doubling without gain makes needless."""
    best = data.best()
    if best is None:
        return Decided(None, [], {})
    rivals = [
        Evidence(
            config.label(),
            "batch time",
            data.batches[config.cell_id],
            data.batches[best.cell_id],
            config.kind,
            cell_ids=(config.cell_id, best.cell_id),
        )
        for config in data.usable()
        if config.cell_id != best.cell_id
    ]
    if rivals:
        decide_family(rivals, rule)
    return Decided(best, rivals, _pruned(data, best, rule))


def _pruned(data: Measured, best: Config, rule: Rule) -> dict[int, str]:
    """Cells above a doubling of workers that gained nothing (its interval rules a gain
    over the half count out), by series; never the best."""
    pruned: dict[int, str] = {}
    usable = data.usable()
    for series in {c.series for c in usable if c.model != BASELINE}:
        counts = sorted((c for c in usable if c.series == series), key=lambda c: c.workers)
        for lower, upper in itertools.pairwise(counts):
            if upper.workers != 2 * lower.workers:
                continue
            gain = ratio_of(
                data.batches[lower.cell_id],
                data.batches[upper.cell_id],
                level=rule.level(),
                paired=rule.paired,
            )
            if decide_ratio(gain, rule.margin).rules_out_more:
                for above in counts:
                    if above.workers > upper.workers and above.cell_id != best.cell_id:
                        pruned[above.cell_id] = (
                            f"{upper.label()} gained nothing over ×{lower.workers}"
                        )
                break
    return pruned


def undecided_cells(data: Measured, rule: Rule) -> set[int]:
    """The cells that need more trials: the best and every rival not yet separated from
    it or tied with it, less the counts a doubling without gain made needless."""
    decided = decide(data, rule)
    if decided.best is None:
        return set()
    open_rivals = [e for e in decided.rivals if e.cell_ids[0] not in decided.pruned]
    return unsettled_cells([open_rivals])


def speedup(data: Measured, config: Config, rule: Rule) -> Ratio:
    """The baseline's batch time over ``config``'s (95% over the run's looks)."""
    baseline = data.baseline()
    if baseline is None:
        return Ratio(math.nan, math.nan, math.nan, math.nan, 0, 0, False)
    return ratio_of(
        data.batches[baseline.cell_id],
        data.batches[config.cell_id],
        level=rule.with_alpha(0.025).level(),
        paired=rule.paired,
    )
