"""Entry point of one trial: request JSON in, result JSON out. Standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

from . import PROTOCOL, concurrency, tasks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional


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


def probe() -> Dict[str, Any]:
    """What the orchestrator asks of an interpreter before a run: what it is, its GIL state
    under the entry's environment, and which models it cannot run (and why)."""
    import multiprocessing
    import sysconfig

    facts = interpreter_facts()
    facts["real_executable"] = os.path.realpath(sys.executable)  # through any symlink
    facts["py_gil_disabled"] = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    facts["start_methods"] = multiprocessing.get_all_start_methods()
    from . import memory

    facts["warm_starts"] = memory.unusable()  # why trial_process: warm cannot be, or None
    facts["unsupported"] = {
        model: reason
        for model, reason in ((m, concurrency.unsupported(m)) for m in concurrency.MODELS)
        if reason
    }
    return facts


def check_task(name: str, python_path: List[str]) -> Optional[str]:
    """Why a spec's ``module:function`` task cannot be loaded by this interpreter (with
    the spec's python_path first on sys.path), or None: asked before the first trial."""
    for path in reversed(python_path):
        sys.path.insert(0, path)
    try:
        tasks.user_function(name)
    except Exception as error:  # whatever importing the user's module raises
        return f"{type(error).__name__}: {error}"
    return None


def profile_call(params: Dict[str, Any], python_path: List[str]) -> Dict[str, Any]:
    """``pipeline advise``'s look at a user function before it plans: ``{"profile": ...}``
    (see call.profile), or ``{"error": ...}`` saying in one line why it cannot be used."""
    from . import call

    for path in reversed(python_path):
        sys.path.insert(0, path)
    try:
        return {"profile": call.profile(tasks.resolve_params("call", params))}
    except call.CallError as error:
        return {"error": str(error)}


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
    outcome = concurrency.run(
        request["model"],
        request["workers"],
        task,
        params,
        payload,
        request["items"],
        request["timeout_s"],
        request.get("progress_path"),
        request.get("warmup_items", 0),
    )
    _unrecordable_as_errors(outcome.items)
    errors: List[str] = [item["error"] for item in outcome.items if "error" in item]
    return {
        "status": "error" if errors else "ok",
        "startup_s": outcome.startup_s,
        "work_s": outcome.work_s,
        "shutdown_s": outcome.shutdown_s,
        "items_done": len(outcome.items) - len(errors),
        "items_failed": len(errors),
        "errors": errors[:5],
        "items": sorted(outcome.items, key=lambda item: item["index"]),
        "start_method": outcome.start_method,
        "facts": outcome.facts,
        "warmup_items": outcome.warmup_items,
        **outcome.usage,
    }


def _unrecordable_as_errors(items: List[Dict[str, Any]]) -> None:
    """An item whose value cannot go into the JSON result file (a recursive structure, one
    nested too deep) becomes a failed item saying so, after timing; the trial's result
    stays writable."""
    for item in items:
        if "value" not in item:
            continue
        try:
            json.dumps(item["value"], default=repr)
        except (ValueError, TypeError, RecursionError) as error:
            item.pop("value")
            item["error"] = f"the value cannot be recorded: {type(error).__name__}: {error}"


def die_with_parent() -> bool:
    """Ask Linux to SIGKILL this process when the process that started it dies (an
    orchestrator or Dask worker killed mid-trial), so no trial outlives its watcher. What
    the trial started itself sees its pipes close and exits, or is killed with the group by
    the next watcher. Returns whether it was set (not on other systems)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        pr_set_pdeathsig, sigkill = 1, 9
        return bool(ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, sigkill) == 0)
    except (OSError, AttributeError):
        return False


def main(argv: List[str]) -> int:
    """``REQUEST RESULT``: read the request file, write the result file (atomically)."""
    die_with_parent()
    request_path, result_path = argv
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    if request.get("watcher_pid") not in (None, os.getppid()):
        return 3  # the watcher died before die_with_parent: nobody waits for this trial
    try:
        result = run_trial(request)
    except concurrency.Unsupported as error:
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


def serve() -> int:
    """A warm start for trials: this interpreter, with the worker imported, forks one child
    per trial, so a trial skips interpreter start-up and imports yet still runs in a process
    of its own. Reads ``REQUEST RESULT FOLDER OUTPUT`` (tab-separated) per line on stdin;
    writes ``ready`` once (or ``unusable REASON``, and ends), then ``started PID`` and
    ``exited PID CODE`` (negative: killed by that signal) per trial on stdout. One trial
    at a time; ends at the end of stdin.

    Each child's memory is made a fresh worker's (see memory.py): it maps in what this
    server had in memory when it was ready, then this server unmaps its own code pages
    (while the child waits) so as not to share them with it."""
    from . import memory

    die_with_parent()
    write = sys.stdout.write
    reason = memory.unusable()
    template = memory.file_pages() if reason is None else None
    if template is None:
        write(f"unusable {reason or 'cannot read which pages are in memory'}\n")
        return 0
    write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        fields = line.rstrip("\n").split("\t")
        adopted_r, adopted_w = os.pipe()
        dropped_r, dropped_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(adopted_r)
            os.close(dropped_w)
            os._exit(_forked_trial(fields, template, adopted_w, dropped_r))
        os.close(adopted_w)
        os.close(dropped_r)
        write(f"started {pid}\n")
        sys.stdout.flush()
        os.read(adopted_r, 1)  # the child has what it needs of this server's memory (or died)
        memory.drop_file_pages()
        with contextlib.suppress(OSError):  # the child may have died already
            os.write(dropped_w, b"d")
        os.close(adopted_r)
        os.close(dropped_w)
        _, status = os.waitpid(pid, 0)
        write(f"exited {pid} {os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()
    return 0


def _forked_trial(fields: List[str], template: Any, adopted: int, dropped: int) -> int:
    """In the forked child: become what a fresh worker would be (its own session, its memory
    as a fresh worker's, the trial's folder as working and temporary directory, output to
    the trial's log), then run the trial (``fields``: REQUEST RESULT FOLDER OUTPUT). The
    code is the process's exit code. ``adopted`` and ``dropped``: the pipes by which this
    child says it has adopted the server's memory, and waits until the server has dropped
    its code pages."""
    from . import memory

    request_path, result_path, folder, output_path = fields
    try:
        os.setsid()
        memory.adopt(template)
        os.write(adopted, b"a")
        os.read(dropped, 1)
        os.close(adopted)
        os.close(dropped)
        os.chdir(folder)
        output = os.open(output_path, os.O_WRONLY | os.O_APPEND)
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        os.close(nothing)
        os.environ["TMPDIR"] = folder
        if "tempfile" in sys.modules:  # imported by the server: find it again from TMPDIR
            import tempfile

            tempfile.tempdir = None
        code = main([request_path, result_path])
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
