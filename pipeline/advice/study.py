"""``pipeline advise``: one command from a user's function to an answer.

1. Look at the function under every interpreter offered (worker.profile_call, in a fresh
   process as a trial): can it be imported and called, is it a coroutine function, how
   long does an item take and how much of that is CPU, can items and results be pickled,
   does loading it keep a free-threaded build's GIL off. Bad input stops here (AdviceError).
2. Plan the study (plan.py) and write it as a spec of the ``call`` task.
3. Run it as any run (stored trial by trial, with the spec), its adaptive rounds going to
   the configurations the rule has not yet separated from the best (analysis/advice.py),
   within the budget.
4. Decide, gather the findings and write the answer page next to the run's report.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import advice, advice_findings
from ..analysis.advice_answer import Answer
from ..analysis.inference import run_rule
from ..errors import AdviceError
from ..execution import interpreters, orchestrator
from ..execution.launch import PROJECT_ROOT, executable_path
from ..execution.plan import plan as plan_run
from ..planning.axes import Interpreter
from ..publishing.advice_page import write_page
from ..publishing.site import build_report
from ..results import cores, other_programs
from ..storage.store import Store
from . import plan

FREE_THREADED = PROJECT_ROOT / ".python-ft" / "bin" / "python3t"  # make python-ft
REPORT_RESERVE_S = 4.0  # of the budget, for the statistics and the report after the runs


@dataclass
class Advice:
    """What ``pipeline advise`` found, and where it is stored and written."""

    run_id: int
    answer: Answer
    report_path: Path | None = None
    page_path: Path | None = None
    profile: dict[str, Any] = field(default_factory=dict)


def advise(
    options: plan.Options,
    url: str,
    *,
    reports_dir: Path | None,
    progress: orchestrator.Progress | None = None,
) -> Advice:
    """Study ``options.function`` and return the advice (see the module docstring)."""
    started_s = time.monotonic()
    main, others = _offers(options)
    params = {"function": options.function, "inputs": options.inputs, "count": options.items}
    profile = interpreters.profile_call(main[1], params, list(options.python_path))
    items = int(profile["items"])
    options = plan.Options(**{**options.__dict__, "items": items})
    usable, dropped = [], []
    for offer, probed in others:
        try:
            readiness = interpreters.profile_call(probed, params, list(options.python_path))
        except AdviceError as error:
            dropped.append(f"{offer.label}: {error}")
            continue
        usable.append(offer)
        profile.setdefault("readiness", {})[offer.label] = readiness
    machine_cores = _cores()
    study = plan.configurations(profile, options, main[0], usable, machine_cores)
    study.left_out.extend(dropped)
    batch_s = items * float(profile["item_s"])
    spent_s = time.monotonic() - started_s
    budget_s = max(options.budget_s - spent_s - REPORT_RESERVE_S, 1.0)
    first_s = plan.fit_to_budget(
        study, profile, items, machine_cores, budget_s, main[0].default_method
    )
    if first_s > budget_s:
        study.left_out.append(
            f"the budget: the first {plan.MIN_ROUNDS} rounds of what is left take about "
            f"{first_s:.0f} s, more than the {budget_s:.0f} s --budget leaves (they run anyway)"
        )
    text = plan.spec_text(
        options,
        study,
        [main[0], *usable],
        timeout_s=max(30.0, 10 * batch_s + 10),
        budget_s=budget_s,
        name=plan.study_name(options.function),
    )
    with tempfile.TemporaryDirectory(prefix="pipeline-advise-") as folder:
        spec_path = Path(folder, f"{plan.study_name(options.function)}.yaml")
        spec_path.write_text(text, encoding="utf-8")
        planned = plan_run(spec_path)
        try:
            outcome = orchestrator.run(planned, url, progress=progress, undecided=undecided)
        finally:
            planned.close()
    store = Store(url)
    report = build_report(store, outcome.run_id, reports_dir) if reports_dir else None
    answer = answer_of(store, outcome.run_id)
    page = write_page(answer, report.parent) if report is not None else None
    return Advice(outcome.run_id, answer, report, page, profile)


def is_advice(store: Store, run_id: int) -> bool:
    """Whether a stored run is a ``pipeline advise`` study (its cells run the call task)."""
    return store.resolve_run(run_id).spec_text.startswith(plan.GENERATED)


def write_advice_page(store: Store, run_id: int, out_dir: Path) -> Path | None:
    """The advice page of a stored advise study, next to its report (None otherwise)."""
    if not is_advice(store, run_id):
        return None
    return write_page(answer_of(store, run_id), out_dir)


def _offers(options: plan.Options) -> tuple[tuple[plan.Offer, Any], list[tuple[plan.Offer, Any]]]:
    """The running interpreter, and the others the study may use: those named with
    --interpreter, and the free-threaded build of ``make python-ft`` when it is there."""
    found: list[tuple[plan.Offer, Any]] = []
    named = [executable_path(name) for name in options.interpreters]
    if FREE_THREADED.exists() and str(FREE_THREADED.resolve()) not in map(_real, named):
        named.append(str(FREE_THREADED))
    for index, executable in enumerate([sys.executable, *named]):
        try:
            probed = interpreters.probe(Interpreter(executable, executable))
        except interpreters.ProbeError as error:
            raise AdviceError(f"--interpreter {executable}: {error}") from None
        version = probed.facts.get("version", "?")
        free = "t" if probed.facts.get("free_threaded_build") else ""
        label = f"python{'.'.join(str(version).split('.')[:2])}{free}"
        if any(offer.label == label for offer, _ in found):
            label = f"{label}-{index}"
        found.append((plan.Offer.of(label, probed.executable, probed.facts), probed))
    return found[0], found[1:]


def _real(path: str) -> str:
    return str(Path(path).resolve())


def _cores() -> float:
    import psutil

    from ..execution import environment

    return environment.usable_cores(
        environment.cpu_affinity(), environment.cgroup_cpu_quota(), psutil.cpu_count()
    )


def undecided(store: Store, run_id: int) -> set[int]:
    """The cells of an advise run that need more trials (analysis/advice.py)."""
    run_row = store.resolve_run(run_id)
    data = advice.measured(store.trials_frame(run_id))
    return advice.undecided_cells(data, run_rule(run_row.model_dump()))


def answer_of(store: Store, run_id: int) -> Answer:
    """The advice from a stored advise run (what ``pipeline advise`` prints, and what its
    page shows)."""
    run_row = store.resolve_run(run_id)
    trials = store.trials_frame(run_id)
    facts = store.facts_frame(run_id)
    rule = run_rule(run_row.model_dump())
    data = advice.measured(trials)
    decided = advice.decide(data, rule)
    usable_cores = cores(store, run_id)
    processes = [c for c in data.usable() if c.kind == "processes"]
    best_processes = _best_of(data, processes)
    details = store.trial_details(run_id)
    model = advice_findings.cost_model(
        data, trials, facts, details, best_processes, usable_cores, int(run_row.items)
    )
    mismatched, note = advice_findings.mismatches(data, trials, details)
    return Answer.build(
        run_row,
        data,
        decided,
        rule,
        model=model,
        memory=advice_findings.memory_per_worker(data, store.summary_frame(run_id)),
        mismatches=mismatched,
        compare_note=note,
        readiness=advice_findings.readiness(data, facts),
        left_out=plan.left_out(run_row.spec_text),
        busy=other_programs(store, run_id),
    )


def _best_of(data: advice.Measured, configs: list[advice.Config]) -> advice.Config | None:
    import numpy as np

    if not configs:
        return None
    return min(configs, key=lambda c: float(np.mean(np.log(data.batches[c.cell_id].values))))
