"""The spec's building blocks: sizes and durations in words, task and model names with
"did you mean", worker counts, interpreter entries and their environment, parameter
values checked against what a task declares. Each problem is a SpecError-shaped
pydantic error at its key path."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic_core import PydanticCustomError

from ..worker.api import Param
from ..worker.concurrency import MODELS
from ..worker.tasks import TASKS, is_user_task

# Says why an interpreter entry cannot run the worker, or None (the orchestrator's probe).
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
        raise fail("size", f"expected a size such as 1024, '1KiB' or '4 MiB', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise fail("size", f"a size cannot be negative, got {value!r}")
        return _at_most_max_size(value, value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise fail("size", f"expected a size such as 1024, '1KiB' or '4 MiB', got {value!r}")
    number, unit = match.groups()
    size = float(number) * _UNITS[unit or "B"]
    if size != int(size):
        raise fail("size", f"{value!r} is not a whole number of bytes")
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
    raise fail("duration", f"expected a duration such as 0.01, '10ms' or '0.5s', got {value!r}")


def _at_most_max_size(size: int, value: Any) -> int:
    if size > MAX_SIZE:
        raise fail("size", f"{value!r} is more than 1 TiB, the largest payload allowed")
    return size


def fail(kind: str, message: str, at: tuple[Any, ...] = ()) -> PydanticCustomError:
    """A validation error whose message is exactly ``message`` (no pydantic prefix); ``at``
    refines the field path when a validator checks a whole container."""
    # pydantic fills in only {at} from the context; other braces in a message stay as is
    return PydanticCustomError(kind, message, {"at": at} if at else None)


def as_list(value: Any) -> Any:
    """Accept a scalar where an axis expects a list."""
    return value if isinstance(value, list) or value is None else [value]


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean {close[0]}? " if close else ""


def _check_task(name: Any) -> str:
    if not isinstance(name, str):
        raise fail("task", f"expected a task name (text), got {name!r}")
    if name in TASKS or (is_user_task(name) and _USER_TASK.match(name)):
        return name
    hint = _did_you_mean(name, TASKS)
    raise fail(
        "task", f"unknown task {name!r} ({hint}built-in: {', '.join(TASKS)}; or module:function)"
    )


def _check_model(name: Any) -> str:
    if not isinstance(name, str):
        raise fail("model", f"expected a model name (text), got {name!r}")
    if name in MODELS:
        return name
    hint = _did_you_mean(name, MODELS)
    raise fail("model", f"unknown model {name!r} ({hint}choose from {', '.join(MODELS)})")


def check_workers(count: int) -> int:
    if count < 1:
        raise fail("workers", f"workers must be at least 1, got {count}")
    return count


TaskName = Annotated[str, BeforeValidator(_check_task)]
ModelName = Annotated[str, BeforeValidator(_check_model)]
Size = Annotated[int, BeforeValidator(parse_size)]
Seconds = Annotated[float, BeforeValidator(parse_seconds)]


class Strict(BaseModel):
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
            raise fail("env", f"{key!r} is not an environment variable name")
        if key == "TMPDIR":
            raise fail("env", "TMPDIR is each trial's own folder (removed after it); not settable")
    return env


class InterpreterEntry(Strict):
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


def label(value: str | InterpreterEntry) -> str:
    return value if isinstance(value, str) else value.name


def check_param(known: Param, value: Any, at: tuple[str | int, ...]) -> None:
    """A single value, or a list of distinct values to sweep (one cell per value)."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise fail("param", "an empty list sweeps nothing; give at least one value", at)
    for index, one in enumerate(values):
        problem = _param_problem(known, one)
        if problem:
            raise fail("param", problem, (*at, index) if isinstance(value, list) else at)
        if one in values[:index]:
            raise fail("param", f"lists a value twice: {value!r}", at)


def json_problem(value: Any) -> str | None:
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
