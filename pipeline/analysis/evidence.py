"""The evidence claims rest on: comparisons of cells (a metric of one cell against another's,
ratio of medians with an interval and a test), gathered from a run's summary and trials,
with the run's facts about each cell (interpreter, GIL state). Pure functions on frames."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cells import row_label
from ..status import TrialStatus
from ..worker.concurrency import PROCESS_MODELS
from .stats import Comparison, compare, holm

ALPHA = 0.05  # family-wise error rate over all comparisons of a run (Holm)


IO_TASKS = ("io_sleep", "io_network", "io_file")


SUPPORTED, CONTRADICTED, NUANCED, INCONCLUSIVE, NOT_MEASURED = (
    "supported",
    "contradicted",
    "nuanced",
    "inconclusive",  # measured, but no comparison is significant after Holm's correction
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


@dataclass
class Evidence:
    """One comparison a verdict rests on: ``second`` against ``first`` for one metric."""

    label: str
    metric: str
    comparison: Comparison
    conditions: str
    payload_bytes: int = 0
    p_adjusted: float = float("nan")

    @property
    def significant(self) -> bool:
        return not math.isnan(self.p_adjusted) and self.p_adjusted < ALPHA

    def ratio_text(self, unit: str = "×") -> str:
        c = self.comparison
        interval = (
            f" [{c.ratio_ci_low:.2f}, {c.ratio_ci_high:.2f}]"
            if not math.isnan(c.ratio_ci_low)
            else ""
        )
        p = "" if math.isnan(self.p_adjusted) else f", Holm p={self.p_adjusted:.3g}"
        return f"{c.ratio:.2f}{unit}{interval}{p}"


@dataclass
class RunData:
    """What the claims look at: the run's cell summary, its trials and its task facts."""

    summary: pd.DataFrame
    trials: pd.DataFrame
    facts: pd.DataFrame
    cores: int
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def cells(self, task: str | tuple[str, ...], models: tuple[str, ...]) -> pd.DataFrame:
        """The cells of a task (or tasks) under the given models, ordered by position."""
        tasks = (task,) if isinstance(task, str) else task
        found = self.summary[self.summary["task"].isin(tasks) & self.summary["model"].isin(models)]
        return found.sort_values("cell_id")

    def baseline(self, cell: pd.Series) -> pd.Series | None:
        """The sequential cell of the same task, variant, payload and interpreter."""
        s = self.summary
        match = s[
            s["model"].eq("sequential")
            & s["task"].eq(cell["task"])
            & s["variant"].eq(cell["variant"])
            & s["payload_bytes"].eq(cell["payload_bytes"])
            & s["interpreter"].eq(cell["interpreter"])
        ]
        return None if match.empty else match.iloc[0]

    def sample(self, cell_id: int, metric: str) -> np.ndarray:
        """One metric over the ok trials of a cell."""
        t = self.trials
        rows = t[t["cell_id"].eq(cell_id) & t["status"].eq(TrialStatus.OK)]
        return pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype="float64")

    def gil_on(self, cell: pd.Series) -> bool:
        """Whether the GIL was on in a cell's trials (on unless every one says off)."""
        t = self.trials
        states = t.loc[t["cell_id"].eq(cell["cell_id"]), "gil_enabled"].dropna()
        return states.empty or bool(states.astype(bool).any())

    def conditions(self, cell: pd.Series) -> str:
        """Interpreter and GIL state of a cell's trials, e.g. 'CPython 3.11.7, GIL on'."""
        t = self.trials[self.trials["cell_id"].eq(cell["cell_id"])]
        version = next(iter(t["python_version"].dropna()), "?") if "python_version" in t else "?"
        gil = t["gil_enabled"].dropna() if "gil_enabled" in t else pd.Series(dtype=bool)
        state = "GIL state unknown" if gil.empty else ("GIL on" if gil.all() else "GIL off")
        free = "free-threaded build, " if t.get("free_threaded_build", pd.Series()).any() else ""
        return f"Python {version}, {free}{state}"

    def fact(self, cell_id: int, name: str) -> np.ndarray:
        f = self.facts
        rows = f[f["cell_id"].eq(cell_id) & f["name"].eq(name)]
        return pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype="float64")

    def add(self, claim: str, evidence: Evidence) -> None:
        """Keep a comparison that has data on both sides."""
        if evidence.comparison.n_first and evidence.comparison.n_second:
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
        comparison = compare(
            data.sample(int(cell["cell_id"]), "wall_s"), data.sample(int(base["cell_id"]), "wall_s")
        )
        data.add(
            claim,
            Evidence(
                label(cell),
                "speedup",
                comparison,
                data.conditions(cell),
                int(cell["payload_bytes"]),
            ),
        )


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
        comparison = compare(
            data.sample(int(thread["cell_id"]), metric), data.sample(int(proc["cell_id"]), metric)
        )
        text = f"{label(proc)} vs threads"
        conditions = data.conditions(proc)
        data.add(claim, Evidence(text, metric, comparison, conditions, int(proc["payload_bytes"])))


def adjust(data: RunData) -> None:
    """Holm-correct every comparison of the run together."""
    everything = [e for group in data.evidence.values() for e in group]
    adjusted = holm([e.comparison.p_value for e in everything])
    for evidence, p in zip(everything, adjusted, strict=True):
        evidence.p_adjusted = float(p)
