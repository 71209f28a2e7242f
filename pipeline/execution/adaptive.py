"""Adaptive repetitions: spend measuring time where the answer is not known yet.

After every cell has its minimum of measured trials, rounds of extra trials go to the
cells that a claim's comparison still leaves undecided (both cells of the comparison, so
they stay paired by round) and, with ``target_ci``, to those whose median is not yet known
to that precision (relative half-width of its 95% interval), the block of the most
uncertain cell first (a block's cells back to back, as in the first rounds, in a seeded
random order within it, so that no cell of a comparison always runs first), one trial per
cell per round so trials stay interleaved, until every cell is decided and
precise enough, reaches the maximum, the budget of seconds is spent, or the run's time
limit (counted from its start) has passed. Why each cell stopped is recorded.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..planning.matrix import Cell, by_block
from ..status import StopReason, TrialStatus


@dataclass
class Repetitions:
    """The measured wall times of each cell so far, and how many more trials each gets."""

    cells: list[Cell]
    target_ci: float | None  # None: precision is not asked for, only decisions
    maximum: int
    budget_s: float | None = None
    deadline_s: float | None = None  # on ``clock``: no round starts after it (time_limit)
    clock: Callable[[], float] = time.monotonic
    seed: int | None = None  # shuffles the cells within each block of a round (None: not)
    walls: dict[int, list[float]] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    reasons: dict[int, StopReason] = field(default_factory=dict)
    _started_s: float | None = None
    _order: random.Random | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._order = None if self.seed is None else random.Random(self.seed)

    def record(self, cell: Cell, status: str, wall_s: float | None) -> None:
        """Count one measured trial of ``cell`` (its wall time if it ended ok)."""
        self.counts[cell.position] = self.counts.get(cell.position, 0) + 1
        if status == TrialStatus.OK and wall_s is not None:
            self.walls.setdefault(cell.position, []).append(wall_s)

    def precision(self, cell: Cell) -> float:
        """The cell's current relative half-width (NaN with fewer than two ok trials)."""
        from ..analysis import stats  # scipy: imported when an adaptive run first needs it

        return stats.relative_half_width(self.walls.get(cell.position, []))

    def next_round(self, undecided: set[int] | None = None) -> list[Cell]:
        """The cells that get one more trial, most uncertain first; [] when done.
        ``undecided``: positions of the cells a claim's comparison has not decided yet
        (None: decisions are not asked for)."""
        if self._started_s is None:
            self._started_s = self.clock()
        budget_left = self.budget_s is None or self.clock() - self._started_s < self.budget_s
        time_left = self.deadline_s is None or self.clock() < self.deadline_s
        wanting: list[tuple[float, Cell]] = []
        for cell in self.cells:
            if cell.position in self.reasons:
                continue
            width = self.precision(cell)
            imprecise = self.target_ci is not None and not width <= self.target_ci
            undecided_here = undecided is not None and cell.position in undecided
            if math.isnan(width):
                self.reasons[cell.position] = StopReason.NO_OK_TRIALS
            elif not imprecise and not undecided_here:
                self.reasons[cell.position] = (
                    StopReason.TARGET_MET if self.target_ci is not None else StopReason.DECIDED
                )
            elif self.counts.get(cell.position, 0) >= self.maximum:
                self.reasons[cell.position] = StopReason.MAX_REACHED
            elif not budget_left:
                self.reasons[cell.position] = StopReason.BUDGET_SPENT
            elif not time_left:
                self.reasons[cell.position] = StopReason.TIME_LIMIT
            else:
                wanting.append((width, cell))
        wanting.sort(key=lambda pair: (-pair[0], pair[1].position))
        return by_block([cell for _, cell in wanting], self._order)

    def stop_all(self, reason: StopReason) -> None:
        """Give every cell still open ``reason`` (an interrupted run)."""
        for cell in self.cells:
            self.reasons.setdefault(cell.position, reason)
