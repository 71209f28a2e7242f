"""The self-contained HTML page of a run (its data files, digest and the index of runs are
written by data_files.py, markdown.py and index_page.py).

Templates autoescape every value; only chart SVG produced by ``pipeline.charts`` is
inserted as markup. Pages reference nothing on the network.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.evidence import level_text
from ..analysis.headlines import task_headlines
from ..analysis.inference import run_rule
from ..analysis.scaling import scaling_fits
from ..analysis.stats import numeric_summary
from ..cells import model_label, variant_text
from ..cells import row_label as label
from ..metrics import (
    METRICS,
    Unit,
    format_interval,
    format_value,
    format_with_interval,
    is_missing,
)
from ..results.environment import environment_groups
from ..status import TrialStatus
from ..units import MISSING, format_bytes
from .files import cell_text, relative_href, templates, write

CONFIDENCE_PERCENT = 95


def write_run_report(
    run: dict[str, Any],
    environment: dict[str, Any],
    summary: pd.DataFrame,
    charts: Mapping[str, str | list[str]],
    out_dir: Path,
    *,
    index_href: str | None = "../index.html",
    facts: pd.DataFrame | None = None,
    warnings: list[str] | None = None,
    notes: list[str] | None = None,
    verdicts: list[Any] | None = None,
    overview: list[str] | None = None,
    interpreters: pd.DataFrame | None = None,
    trials: pd.DataFrame | None = None,
    hosts: pd.DataFrame | None = None,
    host_verdicts: list[dict[str, Any]] | None = None,
) -> Path:
    """Write out_dir/index.html for one run and return its path. ``facts`` is the output
    of ``stats.summarise_facts``; ``warnings`` are notes about the machine (busy, tuning),
    each with its fix; ``notes`` milder ones (CPU isolation, ASLR), in smaller print;
    ``interpreters`` the run's probed interpreters (``run_interpreter`` rows); ``trials``
    its measured trials (for the cells that were skipped, and why); ``hosts`` the cluster
    hosts (results.hosts) and ``host_verdicts`` each host's verdicts (hosts: each)."""
    summary = numeric_summary(summary)
    facts = facts if facts is not None else pd.DataFrame(columns=["cell_id", "name"])
    tasks = list(dict.fromkeys(summary["task"])) if not summary.empty else []
    rule = run_rule(run)
    headlines = task_headlines(summary, trials, rule)
    sections = [
        {
            "task": task,
            "headline": headlines[task],
            "charts": _as_list(charts.get(task)),
            "rows": _cell_rows(summary[summary["task"] == task]),
            "facts": _fact_table(summary[summary["task"] == task], facts),
            "scaling": _scaling_rows(summary[summary["task"] == task]),
        }
        for task in tasks
    ]
    dates = {key: cell_text(run.get(key)) for key in ("started_at", "finished_at")}
    template = templates().get_template("run.html.j2")
    html = template.render(
        run={**run, **dates},
        environment=environment_groups(environment),
        sections=sections,
        warnings=warnings or [],
        notes=notes or [],
        verdicts=verdicts or [],
        overview=overview or [],
        unstable=int(summary["warnings"].fillna("").astype(bool).sum())
        if "warnings" in summary
        else 0,
        faults=_fault_table(summary, facts),
        interpreters=interpreter_rows(interpreters) if interpreters is not None else [],
        skipped=skipped_rows(trials) if trials is not None else [],
        hosts=_host_rows(hosts),
        host_verdicts=host_verdicts or [],
        index_href=relative_href(index_href) if index_href else None,
        confidence=CONFIDENCE_PERCENT,
        looks=rule.schedule.looks,
        look_levels={
            "verdict": level_text(rule.level()),
            "cell": level_text(rule.with_alpha((1 - CONFIDENCE_PERCENT / 100) / 2).level()),
        },
    )
    return write(Path(out_dir) / "index.html", html)


def interpreter_rows(frame: pd.DataFrame) -> list[dict[str, str]]:
    """The run's interpreters as table rows: what each is, its GIL, what it cannot run."""
    rows = []
    for row in frame.to_dict("records"):
        env = json.loads(row.get("env_json") or "{}")
        unsupported = json.loads(row.get("unsupported_json") or "{}")
        implementation = {"cpython": "CPython"}.get(row["implementation"], row["implementation"])
        rows.append(
            {
                "label": str(row["label"]),
                "python": f"{implementation} {row['version']}",
                "build": MISSING
                if is_missing(row["free_threaded_build"])
                else ("free-threaded" if row["free_threaded_build"] else "with GIL"),
                "gil": MISSING if is_missing(row["gil_enabled"]) else _on_off(row["gil_enabled"]),
                "env": " ".join(f"{key}={value}" for key, value in env.items()),
                "executable": str(row["executable"]),
                "cannot_run": "; ".join(f"{model}: {why}" for model, why in unsupported.items()),
            }
        )
    return rows


def _host_rows(hosts: pd.DataFrame | None) -> list[dict[str, str]]:
    """The cluster hosts as text cells (columns as results.hosts names them)."""
    if hosts is None or hosts.empty:
        return []
    return [
        {str(key): cell_text(value) for key, value in row.items()}
        for row in hosts.to_dict("records")
    ]


def _on_off(flag: Any) -> str:
    return "on" if bool(flag) else "off"


def skipped_rows(trials: pd.DataFrame) -> list[dict[str, str]]:
    """The skipped cells, one row per interpreter and reason, in run order."""
    skipped = trials[trials["status"].eq(TrialStatus.SKIPPED)].sort_values("cell_id")
    rows = []
    for (interpreter, reason), group in skipped.groupby(
        ["interpreter", skipped["error"].fillna("")], sort=False
    ):
        cells = group.drop_duplicates("cell_id")
        rows.append(
            {
                "interpreter": str(interpreter),
                "reason": str(reason),
                "cells": ", ".join(label(cell) for _, cell in cells.iterrows()),
                "trials": str(len(group)),
            }
        )
    return rows


def variant_sections(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with each swept variant of a task as a task of its own, named like
    ``transfer (transport=shared_memory)``, so it gets its own section and chart."""
    if summary.empty or "variant" not in summary.columns:
        return summary
    variant = summary["variant"].map(variant_text)
    named = summary["task"].where(variant.eq(""), summary["task"] + " (" + variant + ")")
    return summary.assign(task=named)


def _cell_rows(cells: pd.DataFrame) -> list[dict[str, str]]:
    """Table rows of one task's cells, every value already formatted as text."""
    return [
        {
            "model": str(cell["model"]),
            "workers": str(cell["workers"]),
            "payload": format_bytes(int(cell["payload_bytes"])),
            "interpreter": str(cell["interpreter"]),
            "trials": f"{cell['n_ok']}/{cell['n']}",
            "incomplete": "yes" if cell["n_ok"] < cell["n"] else "",
            "median_wall": METRICS["median_wall_s"].format(cell["median_wall_s"]),
            "wall_interval": format_interval(
                cell["ci_low_wall_s"], cell["ci_high_wall_s"], Unit.SECONDS
            )
            + _level_note(cell.get("ci_level_wall")),
            "cv": METRICS["cv_wall"].format(cell["cv_wall"]),
            "speedup": format_with_interval(
                cell["speedup"], cell["speedup_ci_low"], cell["speedup_ci_high"], Unit.RATIO
            ),
            "efficiency": METRICS["efficiency"].format(cell["efficiency"]),
            "startup": METRICS["median_startup_s"].format(cell["median_startup_s"]),
            "cpu": METRICS["median_cpu_s"].format(cell["median_cpu_s"]),
            "observer": _observer_text(cell),
            "adjusted": METRICS["median_wall_s_adjusted"].format(
                cell.get("median_wall_s_adjusted")
            ),
            "peak_rss": METRICS["median_peak_rss_bytes"].format(cell["median_peak_rss_bytes"]),
            "peak_pss": METRICS["median_peak_pss_bytes"].format(cell.get("median_peak_pss_bytes")),
            "warnings": cell.get("warnings") or "",
        }
        for cell in cells.to_dict("records")
    ]


def _observer_text(cell: Mapping[Hashable, Any]) -> str:
    """The observer's median CPU per trial and its share of the cell's: '4.1 ms (0.8%)'."""
    cpu = METRICS["median_observer_cpu_s"].format(cell.get("median_observer_cpu_s"))
    share = cell.get("observer_share")
    if share is None or pd.isna(share):
        return cpu
    return f"{cpu} ({METRICS['observer_share'].format(share)})"


def _as_list(charts: str | list[str] | None) -> list[str]:
    """A section's charts: one SVG string, several, or none."""
    if charts is None:
        return []
    return [charts] if isinstance(charts, str) else list(charts)


FAULT_FACTS = ("trial_process_survived", "pool_broken", "others_finished")


def _fault_table(summary: pd.DataFrame, facts: pd.DataFrame) -> dict[str, Any] | None:
    """Fault outcomes per model (rows) and fault mode (columns): whether the program
    survived, whether the pool broke, how many other items finished (medians over trials),
    with a class that colours the cell (survived, broken, died)."""
    if summary.empty or "variant" not in summary.columns:
        return None
    cells = summary[summary["task"].astype(str).str.startswith("fault")]
    mine = facts[facts["cell_id"].isin(cells["cell_id"]) & facts["name"].isin(FAULT_FACTS)]
    if mine.empty:
        return None
    medians = mine.pivot_table(index="cell_id", columns="name", values="median")
    modes: list[str] = []
    table: dict[str, dict[str, dict[str, str]]] = {}
    for cell in cells.to_dict("records"):
        mode = str(variant_text(cell["variant"]) or "mode=exception").removeprefix("mode=")
        found = medians.loc[cell["cell_id"]] if cell["cell_id"] in medians.index else None
        if found is None:
            continue
        modes.append(mode)
        survived = found.get("trial_process_survived", float("nan"))
        broken = found.get("pool_broken", float("nan"))
        state = "died" if survived == 0 else "broken" if broken == 1 else "survived"
        text = {
            "died": "program died",
            "broken": "program survived, pool broken",
            "survived": "program and pool survived",
        }[state]
        others = found.get("others_finished", float("nan"))
        table.setdefault(model_label(cell["model"], cell["workers"]), {})[mode] = {
            "state": state,
            "text": f"{text}; {format_value(others, Unit.COUNT)} other items finished",
        }
    modes = list(dict.fromkeys(modes))
    rows = [
        {"model": model, "cells": [by_mode.get(m) for m in modes]}
        for model, by_mode in table.items()
    ]
    return {"modes": modes, "rows": rows} if rows else None


def _scaling_rows(cells: pd.DataFrame) -> list[dict[str, str]]:
    """One row per model (and payload, interpreter) of a section: its Amdahl and USL fits."""
    fits = scaling_fits(cells) if not cells.empty else pd.DataFrame()
    return [
        {
            "model": str(fit["model"]),
            "payload": format_bytes(int(fit["payload_bytes"])),
            "interpreter": str(fit["interpreter"]),
            "points": str(fit["points"]),
            "fraction": MISSING
            if is_missing(fit["parallel_fraction"])
            else f"{fit['parallel_fraction']:.3f} "
            + format_interval(
                fit["parallel_fraction_ci_low"], fit["parallel_fraction_ci_high"], Unit.RATIO
            ),
            "r_squared": METRICS["r_squared"].format(fit["r_squared"]),
            "usl": MISSING
            if is_missing(fit["usl_sigma"])
            else f"σ {fit['usl_sigma']:.3f} "
            + format_interval(fit["usl_sigma_ci_low"], fit["usl_sigma_ci_high"], Unit.RATIO)
            + f", κ {fit['usl_kappa']:.4f} "
            + format_interval(fit["usl_kappa_ci_low"], fit["usl_kappa_ci_high"], Unit.NUMBER),
            "peak": MISSING
            if is_missing(fit["usl_peak_workers"])
            else f"{fit['usl_peak_workers']:.1f}",
            "note": str(fit["note"] or ""),
        }
        for fit in fits.to_dict("records")
    ]


def _fact_table(cells: pd.DataFrame, facts: pd.DataFrame) -> dict[str, Any] | None:
    """The task facts of one section's cells: a column per fact, a row per cell, each
    value the median over trials (with the range when trials disagree)."""
    mine = facts[facts["cell_id"].isin(cells["cell_id"])]
    if mine.empty:
        return None
    names = list(dict.fromkeys(mine["name"]))
    by_cell = {cell_id: rows.set_index("name") for cell_id, rows in mine.groupby("cell_id")}
    rows = []
    for cell in cells.to_dict("records"):
        found = by_cell.get(cell["cell_id"])
        rows.append(
            {
                "cell": model_label(cell["model"], cell["workers"], cell["payload_bytes"]),
                "values": [
                    _fact_value(found.loc[name])
                    if found is not None and name in found.index
                    else MISSING
                    for name in names
                ],
            }
        )
    return {"names": names, "rows": rows}


def _fact_value(fact: pd.Series) -> str:
    """'12', '0.25' or '3 [0–7]': the median, and the range when trials disagree."""
    median, low, high = (format_value(fact[key], Unit.COUNT) for key in ("median", "min", "max"))
    return median if low == high else f"{median} [{low}–{high}]"


def _level_note(level: Any) -> str:
    """' (93.8%)' after an interval whose level is below the 95% asked for, else ''."""
    if is_missing(level) or level >= CONFIDENCE_PERCENT / 100 - 1e-9:
        return ""
    return f" ({format_value(level, Unit.SHARE)})"
