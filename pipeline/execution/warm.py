"""Warm starts: each trial forked from a fork server of its interpreter, instead of a fresh
interpreter per trial (``trial_process: warm``; the default is ``fresh``).

A fresh worker spends about 20 ms starting the interpreter and 45 ms importing the worker
before its trial begins, and short trials pay that every time. A fork server is that
interpreter with the worker already imported; each trial is a child forked from it, which
then makes itself what a fresh worker is (its own session and process group, the trial's
folder as working and temporary directory, its output to the trial's log), so the trial
still has a process of its own: crash containment, kill by group, the tree's memory.

What the fork shares with its server is what a fresh interpreter draws at random when it
starts: the hash seed and the address layout. Trials from one server are therefore not
independent samples of those; so a server runs each cell (each distinct request) at most
once, and is replaced when a cell comes round again. Trials run in rounds (round r holds
repetition r of every cell), so the trials of a cell come from as many servers as the cell
has trials, as with fresh interpreters, and a server start is paid once a round.

Memory: before its trial the child copies the heap pages it shares with its server and
maps in the server's code pages, which the server then lets go (worker/memory.py), so its
RSS and USS are a fresh worker's and its PSS about 2% lower (the few code pages the server
runs after letting go are shared). Compare memory figures between runs of the same
``trial_process``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .launch import executable_path, serve_command, worker_environment
from .trial import TrialRequest

_READY_TIMEOUT_S = 60.0  # for the server's interpreter to start and import the worker
_FORK_TIMEOUT_S = 10.0  # for the server to say it forked
_CLOSE_TIMEOUT_S = 5.0


Key = tuple[str, tuple[tuple[str, str], ...]]  # an interpreter and its environment


class ForkServer:
    """One interpreter (with one environment) that forks the trials it is given."""

    def __init__(self, executable: str, env: dict[str, str]) -> None:
        self.executable = executable
        self.served: set[str] = set()  # the requests (cells) it has run a trial of
        self._buffer = b""
        self._folder = tempfile.mkdtemp(prefix="pipeline-warm-")
        self._log = Path(self._folder, "server.log").open("w+b")  # noqa: SIM115 - closed in close()
        try:
            self.process = subprocess.Popen(
                serve_command(executable),
                cwd=self._folder,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                start_new_session=True,  # Ctrl-C in the terminal is the orchestrator's
                env=worker_environment(self._folder, env),
                bufsize=0,
            )
        except OSError:
            self._remove()
            raise
        line = self.read_line(_READY_TIMEOUT_S) or ""
        if line != "ready":
            why = line.partition(" ")[2] if line.startswith("unusable ") else self._why()
            self.close()
            raise OSError(f"no fork server of {executable}: {why or 'it did not start'}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def fork(self, request: Path, result: Path, folder: str, output: str) -> ForkedTrial:
        """Start one trial (the worker's ``REQUEST RESULT`` and its folder and log)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{request}\t{result}\t{folder}\t{output}\n".encode())
        line = self.read_line(_FORK_TIMEOUT_S) or ""
        if not line.startswith("started "):
            why = self._why()
            raise OSError(f"the fork server of {self.executable} did not fork: {why or line}")
        return ForkedTrial(self, int(line.split()[1]))

    def read_line(self, timeout_s: float | None) -> str | None:
        """The server's next line; "" once it has gone, None if none came in time."""
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([descriptor], [], [], timeout_s)
            if not ready:
                return None
            chunk = os.read(descriptor, 4096)
            if not chunk:
                return ""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def _why(self) -> str:
        """The last line the server wrote to its log ("" if none)."""
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def close(self) -> None:
        """End the server (at the end of its stdin) and remove its folder."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=_CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._remove()

    def _remove(self) -> None:
        self._log.close()
        shutil.rmtree(self._folder, ignore_errors=True)


@dataclass
class ForkedTrial:
    """A trial's process forked by a server; its exit code comes from the server, which
    reaps it. If the server dies first, the trial was killed with it (it asks for SIGKILL
    when its parent dies)."""

    server: ForkServer
    pid: int
    returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            line = self.server.read_line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(f"trial {self.pid}", timeout or 0.0)
            words = line.split()
            if words[:2] == ["exited", str(self.pid)]:
                self.returncode = int(words[2])
            else:  # the server is gone
                self.returncode = -signal.SIGKILL
        return self.returncode


@dataclass
class WarmStarts:
    """The fork servers of a run, by interpreter and environment; each runs a cell at most
    once (see the module's docstring). Closed at the end of the run."""

    servers: dict[Key, ForkServer] = field(default_factory=dict)
    refused: dict[Key, str] = field(default_factory=dict)  # why no server could start

    def server_for(self, request: TrialRequest) -> ForkServer | None:
        """The server to fork ``request``'s trial from (started or replaced as needed), or
        None if none can start: the trial then runs in a fresh interpreter, which reports
        why it cannot."""
        key = (executable_path(request.interpreter), tuple(sorted(request.env.items())))
        if key in self.refused:
            return None
        cell = json.dumps(asdict(request), sort_keys=True, default=str)
        server = self.servers.pop(key, None)
        if server is not None and (cell in server.served or not server.alive()):
            server.close()
            server = None
        if server is None:
            try:
                server = ForkServer(key[0], dict(key[1]))
            except OSError as error:
                self.refused[key] = str(error)
                return None
        server.served.add(cell)
        self.servers[key] = server
        return server

    def close(self) -> None:
        while self.servers:
            _, server = self.servers.popitem()
            server.close()

    def __enter__(self) -> WarmStarts:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
