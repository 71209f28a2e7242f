"""Claims decided by counting what happened rather than by timing it: lost updates of a
shared counter (claim 5) and what a crash takes down (claim 6), from the task facts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cells import variant_text
from ..status import Verdict
from ..worker.concurrency import PROCESS_MODELS
from .evidence import ClaimVerdict
from .gathering import RunData, label


def _variant(cell: pd.Series) -> dict[str, str]:
    """A cell's swept parameters: 'lock=with mode=exit' -> {'lock': 'with', 'mode': 'exit'}."""
    return dict(pair.split("=", 1) for pair in variant_text(cell["variant"]).split())


def shared_state(data: RunData) -> ClaimVerdict:
    statement = (
        "Threads sharing a counter need a lock to avoid lost updates; processes cannot share "
        "it without explicit shared memory."
    )
    cells = data.cells("sync", ("threads", *PROCESS_MODELS))
    if cells.empty:
        return ClaimVerdict(
            "shared_state", statement, Verdict.NOT_MEASURED, "no sync cells in this run"
        )
    lines: list[str] = []
    lost_by: dict[tuple[str, str], list[float]] = {}
    for _, cell in cells.iterrows():
        lost = data.fact(int(cell["cell_id"]), "lost_updates")
        expected = data.fact(int(cell["cell_id"]), "expected_count")
        if not lost.size:
            continue
        share = (
            float(np.nansum(lost) / np.nansum(expected)) if np.nansum(expected) else float("nan")
        )
        kind = "threads" if cell["model"] == "threads" else "processes"
        lock = _variant(cell).get("lock", "without")
        lost_by.setdefault((kind, lock), []).append(share)
        lines.append(
            f"{label(cell)}: {np.nansum(lost):.0f} updates lost in {lost.size} trials "
            f"({share:.1%}) ({data.conditions(cell)})"
        )
    locked_loss = any(max(v) > 0 for (kind, lock), v in lost_by.items() if lock == "with")
    thread_loss = max(lost_by.get(("threads", "without"), [float("nan")]))
    process_loss = max(lost_by.get(("processes", "without"), [float("nan")]))
    if locked_loss:
        verdict, summary = (
            Verdict.CONTRADICTED,
            "updates were lost even under the lock: the lock did not protect the counter",
        )
    elif thread_loss > 0:
        verdict, summary = (
            Verdict.SUPPORTED,
            f"without the lock threads lost up to {thread_loss:.1%} of the updates; with it none",
        )
    elif thread_loss == 0:
        verdict = Verdict.NUANCED
        summary = (
            "without the lock threads lost no update here: on this GIL build a bare `+= 1` is "
            "not interrupted between its read and its write in practice (still a race by the "
            "language's rules, and a real one on free-threaded builds)"
        )
        if process_loss > 0:
            summary += (
                "; processes sharing a multiprocessing.Value without the lock lost up to "
                f"{process_loss:.1%}"
            )
    else:
        verdict, summary = Verdict.NOT_MEASURED, "no run of the counter without the lock"
    return ClaimVerdict("shared_state", statement, verdict, summary, tuple(lines), "")


def fault_isolation(data: RunData) -> ClaimVerdict:
    statement = (
        "A crash in a thread can take the whole program down; a crashing process leaves the "
        "others running."
    )
    cells = data.cells("fault", ("sequential", "threads", "asyncio", *PROCESS_MODELS))
    hard = cells[
        [_variant(cell).get("mode") in ("exit", "segfault") for _, cell in cells.iterrows()]
    ]
    if hard.empty:
        return ClaimVerdict(
            "fault_isolation",
            statement,
            Verdict.NOT_MEASURED,
            "no fault cells with mode exit or segfault",
        )
    lines: list[str] = []
    thread_died: list[float] = []
    pool_broke: list[float] = []
    proc_survived: list[float] = []
    for _, cell in hard.iterrows():
        cid = int(cell["cell_id"])
        survived = data.fact(cid, "trial_process_survived")
        others = data.fact(cid, "others_finished")
        broken = data.fact(cid, "pool_broken")
        if not survived.size:
            continue
        in_process = cell["model"] not in PROCESS_MODELS
        (thread_died if in_process else proc_survived).append(float(np.nanmean(survived)))
        if not in_process:
            pool_broke.append(float(np.nanmean(broken)) if broken.size else float("nan"))
        lines.append(
            f"{label(cell)}: program survived in {np.nansum(survived):.0f}/{survived.size} trials, "
            f"median {np.nanmedian(others):.0f} other items finished"
            + (
                f", pool broken in {np.nansum(broken):.0f}/{broken.size}"
                if broken.size and not in_process
                else ""
            )
        )
    threads_kill = bool(thread_died) and max(thread_died) == 0
    processes_isolate = bool(proc_survived) and min(proc_survived) == 1
    pools_break = bool(pool_broke) and min(pool_broke) == 1
    if threads_kill and processes_isolate and pools_break:
        verdict = Verdict.NUANCED
        summary = (
            "a hard crash in a thread ended the whole program every time, and the program "
            "survived a crashing pool process — but ProcessPoolExecutor then marks the whole "
            "pool broken and fails every pending item, so the other workers do not go on"
        )
    elif threads_kill and processes_isolate:
        verdict, summary = (
            Verdict.SUPPORTED,
            "thread crashes ended the program; process crashes did not",
        )
    else:
        verdict, summary = (
            Verdict.CONTRADICTED,
            "the outcomes do not follow the claim; see the cells",
        )
    return ClaimVerdict("fault_isolation", statement, verdict, summary, tuple(lines), "")
