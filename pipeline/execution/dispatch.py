"""Where a trial runs: each in turn on this machine, or on a cluster (cluster.py); either
way, each finished trial comes back as a :class:`Done` for the orchestrator to store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..planning.matrix import TrialPlan
from .trial import Execute, Measurement, TrialRequest


@dataclass(frozen=True)
class Done:
    """A finished trial, as the orchestrator stores it."""

    trial: TrialPlan
    measurement: Measurement
    host: str = ""  # the cluster host that ran it ("" on this machine)
    note: str | None = None


# Either the request to run, or the measurement of a trial that need not run (skipped).
Prepare = Callable[[TrialPlan], "TrialRequest | Measurement"]


def run_locally(
    trials: Iterable[TrialPlan],
    prepare: Prepare,
    execute: Execute,
    started: Callable[[TrialPlan], None],
) -> Iterator[Done]:
    """Each trial in turn on this machine (the default dispatch)."""
    for trial in trials:
        started(trial)
        job = prepare(trial)
        yield Done(trial, job if isinstance(job, Measurement) else execute(job))
