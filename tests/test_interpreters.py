"""The interpreter axis: entries, probing, skip-with-reason, and free-threaded CPython.

The free-threaded tests run the worker under a real free-threaded build: the one in
$PIPELINE_TEST_PYTHON_FT, else .python-ft/bin/python3t (``make python-ft``). Without one
they skip, saying so, except under PIPELINE_REQUIRE_PYTHON_FT=1 (set by .ci/run), where
they fail.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from pathlib import Path

import pytest

from pipeline import app
from pipeline.cli import cli
from pipeline.errors import ResumeError, SpecError
from pipeline.execution import interpreters, runner, trial
from pipeline.planning.axes import Interpreter
from pipeline.planning.spec import load_spec
from pipeline.storage import readonly
from pipeline.worker import concurrency, subinterpreters

from .helpers import TESTS_DIR, fake_execute, fake_python, free_threaded_python

SPEC = """\
name: interp
repetitions: 2
warmup: 0
items: 2
matrix:
  task: io_sleep
  model: [sequential, threads, subinterpreters]
  workers: [2]
  payload: 0
  interpreter: {interpreters}
params:
  io_sleep: {{seconds: 0.01}}
"""


# -- probing ---------------------------------------------------------------------------------
def test_probe_of_the_running_interpreter() -> None:
    probe = interpreters.probe(Interpreter("here", sys.executable))
    facts = probe.facts
    assert facts["version"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert facts["implementation"] == sys.implementation.name
    assert facts["py_gil_disabled"] == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert facts["gil_enabled"] is getattr(sys, "_is_gil_enabled", lambda: True)()
    assert "fork" in facts["start_methods"]
    no_pool = subinterpreters.interpreter_pool_class() is None
    assert ("subinterpreters" in facts["unsupported"]) == no_pool
    assert (probe.unsupported("subinterpreters") is not None) == no_pool
    assert probe.unsupported("threads") is None
    if not facts["py_gil_disabled"]:
        assert probe.description == f"CPython {facts['version']}, GIL on"


def test_a_missing_start_method_is_a_reason_to_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert concurrency.unsupported("processes-fork") == (
        "start method 'fork' is not available on this platform"
    )
    assert concurrency.unsupported("processes-spawn") is None
    assert concurrency.unsupported("processes") is None


def test_a_too_old_interpreter_is_refused(tmp_path: Path) -> None:
    old = fake_python(tmp_path, "echo 3.8.18")
    with pytest.raises(interpreters.ProbeError, match=r"is Python 3\.8\.18; the worker needs 3\.9"):
        interpreters.probe(Interpreter("old", old))


def test_gil_off_on_a_build_with_a_gil_is_refused() -> None:
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("the running interpreter is free-threaded: PYTHON_GIL=0 works here")
    entry = Interpreter("x", sys.executable, (("PYTHON_GIL", "0"),))
    # 3.13 and later refuse at start-up; older ones ignore the variable, which the probe
    # catches
    refused = r"PYTHON_GIL=0 but the GIL is on: .* is not|Disabling the GIL is not supported"
    with pytest.raises(interpreters.ProbeError, match=refused):
        interpreters.probe(entry)


def test_a_broken_interpreter_says_why(tmp_path: Path) -> None:
    broken = fake_python(
        tmp_path,
        "echo 3.13.5; echo 'Fatal Python error: config_read_gil: Disabling the GIL is not "
        "supported by this build' >&2; echo 'Python runtime state: preinitialized' >&2; exit 1",
    )
    with pytest.raises(interpreters.ProbeError) as raised:
        interpreters.probe(Interpreter("broken", broken))
    assert str(raised.value) == (
        f"{broken} cannot run the pipeline's worker: Fatal Python error: config_read_gil: "
        "Disabling the GIL is not supported by this build"
    )


# -- the spec --------------------------------------------------------------------------------
def spec_with(tmp_path: Path, entries: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(interpreters=entries))
    return path


def test_entries_by_name_path_current_and_mapping(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "py").symlink_to(sys.executable)
    path = spec_with(
        tmp_path,
        "\n    - current\n    - bin/py"
        "\n    - {name: tuned, path: ./bin/py, env: {PYTHONHASHSEED: 0}}",
    )
    spec = load_spec(path)
    assert spec.interpreters == ["current", "bin/py", "tuned"]
    current, relative, tuned = spec.interpreter_entries
    assert current.executable == sys.executable
    # relative paths are relative to the spec's folder, whatever the working directory
    assert relative.executable == str(tmp_path / "bin" / "py")
    assert tuned.env == (("PYTHONHASHSEED", "0"),)  # YAML's 0 becomes the text "0"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            "[{name: x, path: ./nowhere/python}]",
            "{f}:10: matrix.interpreter[0].path: interpreter './nowhere/python' not found (not "
            "on PATH and not an executable path)",
        ),
        (
            "[current, {name: x, path: OLD}]",
            "{f}:10: matrix.interpreter[1].path: OLD is Python 3.8.18; the worker needs 3.9 "
            "or later",
        ),
        (
            "[{name: x, env: {1A: 2}}]",
            "{f}:10: matrix.interpreter[0].env: '1A' is not an environment variable name",
        ),
        ("[{path: python3}]", "{f}:10: matrix.interpreter[0].name: required key is missing"),
        (
            "[{name: x, path: current, env: {TMPDIR: /tmp}}]",
            "{f}:10: matrix.interpreter[0].env: TMPDIR is each trial's own folder",
        ),
        ("[current, {name: current}]", "{f}:10: matrix.interpreter: duplicate value 'current'"),
    ],
)
def test_bad_interpreter_entries_are_one_line_errors(
    tmp_path: Path, cli_runner, entries: str, message: str
) -> None:
    old = fake_python(tmp_path, "echo 3.8.18")
    path = spec_with(tmp_path, entries.replace("OLD", old))
    database = tmp_path / "results.db"
    result = cli_runner.invoke(cli, ["run", str(path), "--db", f"sqlite:///{database}"])
    assert result.exit_code == 2
    expected = "error: " + message.format(f=path).replace("OLD", old)
    assert result.output.startswith(expected), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not database.exists()
    with pytest.raises(SpecError):
        load_spec(path, interpreters.check)


def test_the_dry_run_shows_each_interpreter_and_the_cells_it_will_skip(
    tmp_path: Path, cli_runner
) -> None:
    result = cli_runner.invoke(cli, ["run", str(spec_with(tmp_path, "[current]")), "--dry-run"])
    assert result.exit_code == 0, result.output
    version = ".".join(map(str, sys.version_info[:3]))
    assert f"interpreter current: CPython {version}, GIL on ({sys.executable})" in result.output
    if subinterpreters.interpreter_pool_class() is None:
        header = next(line for line in result.output.splitlines() if "model" in line)
        assert "skipped" in header
        assert "  skips subinterpreters: subinterpreters need" in result.output


def test_what_one_plan_does_to_its_probe_never_reaches_the_next() -> None:
    """Probes are cached per interpreter; each caller gets its own copy of the facts (a
    test that marked a model unsupported once leaked into every later plan)."""
    current = Interpreter(label="current", executable=sys.executable)
    first = interpreters.probe(current)
    first.facts["unsupported"] = {"threads": "changed by one caller"}
    assert interpreters.probe(current).unsupported("threads") is None


# -- running ---------------------------------------------------------------------------------
def test_cells_an_interpreter_cannot_run_are_skipped_with_the_reason(tmp_path: Path) -> None:
    """The run goes on; the skipped cell's trials are stored, and none of them ran."""
    executed: list[str] = []

    def execute(request: trial.TrialRequest) -> trial.Measurement:
        executed.append(request.model)
        return fake_execute(request)

    plan = app.plan(spec_with(tmp_path, "[current]"))
    plan.probes["current"].facts["unsupported"] = {"subinterpreters": "not in this test"}
    url = f"sqlite:///{tmp_path / 'results.db'}"
    outcome = app.run(plan, url, execute=execute, reports_dir=tmp_path / "site")
    assert outcome.status == "finished"
    assert "subinterpreters" not in executed
    assert len(executed) == 4
    trials = readonly.query(url, "SELECT model, status, error FROM trial_results")
    skipped = trials[trials["model"] == "subinterpreters"]
    assert skipped["status"].tolist() == ["skipped", "skipped"]
    assert skipped["error"].tolist() == ["not in this test"] * 2
    assert set(trials.loc[trials["model"] != "subinterpreters", "status"]) == {"ok"}
    page = outcome.report_path.read_text() if outcome.report_path else ""
    assert "Skipped cells" in page
    assert "not in this test" in page


def test_a_cell_the_worker_skips_runs_no_more_trials(tmp_path: Path) -> None:
    executed: list[str] = []

    def execute(request: trial.TrialRequest) -> trial.Measurement:
        executed.append(request.model)
        if request.model == "threads":
            return trial.Measurement(status="skipped", process_s=0.1, error="threads said no")
        return fake_execute(request)

    plan = app.plan(spec_with(tmp_path, "[current]"))
    url = f"sqlite:///{tmp_path / 'results.db'}"
    app.run(plan, url, execute=execute, reports_dir=None)
    assert executed.count("threads") == 1
    statuses = readonly.query(url, "SELECT status, error FROM trial_results WHERE model='threads'")
    assert statuses.values.tolist() == [["skipped", "threads said no"]] * 2


def interrupted_after(count: int, execute):
    """An executor that runs ``count`` trials with ``execute``, then is stopped (Ctrl-C)."""
    calls: list[str] = []

    def run(request: trial.TrialRequest) -> trial.Measurement:
        calls.append(request.model)
        if len(calls) > count:
            raise KeyboardInterrupt
        return execute(request)

    return run


def test_a_resume_skips_the_cells_the_worker_skipped_without_running_them(
    tmp_path: Path,
) -> None:
    executed: list[str] = []

    def threads_say_no(request: trial.TrialRequest) -> trial.Measurement:
        executed.append(request.model)
        if request.model == "threads":
            return trial.Measurement(status="skipped", process_s=0.1, error="threads said no")
        return fake_execute(request)

    class StopAfterTheSkip(app.QuietProgress):
        def trial_finished(self, plan, status: str) -> None:
            if status == "skipped" and plan.cell.model == "threads":
                raise KeyboardInterrupt

    path = spec_with(tmp_path, "[current]")
    url = f"sqlite:///{tmp_path / 'results.db'}"
    with pytest.raises(app.Interrupted):
        app.run(app.plan(path), url, execute=threads_say_no, progress=StopAfterTheSkip())
    assert executed.count("threads") == 1
    outcome = app.run(app.plan(path), url, execute=threads_say_no, resume="1", reports_dir=None)
    assert outcome.status == "finished"
    assert executed.count("threads") == 1  # the resumed run did not try threads again
    assert outcome.counts == {"ok": 2, "skipped": 4}


def test_a_run_does_not_resume_on_another_interpreter(tmp_path: Path) -> None:
    """Say .python-ft was relinked to another build between the two sessions."""
    path = spec_with(tmp_path, "[current]")
    url = f"sqlite:///{tmp_path / 'results.db'}"
    with pytest.raises(app.Interrupted):
        app.run(app.plan(path), url, execute=interrupted_after(1, fake_execute))
    plan = app.plan(path)
    old = plan.probes["current"]
    plan.probes["current"] = interpreters.Probe(
        old.interpreter,
        {**old.facts, "real_executable": "/opt/other/bin/python3.13t", "py_gil_disabled": True},
    )
    with pytest.raises(ResumeError) as refused:
        app.run(plan, url, execute=fake_execute, resume="1", reports_dir=None)
    was = os.path.realpath(sys.executable)
    assert str(refused.value) == (
        f"run 1 cannot be resumed: interpreter 'current' real_executable was '{was}', now "
        "'/opt/other/bin/python3.13t'; interpreter 'current' free_threaded_build was False, "
        "now True"
    )


def test_the_probed_interpreters_are_stored_with_the_run(tmp_path: Path) -> None:
    entries = "\n    - current\n    - {name: seeded, path: current, env: {A_B: x}}"
    path = spec_with(tmp_path, entries)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    outcome = app.run(app.plan(path), url, execute=fake_execute, reports_dir=tmp_path / "site")
    rows = readonly.query(url, "SELECT * FROM run_interpreter ORDER BY label")
    assert rows["label"].tolist() == ["current", "seeded"]
    assert json.loads(rows["env_json"][1]) == {"A_B": "x"}
    assert set(rows["version"]) == {".".join(map(str, sys.version_info[:3]))}
    assert rows["free_threaded_build"].tolist() == [0, 0]
    page = outcome.report_path.read_text() if outcome.report_path else ""
    assert "<h3>Interpreters</h3>" in page
    assert "A_B=x" in page


@pytest.mark.processes
def test_the_entry_environment_reaches_the_worker() -> None:
    """A real trial: the worker (and its pool threads) see the entry's variables."""
    measured = runner.execute_in_process(
        trial.TrialRequest(
            sys.executable,
            "user_tasks:environment_variable",
            "threads",
            2,
            0,
            2,
            30.0,
            1,
            {"name": "PIPELINE_ENTRY_TEST"},
            (str(TESTS_DIR),),
            env={"PIPELINE_ENTRY_TEST": "from the entry"},
        )
    )
    assert measured.status == "ok", measured.error
    assert [item["value"] for item in measured.result["items"]] == ["from the entry"] * 2
    assert measured.result["interpreter"]["executable"] == sys.executable


# -- free-threaded CPython -------------------------------------------------------------------
def test_probe_of_a_free_threaded_build_under_both_gil_states() -> None:
    python = free_threaded_python()
    off = interpreters.probe(Interpreter("off", python, (("PYTHON_GIL", "0"),)))
    on = interpreters.probe(Interpreter("on", python, (("PYTHON_GIL", "1"),)))
    assert off.facts["py_gil_disabled"] is on.facts["py_gil_disabled"] is True
    assert off.facts["gil_enabled"] is False
    assert on.facts["gil_enabled"] is True
    assert off.description.endswith("free-threaded build, GIL off")


def free_threaded_spec(tmp_path: Path, models: str) -> Path:
    """SPEC under the running interpreter and the free-threaded one with the GIL off and on."""
    python = free_threaded_python()
    entries = (
        f"\n    - current\n    - {{name: ft-off, path: {python}, env: {{PYTHON_GIL: 0}}}}"
        f"\n    - {{name: ft-on, path: {python}, env: {{PYTHON_GIL: 1}}}}"
    )
    body = SPEC.format(interpreters=entries).replace(
        "[sequential, threads, subinterpreters]", models
    )
    path = tmp_path / "ft.yaml"
    path.write_text(body)
    return path


@pytest.mark.processes
@pytest.mark.timing  # two threads against sequential on the machine's two cores
def test_free_threaded_threads_run_cpu_pure_in_parallel(tmp_path: Path) -> None:
    """The product's own verdicts, on its own estimator: with the GIL off, two threads give
    pure-Python CPU work a practical gain (the explainer's "threads can never run Python
    in parallel" is contradicted); with it on (the running GIL build, and the free-threaded
    build with PYTHON_GIL=1) they give none (the GIL claim is supported). Where this noisy
    machine leaves a comparison undecided after five trials, the run measures more
    (adaptive repetitions), as a user's would: up to 30 trials a cell (15 left the GIL
    claim undecided once here)."""
    path = free_threaded_spec(tmp_path, "[sequential, threads]")
    text = path.read_text()
    # a 25% margin: GIL-contended threads are noisy on 2 cores, and the physics asked
    # about (about 1.0× with the GIL, about 1.8× without) is far from it on both sides
    text = text.replace(
        "repetitions: 2", "repetitions: {min: 5, max: 30}\nbudget: 120\nmargin: 0.25"
    )
    text = text.replace("items: 2", "items: 6").replace("task: io_sleep", "task: cpu_pure")
    text = text.replace("io_sleep: {seconds: 0.01}", "cpu_pure: {iterations: 1000000}")
    path.write_text(text)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    outcome = app.run(app.plan(path), url, reports_dir=None)
    assert set(outcome.counts) == {"ok"}
    trials = readonly.query(url, "SELECT interpreter, gil_enabled FROM trial_results")
    gil = trials.groupby("interpreter")["gil_enabled"].agg(lambda values: set(values))
    assert gil.to_dict() == {"current": {1}, "ft-off": {0}, "ft-on": {1}}
    found = {v.claim: v for v in app.verdicts(app.open_store(url), outcome.run_id)}
    cells = readonly.query(url, "SELECT interpreter, model, n, stop_reason FROM cell_summary")
    print(cells.to_string())  # shown when it fails: how many trials each cell took
    # beside a busy program (a core of two taken) two threads have nothing to gain: the
    # run must then say so (test_advice_runs checks that a real one is seen)
    busy = app.other_programs(app.open_store(url), outcome.run_id)
    assert found["free_threading"].verdict == "contradicted" or busy, found["free_threading"]
    assert found["gil_threads_cpu"].verdict == "supported", found["gil_threads_cpu"]
