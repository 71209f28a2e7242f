"""The suite's pytest plugin for time (loaded by conftest.py): ``slow`` from the durations
recorded in tests/durations.json (``make test-durations``), and under pytest-xdist the
longest work first, a module with a shared fixture on one worker, and ``timing`` tests
alone (the other workers wait until one ends)."""

from __future__ import annotations

import fcntl
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .markers import resource_markers

# -- slow: by recorded duration ---------------------------------------------------------------
DURATIONS = Path(__file__).with_name("durations.json")  # make test-durations writes it
SLOW_S = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help=f"record each test's duration (and shared fixtures' set-up) in {DURATIONS.name};"
        " for the whole suite (make test-durations): a file's tests that did not run are dropped",
    )


def _recorded() -> dict[str, dict[str, float]]:
    found = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    return {"tests": found.get("tests", {}), "fixtures": found.get("fixtures", {})}


def _fixture_key(definition: Any) -> str:
    return f"{definition.baseid}::{definition.argname}"


@pytest.hookimpl(tryfirst=True)  # before -m deselects, so that it sees these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    recorded = _recorded()
    tests, fixtures = recorded["tests"], recorded["fixtures"]
    for item in items:
        for name in sorted(resource_markers(item)):
            item.add_marker(name)
        definitions = getattr(item, "_fixtureinfo", None)
        shared = [
            definition
            for name in getattr(item, "fixturenames", ())
            for definition in (definitions.name2fixturedefs.get(name, ()) if definitions else ())
            if definition.scope != "function" and definition.baseid  # pytest's own: no baseid
        ]
        set_up = [fixtures.get(_fixture_key(definition), 0.0) for definition in shared]
        if tests.get(item.nodeid, 0.0) > SLOW_S or any(s > SLOW_S for s in set_up):
            item.add_marker("slow")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """With --store-durations: how long a shared (not per-test) fixture took to set up, on
    the report of the test that set it up."""
    if fixturedef.scope == "function" or not request.config.getoption("store_durations"):
        return (yield)
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        request._pyfuncitem.user_properties.append(  # type: ignore[attr-defined]
            ("fixture_setup_s", (_fixture_key(fixturedef), time.perf_counter() - started))
        )


class Durations:
    """Each test's time (set-up, call and tear-down) and the shared fixtures' set-up, from
    the reports (on the controller under xdist): written with --store-durations, otherwise
    compared with the slow markers."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tests: dict[str, float] = defaultdict(float)
        self.fixtures: dict[str, float] = {}
        self.unmarked: set[str] = set()  # tests that ran without the slow marker

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.tests[report.nodeid] += report.duration
        if "slow" not in report.keywords:
            self.unmarked.add(report.nodeid)
        for name, value in report.user_properties:
            if name == "fixture_setup_s":
                key, seconds = value
                self.fixtures[key] = max(self.fixtures.get(key, 0.0), seconds)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.config.getoption("store_durations") or not self.tests:
            return
        recorded = _recorded()
        ran = {nodeid.split("::")[0] for nodeid in self.tests}
        for kind, now in (("tests", self.tests), ("fixtures", self.fixtures)):
            kept = {  # neither a test since removed from a file that ran, nor a removed file
                key: seconds
                for key, seconds in recorded[kind].items()
                if key.split("::")[0] not in ran
                and (self.config.rootpath / key.split("::")[0]).exists()
            }
            recorded[kind] = {
                key: round(seconds, 3) for key, seconds in sorted({**kept, **now}.items())
            }
        text = json.dumps({"slow_s": SLOW_S, **recorded}, indent=1, sort_keys=True)
        DURATIONS.write_text(text + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.config.getoption("store_durations"):
            terminalreporter.write_line(f"durations recorded in {DURATIONS}")
            return
        known = _recorded()["tests"]
        over = sorted(n for n in self.unmarked if self.tests[n] > SLOW_S)
        new = sorted(n for n in self.tests if n not in known)
        for nodeids, what in ((over, f"took over {SLOW_S:g} s, not slow"), (new, "unrecorded")):
            if nodeids:
                shown = ", ".join(nodeids[:5]) + (" ..." if len(nodeids) > 5 else "")
                terminalreporter.write_line(
                    f"{len(nodeids)} test(s) {what} (make test-durations records them): {shown}"
                )


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        config.pluginmanager.register(Durations(config), "pipeline-durations")


# -- under pytest-xdist: the longest work first, timing tests alone ----------------------------
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scope scheduling, with a work unit per test except that a module with a
    shared fixture (as recorded in tests/durations.json) is one unit, so that the fixture
    is set up once; and the units in order of their recorded time, longest first, so that
    no long unit starts last while the other workers have nothing left. (An explicit
    --dist other than load keeps xdist's own.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    recorded = _recorded()
    shared = {key.split("::")[0] for key in recorded["fixtures"]}

    def unit(nodeid: str) -> str:
        module = nodeid.split("::")[0]
        return module if module in shared else nodeid

    class LongestFirst(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return unit(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not getattr(self, "ordered", False):  # the first assignment: order the queue
                self.ordered = True
                units = sorted(
                    self.workqueue.items(),
                    key=lambda u: -sum(recorded["tests"].get(n, SLOW_S) for n in u[1]),
                )
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Under xdist every test holds a shared lock for its whole run (fixtures included),
    a ``timing`` test an exclusive one: it starts once the other workers' tests have ended,
    and none starts until it ends (a turnstile keeps it from being overtaken)."""
    if not hasattr(item.config, "workerinput"):
        return (yield)
    folder = item.config._tmp_path_factory.getbasetemp().parent  # type: ignore[attr-defined]
    exclusive = item.get_closest_marker("timing") is not None
    with (
        (folder / "timing.turnstile").open("a") as turn,
        (folder / "timing.lock").open("a") as gate,
    ):
        fcntl.flock(turn, fcntl.LOCK_EX)
        try:
            fcntl.flock(gate, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)
        try:
            return (yield)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
