"""Running on a Dask cluster: the dispatch cost per trial, and what a second host buys.

A sleep-only matrix (io_sleep, 0.05 s items) is run three ways into temporary databases:
on this machine, on a cluster of one host and on a cluster of two hosts (a real scheduler
and workers on 127.0.0.1, as docs/spec.md's cluster section starts them; sleeps use no CPU, so
two hosts on one 2-core machine do not compete).

* dispatch cost per trial = (span - sum of worker process time) / trials, on one host,
  minus the same on this machine: what Dask adds between the end of one trial and the
  start of the next (goal: under 20 ms);
* spread speedup = span on one host / span on two hosts (goal: at least 1.8x),

where span runs from the first trial's start to the last one's end.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd

from pipeline import app
from pipeline.storage import readonly
from tests.helpers import LocalCluster

SPEC = textwrap.dedent(
    """\
    name: cluster-bench
    repetitions: {repetitions}
    warmup: 0
    items: 4
    matrix:
      task: [io_sleep]
      model: [sequential, threads]
      workers: [2, 4]
      payload: [1KiB]
    params:
      io_sleep: {{seconds: 0.05}}
    """
)


def measure(spec: Path, url: str, cluster: str | None) -> tuple[float, float, int]:
    """Run the spec; its span, the summed worker process time and the trial count."""
    planned = app.plan(spec, cluster)
    try:
        app.run(planned, url, reports_dir=None)
    finally:
        planned.close()
    trials = readonly.query(url, "SELECT started_at, finished_at, process_s FROM trial")
    started = pd.to_datetime(trials["started_at"], format="ISO8601", utc=True)
    finished = pd.to_datetime(trials["finished_at"], format="ISO8601", utc=True)
    span_s = (finished.max() - started.min()).total_seconds()
    return span_s, float(trials["process_s"].sum()), len(trials)


def main(repetitions: int = 30, *, pin: bool = False) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        spec = folder / "spec.yaml"
        spec.write_text(SPEC.format(repetitions=repetitions))
        results = {"local": measure(spec, f"sqlite:///{folder / 'local.db'}", None)}
        for hosts in (("alpha",), ("alpha", "beta")):
            cluster_dir = folder / f"dask-{len(hosts)}"
            cluster_dir.mkdir()
            with LocalCluster(cluster_dir, hosts, pin=pin) as cluster:
                url = f"sqlite:///{folder / f'hosts{len(hosts)}.db'}"
                results[f"{len(hosts)} host(s)"] = measure(spec, url, cluster.address)
    where = "each worker pinned to a CPU of its own" if pin else "workers share the CPUs"
    print(f"sleep-only matrix: {results['local'][2]} trials of io_sleep (0.05 s items); {where}")
    gaps = {}
    for label, (span_s, process_s, trials) in results.items():
        gaps[label] = (span_s - process_s) / trials
        print(
            f"{label:>10}: span {span_s:6.2f} s, worker processes {process_s:6.2f} s, "
            f"between trials {gaps[label] * 1e3:6.1f} ms"
        )
    dispatch_ms = (gaps["1 host(s)"] - gaps["local"]) * 1e3
    speedup = results["1 host(s)"][0] / results["2 host(s)"][0]
    print(f"dispatch cost per trial through the cluster: {dispatch_ms:.1f} ms (goal: under 20 ms)")
    print(f"spread over 2 hosts: {speedup:.2f}x faster than 1 host (goal: at least 1.8x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30, pin=True)
