"""``pipeline advise``'s answer in words: the configuration to use with its speedup,
interval and memory, what ties with it, why the others lose, a snippet to paste, and the
findings (CPU or waiting, GIL-bound, the break-even item cost of processes, thread safety,
free-threading readiness). Pure functions over the decision and the findings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..metrics import format_seconds
from ..units import format_size
from .advice import BASELINE, Config, Decided, Measured, speedup
from .advice_findings import CostModel, Mismatch, Readiness
from .inference import Ratio, Rule
from .machine import BUSY_CONSEQUENCE

MIB = 1024 * 1024


@dataclass(frozen=True)
class Option:
    """A configuration as the answer shows it."""

    label: str
    kind: str
    workers: int
    speedup: float
    low: float
    high: float
    memory_per_worker_bytes: float | None = None
    series: str = ""  # the line it belongs to: model, chunksize, interpreter


@dataclass
class Answer:
    """Everything ``pipeline advise`` says, as data (``--json``) and as lines."""

    function: str
    run_id: int
    decided: bool  # the best is separated from every rival, or they tie within the margin
    best: Option | None
    ties: list[Option]
    unseparated: list[Option]  # neither separated from the best nor tied: more trials would tell
    by_kind: dict[str, Option]  # the best configuration of each kind
    options: list[Option]  # every configuration measured
    headline: str
    lines: list[str]
    snippet: str
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)
    readiness: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    margin: float = 0.10
    # other programs used the CPU around the study (machine.other_programs): said beside
    # the answer, which then understates what parallel configurations give a quiet machine
    busy: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        run_row: Any,
        data: Measured,
        decided: Decided,
        rule: Rule,
        *,
        model: CostModel | None,
        memory: dict[int, float],
        mismatches: list[Mismatch],
        compare_note: str,
        readiness: list[Readiness],
        left_out: list[str],
        busy: list[str],
    ) -> Answer:
        spec = run_row.spec_text or ""
        function = _param(spec, "function")
        inputs = _param(spec, "inputs")
        options = {
            c.cell_id: _option(c, speedup(data, c, rule), memory.get(c.cell_id))
            for c in data.usable()
        }
        best = options.get(decided.best.cell_id) if decided.best else None
        ties = [options[e.cell_ids[0]] for e in decided.ties() if e.cell_ids[0] in options]
        unseparated = [
            options[e.cell_ids[0]] for e in decided.unseparated() if e.cell_ids[0] in options
        ]
        by_kind: dict[str, Option] = {}
        for option in sorted(options.values(), key=lambda o: -_or(o.speedup, 0.0)):
            by_kind.setdefault(option.kind, option)
        answer = cls(
            function,
            int(run_row.id or 0),
            decided.best is not None and decided.settled(),
            best,
            ties,
            unseparated,
            by_kind,
            list(options.values()),
            "",
            [],
            snippet(best, function, inputs, int(run_row.items), decided.best),
            [_mismatch(m) for m in mismatches],
            _cost(model),
            [r.__dict__ for r in readiness],
            list(left_out)
            + [
                f"{c.label()}: {data.failed[c.cell_id]}"
                for c in data.configs
                if c.cell_id in data.failed
            ],
        )
        answer.margin = rule.margin
        answer.busy = list(busy)
        answer.headline = _headline(answer, rule)
        answer.lines = _lines(answer, model, mismatches, compare_note, readiness, rule)
        return answer


def _param(spec: str, name: str) -> str:
    """A parameter of the call task from the generated spec's params line."""
    import json
    import re

    found = re.search(r"^\s*call:\s*(\{.*\})\s*$", spec, re.M)
    if not found:
        return ""
    return str(json.loads(found.group(1)).get(name, ""))


def _option(config: Config, ratio: Ratio, memory: float | None) -> Option:
    series = config.model + (f", chunksize {config.chunksize}" if config.chunksize > 1 else "")
    series += f" ({config.interpreter})" if config.free_threaded else ""
    return Option(
        config.label(),
        config.kind,
        config.workers,
        ratio.ratio,
        ratio.low,
        ratio.high,
        memory,
        series,
    )


def _or(value: float, default: float) -> float:
    return default if math.isnan(value) else value


def _times(option: Option) -> str:
    """'1.87× [1.79, 1.95]'."""
    if math.isnan(option.low):
        return f"{option.speedup:.2f}×"
    return f"{option.speedup:.2f}× [{option.low:.2f}, {option.high:.2f}]"


def _memory(option: Option) -> str:
    if option.memory_per_worker_bytes is None or math.isnan(option.memory_per_worker_bytes):
        return ""
    size = option.memory_per_worker_bytes
    sign = "+" if size >= 0 else "−"
    return f", {sign}{format_size(abs(size))} per worker"


def _use(option: Option) -> str:
    """'ProcessPoolExecutor(max_workers=2, mp_context=forkserver), chunksize 8'."""
    kind = option.kind
    text = option.label
    if kind == "processes":
        method = option.label.split()[0].partition("-")[2] or "fork"
        chunk = option.label.partition("chunksize ")[2]
        text = f"ProcessPoolExecutor(max_workers={option.workers}, mp_context={method})"
        text += f", chunksize {chunk}" if chunk else ""
    elif kind.endswith("threads"):
        text = f"ThreadPoolExecutor(max_workers={option.workers})"
        if kind.startswith("free-threaded"):
            text += " on " + option.label.rpartition("(")[2].rstrip(")") + " (free-threaded)"
    elif kind == "asyncio":
        text = f"asyncio with {option.workers} coroutines at once"
    elif kind.endswith("subinterpreters"):
        text = f"InterpreterPoolExecutor(max_workers={option.workers})"
    return text


def _headline(answer: Answer, rule: Rule) -> str:
    best = answer.best
    if best is None:
        return "No configuration finished its trials: see the left-out reasons below"
    if best.kind == BASELINE:
        first = "Stay sequential: no configuration beats a plain loop"
        rivals = [o for k, o in answer.by_kind.items() if k != BASELINE]
        if rivals:
            top = max(rivals, key=lambda o: _or(o.speedup, 0.0))
            first += f" (best other: {top.label}, {_times(top)})"
    else:
        first = f"Use {_use(best)}: {_times(best)} faster than sequential{_memory(best)}"
    parts = [first]
    threads = answer.by_kind.get("threads")
    processes = answer.by_kind.get("processes")
    if best.kind != "threads" and threads is not None and _or(threads.high, 2.0) < 1 + rule.margin:
        gil = (
            " (GIL-bound)"
            if processes is not None and _or(processes.low, 0) > 1 + rule.margin
            else ""
        )
        parts.append(f"threads gain nothing{gil}, {threads.speedup:.2f}×")
    if answer.ties:
        names = ", ".join(o.label for o in answer.ties[:4])
        parts.append(f"tied with it within ±{rule.margin:.0%}: {names}")
    if not answer.decided:
        parts.append(
            "not yet separated from the runner-up within the budget (rerun with a larger --budget)"
        )
    return "; ".join(parts)


def _lines(
    answer: Answer,
    model: CostModel | None,
    mismatches: list[Mismatch],
    compare_note: str,
    readiness: list[Readiness],
    rule: Rule,
) -> list[str]:
    lines = []
    if model is not None:
        bound = (
            "CPU-bound"
            if model.cpu_share >= 0.8
            else "mostly waiting"
            if model.cpu_share < 0.5
            else "part CPU, part waiting"
        )
        lines.append(
            f"work: {model.items} items of {_seconds(model.item_s)} each, {bound} "
            f"(CPU {model.cpu_share:.0%} of wall time, sequentially)"
        )
        if model.per_item_s is not None:
            moved = (
                f" (moving {format_size(model.bytes_moved)} an item" if model.bytes_moved else " ("
            )
            pickling = _seconds(model.serialise_s or 0.0)
            lines.append(
                f"a process pool costs {_seconds(model.pool_s or 0.0)} to start and stop and "
                f"{_seconds(model.per_item_s)} per item{moved}; pickling it and its result "
                f"takes {pickling} of that)"
            )
        if model.break_even_s is not None:
            pays = "they pay" if model.item_s > model.break_even_s else "they do not pay"
            lines.append(
                f"processes pay from {_seconds(model.break_even_s)} of work an item with "
                f"{model.parallel} at once; yours take {_seconds(model.item_s)}, so {pays}"
            )
    for kind, option in answer.by_kind.items():
        if kind != BASELINE:
            lines.append(
                f"best {kind}: {option.label}, {_times(option)} vs sequential{_memory(option)}"
            )
    if mismatches:
        for found in mismatches:
            shown = ", ".join(str(i) for i in found.items[:10]) + (
                " ..." if len(found.items) > 10 else ""
            )
            probably = " probably not thread-safe:" if "threads" in found.config.kind else ""
            lines.append(
                f"results differ:{probably} under {found.config.label()} items {shown} came out "
                f"different from sequential in {found.trials} of {found.of} trials"
            )
    elif compare_note:
        lines.append(f"results: {compare_note}")
    else:
        lines.append("results: every configuration returned what sequential returned, item by item")
    for ready in readiness:
        if ready.gil_enabled and ready.modules:
            lines.append(
                f"{ready.interpreter}: loading your modules turned the GIL back on "
                f"({', '.join(ready.modules)}): free threading gives nothing until they "
                "declare support"
            )
        elif ready.gil_enabled:
            lines.append(f"{ready.interpreter}: the GIL is on after loading your modules")
        else:
            lines.append(
                f"{ready.interpreter}: your modules load with the GIL off (free-threading ready)"
            )
    lines += [f"left out: {reason}" for reason in answer.left_out]
    lines += [f"warning: {warning}; {BUSY_CONSEQUENCE}" for warning in answer.busy]
    return lines


def _seconds(value: float) -> str:
    return format_seconds(value)


def _mismatch(found: Mismatch) -> dict[str, Any]:
    return {
        "config": found.config.label(),
        "items": list(found.items),
        "trials": found.trials,
        "of": found.of,
    }


def _cost(model: CostModel | None) -> dict[str, Any]:
    if model is None:
        return {}
    return {**model.__dict__, "fixed_s": model.fixed_s}


def snippet(
    best: Option | None, function: str, inputs: str, items: int, config: Config | None
) -> str:
    """Code to paste: the best configuration over the user's items."""
    module, _, name = function.partition(":")
    lines = [f"from {module} import {name}"]
    if inputs:
        factory_module, _, factory = inputs.partition(":")
        lines.append(f"from {factory_module} import {factory}")
        source, call = f"{factory}()", name
    else:
        source, call = f"range({items})", f"lambda _: {name}()"
    lines.append(f"items = {source}")
    kind = best.kind if best else BASELINE
    workers = best.workers if best else 1
    if kind == "processes" and config is not None:
        method = config.model.partition("-")[2] or "fork"
        chunk = f", chunksize={config.chunksize}" if config.chunksize > 1 else ""
        if not inputs:
            call = name + "_"  # a lambda cannot be pickled
            lines.insert(1, f"def {call}(_):\n    return {name}()")
        lines = [
            "import multiprocessing",
            "from concurrent.futures import ProcessPoolExecutor",
            *lines,
        ]
        lines += [
            'if __name__ == "__main__":',
            f'    context = multiprocessing.get_context("{method}")',
            f"    with ProcessPoolExecutor(max_workers={workers}, mp_context=context) as pool:",
            f"        results = list(pool.map({call}, items{chunk}))",
        ]
    elif kind.endswith("threads"):
        lines = ["from concurrent.futures import ThreadPoolExecutor", *lines]
        lines += [
            f"with ThreadPoolExecutor(max_workers={workers}) as pool:",
            f"    results = list(pool.map({call}, items))",
        ]
        if kind.startswith("free-threaded"):
            lines.insert(0, "# run with the free-threaded build (python3.13t or later)")
    elif kind == "asyncio":
        lines = ["import asyncio", *lines]
        target = f"{name}(item)" if inputs else f"{name}()"
        lines += [
            "async def main():",
            f"    limit = asyncio.Semaphore({workers})",
            "    async def one(item):",
            "        async with limit:",
            f"            return await {target}",
            "    return await asyncio.gather(*(one(item) for item in items))",
            "results = asyncio.run(main())",
        ]
    elif kind.endswith("subinterpreters"):
        if not inputs:
            call = name + "_"  # each interpreter imports it: no lambda
            lines.insert(1, f"def {call}(_):\n    return {name}()")
        lines = ["from concurrent.futures import InterpreterPoolExecutor  # Python 3.14", *lines]
        lines += [
            f"with InterpreterPoolExecutor(max_workers={workers}) as pool:",
            f"    results = list(pool.map({call}, items))",
        ]
    else:
        target = f"{name}(item)" if inputs else f"{name}()"
        lines.append(f"results = [{target} for item in items]")
    return "\n".join(lines) + "\n"
