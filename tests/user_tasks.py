"""User tasks (``module:function``) that misbehave on purpose, for fault-handling tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any


def echo_size(payload: bytes, params: dict[str, Any]) -> int:
    """A well-behaved user task: returns the payload size plus an offset."""
    return len(payload) + int(params.get("offset", 0))


def environment_variable(payload: bytes, params: dict[str, Any]) -> str | None:
    """The value of the environment variable ``params['name']`` in the worker."""
    return os.environ.get(str(params["name"]))


def raise_error(payload: bytes, params: dict[str, Any]) -> None:
    """Raises in every item."""
    raise ValueError("task failed on purpose")


def hard_exit(payload: bytes, params: dict[str, Any]) -> None:
    """Kills the whole worker process without a word."""
    os._exit(7)


def hang_with_child(payload: bytes, params: dict[str, Any]) -> None:
    """Starts a grandchild that sleeps (in a session of its own if asked), writes its pid to
    a file, then hangs forever."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        start_new_session=bool(params.get("new_session")),
    )
    with open(params["pid_file"], "a") as handle:
        handle.write(f"{child.pid}\n")
    while True:
        time.sleep(1)
