"""Entry point of one trial: request JSON in, result JSON out. Standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

from . import models, tasks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

PROTOCOL = 1


def interpreter_facts() -> Dict[str, Any]:
    """What this interpreter is and how it runs threads (recorded with every trial)."""
    gil_check = getattr(sys, "_is_gil_enabled", None)
    version = sys.version_info
    return {
        "executable": sys.executable,
        "implementation": sys.implementation.name,
        "version": f"{version.major}.{version.minor}.{version.micro}"
        + ("" if version.releaselevel == "final" else f"{version.releaselevel}{version.serial}"),
        # 't' in the ABI flags marks a free-threaded build (cheaper than importing sysconfig)
        "free_threaded_build": "t" in getattr(sys, "abiflags", ""),
        "gil_enabled": gil_check() if gil_check is not None else True,
        "switch_interval_s": sys.getswitchinterval(),
    }


def _stop_forkserver() -> None:
    """Stop (and reap) multiprocessing's fork server, which is the parent of forkserver pool
    processes, so their CPU time is in ``os.times()`` before we read it. Private API, hence
    the guards; the orchestrator kills any leftover helper process anyway."""
    server = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        with contextlib.suppress(Exception):  # best effort, see above
            stop()


def _payload(size_bytes: int, seed: int) -> bytes:
    """Reproducible pseudo-random bytes (incompressible, like real data at worst)."""
    import random

    return random.Random(seed).randbytes(size_bytes) if size_bytes else b""


def run_trial(request: Dict[str, Any]) -> Dict[str, Any]:
    """Run the trial a request describes and return its result record."""
    for path in reversed(request.get("python_path", [])):
        sys.path.insert(0, path)
    task = request["task"]
    params = tasks.resolve_params(task, request.get("params", {}))
    payload = _payload(request["payload_bytes"], request.get("seed", 0))
    times_before, switches_before = os.times(), _context_switches()
    outcome = models.run(
        request["model"],
        request["workers"],
        task,
        params,
        payload,
        request["items"],
        request["timeout_s"],
        request.get("progress_path"),
    )
    _stop_forkserver()
    times_after, switches_after = os.times(), _context_switches()
    errors: List[str] = [item["error"] for item in outcome.items if "error" in item]
    return {
        "status": "error" if errors else "ok",
        "startup_s": outcome.startup_s,
        "work_s": outcome.work_s,
        "shutdown_s": outcome.shutdown_s,
        "cpu_user_s": (times_after.user - times_before.user)
        + (times_after.children_user - times_before.children_user),
        "cpu_sys_s": (times_after.system - times_before.system)
        + (times_after.children_system - times_before.children_system),
        "items_done": len(outcome.items) - len(errors),
        "items_failed": len(errors),
        "errors": errors[:5],
        "items": sorted(outcome.items, key=lambda item: item["index"]),
        "start_method": outcome.start_method,
        "facts": outcome.facts,
        "ctx_switches_voluntary": _difference(switches_after[0], switches_before[0]),
        "ctx_switches_involuntary": _difference(switches_after[1], switches_before[1]),
    }


def _context_switches() -> Tuple[Optional[int], Optional[int]]:
    """Voluntary and involuntary context switches of this process and its reaped children
    (every pool process is reaped by the time a trial ends); None where getrusage is missing."""
    try:
        import resource
    except ImportError:
        return None, None
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_nvcsw + children.ru_nvcsw, own.ru_nivcsw + children.ru_nivcsw


def _difference(after: Optional[int], before: Optional[int]) -> Optional[int]:
    return None if after is None or before is None else after - before


def main(argv: List[str]) -> int:
    """``REQUEST RESULT``: read the request file, write the result file (atomically)."""
    request_path, result_path = argv
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    try:
        result = run_trial(request)
    except models.Unsupported as error:
        result = {"status": "skipped", "errors": [str(error)]}
    except Exception as error:  # the trial failed as a whole; the worker still reports
        import traceback

        result = {
            "status": "error",
            "errors": [f"{type(error).__name__}: {error}"],
            "traceback": traceback.format_exc(),
        }
    result["protocol"] = PROTOCOL
    result["interpreter"] = interpreter_facts()
    result["pid"] = os.getpid()
    result["finished_unix_s"] = time.time()
    temporary_path = result_path + ".part"
    with open(temporary_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, default=repr)
    os.replace(temporary_path, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
