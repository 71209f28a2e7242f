"""The ``pipeline`` command: thin wrappers that parse options and call :mod:`pipeline.app`.

The commands live in measure.py (run, advise) and read.py (everything that reads the
database); common.py holds the typer app they register on."""

from __future__ import annotations

import signal
import sys
from typing import Any

from . import measure, read
from .common import cli

__all__ = ["cli", "main", "measure", "normalise_args", "read"]


def normalise_args(args: list[str]) -> list[str]:
    """Two spellings typer cannot take directly: ``--resume`` given no value (last, or
    followed by another option) means ``--resume latest``; ``-p NAME VALUE`` (the
    contract's form) means ``-p NAME=VALUE``."""
    given: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        following = args[index + 1 : index + 3]
        if arg == "--resume" and (not following or following[0].startswith("-")):
            given += [arg, "latest"]
        elif arg in ("-p", "--param") and len(following) == 2 and "=" not in following[0]:
            given += [arg, f"{following[0]}={following[1]}"]
            index += 2
        else:
            given.append(arg)
        index += 1
    return given


def main() -> None:
    """Console-script entry point. SIGTERM ends any command as an exit (143), so that its
    cleanup runs (a report being written leaves no part-written file); ``run`` turns it
    into an interrupted run."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cli(args=normalise_args(sys.argv[1:]), prog_name="pipeline")


def _exit_on_sigterm(_signum: int, _frame: Any) -> None:
    raise SystemExit(143)
