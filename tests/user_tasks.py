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


# -- hostile tasks: each must end as a recorded status, with nothing left running ------------
def allocate_forever(payload: bytes, params: dict[str, Any]) -> None:
    """Allocates (and touches) 16 MiB after 16 MiB until something stops it."""
    hoard = []
    while True:
        hoard.append(bytearray(16 * 1024 * 1024))
        time.sleep(0.001)


def fork_forever(payload: bytes, params: dict[str, Any]) -> None:
    """Starts sleeping children without end (a slow fork bomb that waits on nothing)."""
    while True:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        time.sleep(0.002)


def print_forever(payload: bytes, params: dict[str, Any]) -> None:
    """Prints 64 KiB lines without end."""
    line = "x" * 65535
    while True:
        print(line, flush=True)


def ignore_sigterm(payload: bytes, params: dict[str, Any]) -> None:
    """Ignores SIGTERM and sleeps past any timeout."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)


def escape_session(payload: bytes, params: dict[str, Any]) -> None:
    """Double-forks a grandchild that leaves the trial's session (setsid) and sleeps for
    ten minutes, then ends the item normally."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)
        os._exit(0)
    os.wait()


def count_calls(payload: bytes, params: dict[str, Any]) -> int:
    """Appends a line to the file ``params['path']`` per call (from any thread or process)."""
    descriptor = os.open(str(params["path"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, b"%d\n" % os.getpid())
    finally:
        os.close(descriptor)
    return len(payload)


def recursive_value(payload: bytes, params: dict[str, Any]) -> list[Any]:
    """Returns a list that contains itself: no JSON can record it."""
    found: list[Any] = []
    found.append(found)
    return found
