"""The states a trial, a run and a cell's sampling can end in, and what a run says of a
claim, written once. They are ``StrEnum``s, stored and compared as their text (the
``status`` columns of the views, a verdict's text in reports and JSON)."""

from __future__ import annotations

from enum import StrEnum


class TrialStatus(StrEnum):
    """How one trial ended (``trial.status``)."""

    OK = "ok"
    ERROR = "error"  # the task raised, or the worker's result could not be trusted
    TIMEOUT = "timeout"  # past the spec's timeout: its process tree was killed
    CRASHED = "crashed"  # the worker died without a result
    SKIPPED = "skipped"  # the interpreter cannot run the model: recorded, not run
    # over one of the spec's limits: its process tree was killed
    MEMORY_LIMIT = "memory_limit"  # RSS summed over the tree
    PROCESS_LIMIT = "process_limit"  # processes in the tree at once
    OUTPUT_LIMIT = "output_limit"  # bytes printed to stdout and stderr


class RunStatus(StrEnum):
    """Where a run stands (``run.status``)."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: its finished trials are kept
    FAILED = "failed"  # the orchestrator stopped on an error


class StopReason(StrEnum):
    """Why a cell got no more trials (``cell.stop_reason``)."""

    FIXED_COUNT = "fixed count"  # a plain repetitions count
    TARGET_MET = "target met"
    DECIDED = "claims decided"  # every comparison of a claim that uses the cell is decided
    MAX_REACHED = "max reached"
    BUDGET_SPENT = "budget spent"
    TIME_LIMIT = "time limit reached"  # the run's time_limit passed
    NO_OK_TRIALS = "no ok trials"
    INTERRUPTED = "interrupted"


class Verdict(StrEnum):
    """What a run says of a claim of the explainer."""

    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    NUANCED = "nuanced"  # its series answer both ways
    INCONCLUSIVE = "inconclusive"  # measured, but a series is undecided: more trials would decide
    NOT_MEASURED = "not measured"

    @property
    def decided(self) -> bool:
        """Supported, contradicted or nuanced: the run answered the claim."""
        return self in (Verdict.SUPPORTED, Verdict.CONTRADICTED, Verdict.NUANCED)

    @property
    def slug(self) -> str:
        """For CSS classes and anchors: 'not-measured'."""
        return self.value.replace(" ", "-")
