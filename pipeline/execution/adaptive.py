"""Adaptive repetitions: spend measuring time where the noise is.

After every cell has its minimum of measured trials, rounds of extra trials go to the
cells whose median is not yet known to the target precision (relative half-width of its
95% bootstrap interval), most uncertain first, one trial per cell per round so trials stay
interleaved, until every cell meets the target, reaches the maximum, or the budget of
seconds is spent. Why each cell stopped is recorded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..planning.matrix import Cell
from ..status import StopReason, TrialStatus


@dataclass
class Repetitions:
    """The measured wall times of each cell so far, and how many more trials each gets."""

    cells: list[Cell]
    target_ci: float
    maximum: int
    budget_s: float | None = None
    seed: int = 0
    clock: Callable[[], float] = time.monotonic
    walls: dict[int, list[float]] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    reasons: dict[int, StopReason] = field(default_factory=dict)
    _started_s: float | None = None

    def record(self, cell: Cell, status: str, wall_s: float | None) -> None:
        """Count one measured trial of ``cell`` (its wall time if it ended ok)."""
        self.counts[cell.position] = self.counts.get(cell.position, 0) + 1
        if status == TrialStatus.OK and wall_s is not None:
            self.walls.setdefault(cell.position, []).append(wall_s)

    def precision(self, cell: Cell) -> float:
        """The cell's current relative half-width (NaN with fewer than two ok trials)."""
        from ..analysis import stats  # scipy: imported when an adaptive run first needs it

        return stats.relative_half_width(
            self.walls.get(cell.position, []), seed=self.seed + cell.position
        )

    def next_round(self) -> list[Cell]:
        """The cells that get one more trial, most uncertain first; [] when done."""
        if self._started_s is None:
            self._started_s = self.clock()
        budget_left = self.budget_s is None or self.clock() - self._started_s < self.budget_s
        wanting: list[tuple[float, Cell]] = []
        for cell in self.cells:
            if cell.position in self.reasons:
                continue
            width = self.precision(cell)
            if math.isnan(width):
                self.reasons[cell.position] = StopReason.NO_OK_TRIALS
            elif width <= self.target_ci:
                self.reasons[cell.position] = StopReason.TARGET_MET
            elif self.counts.get(cell.position, 0) >= self.maximum:
                self.reasons[cell.position] = StopReason.MAX_REACHED
            elif not budget_left:
                self.reasons[cell.position] = StopReason.BUDGET_SPENT
            else:
                wanting.append((width, cell))
        wanting.sort(key=lambda pair: (-pair[0], pair[1].position))
        return [cell for _, cell in wanting]

    def stop_all(self, reason: StopReason) -> None:
        """Give every cell still open ``reason`` (an interrupted run)."""
        for cell in self.cells:
            self.reasons.setdefault(cell.position, reason)
