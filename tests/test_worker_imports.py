"""A trial's worker imports only what its model needs before timing starts: each import is
part of every fresh trial's price (docs/methodology.md, The price of isolated trials).

Checked with ``python -X importtime`` on a real trial run the way the orchestrator runs it
(``python -c BOOTSTRAP ROOT REQUEST RESULT``): the modules a model does not use never
appear in the import log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.execution.launch import BOOTSTRAP, WORKER_ROOT

pytestmark = pytest.mark.processes  # each test runs a real trial

# what each model's worker must not import: a pool's machinery, another model's runtime
NOT_NEEDED = {
    "sequential": {"concurrent.futures", "logging", "multiprocessing", "asyncio", "threading"},
    "threads": {"multiprocessing", "asyncio"},
    "asyncio": {"multiprocessing"},
    "processes": {"asyncio"},
}


def imported_by_a_trial(tmp_path: Path, model: str) -> set[str]:
    """The modules a real trial of io_sleep under ``model`` imports, from its import log."""
    request, result = tmp_path / "request.json", tmp_path / "result.json"
    request.write_text(
        json.dumps(
            {
                "task": "io_sleep",
                "model": model,
                "workers": 1,
                "payload_bytes": 64,
                "items": 2,
                "timeout_s": 30,
                "seed": 1,
                "params": {"seconds": 0.0},
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", BOOTSTRAP, WORKER_ROOT, request, result],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert json.loads(result.read_text())["status"] == "ok", done.stderr[-2000:]
    lines = [
        line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")
    ]
    return {parts[-1].strip() for parts in lines if len(parts) == 3}


@pytest.mark.parametrize("model", sorted(NOT_NEEDED))
def test_a_trial_imports_only_what_its_model_needs(tmp_path: Path, model: str) -> None:
    imported = imported_by_a_trial(tmp_path, model)
    assert "pipeline.worker.__main__" in imported  # the log is the trial's own
    assert not NOT_NEEDED[model] & imported, sorted(NOT_NEEDED[model] & imported)


def test_the_check_sees_a_pool_import(tmp_path: Path) -> None:
    """The control: a thread trial's log does contain concurrent.futures, so an absence in
    the sequential trial's log means it was not imported, not that the log missed it."""
    assert "concurrent.futures" in imported_by_a_trial(tmp_path, "threads")
