"""``pipeline advise`` run for real on the archetypes of tests/advise_examples.py (the
default budget, on whatever interpreters the machine offers): each gets its answer within
its budget; a function that is not thread-safe is named; results that cannot be pickled
leave processes out; a coroutine function gets asyncio; bad input is one line, exit 2 and
nothing written. ``make bench-advise`` runs each archetype five times."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline import app
from pipeline.cli import cli

from .helpers import ROOT

EXAMPLES = ROOT / "tests"
pytestmark = pytest.mark.slow


def advise(tmp_path: Path, function: str, inputs: str = "", budget_s: float = 60.0):
    started_s = time.monotonic()
    found = app.advise(
        f"advise_examples:{function}",
        f"sqlite:///{tmp_path / 'advice.db'}",
        inputs=f"advise_examples:{inputs}" if inputs else "",
        python_path=[EXAMPLES],
        budget_s=budget_s,
        reports_dir=tmp_path / "reports",
    )
    return found, time.monotonic() - started_s


def kinds(answer) -> set[str]:
    """The kinds of the best configuration and of those tied with it."""
    return {answer.best.kind, *(option.kind for option in answer.ties)}


ARCHETYPES = {
    # function, inputs factory, the kinds an answer may name (best, or tied with it)
    "pure_python": ("", {"processes"}),
    "hash_block": ("", {"threads", "processes", "free-threaded threads"}),
    "wait": ("", {"threads"}),
    "tiny": ("tiny_items", {"sequential"}),
    "consume": ("big_items", {"sequential", "threads"}),
}


@pytest.mark.parametrize("function", list(ARCHETYPES))
def test_each_archetype_gets_its_answer_within_the_budget(tmp_path, function) -> None:
    inputs, allowed = ARCHETYPES[function]
    found, elapsed_s = advise(tmp_path, function, inputs)
    answer = found.answer
    assert answer.best is not None, answer.lines
    assert answer.best.kind in allowed or (answer.ties and kinds(answer) & allowed), answer.headline
    if function == "wait":  # the most threads tried: as many as items
        assert (answer.best.kind, answer.best.workers) == ("threads", 32), answer.headline
    assert elapsed_s <= 60 + 10, elapsed_s  # the budget, and a few seconds of report
    assert found.page_path is not None
    assert found.page_path.exists()
    assert "<svg" in found.page_path.read_text()


def test_a_function_that_is_not_thread_safe_is_named(tmp_path) -> None:
    found, _ = advise(tmp_path, "unsafe_sum", "counts", budget_s=20)
    unsafe = [m for m in found.answer.mismatches if "threads" in m["config"]]
    assert unsafe, found.answer.lines
    assert any("probably not thread-safe" in line for line in found.answer.lines)
    assert not [m for m in found.answer.mismatches if "processes" in m["config"]]


def test_results_that_cannot_be_pickled_leave_processes_out(tmp_path) -> None:
    found, _ = advise(tmp_path, "lazy", budget_s=20)
    assert any("cannot be pickled" in reason for reason in found.answer.left_out)
    assert not [o for o in found.answer.options if o.kind == "processes"]
    assert found.answer.best is not None


def test_a_coroutine_function_gets_asyncio(tmp_path) -> None:
    found, _ = advise(tmp_path, "fetch", budget_s=20)
    assert found.answer.best.kind == "asyncio", found.answer.headline
    assert "asyncio.run(main())" in found.answer.snippet


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nocolon"], "error: 'nocolon': expected MODULE:FUNCTION, e.g. mymodule:work\n"),
        (
            ["nosuchmodule:f"],
            "error: cannot import nosuchmodule: ModuleNotFoundError: No module "
            "named 'nosuchmodule'\n",
        ),
        (
            ["advise_examples:BLOCK"],
            "error: advise_examples:BLOCK is not callable (it is a bytes)\n",
        ),
        (
            ["advise_examples:tiny", "--inputs", "advise_examples:failing_items"],
            "error: the inputs factory advise_examples:failing_items failed: RuntimeError: the "
            "data is not there\n",
        ),
        (
            ["advise_examples:tiny", "--inputs", "advise_examples:no_items"],
            "error: the inputs factory advise_examples:no_items returned no items\n",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(cli_runner, tmp_path, argv, message):
    db = tmp_path / "advice.db"
    result = cli_runner.invoke(
        cli, ["advise", *argv, "--python-path", str(EXAMPLES), "--db", f"sqlite:///{db}"]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr == message
    assert not db.exists()
