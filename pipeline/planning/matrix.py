"""Expand a spec into cells and order the trials.

Cells come from the cross product of the axes in the order task, model, workers, payload,
interpreter (and host, on a cluster with ``hosts: each``); the last axis varies fastest
(like nested for-loops written in that order). Excludes are applied to that raw product
(an entry may also name a swept task parameter, matching the cells of that value);
then every ``sequential`` cell is collapsed to one worker and duplicates are dropped,
keeping the first occurrence. So a spec with
workers ``[1, 2, 4]`` gets one sequential baseline per task, payload and interpreter.

Trials: all warm-up trials first (each cell's ``warmup`` trials, in cell order), then the
measured trials in rounds: round r holds repetition r of every cell, in an order shuffled
by ``random.Random(seed)``. Rounds spread slow drift of the machine (heat, other load)
evenly over the cells, which a plain cell-after-cell order would not. Within a round the
cells compared with each other (a **block**: the same task, variant, payload, interpreter
and host; every model and worker count of it) run back to back, the blocks and the cells
within each in shuffled order (a randomised complete block design): the two trials of a
comparison's round run moments apart, so the machine's speed, which wanders over seconds,
is nearly the same for both, and pairing by round (``pair_rounds``) cancels it.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from .. import cells
from ..worker.tasks import TASKS, is_user_task, resolve_params
from .spec import Spec

ORDER_DESCRIPTION = (
    "warm-ups first, cell by cell; then measured trials in rounds, each round holding one "
    "repetition of every cell in a seeded random order, the cells compared with each other "
    "(same task, variant, payload, interpreter and host) back to back"
)


@dataclass(frozen=True)
class Cell:
    """One point of the matrix: what runs, under which model, with how many workers."""

    position: int
    task: str
    model: str
    workers: int
    payload_bytes: int
    interpreter: str
    # swept task parameters (a spec param given as a list), as sorted (name, value) pairs
    variant: tuple[tuple[str, Any], ...] = ()
    host: str = ""  # the cluster host it runs on (hosts: each), "" for any

    @property
    def key(self) -> tuple[str, str, int, int, str, str, str]:
        """The axis values, which identify the cell within a run."""
        return (
            self.task,
            self.model,
            self.workers,
            self.payload_bytes,
            self.interpreter,
            self.variant_label,
            self.host,
        )

    @property
    def block(self) -> tuple[Any, ...]:
        """The cells compared with each other share it: their baseline's keys (everything
        but the model and the worker count); a round runs them back to back."""
        return tuple(
            self.variant_label if key == "variant" else getattr(self, key)
            for key in cells.BASELINE_KEYS
        )

    @property
    def variant_label(self) -> str:
        """The swept parameters as ``name=value`` pairs ("" when the task has none)."""
        return " ".join(f"{name}={value}" for name, value in self.variant)

    def label(self) -> str:
        """A short human-readable name, for progress lines."""
        return cells.label(
            self.task, self.variant_label, self.model, self.workers, self.payload_bytes, self.host
        )


@dataclass(frozen=True)
class TrialPlan:
    """One trial to run: which cell, which repetition, and its place in the run."""

    sequence: int
    cell: Cell
    repetition: int
    warmup: bool


def expand(spec: Spec, hosts: tuple[str, ...] = ("",)) -> list[Cell]:
    """The run's cells in the documented order, excludes applied, sequential collapsed.
    ``hosts``: the cluster hosts when every host runs the whole matrix (an axis after the
    interpreter); ("",) otherwise."""
    axes = spec.matrix
    seen: set[tuple[str, str, int, int, str, str, str]] = set()
    cells: list[Cell] = []
    product = itertools.product(
        [(task, variant) for task in axes.task for variant in variants(spec, task)],
        axes.model,
        axes.workers,
        axes.payload,
        spec.interpreters,
        hosts,
    )
    for (task, variant), model, workers, payload, interpreter, host in product:
        values = {
            **dict(variant),  # swept parameters first: an axis of the same name wins
            "task": task,
            "model": model,
            "workers": workers,
            "payload": payload,
            "interpreter": interpreter,
        }
        if any(_matches(entry, values) for entry in spec.exclude):
            continue
        cell = Cell(
            len(cells),
            task,
            model,
            1 if model == "sequential" else workers,
            payload,
            interpreter,
            variant,
            host,
        )
        if cell.key not in seen:
            seen.add(cell.key)
            cells.append(cell)
    return cells


def variants(spec: Spec, task: str) -> list[tuple[tuple[str, Any], ...]]:
    """Every combination of a built-in task's swept parameters (list values), in the
    spec's order; ``[()]`` when nothing is swept. User tasks take lists as plain values."""
    if is_user_task(task):
        return [()]
    swept = {
        name: value for name, value in spec.params.get(task, {}).items() if isinstance(value, list)
    }
    names = sorted(swept)
    return [
        tuple(zip(names, values, strict=True))
        for values in itertools.product(*(swept[name] for name in names))
    ]


def _matches(entry: dict[str, Any], values: dict[str, Any]) -> bool:
    """Whether a cell's axis values (and swept parameters) match every key of an exclude
    entry; a cell without a swept parameter the entry names does not match."""
    return all(axis in values and values[axis] in wanted for axis, wanted in entry.items())


def schedule(cells: list[Cell], repetitions: int, warmup: int, seed: int) -> list[TrialPlan]:
    """Warm-ups cell by cell, then seeded shuffled rounds of measured trials, each cell's
    block back to back."""
    order: list[tuple[Cell, int, bool]] = [
        (cell, repetition, True) for cell in cells for repetition in range(warmup)
    ]
    rng = random.Random(seed)
    for repetition in range(repetitions):
        round_cells = list(cells)
        rng.shuffle(round_cells)
        order.extend((cell, repetition, False) for cell in by_block(round_cells))
    return [
        TrialPlan(sequence, cell, repetition, is_warmup)
        for sequence, (cell, repetition, is_warmup) in enumerate(order)
    ]


def by_block(cells: list[Cell], rng: random.Random | None = None) -> list[Cell]:
    """``cells`` with each block's cells back to back: blocks in the order of their first
    cell, cells within a block in the order given (shuffled by ``rng``, when given)."""
    blocks: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in cells:
        blocks.setdefault(cell.block, []).append(cell)
    if rng is not None:
        for block in blocks.values():
            rng.shuffle(block)
    return [cell for block in blocks.values() for cell in block]


def cell_params(spec: Spec, cell: Cell) -> dict[str, Any]:
    """The task parameters a cell runs with: defaults overlaid with the spec's (a swept
    parameter takes the cell's value)."""
    return resolve_params(cell.task, {**spec.params.get(cell.task, {}), **dict(cell.variant)})


def work_items(spec: Spec, cell: Cell) -> int:
    """The work items a trial of the cell runs: the spec's items, or fewer where the task
    groups them (the call task's chunks)."""
    task = TASKS.get(cell.task)
    if task is None or task.work_items is None:
        return spec.items
    return task.work_items(cell_params(spec, cell), spec.items)
