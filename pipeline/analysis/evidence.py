"""The evidence claims rest on: comparisons of cells (a metric of one cell against another's,
a ratio with an interval, decided against the practical margin: see inference.py), with
the run's facts about each cell (interpreter, GIL state), and how a claim's family of
them is decided. gathering.py finds them in a run's summary and trials."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..status import Verdict
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
