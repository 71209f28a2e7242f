"""Resuming a run: which run may be resumed, whether its spec and interpreters are
unchanged, and which of its trials are already stored."""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import UTC
from typing import Any

import pandas as pd
import psutil
import yaml

from ..errors import ResumeError
from ..status import RunStatus
from ..storage import schema
from ..storage.store import Store
from . import interpreters, records
from .plan import Plan


def reopen(store: Store, plan: Plan, resume: str) -> tuple[int, dict[int, int], pd.DataFrame]:
    """Check that a run can be resumed with this plan and claim it; its id, cell ids by
    position and the trials it already has."""
    run_row = _resumable_run(store, plan, resume)
    run_id = run_row.id or 0
    if run_row.spec_hash != plan.spec.hash:
        raise ResumeError(
            f"run {run_id} cannot be resumed: its spec changed since "
            f"({spec_changes(run_row.spec_text, plan.spec.text)})"
        )
    changed = _changed_interpreters(store.interpreters_frame(run_id), plan.probes)
    if changed:
        raise ResumeError(f"run {run_id} cannot be resumed: {changed}")
    stored_hosts = sorted(set(store.cell_hosts(run_id)) - {""})
    planned_hosts = sorted({cell.host for cell in plan.cells} - {""})
    if stored_hosts != planned_hosts:
        raise ResumeError(
            f"run {run_id} cannot be resumed: it ran on hosts {stored_hosts or 'of no cluster'}, "
            f"this one has {planned_hosts or 'none'} (hosts: each needs the same hosts)"
        )
    store.claim_run(run_id, platform.node(), os.getpid())
    return run_id, store.cell_ids(run_id), store.done_trials(run_id)


def _changed_interpreters(stored: pd.DataFrame, probes: dict[str, interpreters.Probe]) -> str:
    """What differs between the interpreters a run was started with and the ones probed now
    under the same labels (say, .python-ft relinked to another build), or ''."""
    keys = [
        "executable",
        "real_executable",  # .python-ft relinked to another build of the same version
        "env_json",
        "implementation",
        "version",
        "free_threaded_build",
        "gil_enabled",
        "unsupported_json",  # the backport installed or removed since
    ]
    changes = []
    for row in stored.to_dict("records"):
        probe = probes.get(row["label"])
        if probe is None:
            continue
        now = records.interpreter_row(probe).model_dump()
        now["real_executable"] = probe.facts.get("real_executable")
        row["real_executable"] = json.loads(row["facts_json"] or "{}").get("real_executable")
        was = {key: _comparable(row[key]) for key in keys}
        changes += [
            f"interpreter {row['label']!r} {key} was {was[key]!r}, now {now[key]!r}"
            for key in keys
            if was[key] is not None and _comparable(now[key]) != was[key]  # None: not kept then
        ]
    return "; ".join(changes)


def _comparable(value: Any) -> Any:
    """A stored value as its own kind: SQLite gives booleans back as 0/1, NULL as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value) if isinstance(value, bool | int) else str(value)


def _resumable_run(store: Store, plan: Plan, resume: str) -> schema.Run:
    if resume != "latest":
        run_row = store.resolve_run(resume)
        problem = _why_not_resumable(run_row, plan.spec.timeout)
        if problem:
            raise ResumeError(f"run {run_row.id} cannot be resumed: {problem}")
        return run_row
    for run_row in store.runs():
        if run_row.name == plan.spec.name and not _why_not_resumable(run_row, plan.spec.timeout):
            return run_row
    raise ResumeError(
        f"no run of spec {plan.spec.name!r} to resume (every one finished or running)"
    )


HEARTBEAT_GRACE_S = 60.0


def _why_not_resumable(run_row: schema.Run, timeout_s: float) -> str | None:
    """None when the run may be resumed; else why not."""
    if run_row.status == RunStatus.FINISHED:
        return "it finished"
    if run_row.status != RunStatus.RUNNING:
        return None  # interrupted or failed
    if run_row.orchestrator_host == platform.node() and run_row.orchestrator_pid:
        if run_row.orchestrator_pid != os.getpid() and psutil.pid_exists(run_row.orchestrator_pid):
            return f"it is still running (pid {run_row.orchestrator_pid})"
        return None  # its orchestrator on this host is gone
    beat = run_row.heartbeat_at or run_row.started_at
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    silent_s = (schema.now() - beat).total_seconds()
    if silent_s <= timeout_s + HEARTBEAT_GRACE_S:
        return (
            f"it may still be running on {run_row.orchestrator_host or 'another host'} "
            f"(last trial {silent_s:.0f} s ago)"
        )
    return None


def spec_changes(old_text: str, new_text: str) -> str:
    """The top-level spec keys (and matrix axes) whose values differ, e.g.
    'matrix.workers: [1, 2] -> [1, 2, 4]'."""
    old, new = yaml.safe_load(old_text) or {}, yaml.safe_load(new_text) or {}
    flat_old, flat_new = _flatten(old), _flatten(new)
    changed = [
        f"{key}: {flat_old.get(key, '(none)')} -> {flat_new.get(key, '(none)')}"
        for key in sorted(set(flat_old) | set(flat_new))
        if flat_old.get(key) != flat_new.get(key)
    ]
    return "; ".join(changed) or "its text differs (comments or formatting only)"


def _flatten(spec: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if key in ("matrix", "params") and isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat
