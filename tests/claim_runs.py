"""Constructed result sets for the claims' tests: trials built cell by cell."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis import claims
from pipeline.analysis.evidence import ClaimVerdict
from pipeline.analysis.stats import numeric_summary, summarise_cells

N = 10  # trials per cell


class Run:
    """Builds trials (and task facts) cell by cell, then asks for the verdicts."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.facts: list[dict] = []
        self.cell_id = 0

    def cell(
        self,
        task: str,
        model: str,
        workers: int,
        wall_s: float,
        *,
        variant: str = "",
        payload: int = 1024,
        spread: float = 0.01,
        startup_s: float = 0.001,
        pss: float = 10e6,
        gil: bool = True,
        interpreter: str = "python3",
        host: str = "",
        status: str = "ok",
        facts: dict[str, float] | None = None,
        cpu_s: float | None = None,
    ) -> int:
        self.cell_id += 1
        # the same spread in every cell, in an order of its own: independent noise
        offsets = np.random.default_rng(self.cell_id).permutation(np.linspace(-spread, spread, N))
        for repetition, offset in enumerate(offsets):
            ok = status == "ok"
            self.rows.append(
                {
                    "cell_id": self.cell_id,
                    "task": task,
                    "variant": variant,
                    "model": model,
                    "workers": workers,
                    "payload_bytes": payload,
                    "interpreter": interpreter,
                    "host": host,
                    "status": status,
                    "wall_s": wall_s * (1 + offset) if ok else np.nan,
                    "startup_s": startup_s * (1 + offset) if ok else np.nan,
                    "shutdown_s": 0.0,
                    "cpu_user_s": wall_s if cpu_s is None else cpu_s,
                    "cpu_sys_s": 0.0,
                    "peak_rss_bytes": pss * 1.5,
                    "peak_pss_bytes": pss * (1 + offset),
                    "python_version": "3.11.7",
                    "gil_enabled": gil,
                    "free_threaded_build": not gil,
                    "trial_id": len(self.rows),
                    "repetition": repetition,
                }
            )
            for name, value in (facts or {}).items():
                self.facts.append(
                    {
                        "cell_id": self.cell_id,
                        "trial_id": len(self.rows),
                        "name": name,
                        "value": value,
                    }
                )
        return self.cell_id

    def verdicts(self) -> dict[str, ClaimVerdict]:
        trials = pd.DataFrame(self.rows)
        summary = numeric_summary(summarise_cells(trials, cores=2))
        facts = pd.DataFrame(self.facts, columns=["cell_id", "trial_id", "name", "value"])
        return {v.claim: v for v in claims.verdicts(summary, trials, facts)}
