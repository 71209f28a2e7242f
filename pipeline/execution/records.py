"""What the orchestrator stores: runs, cells, interpreters, trials and task facts, as
rows of the store's tables."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from .. import __version__
from ..planning import matrix
from ..status import TrialStatus
from ..storage import schema
from . import interpreters, trial
from .plan import Plan


def interpreter_row(probe: interpreters.Probe) -> schema.RunInterpreter:
    """The stored form of a probed interpreter."""
    facts = probe.facts
    return schema.RunInterpreter(
        run_id=0,
        label=probe.interpreter.label,
        executable=probe.executable,
        env_json=schema.to_json(probe.interpreter.environment),
        implementation=str(facts.get("implementation", "")),
        version=str(facts.get("version", "")),
        free_threaded_build=facts.get("py_gil_disabled"),
        gil_enabled=facts.get("gil_enabled"),
        start_methods=",".join(facts.get("start_methods", [])),
        unsupported_json=schema.to_json(facts.get("unsupported", {})),
        facts_json=schema.to_json(facts),
    )


def host_rows(plan: Plan) -> list[schema.RunHost]:
    """The stored form of the plan's cluster hosts (none on this machine)."""
    if plan.cluster is None:
        return []
    rows = []
    for host in plan.cluster.hosts.values():
        facts = host.facts
        rows.append(
            schema.RunHost(
                run_id=0,
                name=host.name,
                address=host.address,
                hostname=str(facts.get("hostname", "")),
                os=str(facts.get("os", "")),
                cpu_model=str(facts.get("cpu_model", "")),
                cpu_logical=facts.get("cpu_logical"),
                usable_cores=facts.get("usable_cores"),
                memory_total_bytes=facts.get("memory_total_bytes"),
                python_version=str(facts.get("python_version", "")),
                interpreters_json=schema.to_json(
                    {
                        label: {
                            "version": probe.facts.get("version"),
                            "executable": probe.executable,
                        }
                        for label, probe in host.probes.items()
                    }
                ),
                environment_json=schema.to_json(facts),
            )
        )
    return rows


def cell_rows(plan: Plan) -> list[schema.CellRow]:
    """The stored form of the plan's cells (their run and ids are filled in on insert)."""
    return [
        schema.CellRow(
            run_id=0,
            position=cell.position,
            task=cell.task,
            model=cell.model,
            workers=cell.workers,
            payload_bytes=cell.payload_bytes,
            interpreter=cell.interpreter,
            variant=cell.variant_label,
            host=cell.host,
            params_json=schema.to_json(matrix.cell_params(plan.spec, cell)),
        )
        for cell in plan.cells
    ]


def run_row(plan: Plan) -> schema.Run:
    """The stored form of a run starting now, from its plan."""
    spec = plan.spec
    return schema.Run(
        name=spec.name,
        description=spec.description,
        spec_path=spec.path,
        spec_text=spec.text,
        spec_hash=spec.hash,
        seed=spec.seed,
        repetitions=spec.min_repetitions,
        repetitions_max=spec.adaptive.max if spec.adaptive else spec.min_repetitions,
        target_ci=spec.adaptive.target_ci if spec.adaptive else None,
        budget_s=spec.budget,
        time_limit_s=spec.time_limit,
        margin=spec.margin,
        pair_rounds=spec.pair_rounds,
        limits_json=schema.to_json(asdict(plan.limits)),
        warmup=spec.warmup,
        items=spec.items,
        timeout_s=spec.timeout,
        trial_order=matrix.ORDER_DESCRIPTION,
        trial_count=len(plan.trials),
        sample_interval_s=spec.sampling.interval,
        sampling_memory=spec.sampling.memory,
        warmup_items=spec.warmup_items,
        trial_process=spec.trial_process,
        pipeline_version=__version__,
        orchestrator_host=platform.node(),
        orchestrator_pid=os.getpid(),
    )


def trial_row(
    run_id: int,
    cell_id: int,
    trial: matrix.TrialPlan,
    measurement: trial.Measurement,
    *,
    host: str = "",
    note: str | None = None,
) -> schema.Trial:
    """The stored form of one measured trial (``host``: the cluster worker that ran it)."""
    result = measurement.result
    started_at = measurement.started_at or schema.now()
    interpreter = result.get("interpreter", {})
    latencies = sorted(item["latency_s"] for item in result.get("items", []) if "latency_s" in item)
    work_s = result.get("work_s")
    items_done = result.get("items_done", 0)
    return schema.Trial(
        run_id=run_id,
        cell_id=cell_id,
        sequence=trial.sequence,
        repetition=trial.repetition,
        warmup=trial.warmup,
        status=measurement.status,
        wall_s=work_s,
        startup_s=result.get("startup_s"),
        shutdown_s=result.get("shutdown_s"),
        process_s=measurement.process_s,
        cpu_user_s=result.get("cpu_user_s"),
        cpu_sys_s=result.get("cpu_sys_s"),
        peak_rss_bytes=measurement.peak_rss_bytes,
        peak_uss_bytes=measurement.peak_uss_bytes,
        peak_pss_bytes=measurement.peak_pss_bytes,
        items_done=items_done,
        items_failed=result.get("items_failed", 0),
        latency_p50_s=_percentile(latencies, 50),
        latency_p95_s=_percentile(latencies, 95),
        latency_p99_s=_percentile(latencies, 99),
        throughput_items_s=items_done / work_s if work_s else None,
        cpu_utilisation=_cpu_utilisation(result),
        ctx_switches_voluntary=result.get("ctx_switches_voluntary"),
        ctx_switches_involuntary=result.get("ctx_switches_involuntary"),
        start_method=result.get("start_method"),
        python_version=interpreter.get("version"),
        python_implementation=interpreter.get("implementation"),
        gil_enabled=interpreter.get("gil_enabled"),
        free_threaded_build=interpreter.get("free_threaded_build"),
        switch_interval_s=interpreter.get("switch_interval_s"),
        error=measurement.error,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=measurement.process_s),
        host=host,
        note=note,
        observer_cpu_s=measurement.observer_cpu_s,
        sampler_cpu_s=measurement.sampler_cpu_s,
        reference_s=measurement.reference_s,
        detail_json=json.dumps(result, default=repr),
    )


def trial_facts(task: str, workers: int, measurement: trial.Measurement) -> dict[str, float | None]:
    """The task's facts about a trial: those the worker reported, plus those only the
    orchestrator can know (a fault that killed the whole trial process; memory per worker)."""
    facts: dict[str, float | None] = dict(measurement.result.get("facts") or {})
    if task == "fault" and measurement.status == TrialStatus.CRASHED:
        facts.update(
            others_finished=measurement.result.get("items_done"),
            pool_broken=None,
            trial_process_survived=0.0,
        )
    if task == "memory":
        for kind in ("rss", "uss", "pss"):
            peak = getattr(measurement, f"peak_{kind}_bytes")
            facts[f"{kind}_per_worker_bytes"] = peak / workers if peak is not None else None
    return facts


def _cpu_utilisation(result: dict[str, Any]) -> float | None:
    """CPU time over the wall time of the same interval (start-up + work + shutdown), in
    cores: 2.0 means two cores busy throughout."""
    try:
        wall_s = math.fsum(float(result[key]) for key in ("startup_s", "work_s", "shutdown_s"))
        cpu_s = math.fsum(float(result[key]) for key in ("cpu_user_s", "cpu_sys_s"))
    except (KeyError, TypeError):
        return None
    return cpu_s / wall_s if wall_s > 0 else None


def _percentile(values: list[float], percent: int) -> float | None:
    """The inclusive percentile of sorted values (None for none)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def environment_row(facts: dict[str, Any]) -> schema.EnvironmentRow:
    """The stored form of the environment captured as a run starts."""
    values = dict(facts)
    values["packages_json"] = schema.to_json(values.pop("packages", {}))
    values["details_json"] = schema.to_json(values.pop("details", {}))
    return schema.EnvironmentRow(run_id=0, **values)
