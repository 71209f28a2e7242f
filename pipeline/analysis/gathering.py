"""What the claims look at, gathered once: a run's cells, their trials and task facts
(``RunData``, with the per-cell samples, baselines and conditions the comparisons ask for
again and again), and the comparisons gathered from them (a speedup against a baseline,
processes against threads). Pure functions on frames."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..cells import BASELINE_KEYS, BASELINE_MODEL, SERIES_KEYS, model_label, row_label, variant_text
from ..status import TrialStatus
from ..worker.concurrency import PROCESS_MODELS
from .evidence import Evidence
from .inference import Observed, Rule

_NO_ROWS = np.array([], dtype=np.intp)
if TYPE_CHECKING:  # a cell: a row of the summary, as a dict or a pandas Series
    Row = Mapping[str, Any] | pd.Series[Any]


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts (what the claims read of cells, without a Series a row)."""
    columns = list(frame.columns)
    return [dict(zip(columns, row, strict=True)) for row in frame.itertuples(False, None)]


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

    def _rows(self, *, ok_only: bool) -> dict[int, npt.NDArray[np.intp]]:
        """Every cell's trials (or ok trials) as row positions, found in one pass."""

        def split() -> dict[int, npt.NDArray[np.intp]]:
            t = self.trials
            if "cell_id" not in t:
                return {}
            keep = t["status"].eq(TrialStatus.OK).to_numpy() if ok_only else np.ones(len(t), bool)
            rows = np.flatnonzero(keep)
            if not rows.size:
                return {}
            ids = t["cell_id"].to_numpy()[rows].astype("int64")
            order = np.argsort(ids, kind="stable")  # each cell's trials in the frame's order
            found, starts = np.unique(ids[order], return_index=True)
            return {
                int(cell_id): part
                for cell_id, part in zip(found, np.split(rows[order], starts[1:]), strict=True)
            }

        return cast(dict[int, npt.NDArray[np.intp]], self._once(("rows", ok_only), split))

    def _column(self, name: str) -> npt.NDArray[np.float64]:
        """A trials column of numbers as an array, once (NaN where unknown)."""

        def read() -> npt.NDArray[np.float64]:
            return pd.to_numeric(self.trials[name], errors="coerce").to_numpy(dtype="float64")

        return cast(npt.NDArray[np.float64], self._once(("column", name), read))

    def _known(self, cell_id: Any, name: str) -> list[Any]:
        """A column's known values over a cell's trials, as stored (none if the trials
        lack it)."""
        if name not in self.trials:
            return []
        values = self._once(("values", name), lambda: self.trials[name].to_numpy(dtype=object))
        rows = self._rows(ok_only=False).get(int(cell_id), _NO_ROWS)
        return [value for value in values[rows] if not pd.isna(value)]

    def cells(self, task: str | tuple[str, ...], models: tuple[str, ...]) -> pd.DataFrame:
        """The cells of a task (or tasks) under the given models, ordered by position."""
        chosen = self._chosen(task, models)
        return cast(
            pd.DataFrame, self._once(("cells", chosen), lambda: self.summary.iloc[list(chosen)])
        )

    def cell_rows(self, task: str | tuple[str, ...], models: tuple[str, ...]) -> list[Row]:
        """:meth:`cells` as dicts (what the comparisons read, each cell's made once)."""
        rows = self._summary_rows()
        return [rows[position] for position in self._chosen(task, models)]

    def _chosen(self, task: str | tuple[str, ...], models: tuple[str, ...]) -> tuple[int, ...]:
        """The summary's positions of a task's (or tasks') cells under ``models``, ordered
        by cell id."""
        tasks = (task,) if isinstance(task, str) else task

        def find() -> tuple[int, ...]:
            rows = self._summary_rows()
            chosen = [i for i, r in enumerate(rows) if r["task"] in tasks and r["model"] in models]
            return tuple(sorted(chosen, key=lambda i: rows[i]["cell_id"]))

        return cast(tuple[int, ...], self._once(("chosen", tasks, models), find))

    def _summary_rows(self) -> list[dict[str, Any]]:
        return cast(
            list[dict[str, Any]], self._once(("summary rows",), lambda: rows_of(self.summary))
        )

    def baseline(self, cell: Row, *, same_model: bool = False) -> Row | None:
        """The sequential cell that shares the cell's task, variant, payload, interpreter
        and host (cells.BASELINE_KEYS); with ``same_model``, the one-worker cell of the
        cell's own model there instead (None when the run has none)."""
        keys = [key for key in BASELINE_KEYS if key in self.summary]

        def index() -> dict[tuple[Any, ...], Row]:
            found: dict[tuple[Any, ...], Row] = {}
            for row in self._summary_rows():
                if row["workers"] != 1:  # one worker: sequential cells included
                    continue
                found.setdefault((row["model"], *(row[key] for key in keys)), row)
            return found

        baselines: dict[tuple[Any, ...], Row] = self._once(("baselines",), index)
        model = cell["model"] if same_model else BASELINE_MODEL
        return baselines.get((model, *(cell.get(k, "") for k in keys)))

    def sample(self, cell_id: int, metric: str) -> Observed:
        """One metric over the ok trials of a cell, with their rounds."""

        def observe() -> Observed:
            if metric not in self.trials:
                raise KeyError(metric)
            rows = self._rows(ok_only=True).get(int(cell_id), _NO_ROWS)
            values = self._column(metric)[rows]
            known = ~np.isnan(values)
            rounds = (
                self._column("repetition")[rows].astype("int64")
                if "repetition" in self.trials
                else np.arange(len(rows), dtype="int64")
            )
            return Observed(values[known], rounds[known])

        return cast(Observed, self._once(("sample", int(cell_id), metric), observe))

    def gil_on(self, cell: Row) -> bool:
        """Whether the GIL was on in a cell's trials (on unless every one says off)."""
        states = self._known(cell["cell_id"], "gil_enabled")
        return not states or any(bool(state) for state in states)

    def conditions(self, cell: Row) -> str:
        """Interpreter and GIL state of a cell's trials, e.g. 'CPython 3.11.7, GIL on'."""
        return cast(
            str, self._once(("conditions", int(cell["cell_id"])), lambda: self._conditions(cell))
        )

    def _conditions(self, cell: Row) -> str:
        cell_id = cell["cell_id"]
        version = next(iter(self._known(cell_id, "python_version")), "?")
        gil = self._known(cell_id, "gil_enabled")
        state = "GIL state unknown" if not gil else ("GIL on" if all(gil) else "GIL off")
        built = self._known(cell_id, "free_threaded_build")
        free = "free-threaded build, " if any(bool(b) for b in built) else ""
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
    data: RunData, claim: str, cells: Iterable[Row], *, one_worker: bool = False
) -> None:
    """Speedup evidence: each cell's wall times against its baseline's (the ratio is
    baseline / cell, so above 1 means faster), the worker counts of one model on one task
    (and variant, payload, interpreter, host) making a series. The baseline is the
    sequential cell, or with ``one_worker`` the same model with one worker where the run
    has that cell (the same code on the same kind of thread, so that only the parallelism
    differs: docs/statistics.md), else the sequential cell."""
    for cell in (row for row in cells if row["workers"] >= 2):
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


def _implausible(cell: Row) -> str:
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
    threads: dict[tuple[Any, ...], Row] = {}
    for cell in data.cell_rows(task, ("threads",)):
        threads.setdefault(tuple(cell[key] for key in keys), cell)
    for proc in data.cell_rows(task, PROCESS_MODELS):
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
