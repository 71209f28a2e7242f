"""The suite's pytest plugin for resources (loaded by conftest.py): the markers cluster,
postgres, browser, free_threaded and processes, applied where they follow from the test
itself (its fixtures, its parameters, the helpers it calls) and checked while it runs: a
test that starts a trial, a Dask cluster or the free-threaded interpreter without the
marker fails, naming the marker to add."""

from __future__ import annotations

import inspect
import os
import subprocess
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.execution.launch import BOOTSTRAP, TRIAL_MARK

from . import helpers

# -- markers: the resources a test needs ------------------------------------------------------
# a name that a test, a fixture it uses or a function of tests/ that either calls refers to,
# and the marker it implies; a fixture a test uses, and its marker
REFERENCES = {"LocalCluster": "cluster", "free_threaded_python": "free_threaded"}
FIXTURES = {"browser": "browser"}
IMPLIED = {"cluster": ("processes",)}  # a cluster runs real trials on its workers


def _referenced(function: Any, seen: set[types.CodeType]) -> set[str]:
    """The markers the names ``function`` refers to imply, following the functions of
    tests/ it calls (helpers included)."""
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None or code in seen:
        return set()
    seen.add(code)
    namespace = getattr(function, "__globals__", {})
    found: set[str] = set()
    codes = [code]
    while codes:
        current = codes.pop()
        codes.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
        for name in current.co_names:
            if name in REFERENCES:
                found.add(REFERENCES[name])
            target = namespace.get(name)
            if inspect.isfunction(target) and target.__module__.partition(".")[0] == "tests":
                found |= _referenced(target, seen)
    return found


def resource_markers(item: pytest.Item) -> set[str]:
    """The resource markers that follow from the test itself."""
    found: set[str] = set()
    if not isinstance(item, pytest.Function):
        return found
    seen: set[types.CodeType] = set()
    found |= _referenced(item.function, seen)
    for name in item.fixturenames:
        if name in FIXTURES:
            found.add(FIXTURES[name])
        for definition in item._fixtureinfo.name2fixturedefs.get(name, ()):
            found |= _referenced(definition.func, seen)
            found.update(getattr(inspect.unwrap(definition.func), "markers", ()))  # helpers.needs
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("db_url") == "postgresql":
        found.add("postgres")
    for marker in list(found):
        found.update(IMPLIED.get(marker, ()))
    return found


_popen_init = subprocess.Popen.__init__


def _watched_popen_init(self: Any, args: Any, *rest: Any, **options: Any) -> None:
    """subprocess.Popen, noting what the running test starts: a trial (its environment
    carries TRIAL_MARK), the worker's bootstrap, ``pipeline run`` or ``pipeline advise`` in
    a process of its own, a Dask scheduler or worker."""
    if helpers.USES is not None and not isinstance(args, str | bytes):
        argv = [os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a) for a in args]
        env = options.get("env") or {}
        runs = any(
            argv[i : i + 2] == ["-m", "pipeline"] and argv[i + 2] in ("run", "advise")
            for i in range(len(argv) - 2)
        )
        if env.get(TRIAL_MARK) == "1" or BOOTSTRAP in argv or (runs and "--dry-run" not in argv):
            helpers.note_use("processes")
        if any(Path(a).name == "dask" for a in argv[:4]):
            helpers.note_use("cluster")
    _popen_init(self, args, *rest, **options)


subprocess.Popen.__init__ = _watched_popen_init  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    helpers.USES = set()  # what this test uses, from its first fixture on
    return (yield)


@pytest.fixture(autouse=True)
def resources_are_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test: it used nothing it is not marked with (a marker it lacked would
    let ``-m "not ..."`` run it where the resource is missing, or cost what it should not)."""
    yield
    marked = {marker.name for marker in request.node.iter_markers()}
    missing = sorted((helpers.USES or set()) - marked)
    if missing:
        pytest.fail(
            f"this test uses {', '.join(missing)} but is not marked so: add "
            + " and ".join(f"@pytest.mark.{name}" for name in missing)
            + " (or a module-level pytestmark)"
        )
