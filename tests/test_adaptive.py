"""The adaptive sampler's decisions, with a fake clock: which cells get more trials."""

from __future__ import annotations

from pipeline.execution import adaptive
from pipeline.planning.matrix import Cell
from pipeline.status import StopReason

CELLS = [Cell(i, "t", "threads", 2, 1, "py") for i in range(3)]


def sampler(**options) -> adaptive.Repetitions:
    options = {"target_ci": 0.05, "maximum": 8, **options}
    return adaptive.Repetitions(CELLS, **options)


def fill(s: adaptive.Repetitions, cell: Cell, walls: list[float], status: str = "ok") -> None:
    for wall in walls:
        s.record(cell, status, wall if status == "ok" else None)


def test_most_uncertain_first_and_the_rest_stop_with_a_reason() -> None:
    s = sampler()
    fill(s, CELLS[0], [1.0] * 6)  # exact: target met
    fill(s, CELLS[1], [1.0, 1.1, 0.9] * 2)  # about ±10%
    fill(s, CELLS[2], [1.0, 2.0, 0.5] * 2)  # far wider
    assert s.next_round() == [CELLS[2], CELLS[1]]
    assert s.reasons == {0: StopReason.TARGET_MET}


def test_maximum_and_no_ok_trials() -> None:
    s = sampler(maximum=3)
    fill(s, CELLS[0], [1.0, 2.0, 0.5])
    fill(s, CELLS[1], [0.0, 0.0, 0.0], status="crashed")
    fill(s, CELLS[2], [1.0, 2.0])
    assert s.next_round() == [CELLS[2]]
    assert s.reasons == {0: StopReason.MAX_REACHED, 1: StopReason.NO_OK_TRIALS}


def test_budget_stops_what_is_left() -> None:
    now = [0.0]
    s = sampler(budget_s=10.0, clock=lambda: now[0])
    for cell in CELLS:
        fill(s, cell, [1.0, 2.0, 0.5])
    assert len(s.next_round()) == 3
    now[0] = 10.5
    assert s.next_round() == []
    assert set(s.reasons.values()) == {StopReason.BUDGET_SPENT}


def test_two_agreeing_trials_do_not_meet_a_target() -> None:
    """Two trials (or five) cannot give a 95% interval of the median: the target waits
    for six, however well they agree."""
    s = sampler()
    fill(s, CELLS[0], [1.0, 1.0])
    fill(s, CELLS[1], [1.0] * 5)
    fill(s, CELLS[2], [1.0] * 6)
    assert s.next_round() == [CELLS[0], CELLS[1]]
    assert s.reasons == {2: StopReason.TARGET_MET}


def test_interrupted_cells_keep_earlier_reasons() -> None:
    s = sampler()
    fill(s, CELLS[0], [1.0] * 6)
    s.next_round()
    s.stop_all(StopReason.INTERRUPTED)
    assert s.reasons == {
        0: StopReason.TARGET_MET,
        1: StopReason.NO_OK_TRIALS,
        2: StopReason.NO_OK_TRIALS,
    }


def test_no_round_starts_after_the_time_limit() -> None:
    from pipeline.execution.adaptive import Repetitions
    from pipeline.planning.matrix import Cell
    from pipeline.status import StopReason

    now = [0.0]
    cell = Cell(0, "io_sleep", "threads", 2, 1024, "py")
    sampler = Repetitions([cell], target_ci=None, maximum=50, deadline_s=10.0, clock=lambda: now[0])
    for wall in (1.0, 1.1):
        sampler.record(cell, "ok", wall)
    assert sampler.next_round({0}) == [cell]  # undecided, time left
    now[0] = 10.5
    assert sampler.next_round({0}) == []
    assert sampler.reasons[0] == StopReason.TIME_LIMIT


def test_a_blocks_cells_stay_back_to_back_most_uncertain_block_first() -> None:
    """Two blocks (payloads 1 and 2): the block of the most uncertain cell comes first, and
    a block's cells run back to back even when a cell of the other block is less certain."""
    cells = [Cell(i, "t", "threads", 2, 1 + i % 2, "py") for i in range(4)]
    s = adaptive.Repetitions(cells, target_ci=0.01, maximum=8)
    spreads = {0: 0.5, 1: 0.3, 2: 0.1, 3: 0.4}  # block 1: cells 0, 2; block 2: cells 1, 3
    for position, spread in spreads.items():
        fill(s, cells[position], [1.0, 1.0 + spread, 1.0 - spread / 2] * 2)
    assert [c.position for c in s.next_round()] == [0, 2, 3, 1]  # not seeded: not shuffled
    seeded = adaptive.Repetitions(cells, target_ci=0.01, maximum=80, seed=3)
    seeded.walls, seeded.counts = s.walls, s.counts
    orders = {tuple(c.position for c in seeded.next_round()) for _ in range(20)}
    assert {order[:2] for order in orders} == {(0, 2), (2, 0)}  # shuffled within the block
    assert {order[2:] for order in orders} == {(3, 1), (1, 3)}
