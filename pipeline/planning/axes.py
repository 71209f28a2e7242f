"""Values of the matrix's axes that need more than parsing: interpreter entries, resolved to
an executable, and a probed interpreter's facts in words."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CURRENT = "current"  # the interpreter running the pipeline


@dataclass(frozen=True)
class Interpreter:
    """One entry of the interpreter axis, resolved: its label (what cells are stored
    under), the absolute executable, and the variables added to the worker's environment."""

    label: str
    executable: str
    env: tuple[tuple[str, str], ...] = ()

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.env)


def resolve(executable: str, base: Path | None = None) -> str | None:
    """The absolute path of an interpreter named on PATH or by a path, or ``current``;
    None when there is no such executable. A relative path is looked for in ``base`` (the
    spec's folder, so that a spec runs the same from anywhere), then in the working
    directory (the only place looked before)."""
    if executable == CURRENT:
        return sys.executable
    places = [executable]
    if "/" in executable and base is not None and not Path(executable).is_absolute():
        places.insert(0, str(base / executable))
    for place in places:
        found = shutil.which(place)
        if found:
            return str(Path(found).absolute())
    return None


def describe_interpreter(facts: dict[str, Any]) -> str:
    """A probe's facts in words: 'CPython 3.13.5, free-threaded build, GIL off'."""
    implementation = str(facts.get("implementation", "?"))
    name = {"cpython": "CPython", "pypy": "PyPy"}.get(implementation, implementation)
    build = ", free-threaded build" if facts.get("py_gil_disabled") else ""
    gil = "GIL on" if facts.get("gil_enabled", True) else "GIL off"
    return f"{name} {facts.get('version', '?')}{build}, {gil}"
