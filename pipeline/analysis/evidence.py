"""The evidence claims rest on: comparisons of cells (a metric of one cell against another's,
a ratio with an interval, decided against the practical margin: see inference.py),
gathered from a run's summary and trials, with the run's facts about each cell
(interpreter, GIL state). Pure functions on frames."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import numpy as np
import pandas as pd

from ..cells import (
    BASELINE_KEYS,
    BASELINE_MODEL,
    SERIES_KEYS,
    model_label,
    row_label,
    variant_text,
)
from ..status import TrialStatus, Verdict
from ..worker.concurrency import PROCESS_MODELS
from .inference import (
    MARGIN,
    NO_RATIO,
    Decision,
    Observed,
    Ratio,
    Rule,
    decide,
    ratio_of,
)

IO_TASKS = ("io_sleep", "io_network", "io_file")


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim of the explainer and what this run says of it."""

    claim: str
    statement: str
    verdict: Verdict
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
    once the claim's whole family of comparisons is known. Comparisons of one ``series``
    (the worker counts of one model on one task: cells.SERIES_KEYS) answer one question
    together: does some count gain? An empty series is a series of its own."""

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
    series: tuple[Any, ...] = ()
    settled: bool = False  # needs no more trials: its series is decided, or it is
    held: float = 0.0  # the level its interval holds over all the run's looks
    looks: int = 1  # the looks the run could take (its interval: repeated over them)
    baseline: str = ""  # what a speedup is against: 'sequential' or 'threads ×1'

    @property
    def answers(self) -> bool:
        """Whether the comparison answers its claim's question (is there a practical gain,
        or more of a resource?) either way."""
        return self.decision is Decision.MORE or self.decision.rules_out_more

    def ratio_text(self) -> str:
        """'1.95× [1.82, 2.09] (geometric means; 90% CI over up to 21 looks, each at
        97.8%; Welch, 8 and 8 trials): more'."""
        e = self.estimate
        if not e.known:
            return f"too few ok trials ({e.n_first} and {e.n_second}): {self.decision}"
        level = level_text(e.level)
        if self.looks > 1:
            level = f"{level_text(self.held)} CI over up to {self.looks} looks, each at {level}"
        else:
            level += " CI"
        return f"{e.text(self.margin)} (geometric means; {level}; {e.how()}): {self.decision}"


def level_text(level: float) -> str:
    """'90%', '97.8%' or '99.56%': as many decimals as the level needs, up to two."""
    for decimals in (0, 1, 2):
        text = f"{level:.{decimals}%}"
        if abs(float(text.rstrip("%")) / 100 - level) < 5e-5:
            return text
    return f"{level:.2%}"


class Outcome(StrEnum):
    """How a family of comparisons answers its claim's question (a practical gain, or more
    of a resource?), series by series."""

    ALL_MORE = "all more"  # every series gains (at some worker count)
    NONE_MORE = "none more"  # every series rules a practical gain out at every count
    BOTH = "both ways"
    UNDECIDED = "undecided"  # some undecided, none contrary


def series_of(evidence: list[Evidence]) -> list[list[Evidence]]:
    """The family's comparisons by series, in order of first appearance."""
    groups: dict[Any, list[Evidence]] = {}
    for index, e in enumerate(evidence):
        groups.setdefault(e.series or ("own", index), []).append(e)
    return list(groups.values())


def series_outcome(series: list[Evidence]) -> Outcome:
    """A series gains when some count gains; it rules a gain out when every count does."""
    if any(e.decision is Decision.MORE for e in series):
        return Outcome.ALL_MORE
    if all(e.decision.rules_out_more for e in series):
        return Outcome.NONE_MORE
    return Outcome.UNDECIDED


def outcome(evidence: list[Evidence]) -> Outcome:
    """The family's answer from its series' answers."""
    found = [series_outcome(series) for series in series_of(evidence)]
    more, none = found.count(Outcome.ALL_MORE), found.count(Outcome.NONE_MORE)
    if more and none:
        return Outcome.BOTH
    if more == len(found):
        return Outcome.ALL_MORE
    if none == len(found):
        return Outcome.NONE_MORE
    return Outcome.UNDECIDED


def decide_family(evidence: list[Evidence], rule: Rule) -> None:
    """Estimate and decide every comparison of one claim by ``rule`` (its margin, α and
    the run's looks).

    Each series answers one question: does some worker count gain? "No" needs every count
    to rule a gain out (an intersection-union test: each interval at the series' level,
    no correction); "yes" may rest on any one count, so the counts are decided again at
    Bonferroni's level over the series' counts (a union-intersection test). The claim is
    supported or contradicted when every series answers one way, again an
    intersection-union test (Berger 1982) with no correction for the number of series.
    When they answer both ways or some is open, the series are decided again with α split
    over them (Bonferroni), which bounds the chance that any statement of a nuanced
    verdict is false."""
    groups = series_of(evidence)
    splits = (1, len(groups))
    for e in evidence:
        e.margin = rule.margin
    for split in dict.fromkeys(splits):
        for series in groups:
            _decide_series(series, rule, split)
        if outcome(evidence) in (Outcome.ALL_MORE, Outcome.NONE_MORE):
            return


def _decide_series(series: list[Evidence], rule: Rule, split: int) -> None:
    """Decide one series with α split ``split`` ways: every count at that level, which
    settles the series when every one rules a gain out; failing that, the other counts
    again with α split further over the series' counts, where any one gain settles it.
    Marks what needs no more trials: all of a settled series, else the counts that rule a
    gain out (shown with the interval that ruled it out)."""
    _estimate(series, rule, split)
    ruled_out = [e.decision.rules_out_more for e in series]
    if all(ruled_out):
        settled = ruled_out
    else:
        # the counts that rule a gain out keep that interval (a wider one cannot gain)
        others = [e for e, ruled in zip(series, ruled_out, strict=True) if not ruled]
        if len(series) > 1:
            _estimate(others, rule, split * len(series))
        gains = any(e.decision is Decision.MORE for e in series)
        settled = [gains or ruled for ruled in ruled_out]
    for e, done in zip(series, settled, strict=True):
        e.settled = done


def _estimate(series: list[Evidence], rule: Rule, split: int) -> None:
    level = rule.level(split)
    for e in series:
        e.estimate = ratio_of(e.first, e.second, level=level, paired=rule.paired)
        e.decision = decide(e.estimate, rule.margin)
        e.held = 1.0 - 2.0 * rule.alpha / split
        e.looks = rule.schedule.looks


def unsettled_cells(families: Iterable[list[Evidence]]) -> set[int]:
    """The ids of the cells of every comparison that still needs trials (decided by
    :func:`decide_family`): where the adaptive rounds go next."""
    return {
        cell_id for family in families for e in family if not e.settled for cell_id in e.cell_ids
    }


@dataclass
class RunData:
    """What the claims look at: the run's cell summary, its trials and its task facts."""

    summary: pd.DataFrame
    trials: pd.DataFrame
    facts: pd.DataFrame
    rule: Rule = field(default_factory=Rule)  # margin, α, the run's looks, pairing
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    # what the claims ask again and again, worked out once (adaptive runs ask after every
    # round, so this is most of the orchestrator's own time): the data is not changed
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, init=False, repr=False)

    def _once(self, key: tuple[Any, ...], work: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = work()
        return self._memo[key]

    def _split(self, *, ok_only: bool) -> dict[int, pd.DataFrame]:
        """Every cell's trials (or ok trials), split by cell once."""

        def split() -> dict[int, pd.DataFrame]:
            t = self.trials
            if "cell_id" not in t:
                return {}
            if ok_only:
                t = t[t["status"].eq(TrialStatus.OK)]
            return {int(cast(int, key)): rows for key, rows in t.groupby("cell_id", sort=False)}

        return cast(dict[int, pd.DataFrame], self._once(("split", ok_only), split))

    def trials_of(self, cell_id: int) -> pd.DataFrame:
        """A cell's trials."""
        return self._split(ok_only=False).get(int(cell_id), self.trials.iloc[0:0])

    def _ok_trials(self, cell_id: int) -> pd.DataFrame:
        """A cell's ok trials."""
        return self._split(ok_only=True).get(int(cell_id), self.trials.iloc[0:0])

    def cells(self, task: str | tuple[str, ...], models: tuple[str, ...]) -> pd.DataFrame:
        """The cells of a task (or tasks) under the given models, ordered by position."""
        tasks = (task,) if isinstance(task, str) else task

        def find() -> pd.DataFrame:
            s = self.summary
            return s[s["task"].isin(tasks) & s["model"].isin(models)].sort_values("cell_id")

        return cast(pd.DataFrame, self._once(("cells", tasks, models), find))

    def baseline(self, cell: pd.Series, *, same_model: bool = False) -> pd.Series | None:
        """The sequential cell that shares the cell's task, variant, payload, interpreter
        and host (cells.BASELINE_KEYS); with ``same_model``, the one-worker cell of the
        cell's own model there instead (None when the run has none)."""
        keys = [key for key in BASELINE_KEYS if key in self.summary]

        def index() -> dict[tuple[Any, ...], pd.Series]:
            found: dict[tuple[Any, ...], pd.Series] = {}
            single = self.summary[self.summary["workers"].eq(1)]  # sequential cells included
            for _, row in single.iterrows():
                found.setdefault((row["model"], *(row[key] for key in keys)), row)
            return found

        baselines: dict[tuple[Any, ...], pd.Series] = self._once(("baselines",), index)
        model = cell["model"] if same_model else BASELINE_MODEL
        return baselines.get((model, *(cell[k] if k in cell.index else "" for k in keys)))

    def sample(self, cell_id: int, metric: str) -> Observed:
        """One metric over the ok trials of a cell, with their rounds."""

        def observe() -> Observed:
            rows = self._ok_trials(cell_id)
            values = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype="float64")
            known = ~np.isnan(values)
            rounds = (
                rows["repetition"].to_numpy(dtype="int64")
                if "repetition" in rows
                else np.arange(len(rows), dtype="int64")
            )
            return Observed(values[known], rounds[known])

        return cast(Observed, self._once(("sample", int(cell_id), metric), observe))

    def gil_on(self, cell: pd.Series) -> bool:
        """Whether the GIL was on in a cell's trials (on unless every one says off)."""
        states = self.trials_of(cell["cell_id"])["gil_enabled"].dropna()
        return states.empty or bool(states.astype(bool).any())

    def conditions(self, cell: pd.Series) -> str:
        """Interpreter and GIL state of a cell's trials, e.g. 'CPython 3.11.7, GIL on'."""
        return cast(
            str, self._once(("conditions", int(cell["cell_id"])), lambda: self._conditions(cell))
        )

    def _conditions(self, cell: pd.Series) -> str:
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
def versus_baseline(
    data: RunData, claim: str, cells: pd.DataFrame, *, one_worker: bool = False
) -> None:
    """Speedup evidence: each cell's wall times against its baseline's (the ratio is
    baseline / cell, so above 1 means faster), the worker counts of one model on one task
    (and variant, payload, interpreter, host) making a series. The baseline is the
    sequential cell, or with ``one_worker`` the same model with one worker where the run
    has that cell (the same code on the same kind of thread, so that only the parallelism
    differs: docs/statistics.md), else the sequential cell."""
    for _, cell in cells[cells["workers"] >= 2].iterrows():
        base = data.baseline(cell, same_model=True) if one_worker else None
        if base is None or not data.sample(int(base["cell_id"]), "wall_s").values.size:
            base = data.baseline(cell)  # no one-worker cell with ok trials: sequential
        if base is None:
            continue
        sequential = base["model"] == BASELINE_MODEL
        baseline = BASELINE_MODEL if sequential else model_label(base["model"], 1)
        data.add(
            claim,
            Evidence(
                label(cell) + ("" if sequential else f" vs {baseline}"),
                "speedup",
                data.sample(int(base["cell_id"]), "wall_s"),
                data.sample(int(cell["cell_id"]), "wall_s"),
                data.conditions(cell),
                int(cell["payload_bytes"]),
                (int(base["cell_id"]), int(cell["cell_id"])),
                flag=_implausible(cell) if sequential else "",  # the cell's, vs sequential
                series=tuple(cell.get(key, "") for key in SERIES_KEYS),
                baseline=baseline,
            ),
        )


def _implausible(cell: pd.Series) -> str:
    """The cell's physically-implausible warning (stats.implausibility), or ''."""
    warnings = str(cell.get("warnings") or "").split("; ")
    return next((part for part in warnings if part.startswith("physically implausible")), "")


def processes_versus_threads(data: RunData, claim: str, task: str, metric: str) -> None:
    """Evidence of processes against threads in the same (variant, workers, payload)."""
    # the same run conditions: a process cell of one host against that host's threads
    keys = [
        k
        for k in ("workers", "payload_bytes", "variant", "interpreter", "host")
        if k in data.summary
    ]
    threads: dict[tuple[Any, ...], pd.Series] = {}
    for _, cell in data.cells(task, ("threads",)).iterrows():
        threads.setdefault(tuple(cell[key] for key in keys), cell)
    for _, proc in data.cells(task, PROCESS_MODELS).iterrows():
        thread = threads.get(tuple(proc[key] for key in keys))
        if thread is None or proc["workers"] < 2:
            continue
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
