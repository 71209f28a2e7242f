"""Matrix expansion order, excludes, the sequential collapse, and the trial schedule."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import SpecError
from pipeline.planning.matrix import cell_params, expand, schedule
from pipeline.planning.spec import parse_spec

MODELS = ["sequential", "threads", "asyncio", "processes"]


def make_spec(tasks, models, workers, payloads, exclude=(), repetitions=3, warmup=1, seed=1):
    text = (
        f"name: m\nrepetitions: {repetitions}\nwarmup: {warmup}\nseed: {seed}\n"
        f"matrix:\n  task: {list(tasks)}\n  model: {list(models)}\n"
        f"  workers: {list(workers)}\n  payload: {list(payloads)}\n"
    )
    if exclude:
        text += "exclude:\n" + "".join(f"  - {dict(entry)}\n" for entry in exclude)
    return parse_spec(text.replace("'", ""), "m.yaml")


def test_documented_order_last_axis_fastest() -> None:
    spec = make_spec(["cpu_pure", "io_sleep"], ["threads", "processes"], [2, 4], [1, 2])
    keys = [(c.task, c.model, c.workers, c.payload_bytes) for c in expand(spec)]
    assert keys == list(
        itertools.product(["cpu_pure", "io_sleep"], ["threads", "processes"], [2, 4], [1, 2])
    )
    assert [c.position for c in expand(spec)] == list(range(16))


def test_sequential_collapses_to_one_worker() -> None:
    cells = expand(make_spec(["cpu_pure"], ["sequential", "threads"], [1, 2, 4], [1]))
    assert [(c.model, c.workers) for c in cells] == [
        ("sequential", 1),
        ("threads", 1),
        ("threads", 2),
        ("threads", 4),
    ]


def test_exclude_drops_matching_cells_only() -> None:
    spec = make_spec(
        ["cpu_pure", "io_sleep"],
        ["sequential", "asyncio"],
        [2],
        ["1KiB"],
        exclude=[{"task": "cpu_pure", "model": "asyncio"}],
    )
    assert [(c.task, c.model) for c in expand(spec)] == [
        ("cpu_pure", "sequential"),
        ("io_sleep", "sequential"),
        ("io_sleep", "asyncio"),
    ]


def test_exclude_matches_payload_sizes_in_any_unit() -> None:
    spec = make_spec(["io_sleep"], ["threads"], [2], ["1KiB", "2KiB"], exclude=[{"payload": 1024}])
    assert [c.payload_bytes for c in expand(spec)] == [2048]


def test_schedule_warmups_first_then_rounds() -> None:
    cells = expand(make_spec(["cpu_pure"], ["sequential", "threads"], [2, 4], [1]))
    plans = schedule(cells, repetitions=3, warmup=2, seed=7)
    warmups = plans[: 2 * len(cells)]
    assert all(p.warmup for p in warmups)
    assert [p.cell.position for p in warmups] == [0, 0, 1, 1, 2, 2]
    measured = plans[len(warmups) :]
    for repetition in range(3):
        round_plans = measured[repetition * 3 : (repetition + 1) * 3]
        assert {p.repetition for p in round_plans} == {repetition}
        assert sorted(p.cell.position for p in round_plans) == [0, 1, 2]
    assert [p.sequence for p in plans] == list(range(len(plans)))


def test_a_round_runs_each_blocks_cells_back_to_back() -> None:
    """Cells compared with each other (same task, payload...) run back to back in every
    round; the blocks' order and the order within them change from round to round."""
    cells = expand(make_spec(["cpu_pure", "io_sleep"], MODELS, [2, 4], [1, 2048]))
    plans = schedule(cells, 20, 0, seed=5)
    block_orders, inner_orders = set(), set()
    for repetition in range(20):
        round_cells = [p.cell for p in plans if p.repetition == repetition]
        blocks = [block for block, _ in itertools.groupby(c.block for c in round_cells)]
        assert len(blocks) == len(set(blocks)) == 4  # each block in one stretch
        block_orders.add(tuple(blocks))
        inner_orders.add(tuple(c.position for c in round_cells if c.block == cells[0].block))
    assert len(block_orders) > 1
    assert len(inner_orders) > 1


def test_schedule_is_seeded() -> None:
    cells = expand(make_spec(["cpu_pure", "io_sleep"], MODELS, [2, 4], [1]))
    order = [p.cell.position for p in schedule(cells, 5, 0, seed=3)]
    assert order == [p.cell.position for p in schedule(cells, 5, 0, seed=3)]
    assert order != [p.cell.position for p in schedule(cells, 5, 0, seed=4)]


@settings(max_examples=60, deadline=None)
@given(
    tasks=st.lists(st.sampled_from(["cpu_pure", "io_sleep"]), min_size=1, unique=True),
    models=st.lists(st.sampled_from(MODELS), min_size=1, unique=True),
    workers=st.lists(st.integers(1, 8), min_size=1, max_size=4, unique=True),
    payloads=st.lists(st.integers(0, 4096), min_size=1, max_size=3, unique=True),
    repetitions=st.integers(1, 4),
    warmup=st.integers(0, 2),
    seed=st.integers(0, 1000),
)
def test_expansion_invariants(tasks, models, workers, payloads, repetitions, warmup, seed):
    cells = expand(make_spec(tasks, models, workers, payloads))
    keys = [c.key for c in cells]
    assert len(keys) == len(set(keys))  # no duplicate cells
    assert all(c.workers == 1 for c in cells if c.model == "sequential")
    others = [m for m in models if m != "sequential"]
    expected = len(tasks) * len(payloads) * (len(others) * len(workers) + ("sequential" in models))
    assert len(cells) == expected
    plans = schedule(cells, repetitions, warmup, seed)
    counts = Counter((p.cell.position, p.warmup) for p in plans)
    for cell in cells:
        assert counts[(cell.position, False)] == repetitions
        assert counts[(cell.position, True)] == warmup
    first_measured = next((i for i, p in enumerate(plans) if not p.warmup), len(plans))
    assert all(p.warmup for p in plans[:first_measured])
    assert not any(p.warmup for p in plans[first_measured:])


def test_swept_parameters_are_a_per_task_axis() -> None:
    spec = parse_spec(
        "name: m\nmatrix:\n  task: [transfer, io_sleep]\n  model: [sequential, threads]\n"
        "  workers: [2]\n  payload: [1KiB]\n"
        "params:\n  transfer: {transport: [pickle, shared_memory]}\n  io_sleep: {seconds: 0.01}\n",
        "m.yaml",
    )
    cells = expand(spec)
    assert [(c.task, c.variant_label, c.model) for c in cells] == [
        ("transfer", "transport=pickle", "sequential"),
        ("transfer", "transport=pickle", "threads"),
        ("transfer", "transport=shared_memory", "sequential"),
        ("transfer", "transport=shared_memory", "threads"),
        ("io_sleep", "", "sequential"),
        ("io_sleep", "", "threads"),
    ]
    assert [cell_params(spec, c) for c in cells[1:3]] == [
        {"transport": "pickle"},
        {"transport": "shared_memory"},
    ]
    assert cell_params(spec, cells[4]) == {"seconds": 0.01}
    assert cells[2].label() == "transfer (transport=shared_memory) sequential ×1, 1 KiB"


def test_exclude_lists_match_any_value() -> None:
    spec = make_spec(
        ["cpu_pure", "io_sleep"],
        ["threads", "processes"],
        [2, 4],
        [1],
        exclude=[{"task": "[cpu_pure, io_sleep]", "workers": "[4]"}],
    )
    assert {c.workers for c in expand(spec)} == {2}


def test_an_exclude_entry_may_name_a_swept_parameter() -> None:
    """An exclude entry matches a swept task parameter's value like an axis; a cell of a
    task without that parameter never matches it; a value that is not swept is refused."""
    text = (
        "name: m\nrepetitions: 1\nmatrix:\n  task: [transfer, cpu_pure]\n"
        "  model: [threads, processes]\n  workers: [2]\n  payload: [1KiB]\n"
        "params:\n  transfer: {transport: [pickle, shared_memory]}\n"
        "exclude:\n  - {model: threads, transport: shared_memory}\n"
    )
    cells = expand(parse_spec(text, "m.yaml"))
    assert [(c.task, c.variant_label, c.model) for c in cells] == [
        ("transfer", "transport=pickle", "threads"),
        ("transfer", "transport=pickle", "processes"),
        ("transfer", "transport=shared_memory", "processes"),
        ("cpu_pure", "", "threads"),
        ("cpu_pure", "", "processes"),
    ]
    with pytest.raises(SpecError, match="'zip' is not a swept value of transport"):
        parse_spec(text.replace("transport: shared_memory}", "transport: zip}"), "m.yaml")
