"""analysis/scaling.py: the ideal speedup, the Karp-Flatt serial fraction, Amdahl and USL fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis.scaling import amdahl, ideal_speedup, karp_flatt, scaling_fits, usl


def test_ideal_speedup():
    assert ideal_speedup(8, 4) == 4
    assert ideal_speedup(2, 4) == 2
    assert list(ideal_speedup(pd.Series([1, 2, 4, 8]), 4)) == [1, 2, 4, 4]
    with pytest.raises(ValueError, match="cores must be at least 1"):
        ideal_speedup(2, 0)


def test_karp_flatt_exact() -> None:
    speedup = pd.Series([1.0, 1.6, 2.5, 4.0])
    workers = pd.Series([1, 2, 4, 4])
    result = karp_flatt(speedup, workers).tolist()
    assert np.isnan(result[0])
    assert result[1] == pytest.approx((1 / 1.6 - 0.5) / 0.5)  # 0.25
    assert result[2] == pytest.approx((0.4 - 0.25) / 0.75)  # 0.2
    assert result[3] == pytest.approx(0.0)  # perfect scaling: no serial part


def test_amdahl_fit_recovers_the_parallel_fraction() -> None:
    workers = [2, 4, 8]
    rows = [
        {
            "task": "t",
            "variant": "",
            "model": "processes",
            "payload_bytes": 1,
            "interpreter": "py",
            "workers": n,
            "speedup": float(amdahl(n, 0.9)),
        }
        for n in workers
    ]
    fit = scaling_fits(pd.DataFrame(rows))
    assert fit.loc[0, "points"] == 3  # the measured cells only: no synthetic (1, 1)
    assert fit.loc[0, "parallel_fraction"] == pytest.approx(0.9, abs=1e-6)
    assert fit.loc[0, "r_squared"] == pytest.approx(1.0)
    assert fit.loc[0, "note"] == ""
    assert amdahl([1], 0.5).tolist() == [1.0]
    assert amdahl([2], 1.0).tolist() == [2.0]


def test_amdahl_fit_says_when_points_are_few_or_the_fit_poor() -> None:
    base = {"task": "t", "variant": "", "model": "threads", "payload_bytes": 1, "interpreter": "py"}
    few = scaling_fits(pd.DataFrame([{**base, "workers": 2, "speedup": 1.9}]))
    assert few.loc[0, "note"] == "too few points: needs 2 worker counts"
    assert np.isnan(few.loc[0, "parallel_fraction"])
    zigzag = [{**base, "workers": n, "speedup": s} for n, s in ((2, 0.5), (4, 3.9), (8, 0.6))]
    poor = scaling_fits(pd.DataFrame(zigzag))
    assert poor.loc[0, "note"].startswith("poor Amdahl fit (R² ")


def test_usl_fit_recovers_contention_coherency_and_the_peak() -> None:
    """Speedups drawn from the USL with σ = 0.05, κ = 0.02 give them back, and the peak
    at sqrt((1 − σ)/κ) ≈ 6.9 workers; two worker counts are too few for it."""
    base = {"task": "t", "variant": "", "model": "threads", "payload_bytes": 1, "interpreter": "py"}
    rows = [{**base, "workers": n, "speedup": float(usl(n, 0.05, 0.02))} for n in (2, 4, 8, 16)]
    fit = scaling_fits(pd.DataFrame(rows)).loc[0]
    assert (fit["usl_sigma"], fit["usl_kappa"]) == pytest.approx((0.05, 0.02), abs=1e-6)
    assert fit["usl_peak_workers"] == pytest.approx((0.95 / 0.02) ** 0.5)
    assert fit["usl_sigma_ci_low"] <= 0.05 <= fit["usl_sigma_ci_high"]
    two = scaling_fits(pd.DataFrame(rows[:2])).loc[0]
    assert np.isnan(two["usl_sigma"])


def test_karp_flatt_counts_only_the_cores_that_can_work() -> None:
    """Four workers on two usable cores are two processors: a speedup of 2 is perfect."""
    result = karp_flatt(pd.Series([2.0, 1.6]), pd.Series([4, 4]), cores=2).tolist()
    assert result[0] == pytest.approx(0.0)
    assert result[1] == pytest.approx((1 / 1.6 - 0.5) / 0.5)
