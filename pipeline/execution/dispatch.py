"""Where a trial runs: each in turn on this machine, or on a cluster (cluster.py); either
way, finished trials come back as batches of :class:`Done` (those that finished together,
stored in one transaction) for the orchestrator to store."""

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
) -> Iterator[list[Done]]:
    """Each trial in turn on this machine (the default dispatch): each measured trial a
    batch of its own, as it finishes; trials that need not run (skipped) together, up to
    the next one that runs."""
    skipped: list[Done] = []
    for trial in trials:
        started(trial)
        job = prepare(trial)
        if isinstance(job, Measurement):
            skipped.append(Done(trial, job))
            continue
        if skipped:
            yield skipped
            skipped = []
        yield [Done(trial, execute(job))]
    if skipped:
        yield skipped
