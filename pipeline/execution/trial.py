"""A trial's types: what is asked of one (the request, with its limits and how it is
observed), what came of it (the measurement) and the worker process as the watcher sees
it. The modules that launch, observe and reap trials (runner, observer, warm) all use
these, and none of them defines one, so they import each other one way only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from ..status import TrialStatus

MemoryMode = Literal["uss", "rss", "off"]
DEFAULT_INTERVAL_S = 0.01


@dataclass(frozen=True)
class Sampling:
    """How a trial is observed (the spec's ``sampling``)."""

    interval_s: float = DEFAULT_INTERVAL_S
    memory: MemoryMode = "uss"


@dataclass(frozen=True)
class Limits:
    """What one trial may use before its process tree is killed (None: no limit). Checked
    by the sampler, so a trial can overshoot by what it takes in one sample interval."""

    memory_bytes: int | None = None  # RSS summed over the trial's process tree
    processes: int | None = None  # processes in the tree at once
    output_bytes: int | None = None  # bytes written to stdout and stderr


@dataclass(frozen=True)
class TrialRequest:
    """Everything a worker needs to run one trial (serialised to its request file)."""

    interpreter: str
    task: str
    model: str
    workers: int
    payload_bytes: int
    items: int
    timeout_s: float
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    python_path: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # added to the worker's environment
    limits: Limits = field(default_factory=Limits)
    sampling: Sampling = field(default_factory=Sampling)
    warmup_items: int = 0  # items per worker after start-up, before the timed work


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """What the orchestrator saw of one trial: how it ended, the worker's report (its result
    file, checked), the worker process's lifetime and the tree's memory peaks."""

    status: TrialStatus
    result: dict[str, Any] = field(default_factory=dict)
    process_s: float = 0.0  # from starting the worker until it was reaped
    peak_rss_bytes: int | None = None
    peak_uss_bytes: int | None = None
    peak_pss_bytes: int | None = None
    error: str | None = None  # the first error, for people
    started_at: datetime | None = None  # when the worker process was about to start
    observer_cpu_s: float | None = None  # the observing process's CPU while the trial ran
    sampler_cpu_s: float | None = None  # the memory sampler's share of it
    reference_s: float | None = None  # the reference loop's time just before the trial

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TrialStatus(self.status))  # refuses unknown ones


Execute = Callable[[TrialRequest], Measurement]


class Worker(Protocol):
    """A trial's worker process as the watcher sees it: a Popen, or a forked trial."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> Any: ...

    def wait(self, timeout: float | None = None) -> int: ...
