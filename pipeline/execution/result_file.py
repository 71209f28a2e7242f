"""The worker's result file, checked before anything of it is stored: the protocol
version, the status, and every field's type and range (a worker's report is checked,
never trusted)."""

from __future__ import annotations

import math
import signal
from typing import Any

from ..status import TrialStatus
from ..worker import PROTOCOL


def problem(result: Any, items: int) -> str | None:
    """Why a result file's content cannot be stored, or None."""
    return protocol_problem(result) or content_problem(result, items)


WORKER_STATUSES = {TrialStatus.OK, TrialStatus.ERROR, TrialStatus.SKIPPED}


def protocol_problem(result: Any) -> str | None:
    """Why a worker's result file cannot be read as this orchestrator's protocol, or None:
    a worker from another version of the project, or a file that is not a result."""
    if not isinstance(result, dict):
        return f"worker result is not a JSON object: {type(result).__name__}"
    if result.get("protocol") != PROTOCOL:
        return (
            f"worker result has protocol {result.get('protocol')!r}, this orchestrator "
            f"reads {PROTOCOL}"
        )
    if result.get("status") not in WORKER_STATUSES:
        return f"worker result has status {result.get('status')!r}"
    return None


# result fields that are numbers: seconds, counts; each finite and not negative when given
_RESULT_NUMBERS = (
    "startup_s", "work_s", "shutdown_s", "cpu_user_s", "cpu_sys_s",
    "ctx_switches_voluntary", "ctx_switches_involuntary",
)  # fmt: skip


def content_problem(result: dict[str, Any], items: int) -> str | None:
    """What is wrong with a result file's fields (types, ranges, counts against the
    request's ``items``), or None: a worker's report is checked, never trusted."""
    for name in _RESULT_NUMBERS:
        value = result.get(name)
        if value is not None and not _non_negative(value):
            return f"worker result field {name} is {value!r}, not a non-negative number"
    done, failed = result.get("items_done", 0), result.get("items_failed", 0)
    for name, count in (("items_done", done), ("items_failed", failed)):
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return f"worker result field {name} is {count!r}, not a count"
    if done + failed > items:
        return f"worker result says {done} + {failed} items ended, of {items}"
    records, facts = result.get("items", []), result.get("facts") or {}
    errors = result.get("errors")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "worker result field items is not a list of records"
    if any(not _non_negative(r.get("latency_s", 0.0)) for r in records):
        return "worker result has an item latency that is not a non-negative number"
    if not isinstance(facts, dict) or not all(
        isinstance(k, str) and (v is None or _finite(v)) for k, v in facts.items()
    ):
        return "worker result field facts is not a mapping of names to numbers"
    if errors is not None and not (
        isinstance(errors, list) and all(isinstance(e, str) for e in errors)
    ):
        return "worker result field errors is not a list of messages"
    if not isinstance(result.get("interpreter", {}), dict):
        return "worker result field interpreter is not a mapping"
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _non_negative(value: Any) -> bool:
    return _finite(value) and value >= 0


def describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by signal SIGSEGV``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"
