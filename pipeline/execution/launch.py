"""How a child interpreter reaches this project's worker: the project root and every piece
of bootstrap source that trials and probes run with ``python -c``.

The worker package is imported by path (the root is appended at the END of ``sys.path``,
so the child interpreter's own standard library always wins), which is why it lives in
the source tree rather than in any interpreter's site-packages.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# The folder that holds the ``pipeline`` package: the worker's import root, and the git
# work tree whose commit each run records.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER_ROOT = str(PROJECT_ROOT)
TRIAL_MARK = "PIPELINE_TRIAL"  # in the environment of every process a trial starts

# Imports the worker as trials and probes do (the root is argv[1]), then checks that it
# really comes from this project.
IMPORT_WORKER = (
    "root = sys.argv[1]; sys.path.append(root)\n"
    "import pipeline.worker.__main__ as worker\n"
    "if not worker.__file__.startswith(root):\n"
    "    sys.exit('pipeline worker imported from ' + worker.__file__ + ', not ' + root)\n"
)

# One trial: ``python -c BOOTSTRAP ROOT REQUEST RESULT``. Once the result file is written,
# os._exit skips interpreter teardown, which no trial measures (the orchestrator kills
# whatever is left of the process group anyway).
BOOTSTRAP = (
    "import os, sys\n"
    + IMPORT_WORKER
    + "code = worker.main(sys.argv[2:]); sys.stdout.flush(); sys.stderr.flush(); os._exit(code)\n"
)

# A fork server of warm trials: ``python -c SERVE ROOT`` (see worker.serve).
SERVE = "import os, sys\n" + IMPORT_WORKER + "sys.stdout.flush(); os._exit(worker.serve())\n"

# One probe: ``python -c PROBE ROOT``. Python-2-safe up to the version line, so that an old
# interpreter is told apart from a broken one; then the worker's own probe as JSON.
PROBE = (
    "import sys\n"
    "sys.stdout.write('%d.%d.%d\\n' % tuple(sys.version_info[:3]))\n"
    "sys.stdout.flush()\n" + IMPORT_WORKER + "import json\n"
    "sys.stdout.write(json.dumps(worker.probe()))\n"
)


# One user-task check: ``python -c CHECK_TASK ROOT TASK PYTHON_PATH_JSON``; prints JSON:
# null, or why the task cannot be loaded.
CHECK_TASK = (
    "import json, sys\n"
    + IMPORT_WORKER
    + "sys.stdout.write(json.dumps(worker.check_task(sys.argv[2], json.loads(sys.argv[3]))))\n"
)


# ``pipeline advise``'s look at a user function: ``python -c PROFILE_CALL ROOT PARAMS_JSON
# PYTHON_PATH_JSON``; prints JSON (worker.profile_call).
PROFILE_CALL = (
    "import json, sys\n"
    + IMPORT_WORKER
    + "answer = worker.profile_call(json.loads(sys.argv[2]), json.loads(sys.argv[3]))\n"
    + "sys.stdout.write('\\n' + json.dumps(answer, default=repr))\n"
)


def profile_call_command(
    executable: str, params: dict[str, object], python_path: list[str]
) -> list[str]:
    """The command line that profiles a user function for ``pipeline advise``."""
    import json

    return [
        executable,
        "-c",
        PROFILE_CALL,
        WORKER_ROOT,
        json.dumps(params),
        json.dumps(python_path),
    ]


def check_task_command(executable: str, task: str, python_path: list[str]) -> list[str]:
    """The command line that checks that an interpreter can load a user task."""
    import json

    return [executable, "-c", CHECK_TASK, WORKER_ROOT, task, json.dumps(python_path)]


def trial_command(executable: str, request_path: str, result_path: str) -> list[str]:
    """The command line of one trial's worker process."""
    return [executable, "-c", BOOTSTRAP, WORKER_ROOT, request_path, result_path]


def probe_command(executable: str) -> list[str]:
    """The command line that probes an interpreter."""
    return [executable, "-c", PROBE, WORKER_ROOT]


def serve_command(executable: str) -> list[str]:
    """The command line of a fork server of warm trials."""
    return [executable, "-c", SERVE, WORKER_ROOT]


def executable_path(interpreter: str) -> str:
    """An interpreter's absolute path (a bare name is looked up on PATH)."""
    return str(Path(shutil.which(interpreter) or interpreter).absolute())


def worker_environment(folder: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The orchestrator's environment, less PYTHONDONTWRITEBYTECODE (imports, the worker's
    and those of spawned pool processes, which count in start-up, then use bytecode caches,
    as in most installations), with TMPDIR set to the trial's own folder: whatever the
    trial leaves in temporary files (multiprocessing's pymp-* folders, io_file's files
    after a kill) goes when the folder is removed. ``extra`` is the interpreter entry's own
    variables (such as PYTHON_GIL). Every process of the trial carries TRIAL_MARK, by
    which one can be found wherever it ends up (the tests check that none outlives them)."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environment.update(extra or {})
    environment["TMPDIR"] = folder
    environment[TRIAL_MARK] = "1"  # inherited by everything the trial starts
    return environment
