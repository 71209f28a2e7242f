"""Experiment specs: YAML in, a validated and immutable :class:`Spec` out.

Every problem becomes one :class:`SpecError` line ``FILE:LINE: FIELD: what is wrong``.
Line numbers come from composing the YAML node tree (SafeLoader, so nothing is
constructed); the data itself comes from ``yaml.safe_load``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import SpecError
from ..worker.tasks import TASKS
from .axes import CURRENT, Interpreter
from .fields import (
    ADAPTIVE,
    AXES,
    ENTRY,
    FIXED,
    MAX_ITEMS,
    MAX_REPETITIONS,
    MAX_SEED,
    MAX_WORKERS,
    NAME,
    InterpreterEntry,
    Strict,
    check_param,
    fail,
    json_problem,
    parse_size,
)
from .sections import (
    Adaptive,
    CheckInterpreter,
    LimitsSection,
    Matrix,
    SamplingSection,
    resolved_interpreter,
)
from .yaml_source import describe_error, read_yaml


# Says why an interpreter entry cannot run the worker, or None (the orchestrator's probe).
def _swept_names(params: dict[str, dict[str, Any]]) -> set[str]:
    """The task parameters a spec sweeps (given as lists): an exclude entry may name them."""
    swept = {n for values in params.values() for n, v in values.items() if isinstance(v, list)}
    return swept - set(AXES)  # an axis's name always means the axis


def _exclude_values(axis: str, value: Any) -> list[Any]:
    """An exclude entry's value for one axis, as the list of values it matches."""
    values = value if isinstance(value, list) else [value]
    return [parse_size(one) if axis == "payload" else one for one in values]


class Spec(Strict):
    """A validated experiment spec (immutable once built)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=100)]
    description: str = ""
    repetitions: Annotated[
        Annotated[Annotated[int, Field(ge=1, le=MAX_REPETITIONS, strict=True)], Tag(FIXED)]
        | Annotated[Adaptive, Tag(ADAPTIVE)],
        Discriminator(lambda value: ADAPTIVE if isinstance(value, dict | Adaptive) else FIXED),
    ] = 5
    budget: Annotated[float, Field(gt=0)] | None = None  # seconds, for adaptive repetitions
    # seconds from the start of the run after which no extra round starts (adaptive only)
    time_limit: Annotated[float, Field(gt=0)] | None = None
    warmup: Annotated[int, Field(ge=0, strict=True)] = 1
    timeout: Annotated[float, Field(gt=0)] = 60.0
    # differences smaller than this share count as no practical difference in verdicts
    margin: Annotated[float, Field(gt=0, lt=1)] = 0.10
    # compare cells trial by trial within rounds (cancels drift between rounds, at the cost
    # of half the degrees of freedom; on the reference machine it made intervals wider)
    pair_rounds: Annotated[bool, Field(strict=True)] = False
    # on a cluster: share the trials among identical hosts (spread), or run the whole
    # matrix on every host, which becomes an axis of cells (each)
    hosts: Literal["spread", "each"] = "spread"
    seed: Annotated[int, Field(ge=0, le=MAX_SEED, strict=True)] = 1
    items: Annotated[int, Field(ge=1, le=MAX_ITEMS, strict=True)] = 8
    # items each worker runs after start-up and before the timed work (not measured)
    warmup_items: Annotated[int, Field(ge=0, le=MAX_ITEMS, strict=True)] = 0
    sampling: SamplingSection = Field(default_factory=SamplingSection)
    # each trial's process: a fresh interpreter (fresh), or forked from a fork server of
    # its interpreter with the worker imported (warm: about 45 ms less per trial, PSS 2%
    # lower); docs/methodology.md, Warm starts
    trial_process: Literal["fresh", "warm"] = "fresh"
    # workers above MAX_WORKERS are refused unless this says how many the machine may take
    max_workers: Annotated[int, Field(ge=1, strict=True)] = MAX_WORKERS
    limits: LimitsSection = Field(default_factory=LimitsSection)
    matrix: Matrix
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    python_path: list[str] = Field(default_factory=list)
    # Filled in by load_spec, not by the YAML author.
    path: str = ""
    text: str = ""
    elsewhere: bool = False  # interpreters are found on the cluster's hosts, not here

    def line_of(self, *path: str | int) -> int:
        """The line of a key path in the spec's text (1 when it is not there)."""
        _, lines = read_yaml(self.text, self.path)
        return lines.get(tuple(path), 1)

    @property
    def hash(self) -> str:
        """SHA-256 of the spec text: a resumed or compared run must match it."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def adaptive(self) -> Adaptive | None:
        """The adaptive repetition settings, or None for a fixed count."""
        return self.repetitions if isinstance(self.repetitions, Adaptive) else None

    @property
    def min_repetitions(self) -> int:
        """Measured trials every cell gets (the fixed count, or the adaptive minimum)."""
        return self.repetitions.min if isinstance(self.repetitions, Adaptive) else self.repetitions

    @property
    def interpreters(self) -> list[str]:
        """The interpreter axis's labels, or the running interpreter when the spec has none."""
        return [entry.label for entry in self.interpreter_entries]

    @property
    def interpreter_entries(self) -> list[Interpreter]:
        """The interpreter axis resolved (executables made absolute by validation)."""
        if not self.matrix.interpreter:  # on a cluster: each host's own interpreter
            return [Interpreter(sys.executable, CURRENT if self.elsewhere else sys.executable)]
        return [
            resolved_interpreter(entry, entry.executable)
            for entry in self.matrix.interpreter
            if isinstance(entry, InterpreterEntry)
        ]

    @field_validator("params")
    @classmethod
    def _known_params(cls, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for task_name, values in params.items():
            task = TASKS.get(task_name)
            if task is None:  # user tasks take any params that can be stored as JSON
                for key, value in values.items():
                    problem = json_problem(value)
                    if problem:
                        raise fail("param", problem, ("params", task_name, key))
                continue
            for key, value in values.items():
                known = task.params.get(key)
                at = ("params", task_name, key)
                if known is None:
                    raise fail(
                        "param",
                        f"{task_name} has no parameter {key!r} (known: {', '.join(task.params)})",
                        at,
                    )
                check_param(known, value, at)
        return params

    @field_validator("exclude")
    @classmethod
    def _exclude_keys(
        cls, entries: list[dict[str, Any]], info: ValidationInfo
    ) -> list[dict[str, Any]]:
        swept = _swept_names(info.data.get("params") or {})
        for index, entry in enumerate(entries):
            unknown = sorted(set(entry) - set(AXES) - swept)
            if unknown:
                known = ", ".join([*AXES, *sorted(swept)])
                raise fail(
                    "exclude",
                    f"unknown axis {unknown[0]!r} (axes and swept parameters: {known})",
                    ("exclude", index, unknown[0]),
                )
            if not entry:
                raise fail(
                    "exclude", "an exclude entry needs at least one axis", ("exclude", index)
                )
        return [
            {key: _exclude_values(key, value) for key, value in entry.items()} for entry in entries
        ]

    @model_validator(mode="after")
    def _params_name_tasks(self) -> Spec:
        for task_name in self.params:
            if task_name not in self.matrix.task:
                raise fail(
                    "param",
                    f"params names {task_name!r}, which is not in matrix.task",
                    ("params", task_name),
                )
        failing = self.params.get("fault", {}).get("item", 0)
        if "fault" in self.matrix.task and any(
            item >= self.items for item in (failing if isinstance(failing, list) else [failing])
        ):
            raise fail(
                "param",
                f"must be below items ({self.items}), or no item would fail",
                ("params", "fault", "item"),
            )
        return self

    @model_validator(mode="after")
    def _workers_within_cap(self) -> Spec:
        for index, count in enumerate(self.matrix.workers):
            if count > self.max_workers:
                raise fail(
                    "workers",
                    f"{count} workers is more than {self.max_workers} (max_workers; raise it in "
                    "the spec if the machine can take them)",
                    ("matrix", "workers", index),
                )
        return self

    @model_validator(mode="after")
    def _budget_needs_adaptive(self) -> Spec:
        if self.time_limit is not None and self.adaptive is None:
            raise fail(
                "time_limit",
                "a time limit only applies to adaptive repetitions ({min, max, target_ci})",
                ("time_limit",),
            )
        if self.budget is not None and self.adaptive is None:
            raise fail(
                "budget",
                "a budget only applies to adaptive repetitions ({min, max, target_ci})",
                ("budget",),
            )
        return self

    @model_validator(mode="after")
    def _limits_need_sampling(self) -> Spec:
        if self.sampling.memory != "off":
            return self
        for name in ("memory", "processes"):
            if getattr(self.limits, name) is not None:
                raise fail(
                    "sampling",
                    f"limits.{name} needs the process tree sampled; with sampling.memory: off "
                    "nothing checks it",
                    ("sampling", "memory"),
                )
        return self

    @model_validator(mode="after")
    def _exclude_values_exist(self) -> Spec:
        axes: dict[str, list[Any]] = {**self.matrix.model_dump(), "interpreter": self.interpreters}
        for values in self.params.values():
            for name, value in values.items():
                if isinstance(value, list) and name not in AXES:
                    axes.setdefault(name, []).extend(value)
        for index, entry in enumerate(self.exclude):
            for axis, values in entry.items():
                for value in values:
                    if value not in axes[axis]:
                        raise fail(
                            "exclude",
                            f"{value!r} is not in matrix.{axis}, so this entry excludes nothing"
                            if axis in AXES
                            else f"{value!r} is not a swept value of {axis}, so this entry "
                            "excludes nothing",
                            ("exclude", index, axis),
                        )
        return self


def load_spec(
    path: str | Path,
    check_interpreter: CheckInterpreter | None = None,
    *,
    elsewhere: bool = False,
) -> Spec:
    """Read, parse and validate a spec file; raise SpecError with one line on any problem.
    ``check_interpreter`` says why an interpreter entry cannot be used (None: it can);
    ``elsewhere``: see :func:`parse_spec`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: cannot read spec file: {error}") from None
    return parse_spec(text, str(path), check_interpreter, elsewhere=elsewhere)


def parse_spec(
    text: str,
    source: str = "<spec>",
    check_interpreter: CheckInterpreter | None = None,
    *,
    elsewhere: bool = False,
) -> Spec:
    """Validate spec text; ``source`` names the file in error messages. ``elsewhere``:
    the trials run on other hosts (a cluster), which find and check the interpreters
    themselves, so they are neither resolved nor checked here."""
    data, lines = read_yaml(text, source)
    if not isinstance(data, dict):
        raise SpecError(f"{source}:1: the spec must be a mapping of keys such as name, matrix")
    for key in ("path", "text", "elsewhere"):
        if key in data:
            raise SpecError(f"{source}:{lines.get((key,), 1)}: {key}: unknown key")
    base = Path(source).parent
    python_path = data.get("python_path", [])
    if isinstance(python_path, list):
        for index, entry in enumerate(python_path):
            if not isinstance(entry, str) or not entry or "\0" in entry:
                line = lines.get(("python_path", index), lines.get(("python_path",), 1))
                raise SpecError(
                    f"{source}:{line}: python_path[{index}]: expected a folder, got {entry!r}"
                )
        data["python_path"] = [str((base / entry).resolve()) for entry in python_path]
    try:
        return Spec.model_validate(
            {**data, "path": source, "text": text, "elsewhere": elsewhere},
            context={"base": base, "check_interpreter": check_interpreter, "elsewhere": elsewhere},
        )
    except ValidationError as error:
        raise SpecError(
            describe_error(error, source, lines, skip=(FIXED, ADAPTIVE, NAME, ENTRY))
        ) from None
