"""``pipeline advise``: its plan is a valid spec of exactly the configurations chosen,
its decision follows the rule on constructed trials, its code snippets compile, and bad
input is one line and exit 2. The archetypes, run for real, are in test_advice_runs.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.advice import plan
from pipeline.analysis import advice, advice_answer, advice_findings
from pipeline.analysis.inference import Rule
from pipeline.planning import matrix
from pipeline.planning.spec import parse_spec

from .helpers import ROOT

EXAMPLES = str(ROOT / "tests")
MAIN = plan.Offer(
    "python3.11", "/usr/bin/python3", False, ("fork", "forkserver", "spawn"), "fork", False
)
FREE = plan.Offer(
    "python3.13t", "/usr/bin/python3", True, ("fork", "forkserver", "spawn"), "fork", True
)


def profile(**changes: object) -> dict[str, object]:
    return {
        "items": 32,
        "item_s": 0.01,
        "cpu_share": 1.0,
        "coroutine": False,
        "not_picklable": "",
        **changes,
    }


def configs(found: plan.Study) -> set[tuple[str, int, str, int]]:
    return {(c.model, c.workers, c.interpreter, c.chunksize) for c in found.configs}


def test_cpu_bound_work_gets_pools_to_the_cores_and_every_start_method() -> None:
    found = plan.configurations(profile(), plan.Options("m:f"), MAIN, [], cores=2)
    assert configs(found) == {
        ("sequential", 1, "python3.11", 1),
        ("threads", 2, "python3.11", 1),
        ("threads", 4, "python3.11", 1),
        ("processes-fork", 1, "python3.11", 1),  # its cost per item
        ("processes-fork", 2, "python3.11", 1),
        ("processes-forkserver", 2, "python3.11", 1),
        ("processes-spawn", 2, "python3.11", 1),
        ("processes-fork", 2, "python3.11", 4),  # ceil(32 / (4 × 2))
    }


def test_waiting_work_gets_threads_up_to_the_items_and_a_free_threaded_build_is_skipped() -> None:
    found = plan.configurations(profile(cpu_share=0.01), plan.Options("m:f"), MAIN, [FREE], cores=2)
    threads = sorted(c.workers for c in found.configs if c.model == "threads")
    assert threads == [2, 4, 8, 16, 32]
    assert not [c for c in found.configs if c.interpreter == "python3.13t"]
    assert any("mostly waits" in reason for reason in found.left_out)


def test_cpu_work_on_a_free_threaded_build_gets_its_threads() -> None:
    found = plan.configurations(profile(), plan.Options("m:f"), MAIN, [FREE], cores=2)
    assert {(c.model, c.workers) for c in found.configs if c.interpreter == "python3.13t"} == {
        ("sequential", 1),
        ("threads", 2),
        ("threads", 4),
        ("subinterpreters", 2),  # FREE has them (the interpreters-pep-734 backport)
    }


def test_unpicklable_results_leave_processes_out_with_the_reason() -> None:
    reason = "result 0 cannot be pickled (TypeError: cannot pickle 'generator' object)"
    found = plan.configurations(profile(not_picklable=reason), plan.Options("m:f"), MAIN, [], 2)
    assert not [c for c in found.configs if c.model.startswith("processes")]
    assert found.left_out == [f"processes and subinterpreters: {reason}"]


def test_coroutine_functions_get_asyncio() -> None:
    found = plan.configurations(
        profile(coroutine=True, cpu_share=0.0), plan.Options("m:f"), MAIN, [], 2
    )
    assert sorted(c.workers for c in found.configs if c.model == "asyncio") == [2, 4, 8, 16, 32]
    assert not [c for c in found.configs if c.model.startswith("processes")]


@pytest.mark.parametrize("cpu_share", [1.0, 0.01])
def test_the_spec_expands_to_exactly_the_configurations(cpu_share: float) -> None:
    """The generated spec is a valid spec whose cells are the chosen configurations (its
    excludes remove every other combination), with the call task's chunks as work items."""
    options = plan.Options("advise_examples:wait", python_path=(EXAMPLES,))
    study = plan.configurations(profile(cpu_share=cpu_share), options, MAIN, [], cores=2)
    text = plan.spec_text(options, study, [MAIN], timeout_s=30, budget_s=50, name="advise-x")
    spec = parse_spec(text.replace("/usr/bin/python3", "current"))
    cells = matrix.expand(spec)
    expanded = {
        (
            c.model,
            c.workers,
            c.interpreter.replace("current", "python3.11"),
            dict(c.variant).get("chunksize", 1),
        )
        for c in cells
    }
    assert expanded == configs(study)
    assert len(cells) == len(study.configs)
    chunked = [c for c in cells if dict(c.variant).get("chunksize", 1) > 1]
    assert all(matrix.work_items(spec, c) == 8 for c in chunked)
    assert text.startswith(plan.GENERATED)


# -- the decision on constructed trials -------------------------------------------------------
def trials(
    times: dict[tuple[str, int, int], float], spread: float = 0.02, n: int = 6
) -> pd.DataFrame:
    """Trials of configurations (model, workers, chunksize) with these batch times."""
    rows = []
    for cell_id, ((model, workers, chunk), seconds) in enumerate(times.items(), start=1):
        noise = np.random.default_rng(cell_id).permutation(np.linspace(-spread, spread, n))
        for repetition, offset in enumerate(noise):
            rows.append(
                {
                    "cell_id": cell_id,
                    "trial_id": cell_id * 100 + repetition,
                    "model": model,
                    "workers": workers,
                    "interpreter": "python3.11",
                    "variant": f"chunksize={chunk}" if chunk > 1 else "",
                    "repetition": repetition,
                    "status": "ok",
                    "startup_s": 0.0,
                    "wall_s": seconds * (1 + offset),
                    "shutdown_s": 0.0,
                    "free_threaded_build": False,
                    "cpu_user_s": seconds,
                    "cpu_sys_s": 0.0,
                    "error": None,
                }
            )
    return pd.DataFrame(rows)


def test_the_best_is_separated_from_every_rival() -> None:
    data = advice.measured(
        trials({("sequential", 1, 1): 1.0, ("threads", 2, 1): 1.0, ("processes-fork", 2, 1): 0.5})
    )
    decided = advice.decide(data, Rule())
    assert decided.best is not None
    assert decided.best.model == "processes-fork"
    assert decided.settled()
    assert decided.ties() == []
    assert advice.undecided_cells(data, Rule()) == set()


def test_rivals_within_the_margin_tie_and_noisy_ones_need_trials() -> None:
    data = advice.measured(
        trials(
            {
                ("sequential", 1, 1): 1.0,
                ("processes-fork", 2, 1): 0.5,
                ("processes-fork", 2, 4): 0.51,
            }
        )
    )
    decided = advice.decide(data, Rule())
    assert [e.label for e in decided.ties()] == [
        next(
            c.label()
            for c in data.configs
            if c.cell_id != decided.best.cell_id and c.model != "sequential"
        )
    ]
    noisy = advice.measured(
        trials(
            {("sequential", 1, 1): 1.0, ("threads", 2, 1): 0.55, ("processes-fork", 2, 1): 0.5},
            spread=0.4,
        )
    )
    assert len(advice.undecided_cells(noisy, Rule())) >= 2  # the best and its rival


def test_a_doubling_that_gains_nothing_stops_the_counts_above_it() -> None:
    times = {
        ("sequential", 1, 1): 1.0,
        ("threads", 2, 1): 0.5,
        ("threads", 4, 1): 0.5,
        ("threads", 8, 1): 0.52,
    }
    data = advice.measured(trials(times))
    decided = advice.decide(data, Rule())
    eight = next(c for c in data.configs if c.workers == 8)
    assert decided.pruned == {eight.cell_id: "threads ×4 gained nothing over ×2"}


def test_a_pruned_rival_keeps_no_cell_measuring() -> None:
    """A count above a doubling that gained nothing, still not told apart from the best,
    asks for no more trials of its own nor of the best's (the study would otherwise run
    the best alone to the end of its budget)."""
    times = {("sequential", 1, 1): 1.0, ("threads", 2, 1): 0.5, ("threads", 4, 1): 0.5}
    frame = trials({**times, ("threads", 8, 1): 0.52})
    noisy = frame["cell_id"].eq(4)
    frame.loc[noisy, "wall_s"] = frame.loc[noisy, "wall_s"] * np.tile([0.8, 1.4], 3)
    data = advice.measured(frame)
    decided = advice.decide(data, Rule())
    eight = next(c for c in data.configs if c.workers == 8)
    assert eight.cell_id in decided.pruned
    assert not next(e for e in decided.rivals if e.cell_ids[0] == eight.cell_id).settled
    assert advice.undecided_cells(data, Rule()) == set()


def test_digests_do_not_depend_on_the_hash_seed() -> None:
    """A set of strings pickles in an order that follows the hash seed, which every trial
    process draws anew: its digest must not."""
    import subprocess
    import sys

    code = "from pipeline.worker.call import digest; print(digest({'alpha', 'beta', 'gamma'}))"
    found = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT)},
        ).stdout
        for seed in range(4)
    }
    assert len(found) == 1


def test_results_that_differ_under_threads_are_named_by_item() -> None:
    frame = trials(
        {("sequential", 1, 1): 1.0, ("threads", 2, 1): 0.6, ("processes-fork", 2, 4): 0.5}
    )
    same = ["a", "b", "c", "d", "e", "f", "g", "h"]
    details = {}
    for trial_id, cell_id in zip(frame["trial_id"], frame["cell_id"], strict=True):
        digests = list(same)
        if cell_id == 2 and trial_id % 2:
            digests[3] = "x"  # threads got item 3 wrong in some trials
        if cell_id == 3:  # chunks of four items
            items = [{"index": i, "value": digests[4 * i : 4 * i + 4]} for i in range(2)]
        else:
            items = [{"index": i, "value": [d]} for i, d in enumerate(digests)]
        details[int(trial_id)] = {"items": items}
    data = advice.measured(frame)
    found, note = advice_findings.mismatches(data, frame, details)
    assert note == ""
    assert [(m.config.model, m.items, m.trials, m.of) for m in found] == [("threads", (3,), 3, 6)]


@pytest.mark.parametrize(
    ("kind", "workers", "model", "chunk", "inputs"),
    [
        ("sequential", 1, "sequential", 1, ""),
        ("threads", 8, "threads", 1, "m:items"),
        ("processes", 2, "processes-forkserver", 8, "m:items"),
        ("processes", 2, "processes-fork", 1, ""),
        ("asyncio", 16, "asyncio", 1, "m:items"),
        ("subinterpreters", 2, "subinterpreters", 1, ""),
        ("free-threaded threads", 4, "threads", 1, ""),
    ],
)
def test_every_snippet_is_valid_python(kind, workers, model, chunk, inputs) -> None:
    option = advice_answer.Option("x", kind, workers, 2.0, 1.8, 2.2)
    config = advice.Config(1, model, workers, "python3.11", chunk)
    code = advice_answer.snippet(option, "m:f", inputs, 32, config)
    compile(code, "<snippet>", "exec")
    assert "from m import f" in code
    if kind == "processes":
        assert f'get_context("{model.partition("-")[2]}")' in code
        assert ("chunksize=8" in code) is (chunk == 8)


def test_readiness_names_the_modules_that_turned_the_gil_on() -> None:
    frame = trials({("sequential", 1, 1): 1.0, ("threads", 2, 1): 0.6})
    free = frame["cell_id"].eq(2)
    frame.loc[free, ["interpreter", "free_threaded_build"]] = ["python3.13t", True]
    facts = pd.DataFrame(
        [
            {"cell_id": 2, "trial_id": 200, "name": "gil_enabled_after_import", "value": 1.0},
            {"cell_id": 2, "trial_id": 200, "name": "gil_enabled_by:numpy._core", "value": 1.0},
        ]
    )
    (found,) = advice_findings.readiness(advice.measured(frame), facts)
    assert found == advice_findings.Readiness("python3.13t", True, ("numpy._core",))


def test_the_first_rounds_are_fitted_to_the_budget() -> None:
    """Half a second an item: three rounds of every configuration would take minutes, so
    the least telling go first (other start methods, the chunked pool, the pool of one),
    each named in what was left out."""
    slow = profile(item_s=0.5)
    study = plan.configurations(slow, plan.Options("m:f"), MAIN, [], cores=2)
    before = len(study.configs)
    first_s = plan.fit_to_budget(study, slow, 32, 2, 55.0, "fork")
    kept = {(c.model, c.workers, c.chunksize) for c in study.configs}
    assert ("processes-spawn", 2, 1) not in kept
    assert ("processes-fork", 2, 4) not in kept
    assert ("processes-fork", 2, 1) in kept
    assert len(study.configs) < before
    assert any("to fit the first rounds in the budget" in reason for reason in study.left_out)
    assert first_s > 0
    quick = plan.configurations(profile(), plan.Options("m:f"), MAIN, [], cores=2)
    count = len(quick.configs)
    plan.fit_to_budget(quick, profile(), 32, 2, 55.0, "fork")
    assert len(quick.configs) == count  # 10 ms items: everything fits
