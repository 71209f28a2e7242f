"""The interpreter axis: which Python runs a cell's worker, with which environment.

An entry is a name on PATH, a path, ``current`` (the interpreter running the pipeline), or
a mapping ``{name, path, env}``; ``env`` is merged
into the worker's environment, so one free-threaded build can be measured with the GIL
off (``PYTHON_GIL: 0``) and on (``PYTHON_GIL: 1``). Each distinct (executable, env) is
probed once per process by running it: its version, implementation, whether it is a
free-threaded build (``sysconfig`` ``Py_GIL_DISABLED``), whether the GIL is on under that
environment, and which models it cannot run, with the reason. An interpreter that is
missing, too old or cannot import the worker is a :class:`ProbeError`.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..errors import AdviceError
from ..planning.axes import Interpreter, describe_interpreter
from .launch import check_task_command, probe_command, profile_call_command

MIN_VERSION = (3, 9)  # the worker package's syntax and standard library
PROBE_TIMEOUT_S = 60.0


class ProbeError(Exception):
    """The interpreter cannot run the pipeline's worker (missing, too old, broken)."""


@dataclass(frozen=True)
class Probe:
    """What probing an interpreter found (see ``pipeline.worker.__main__.probe``)."""

    interpreter: Interpreter
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def executable(self) -> str:
        """The interpreter's own sys.executable (not a launcher such as a pyenv shim)."""
        return str(self.facts.get("executable") or self.interpreter.executable)

    def unsupported(self, model: str) -> str | None:
        """Why this interpreter cannot run ``model``, or None."""
        reason = self.facts.get("unsupported", {}).get(model)
        return str(reason) if reason else None

    @property
    def description(self) -> str:
        return describe_interpreter(self.facts)


def check(interpreter: Interpreter) -> str | None:
    """Why the interpreter cannot run the worker (missing, too old, broken), or None; what
    spec validation calls for each entry of the interpreter axis."""
    try:
        probe(interpreter)
    except ProbeError as error:
        return str(error)
    return None


def probe(interpreter: Interpreter) -> Probe:
    """Run the interpreter once (cached per executable and environment) and read its facts
    (a copy each: what one plan does to its probe never reaches another's)."""
    return Probe(interpreter, copy.deepcopy(_probe(interpreter.executable, interpreter.env)))


@functools.cache
def _probe(executable: str, env: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    try:
        done = _run_as_a_trial(probe_command(executable), dict(env))
    except OSError as error:
        raise ProbeError(f"cannot start {executable}: {error.strerror or error}") from None
    except subprocess.TimeoutExpired:
        raise ProbeError(f"{executable} did not answer within {PROBE_TIMEOUT_S:g} s") from None
    lines = done.stdout.splitlines()
    version = _version(lines[0]) if lines else None
    if version is not None and version < MIN_VERSION:
        raise ProbeError(
            f"{executable} is Python {'.'.join(map(str, version))}; the worker needs "
            f"{'.'.join(map(str, MIN_VERSION))} or later"
        )
    if done.returncode != 0 or len(lines) < 2:
        said = _last_words(done.stderr)
        raise ProbeError(f"{executable} cannot run the pipeline's worker: {said}")
    try:
        facts: dict[str, Any] = json.loads(lines[1])
    except ValueError:
        raise ProbeError(f"{executable} answered the probe with {lines[1][:80]!r}") from None
    if dict(env).get("PYTHON_GIL") == "0" and facts.get("gil_enabled"):
        raise ProbeError(
            f"PYTHON_GIL=0 but the GIL is on: {executable} (Python {facts.get('version')}) is "
            "not a free-threaded build"
        )
    return facts


def _run_as_a_trial(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as trials run: in an empty folder (nothing there shadows an
    import), with ``env`` added to this environment, no input, within PROBE_TIMEOUT_S."""
    with tempfile.TemporaryDirectory(prefix="pipeline-probe-") as folder:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=folder,
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def task_problem(probed: Probe, task: str, python_path: list[str]) -> str | None:
    """Why interpreter ``probed`` cannot load the user task ``task`` (with the spec's
    python_path), or None; run in an empty folder under the entry's environment, as a
    trial would."""
    command = check_task_command(probed.executable, task, python_path)
    try:
        done = _run_as_a_trial(command, probed.interpreter.environment)
    except subprocess.TimeoutExpired:
        return f"importing it took more than {PROBE_TIMEOUT_S:g} s"
    try:
        answer = json.loads(done.stdout.splitlines()[-1]) if done.stdout else None
    except ValueError:
        answer = None
    if done.returncode != 0 or not done.stdout:
        return _last_words(done.stderr)
    return None if answer is None else str(answer)


def profile_call(probed: Probe, params: dict[str, Any], python_path: list[str]) -> dict[str, Any]:
    """A user function looked at under interpreter ``probed``, as a trial would run it
    (worker.profile_call): raises AdviceError saying why it cannot be used."""
    command = profile_call_command(probed.executable, params, python_path)
    try:
        done = _run_as_a_trial(command, probed.interpreter.environment)
    except subprocess.TimeoutExpired:
        raise AdviceError(
            f"{params['function']}: importing it and calling it once took more than "
            f"{PROBE_TIMEOUT_S:g} s"
        ) from None
    lines = done.stdout.splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if done.returncode != 0 or not isinstance(answer, dict):
        raise AdviceError(f"{params['function']}: {_last_words(done.stderr)}")
    if "error" in answer:
        raise AdviceError(str(answer["error"]))
    return dict(answer["profile"])


def _last_words(stderr: str) -> str:
    """The line of an interpreter's error output that says what went wrong: a fatal error's
    first line, else the last line (a traceback's exception)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal Python error")]
    return (fatal or lines or ["no output"])[-1 if not fatal else 0]


def _version(line: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in line.strip().split("."))
    except ValueError:
        return None
