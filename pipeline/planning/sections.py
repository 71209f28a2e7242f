"""The spec's sections, each a validated model: the matrix (its axes; interpreters probed
once resolved), adaptive repetitions, limits and sampling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .axes import Interpreter, resolve
from .fields import (
    ENTRY,
    MAX_REPETITIONS,
    NAME,
    InterpreterEntry,
    ModelName,
    Seconds,
    Size,
    Strict,
    TaskName,
    as_list,
    check_workers,
    fail,
    label,
)

# Says why an interpreter entry cannot run the worker, or None (the orchestrator's probe).
CheckInterpreter = Callable[[Interpreter], "str | None"]


class Matrix(Strict):
    """The axes whose cross product makes the cells."""

    task: list[TaskName]
    model: list[ModelName]
    workers: list[Annotated[int, Field(strict=True), AfterValidator(check_workers)]]
    payload: list[Size]
    interpreter: (
        list[
            Annotated[
                Annotated[str, Tag(NAME)] | Annotated[InterpreterEntry, Tag(ENTRY)],
                Discriminator(lambda v: ENTRY if isinstance(v, dict | InterpreterEntry) else NAME),
            ]
        ]
        | None
    ) = None

    @field_validator("task", "model", "workers", "payload", "interpreter", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return as_list(value)

    @field_validator("task", "model", "workers", "payload", "interpreter")
    @classmethod
    def _non_empty_unique(cls, values: list[Any] | None) -> list[Any] | None:
        if values is None:
            return None
        if not values:
            raise fail("empty", "must list at least one value")
        keys = [label(v) if isinstance(v, InterpreterEntry) else v for v in values]
        duplicates = sorted({repr(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise fail("duplicate", f"duplicate value {', '.join(duplicates)}")
        return values

    @field_validator("interpreter")
    @classmethod
    def _probe(
        cls, values: list[str | InterpreterEntry] | None, info: ValidationInfo
    ) -> list[str | InterpreterEntry] | None:
        """Resolve each interpreter (relative paths against the spec's folder) and check it
        with the caller's checker (the orchestrator probes it): missing, too old or broken is
        an error at the entry's line."""
        base = (info.context or {}).get("base")
        check: CheckInterpreter | None = (info.context or {}).get("check_interpreter")
        resolved: list[str | InterpreterEntry] = []
        for index, value in enumerate(values or []):
            entry = (
                value
                if isinstance(value, InterpreterEntry)
                else InterpreterEntry.model_construct(name=value, path=None, env={})
            )
            at: tuple[Any, ...] = ("matrix", "interpreter", index)
            if isinstance(value, InterpreterEntry):
                at = (*at, "path" if value.path else "name")
            if (info.context or {}).get("elsewhere"):
                resolved.append(entry)  # each host finds and probes it (cluster.describe_host)
                continue
            executable = resolve(entry.executable, base)
            if executable is None:
                hint = "; `make python-ft` gets one" if ".python-ft" in entry.executable else ""
                raise fail(
                    "interpreter",
                    f"interpreter {entry.executable!r} not found (not on PATH and not an "
                    f"executable path{hint})",
                    at,
                )
            problem = check(resolved_interpreter(entry, executable)) if check else None
            if problem:
                raise fail("interpreter", problem, at)
            resolved.append(entry.model_copy(update={"path": executable}))
        return resolved if values is not None else None


def resolved_interpreter(entry: InterpreterEntry, executable: str) -> Interpreter:
    return Interpreter(entry.name, executable, tuple(sorted(entry.env.items())))


class Adaptive(Strict):
    """``repetitions: {min, max, target_ci}``: after ``min`` measured trials per cell, keep
    adding trials to the cells that a claim's comparison still leaves undecided and (with
    ``target_ci``) to those whose median's 95% interval is wider than ``target_ci``
    (relative half-width), until each is decided and precise enough, or reaches ``max``."""

    min: Annotated[int, Field(ge=2, le=MAX_REPETITIONS, strict=True)] = 5
    max: Annotated[int, Field(ge=2, le=MAX_REPETITIONS, strict=True)] = 50
    target_ci: Annotated[float, Field(gt=0, lt=1)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Adaptive:
        if self.max < self.min:
            raise fail(
                "repetitions",
                f"max ({self.max}) is below min ({self.min})",
                ("repetitions", "max"),
            )
        return self


class LimitsSection(Strict):
    """``limits: {memory, processes, output}``: what one trial may use before its process
    tree is killed and the trial recorded as over that limit. Unset: derived from the
    machine when the run starts (docs/spec.md, Limits)."""

    memory: Size | None = None  # RSS summed over the trial's processes
    processes: Annotated[int, Field(ge=2, strict=True)] | None = None  # at once, in the tree
    output: Size | None = None  # bytes printed to stdout and stderr


class SamplingSection(Strict):
    """``sampling: {interval, memory}``: how the orchestrator observes a running trial
    (docs/methodology.md, What the observer costs). ``interval``: the first sampling interval (it
    grows up to 8 times while the trial's process tree is steady); ``memory``: ``uss``
    (RSS, USS and PSS), ``rss`` (RSS only) or ``off`` (no memory figures or limits)."""

    interval: Annotated[Seconds, Field(ge=0.001, le=1.0)] = 0.01
    # YAML reads a bare off as false
    memory: Annotated[
        Literal["uss", "rss", "off"], BeforeValidator(lambda v: "off" if v is False else v)
    ] = "uss"
