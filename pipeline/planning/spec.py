"""Experiment specs: YAML in, a validated and immutable :class:`Spec` out.

Every problem becomes one :class:`SpecError` line ``FILE:LINE: FIELD: what is wrong``.
Line numbers come from composing the YAML node tree (SafeLoader, so nothing is
constructed); the data itself comes from ``yaml.safe_load``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..errors import SpecError
from ..worker.api import Param
from ..worker.concurrency import MODELS
from ..worker.tasks import TASKS, is_user_task
from .axes import CURRENT, Interpreter, resolve
from .yaml_source import describe_error, read_yaml

# Says why an interpreter entry cannot run the worker, or None (the orchestrator's probe).
CheckInterpreter = Callable[[Interpreter], "str | None"]
AXES = ("task", "model", "workers", "payload", "interpreter")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?\s*$")
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
MAX_SIZE = 1024**4  # 1 TiB: a payload no machine here holds (memory is checked at plan time)
MAX_WORKERS = 1024  # raised by the spec's max_workers
MAX_ITEMS = 1_000_000
MAX_REPETITIONS = 100_000
MAX_SEED = 2**31 - 1  # stored as a 32-bit integer (PostgreSQL INTEGER)
_USER_TASK = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_size(value: Any) -> int:
    """Bytes from an int or a string such as ``512B``, ``1KiB``, ``1.5 MiB``."""
    if isinstance(value, bool):
        raise _fail("size", f"expected a size such as 1024, '1KiB' or '4 MiB', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise _fail("size", f"a size cannot be negative, got {value!r}")
        return _at_most_max_size(value, value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail("size", f"expected a size such as 1024, '1KiB' or '4 MiB', got {value!r}")
    number, unit = match.groups()
    size = float(number) * _UNITS[unit or "B"]
    if size != int(size):
        raise _fail("size", f"{value!r} is not a whole number of bytes")
    return _at_most_max_size(int(size), value)


_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")


def parse_seconds(value: Any) -> float:
    """Seconds from a number or a string such as ``10ms`` or ``0.5 s``."""
    match = _SECONDS.match(value) if isinstance(value, str) else None
    if match is not None:
        number, unit = match.groups()
        return float(number) / (1000 if unit == "ms" else 1)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise _fail("duration", f"expected a duration such as 0.01, '10ms' or '0.5s', got {value!r}")


def _at_most_max_size(size: int, value: Any) -> int:
    if size > MAX_SIZE:
        raise _fail("size", f"{value!r} is more than 1 TiB, the largest payload allowed")
    return size


def _fail(kind: str, message: str, at: tuple[Any, ...] = ()) -> PydanticCustomError:
    """A validation error whose message is exactly ``message`` (no pydantic prefix); ``at``
    refines the field path when a validator checks a whole container."""
    # pydantic fills in only {at} from the context; other braces in a message stay as is
    return PydanticCustomError(kind, message, {"at": at} if at else None)


def _as_list(value: Any) -> Any:
    """Accept a scalar where an axis expects a list."""
    return value if isinstance(value, list) or value is None else [value]


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean {close[0]}? " if close else ""


def _check_task(name: Any) -> str:
    if not isinstance(name, str):
        raise _fail("task", f"expected a task name (text), got {name!r}")
    if name in TASKS or (is_user_task(name) and _USER_TASK.match(name)):
        return name
    hint = _did_you_mean(name, TASKS)
    raise _fail(
        "task", f"unknown task {name!r} ({hint}built-in: {', '.join(TASKS)}; or module:function)"
    )


def _check_model(name: Any) -> str:
    if not isinstance(name, str):
        raise _fail("model", f"expected a model name (text), got {name!r}")
    if name in MODELS:
        return name
    hint = _did_you_mean(name, MODELS)
    raise _fail("model", f"unknown model {name!r} ({hint}choose from {', '.join(MODELS)})")


def _check_workers(count: int) -> int:
    if count < 1:
        raise _fail("workers", f"workers must be at least 1, got {count}")
    return count


TaskName = Annotated[str, BeforeValidator(_check_task)]
ModelName = Annotated[str, BeforeValidator(_check_model)]
Size = Annotated[int, BeforeValidator(parse_size)]
Seconds = Annotated[float, BeforeValidator(parse_seconds)]


class _Strict(BaseModel):
    # no .inf or .nan anywhere: a timeout that never fires, a margin that decides nothing
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# union tags: the two forms of repetitions, and of an interpreter entry
FIXED, ADAPTIVE, NAME, ENTRY = "fixed count", "adaptive", "name or path", "mapping"


def _env_text(value: Any) -> Any:
    """An environment value as the text the variable will hold (YAML may say 0 or true)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value) if isinstance(value, int | float) else value


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for key in env:
        if not _ENV_NAME.match(key):
            raise _fail("env", f"{key!r} is not an environment variable name")
        if key == "TMPDIR":
            raise _fail("env", "TMPDIR is each trial's own folder (removed after it); not settable")
    return env


class InterpreterEntry(_Strict):
    """``{name, path, env}``: an interpreter under a label of its own, with variables added
    to its workers' environment (such as ``PYTHON_GIL: 0`` for a free-threaded build)."""

    name: Annotated[str, Field(min_length=1)]
    path: Annotated[str, Field(min_length=1)] | None = None  # default: the name, on PATH
    env: Annotated[
        dict[str, Annotated[str, BeforeValidator(_env_text)]], AfterValidator(_check_env)
    ] = Field(default_factory=dict)

    @property
    def executable(self) -> str:
        return self.path or self.name


def _label(value: str | InterpreterEntry) -> str:
    return value if isinstance(value, str) else value.name


class Matrix(_Strict):
    """The axes whose cross product makes the cells."""

    task: list[TaskName]
    model: list[ModelName]
    workers: list[Annotated[int, Field(strict=True), AfterValidator(_check_workers)]]
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
        return _as_list(value)

    @field_validator("task", "model", "workers", "payload", "interpreter")
    @classmethod
    def _non_empty_unique(cls, values: list[Any] | None) -> list[Any] | None:
        if values is None:
            return None
        if not values:
            raise _fail("empty", "must list at least one value")
        keys = [_label(v) if isinstance(v, InterpreterEntry) else v for v in values]
        duplicates = sorted({repr(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise _fail("duplicate", f"duplicate value {', '.join(duplicates)}")
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
                raise _fail(
                    "interpreter",
                    f"interpreter {entry.executable!r} not found (not on PATH and not an "
                    f"executable path{hint})",
                    at,
                )
            problem = check(_resolved(entry, executable)) if check else None
            if problem:
                raise _fail("interpreter", problem, at)
            resolved.append(entry.model_copy(update={"path": executable}))
        return resolved if values is not None else None


def _resolved(entry: InterpreterEntry, executable: str) -> Interpreter:
    return Interpreter(entry.name, executable, tuple(sorted(entry.env.items())))


def _swept_names(params: dict[str, dict[str, Any]]) -> set[str]:
    """The task parameters a spec sweeps (given as lists): an exclude entry may name them."""
    swept = {n for values in params.values() for n, v in values.items() if isinstance(v, list)}
    return swept - set(AXES)  # an axis's name always means the axis


def _exclude_values(axis: str, value: Any) -> list[Any]:
    """An exclude entry's value for one axis, as the list of values it matches."""
    values = value if isinstance(value, list) else [value]
    return [parse_size(one) if axis == "payload" else one for one in values]


def _check_param(known: Param, value: Any, at: tuple[str | int, ...]) -> None:
    """A single value, or a list of distinct values to sweep (one cell per value)."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise _fail("param", "an empty list sweeps nothing; give at least one value", at)
    for index, one in enumerate(values):
        problem = _param_problem(known, one)
        if problem:
            raise _fail("param", problem, (*at, index) if isinstance(value, list) else at)
        if one in values[:index]:
            raise _fail("param", f"lists a value twice: {value!r}", at)


def _json_problem(value: Any) -> str | None:
    """Why a parameter cannot be stored as JSON (and so be sent to a worker), or None."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return (
            f"cannot be stored as JSON (numbers, text, true/false, lists, mappings), got {value!r}"
        )
    return None


def _param_problem(known: Param, value: Any) -> str | None:
    """What is wrong with ``value`` for a task parameter, or None."""
    expected = type(known.default)
    numeric = expected is float and isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, bool) != (expected is bool) or not (
        isinstance(value, expected) or numeric
    ):
        return f"must be {expected.__name__}, got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if known.choices and value not in known.choices:
        return f"must be one of {', '.join(known.choices)}, got {value!r}"
    if known.minimum is not None and value < known.minimum:
        return f"must be at least {known.minimum}, got {value!r}"
    if known.maximum is not None and value > known.maximum:
        return f"must be at most {known.maximum}, got {value!r}"
    return None


class Adaptive(_Strict):
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
            raise _fail(
                "repetitions",
                f"max ({self.max}) is below min ({self.min})",
                ("repetitions", "max"),
            )
        return self


class Limits(_Strict):
    """``limits: {memory, processes, output}``: what one trial may use before its process
    tree is killed and the trial recorded as over that limit. Unset: derived from the
    machine when the run starts (docs: README, Limits)."""

    memory: Size | None = None  # RSS summed over the trial's processes
    processes: Annotated[int, Field(ge=2, strict=True)] | None = None  # at once, in the tree
    output: Size | None = None  # bytes printed to stdout and stderr


class Sampling(_Strict):
    """``sampling: {interval, memory}``: how the orchestrator observes a running trial
    (docs: README, What the observer costs). ``interval``: the first sampling interval (it
    grows up to 8 times while the trial's process tree is steady); ``memory``: ``uss``
    (RSS, USS and PSS), ``rss`` (RSS only) or ``off`` (no memory figures or limits)."""

    interval: Annotated[Seconds, Field(ge=0.001, le=1.0)] = 0.01
    # YAML reads a bare off as false
    memory: Annotated[
        Literal["uss", "rss", "off"], BeforeValidator(lambda v: "off" if v is False else v)
    ] = "uss"


class Spec(_Strict):
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
    sampling: Sampling = Field(default_factory=Sampling)
    # each trial's process: a fresh interpreter (fresh), or forked from a fork server of
    # its interpreter with the worker imported (warm: about 45 ms less per trial, PSS 2%
    # lower); docs: README, Warm starts
    trial_process: Literal["fresh", "warm"] = "fresh"
    # workers above MAX_WORKERS are refused unless this says how many the machine may take
    max_workers: Annotated[int, Field(ge=1, strict=True)] = MAX_WORKERS
    limits: Limits = Field(default_factory=Limits)
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
            _resolved(entry, entry.executable)
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
                    problem = _json_problem(value)
                    if problem:
                        raise _fail("param", problem, ("params", task_name, key))
                continue
            for key, value in values.items():
                known = task.params.get(key)
                at = ("params", task_name, key)
                if known is None:
                    raise _fail(
                        "param",
                        f"{task_name} has no parameter {key!r} (known: {', '.join(task.params)})",
                        at,
                    )
                _check_param(known, value, at)
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
                raise _fail(
                    "exclude",
                    f"unknown axis {unknown[0]!r} (axes and swept parameters: {known})",
                    ("exclude", index, unknown[0]),
                )
            if not entry:
                raise _fail(
                    "exclude", "an exclude entry needs at least one axis", ("exclude", index)
                )
        return [
            {key: _exclude_values(key, value) for key, value in entry.items()} for entry in entries
        ]

    @model_validator(mode="after")
    def _params_name_tasks(self) -> Spec:
        for task_name in self.params:
            if task_name not in self.matrix.task:
                raise _fail(
                    "param",
                    f"params names {task_name!r}, which is not in matrix.task",
                    ("params", task_name),
                )
        failing = self.params.get("fault", {}).get("item", 0)
        if "fault" in self.matrix.task and any(
            item >= self.items for item in (failing if isinstance(failing, list) else [failing])
        ):
            raise _fail(
                "param",
                f"must be below items ({self.items}), or no item would fail",
                ("params", "fault", "item"),
            )
        return self

    @model_validator(mode="after")
    def _workers_within_cap(self) -> Spec:
        for index, count in enumerate(self.matrix.workers):
            if count > self.max_workers:
                raise _fail(
                    "workers",
                    f"{count} workers is more than {self.max_workers} (max_workers; raise it in "
                    "the spec if the machine can take them)",
                    ("matrix", "workers", index),
                )
        return self

    @model_validator(mode="after")
    def _budget_needs_adaptive(self) -> Spec:
        if self.time_limit is not None and self.adaptive is None:
            raise _fail(
                "time_limit",
                "a time limit only applies to adaptive repetitions ({min, max, target_ci})",
                ("time_limit",),
            )
        if self.budget is not None and self.adaptive is None:
            raise _fail(
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
                raise _fail(
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
                        raise _fail(
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
