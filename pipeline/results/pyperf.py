"""pyperf's JSON files, both ways, so that a run sits beside a pyperf suite.

* **Export**: each cell of a run becomes a pyperf benchmark named by its keys (``cpu_pure
  threads x2 1KiB python3``), each ok measured trial one pyperf run of one value, its
  wall time in seconds (loops 1); the environment goes into the suite's metadata. So
  ``python -m pyperf stats`` and ``python -m pyperf compare_to A.json B.json`` read our
  runs (compare_to pairs the benchmarks by name: the same cells in two runs).
* **Import**: each benchmark of a pyperf suite becomes a sequential cell of a new run
  (task: the benchmark's name), each value a measured trial and each warm-up a warm-up
  trial, in the order pyperf wrote them; which pyperf run (process) a value came from is
  kept, so an export of the imported run gives pyperf's own runs back.

pyperf itself is not needed here: its format (version 1.0, a JSON document, gzip when
the name ends in .gz) is read and written directly; the tests check it with pyperf.
"""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InterchangeError
from ..status import RunStatus, TrialStatus
from ..storage.schema import CellRow, EnvironmentRow, Run, Trial
from ..storage.store import Store
from ..units import format_bytes

FORMAT_VERSION = "1.0"
SECONDS = "second"
# environment column -> pyperf's suite metadata key (the ones pyperf itself writes)
ENVIRONMENT_KEYS = {
    "hostname": "hostname",
    "cpu_model": "cpu_model_name",
    "cpu_logical": "cpu_count",
    "os": "platform",
    "python_version": "python_version",
    "python_implementation": "python_implementation",
    "python_executable": "python_executable",
    "boot_time": "boot_time",
}


def benchmark_name(cell: pd.Series | dict[str, Any], interpreter: str | None = None) -> str:
    """A cell's pyperf name: its keys, the same for the same cell in any run
    (``interpreter``: how to call the cell's interpreter, by default as the spec named it)."""
    parts = [str(cell["task"])]
    if cell.get("variant"):
        parts.append(f"[{cell['variant']}]")
    parts += [str(cell["model"]), f"x{int(cell['workers'])}"]
    parts.append(format_bytes(int(cell["payload_bytes"])).replace(" ", ""))
    parts.append(interpreter or str(cell["interpreter"]))
    if cell.get("host"):
        parts.append(f"@{cell['host']}")
    return " ".join(parts)


def suite(store: Store, run_id: int) -> dict[str, Any]:
    """The run as a pyperf benchmark suite (a JSON-ready dict)."""
    trials = store.trials_frame(run_id)
    ok = trials[trials["status"].eq(TrialStatus.OK) & trials["wall_s"].notna()]
    details = store.trial_details(run_id) if not ok.empty else {}
    interpreters = _short_names(list(dict.fromkeys(ok["interpreter"].astype(str))))
    benchmarks = [
        _benchmark(rows, details, interpreters)
        for _, rows in ok.sort_values(["cell_id", "sequence"]).groupby("cell_id", sort=False)
    ]
    run = store.resolve_run(run_id)
    if not benchmarks:  # pyperf refuses a suite without benchmarks
        raise InterchangeError(f"run {run_id} has no ok measured trial to export to pyperf")
    metadata = _environment_metadata(store.environment(run_id))
    metadata.update(pipeline_run=int(run_id), pipeline_run_name=run.name or "run")
    if run.pipeline_version:
        metadata["pipeline_version"] = run.pipeline_version
    return {"version": FORMAT_VERSION, "metadata": _clean(metadata), "benchmarks": benchmarks}


def _short_names(interpreters: list[str]) -> dict[str, str]:
    """Each interpreter by the last part of its path, where that tells them apart (so the
    same cell has the same name on machines with the venv elsewhere)."""
    short = {name: Path(name).name or name for name in interpreters}
    return short if len(set(short.values())) == len(short) else {n: n for n in interpreters}


def _benchmark(
    rows: pd.DataFrame, details: dict[int, dict[str, Any]], interpreters: dict[str, str]
) -> dict[str, Any]:
    first = rows.iloc[0]
    if "pyperf_run" in details.get(int(first["trial_id"]), {}):
        name = str(first["task"])  # imported from pyperf: its own name, for compare_to
    else:
        name = benchmark_name(first, interpreters.get(str(first["interpreter"])))
    metadata: dict[str, Any] = {"name": name, "unit": SECONDS}
    for column in ("task", "model", "variant", "interpreter", "host", "python_version"):
        metadata[column] = first.get(column)
    metadata.update(workers=int(first["workers"]), payload_bytes=int(first["payload_bytes"]))
    runs: dict[Any, dict[str, Any]] = {}  # a pyperf run per trial, or as imported
    for trial in rows.to_dict("records"):
        detail = details.get(int(trial["trial_id"]), {})
        key: Any = ("pyperf", detail["pyperf_run"]) if "pyperf_run" in detail else trial["trial_id"]
        run = runs.setdefault(key, {"metadata": _run_metadata(trial, detail), "values": []})
        run["values"].append(float(trial["wall_s"]))
    return {"metadata": _clean(metadata), "runs": list(runs.values())}


def _run_metadata(trial: dict[Any, Any], detail: dict[str, Any]) -> dict[str, Any]:
    """A pyperf run's metadata: as imported, or the trial's date and duration (loops 1)."""
    if isinstance(detail.get("pyperf_metadata"), dict):
        return _clean(detail["pyperf_metadata"])
    metadata: dict[str, Any] = {"loops": 1}
    started = pd.Timestamp(trial["started_at"]) if trial.get("started_at") else None
    if started is not None and not pd.isna(started):
        metadata["date"] = started.isoformat(sep=" ")
    duration = trial.get("process_s")
    if isinstance(duration, float) and duration > 0:
        metadata["duration"] = duration
    return metadata


def _environment_metadata(environment: EnvironmentRow | None) -> dict[str, Any]:
    if environment is None:
        return {}
    found = {key: getattr(environment, column) for column, key in ENVIRONMENT_KEYS.items()}
    if isinstance(found["boot_time"], datetime):
        found["boot_time"] = found["boot_time"].isoformat(sep=" ")
    return found


def _clean(metadata: dict[str, Any]) -> dict[str, Any]:
    """What pyperf accepts: str, int or float values, no empty or multi-line strings."""
    kept: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str):
            value = " ".join(value.split())
            if value:
                kept[key] = value
        elif isinstance(value, int | float) and not (
            isinstance(value, float) and math.isnan(value)
        ):
            kept[key] = value
    return kept


def write_suite(data: dict[str, Any], path: Path) -> None:
    """Write a suite as pyperf does (gzip when the name ends in .gz)."""
    text = json.dumps(data, sort_keys=True, indent=1) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")


# -- import -----------------------------------------------------------------------------------
def read_suite(path: Path) -> dict[str, Any]:
    """A pyperf JSON file, checked: an InterchangeError (exit 2) says what is wrong, where."""
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
        data = json.loads(text)
    except (OSError, ValueError, EOFError) as error:
        raise InterchangeError(f"{path}: cannot read a pyperf JSON file: {error}") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        found = data.get("version") if isinstance(data, dict) else type(data).__name__
        raise InterchangeError(
            f"{path}: not a pyperf file of format {FORMAT_VERSION} (version {found!r})"
        )
    benchmarks = data.get("benchmarks")
    if not isinstance(benchmarks, list) or not benchmarks:
        raise InterchangeError(f"{path}: no benchmarks in the file")
    for index, bench in enumerate(benchmarks):
        _check_benchmark(path, index, bench, data.get("metadata", {}))
    return data


def _check_benchmark(path: Path, index: int, bench: Any, suite_metadata: Any) -> None:
    where = f"{path}: benchmarks[{index}]"
    if not isinstance(suite_metadata, dict):
        raise InterchangeError(f"{path}: the suite's metadata is not a mapping")
    if not isinstance(bench, dict) or not isinstance(bench.get("metadata", {}), dict):
        raise InterchangeError(f"{where}: not a benchmark (a mapping with metadata and runs)")
    metadata = {**suite_metadata, **bench.get("metadata", {})}
    name = metadata.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InterchangeError(f"{where}: the benchmark has no name")
    if metadata.get("unit", SECONDS) != SECONDS:
        raise InterchangeError(
            f"{where} ({name}): its unit is {metadata['unit']!r}; only times (seconds) import"
        )
    runs = bench.get("runs")
    if not isinstance(runs, list):
        raise InterchangeError(f"{where} ({name}): 'runs' is not a list")
    for number, run in enumerate(runs):
        problem = _run_problem(run)
        if problem:
            raise InterchangeError(f"{where} ({name}): runs[{number}] {problem}")


def _run_problem(run: Any) -> str | None:
    """What is wrong with a pyperf run, or None."""
    if not isinstance(run, dict) or not isinstance(run.get("metadata", {}), dict):
        return "is not a run (a mapping with values, warmups and metadata)"
    values, warmups = run.get("values", []), run.get("warmups", [])
    if not isinstance(values, list) or not isinstance(warmups, list):
        return "has values or warmups that are not lists"
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in warmups):
        return "has a warm-up that is not a (loops, value) pair"
    if not all(_is_time(value) for value in [*values, *(pair[1] for pair in warmups)]):
        return "has a value that is not a time"
    return None


def _is_time(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def import_suite(store: Store, data: dict[str, Any], source: str, name: str | None) -> int:
    """Store a checked pyperf suite as a finished run of sequential cells; its id."""
    suite_metadata = data.get("metadata") or {}
    cells, rows = [], []
    for position, bench in enumerate(data["benchmarks"]):
        metadata = {**suite_metadata, **(bench.get("metadata") or {})}
        cells.append(
            CellRow(
                run_id=0,
                position=position,
                task=str(metadata["name"]).strip(),
                model="sequential",
                workers=1,
                payload_bytes=0,
                interpreter=str(metadata.get("python_executable") or "pyperf"),
                params_json=json.dumps(bench.get("metadata") or {}, sort_keys=True),
            )
        )
        rows.append(list(_trials(position, bench.get("runs", []), metadata)))
    counts = [sum(not t.warmup for t in trials) for trials in rows]
    run = store.create_run(
        Run(
            name=name or f"pyperf {Path(source).name}",
            description=f"imported from pyperf file {source}",
            status=RunStatus.RUNNING,
            spec_path=source,
            repetitions=min(counts, default=0),
            items=1,
            trial_order="as in the pyperf file",
        ),
        _environment(suite_metadata),
        cells,
    )
    assert run.id is not None
    cell_ids = store.cell_ids(run.id)
    batch = []
    for sequence, trial in enumerate(trial for trials in rows for trial in trials):
        trial.run_id, trial.cell_id, trial.sequence = run.id, cell_ids[trial.cell_id], sequence
        batch.append((trial, None))
    store.add_trials(batch)
    store.finish_run(run.id, RunStatus.FINISHED)
    return run.id


def _trials(position: int, runs: list[dict[str, Any]], metadata: dict[str, Any]) -> Any:
    """A benchmark's values as trials (cell_id: the cell's position until it has an id)."""
    repetition = warm = 0
    for number, run in enumerate(runs):
        run_metadata = {**metadata, **(run.get("metadata") or {})}
        started = _date(run_metadata.get("date"))
        detail = {"pyperf_run": number, "pyperf_metadata": run.get("metadata") or {}}
        common: dict[str, Any] = {
            "run_id": 0,
            "cell_id": position,
            "sequence": 0,
            "status": TrialStatus.OK,
            "items_done": 1,
            "python_version": run_metadata.get("python_version"),
            "python_implementation": run_metadata.get("python_implementation"),
            "detail_json": json.dumps(detail),
            **({"started_at": started} if started else {}),
        }
        for pair in run.get("warmups", ()):
            yield Trial(repetition=warm, warmup=True, wall_s=float(pair[-1]), **common)
            warm += 1
        for value in run.get("values", ()):
            yield Trial(repetition=repetition, wall_s=float(value), **common)
            repetition += 1


def _environment(metadata: dict[str, Any]) -> EnvironmentRow:
    found: dict[str, Any] = {}
    for column, key in ENVIRONMENT_KEYS.items():
        value = metadata.get(key)
        if column == "boot_time":
            value = _date(value)
        elif column == "cpu_logical":
            value = int(value) if isinstance(value, int) else None
        elif value is not None:
            value = str(value)
        if value is not None:
            found[column] = value
    others = {k: v for k, v in metadata.items() if k not in ENVIRONMENT_KEYS.values()}
    return EnvironmentRow(run_id=0, details_json=json.dumps(others, sort_keys=True), **found)


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
