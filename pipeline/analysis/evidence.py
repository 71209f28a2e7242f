"""The evidence claims rest on: comparisons of cells (a metric of one cell against another's,
a ratio with an interval, decided against the practical margin: see inference.py),
gathered from a run's summary and trials, with the run's facts about each cell
(interpreter, GIL state). Pure functions on frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

import numpy as np
import pandas as pd

from ..cells import BASELINE_KEYS, BASELINE_MODEL, row_label, variant_text
from ..status import TrialStatus
from ..worker.concurrency import PROCESS_MODELS
from .inference import (
    ALPHA,
    MARGIN,
    NO_RATIO,
    Decision,
    Observed,
    Ratio,
    decide,
    family_level,
    ratio_of,
)

IO_TASKS = ("io_sleep", "io_network", "io_file")


SUPPORTED, CONTRADICTED, NUANCED, INCONCLUSIVE, NOT_MEASURED = (
    "supported",
    "contradicted",
    "nuanced",
    "inconclusive",  # measured, but some comparison is undecided: more trials would decide
    "not measured",
)


@dataclass(frozen=True)
class Verdict:
    """A claim of the explainer and what this run says of it."""

    claim: str
    statement: str
    verdict: str
    summary: str
    evidence: tuple[str, ...] = ()
    conditions: str = ""
    title: str = ""  # a few words, for tables
    headline: str = ""  # the numbers in one line, e.g. '3.99× [3.99, 3.99] (io_sleep threads ×4)'
    comparisons: int = 0


@dataclass
class Evidence:
    """One comparison a verdict rests on: how many times ``first`` is ``second`` for one
    metric (a speedup: the baseline's times over the cell's), decided against the margin
    once the claim's whole family of comparisons is known."""

    label: str
    metric: str
    first: Observed
    second: Observed
    conditions: str
    payload_bytes: int = 0
    cell_ids: tuple[int, ...] = ()  # the two cells compared
    estimate: Ratio = NO_RATIO
    decision: Decision = Decision.UNDECIDED
    flag: str = ""  # what makes the comparison suspect (a physically implausible speedup)
    margin: float = MARGIN  # the practical margin it was decided against

    @property
    def settled(self) -> bool:
        """Whether the comparison answers its claim's question (is there a practical gain,
        or more of a resource?) either way."""
        return self.decision is Decision.MORE or self.decision.rules_out_more

    def ratio_text(self) -> str:
        """'1.95× [1.82, 2.09] (90% CI, paired): more'."""
        e = self.estimate
        if not e.known:
            return f"too few ok trials ({e.n_first} and {e.n_second}): {self.decision}"
        level = f"{e.level:.1%}".replace(".0%", "%")
        how = ", paired by round" if e.paired else ""
        return f"{e.text(self.margin)} ({level} CI{how}): {self.decision}"


def decide_family(
    evidence: list[Evidence],
    margin: float,
    alpha: float = ALPHA,
    *,
    paired: bool = False,
    bonferroni_only: bool = False,
) -> None:
    """Estimate and decide every comparison of one claim; ``paired``: trials paired by
    round where both cells ran in the same rounds.

    A claim is supported or contradicted only when every comparison answers its question
    the same way: an intersection-union test (Berger 1982), wrong only if the one
    comparison whose answer is false says so, so each interval is at 1 − 2α with no
    correction for the family's size. When they do not all answer one way, the verdict
    can only be nuanced (answers both ways: which one is false is not known in advance)
    or inconclusive, and the comparisons are decided again at the Bonferroni level
    1 − 2α/m, which bounds the chance that any of them is false. ``bonferroni_only``: the
    rule before 2026-11-30, every family at 1 − 2α/m (for comparison in calibration)."""
    corrected = family_level(len(evidence), alpha)
    levels = (corrected,) if bonferroni_only else (family_level(1, alpha), corrected)
    for e in evidence:
        e.margin = margin
    for level in dict.fromkeys(levels):
        for e in evidence:
            e.estimate = ratio_of(e.first, e.second, level=level, paired=paired)
            e.decision = decide(e.estimate, margin)
        if outcome(evidence) in (Outcome.ALL_MORE, Outcome.NONE_MORE):
            return


class Outcome(StrEnum):
    """How a family of comparisons answers its claim's question (a practical gain, or more
    of a resource?)."""

    ALL_MORE = "all more"
    NONE_MORE = "none more"  # every one rules a practical gain out
    BOTH = "both ways"
    UNDECIDED = "undecided"  # some undecided, none contrary


def outcome(evidence: list[Evidence]) -> Outcome:
    """The family's answer from its comparisons' decisions."""
    more = sum(e.decision is Decision.MORE for e in evidence)
    not_more = sum(e.decision.rules_out_more for e in evidence)
    if more and not_more:
        return Outcome.BOTH
    if more == len(evidence):
        return Outcome.ALL_MORE
    if not_more == len(evidence):
        return Outcome.NONE_MORE
    return Outcome.UNDECIDED


@dataclass
class RunData:
    """What the claims look at: the run's cell summary, its trials and its task facts."""

    summary: pd.DataFrame
    trials: pd.DataFrame
    facts: pd.DataFrame
    cores: float
    margin: float = 0.10  # differences under this share are no practical difference
    paired: bool = False  # comparisons paired by round (the spec's pair_rounds)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    _by_cell: dict[int, pd.DataFrame] | None = field(default=None, init=False, repr=False)

    def trials_of(self, cell_id: int) -> pd.DataFrame:
        """A cell's trials (the frame is split by cell once: claims ask for each cell many
        times, and adaptive runs ask after every round)."""
        if self._by_cell is None:
            t = self.trials
            self._by_cell = (
                {int(cast(int, key)): rows for key, rows in t.groupby("cell_id", sort=False)}
                if "cell_id" in t
                else {}
            )
        return self._by_cell.get(int(cell_id), self.trials.iloc[0:0])

    def cells(self, task: str | tuple[str, ...], models: tuple[str, ...]) -> pd.DataFrame:
        """The cells of a task (or tasks) under the given models, ordered by position."""
        tasks = (task,) if isinstance(task, str) else task
        found = self.summary[self.summary["task"].isin(tasks) & self.summary["model"].isin(models)]
        return found.sort_values("cell_id")

    def baseline(self, cell: pd.Series) -> pd.Series | None:
        """The sequential cell that shares the cell's task, variant, payload, interpreter
        and host (cells.BASELINE_KEYS)."""
        s = self.summary
        match = s["model"].eq(BASELINE_MODEL)
        for key in BASELINE_KEYS:
            if key in s:
                match &= s[key].eq(cell[key] if key in cell.index else "")
        found = s[match]
        return None if found.empty else found.iloc[0]

    def sample(self, cell_id: int, metric: str) -> Observed:
        """One metric over the ok trials of a cell, with their rounds."""
        t = self.trials_of(cell_id)
        rows = t[t["status"].eq(TrialStatus.OK)]
        values = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype="float64")
        known = ~np.isnan(values)
        rounds = (
            rows["repetition"].to_numpy(dtype="int64")
            if "repetition" in rows
            else np.arange(len(rows), dtype="int64")
        )
        return Observed(values[known], rounds[known])

    def gil_on(self, cell: pd.Series) -> bool:
        """Whether the GIL was on in a cell's trials (on unless every one says off)."""
        states = self.trials_of(cell["cell_id"])["gil_enabled"].dropna()
        return states.empty or bool(states.astype(bool).any())

    def conditions(self, cell: pd.Series) -> str:
        """Interpreter and GIL state of a cell's trials, e.g. 'CPython 3.11.7, GIL on'."""
        t = self.trials_of(cell["cell_id"])
        version = next(iter(t["python_version"].dropna()), "?") if "python_version" in t else "?"
        gil = t["gil_enabled"].dropna() if "gil_enabled" in t else pd.Series(dtype=bool)
        state = "GIL state unknown" if gil.empty else ("GIL on" if gil.all() else "GIL off")
        free = "free-threaded build, " if t.get("free_threaded_build", pd.Series()).any() else ""
        host = variant_text(cell.get("host", ""))
        return f"Python {version}, {free}{state}{f', host {host}' if host else ''}"

    def fact(self, cell_id: int, name: str) -> np.ndarray:
        f = self.facts
        rows = f[f["cell_id"].eq(cell_id) & f["name"].eq(name)]
        return pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype="float64")

    def add(self, claim: str, evidence: Evidence) -> None:
        """Keep a comparison that has data on both sides."""
        if evidence.first.values.size and evidence.second.values.size:
            self.evidence.setdefault(claim, []).append(evidence)


label = row_label


# -- gathering comparisons --------------------------------------------------------------------
def versus_baseline(data: RunData, claim: str, cells: pd.DataFrame) -> None:
    """Speedup evidence: each cell's wall times against its sequential baseline's (the
    ratio is baseline / cell, so above 1 means faster)."""
    for _, cell in cells[cells["workers"] >= 2].iterrows():
        base = data.baseline(cell)
        if base is None:
            continue
        data.add(
            claim,
            Evidence(
                label(cell),
                "speedup",
                data.sample(int(base["cell_id"]), "wall_s"),
                data.sample(int(cell["cell_id"]), "wall_s"),
                data.conditions(cell),
                int(cell["payload_bytes"]),
                (int(base["cell_id"]), int(cell["cell_id"])),
                flag=_implausible(cell),
            ),
        )


def _implausible(cell: pd.Series) -> str:
    """The cell's physically-implausible warning (stats.implausibility), or ''."""
    warnings = str(cell.get("warnings") or "").split("; ")
    return next((part for part in warnings if part.startswith("physically implausible")), "")


def processes_versus_threads(data: RunData, claim: str, task: str, metric: str) -> None:
    """Evidence of processes against threads in the same (variant, workers, payload)."""
    threads = data.cells(task, ("threads",))
    for _, proc in data.cells(task, PROCESS_MODELS).iterrows():
        same = threads[
            threads["workers"].eq(proc["workers"])
            & threads["payload_bytes"].eq(proc["payload_bytes"])
            & threads["variant"].eq(proc["variant"])
            & threads["interpreter"].eq(proc["interpreter"])
        ]
        if same.empty or proc["workers"] < 2:
            continue
        thread = same.iloc[0]
        data.add(
            claim,
            Evidence(
                f"{label(proc)} vs threads",
                metric,
                data.sample(int(proc["cell_id"]), metric),
                data.sample(int(thread["cell_id"]), metric),
                data.conditions(proc),
                int(proc["payload_bytes"]),
                (int(proc["cell_id"]), int(thread["cell_id"])),
            ),
        )
