"""Tests of pipeline.report: escaped, self-contained HTML pages."""

from __future__ import annotations

import math
from datetime import datetime
from html.parser import HTMLParser

import pandas as pd
import pytest

from pipeline.analysis.headlines import task_headlines
from pipeline.analysis.stats import numeric_summary, summarise_cells
from pipeline.publishing.index_page import write_index
from pipeline.publishing.report import variant_sections, write_run_report

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
CHART = '<svg xmlns="http://www.w3.org/2000/svg"><title>chart of cpu_pure</title></svg>'


class LinkCollector(HTMLParser):
    """Collects every attribute that can load or link a resource, and all tag names."""

    def __init__(self):
        super().__init__()
        self.links = []
        self.tags = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [value for name, value in attrs if name in {"href", "src", "xlink:href"}]


def parse(html):
    collector = LinkCollector()
    collector.feed(html)
    return collector


def trials():
    """Trials of one task: sequential at 2 s, threads twice as fast, processes 4x."""
    rows = []
    for cell_id, model, workers, wall_s in [
        (1, "sequential", 1, 2.0),
        (2, "threads", 2, 1.0),
        (3, "processes", 4, 0.5),
    ]:
        rows += [
            {
                "cell_id": cell_id,
                "task": "cpu_pure",
                "model": model,
                "workers": workers,
                "payload_bytes": 1024,
                "interpreter": "python3",
                "status": "ok",
                "wall_s": wall_s,
                "startup_s": 0.01,
                "shutdown_s": 0.0,
                "cpu_user_s": wall_s,
                "cpu_sys_s": 0.0,
                "peak_rss_bytes": 50 * 1024**2,
            }
            for _ in range(3)
        ]
    return pd.DataFrame(rows)


@pytest.fixture
def summary():
    return summarise_cells(trials(), cores=4)


def run(**changes):
    base = {
        "id": 7,
        "name": "quick",
        "description": "a quick check",
        "status": "finished",
        "started_at": datetime(2024, 6, 1, 12, 0, 5, 123456),
        "finished_at": datetime(2024, 6, 1, 12, 3),
        "seed": 1,
        "spec_text": "name: quick\nrepetitions: 3\n",
        "spec_path": "experiments/quick.yaml",
        "repetitions": 3,
        "warmup": 1,
        "items": 8,
        "timeout_s": 60.0,
        "trial_count": 9,
        "order": "shuffled within each repetition",
        "sample_interval_s": 0.01,
    }
    return {**base, **changes}


ENVIRONMENT = {
    "hostname": "box",
    "cpu_physical": 4,
    "python_version": "3.12.1",
    "memory_total_bytes": 8 * 2**30,
    "git_commit": None,
}


def test_run_report_is_written_and_complete(tmp_path, summary):
    path = write_run_report(run(), ENVIRONMENT, summary, {"cpu_pure": CHART}, tmp_path / "run-7")
    assert path == tmp_path / "run-7" / "index.html"
    html = path.read_text(encoding="utf-8")
    assert "<title>Run quick (#7)</title>" in html
    assert CHART in html  # trusted chart markup is inlined as is
    assert "cpu_pure: at 4 workers, processes is best with 4.00× [4.00, 4.00] vs sequential" in html
    assert "2.00× [2.00, 2.00]" in html
    assert "3/3" in html
    assert "1 KiB" in html
    assert "50.0 MiB" in html
    text = " ".join(html.split())
    assert "1 warm-up trial(s), discarded, then 3 measured trial(s) of 8 work items" in text
    assert "exceeded 60.0 s was killed" in text
    assert "Trial order: shuffled within each repetition. Seed: 1 (of the trial order" in text
    assert "RSS summed over the process tree every 10 ms" in text
    assert "time.perf_counter" in text
    assert "started 2024-06-01 12:00:05, finished 2024-06-01 12:03:00" in text
    assert "<pre>name: quick\nrepetitions: 3\n</pre>" in html
    # the environment in groups, in a stable order, each fact labelled and formatted
    groups = [html.index(f">{group}</th>") for group in ("CPU", "Memory", "Operating system")]
    assert groups == sorted(groups)
    assert '<th scope="row">physical cores</th><td>4</td>' in html
    assert '<th scope="row">total</th><td>8.0 GiB</td>' in html
    assert '<th scope="row">host</th><td>box</td>' in html
    assert "pipeline commit" not in html  # facts the run lacks are left out


def test_every_spec_and_environment_string_is_escaped(tmp_path, summary):
    hostile = run(name=SCRIPT, description=SCRIPT, spec_text=SCRIPT, spec_path=SCRIPT)
    environment = {SCRIPT: SCRIPT, "cpu": '"quoted" & <b>'}
    html = write_run_report(hostile, environment, summary, {}, tmp_path).read_text()
    assert "<script" not in html
    assert html.count(ESCAPED_SCRIPT) >= 6
    assert "&#34;quoted&#34; &amp; &lt;b&gt;" in html
    assert "script" not in parse(html).tags


def test_run_report_has_no_external_references(tmp_path, summary):
    html = write_run_report(run(), ENVIRONMENT, summary, {"cpu_pure": CHART}, tmp_path)
    page = parse(html.read_text())
    assert page.links == ["../index.html", "trials.csv", "summary.csv", "summary.md"]
    assert not page.tags & {"link", "script", "img", "iframe"}
    assert "@import" not in html.read_text()


def test_run_report_without_cells(tmp_path):
    empty = summarise_cells(trials().iloc[0:0], cores=4)
    html = write_run_report(run(), {}, empty, {}, tmp_path, index_href=None).read_text()
    assert "This run has no cells." in html
    assert parse(html).links == ["trials.csv", "summary.csv", "summary.md"]  # no index link


def test_headlines_without_baseline(summary):
    without_baseline = summary[summary["model"] != "sequential"].assign(speedup=math.nan)
    assert task_headlines(numeric_summary(without_baseline)) == {
        "cpu_pure": "cpu_pure: no speedup available (no sequential baseline or no ok trials)"
    }
    assert task_headlines(numeric_summary(summary.iloc[0:0])) == {}


def test_a_best_model_is_named_only_when_the_rule_separates_it():
    """With the trials, the fastest model is 'best' only when it beats every other at the
    same workers by more than the margin; models the rule cannot separate tie."""

    def headline(threads_wall_s: float) -> str:
        rows = trials().assign(
            workers=lambda t: t["workers"].where(t["model"].ne("threads"), 4),
            wall_s=lambda t: t["wall_s"].where(t["model"].ne("threads"), threads_wall_s),
            repetition=lambda t: t.groupby("cell_id").cumcount(),
        )
        return task_headlines(numeric_summary(summarise_cells(rows, cores=4)), rows)["cpu_pure"]

    assert headline(1.0) == (
        "cpu_pure: at 4 workers, processes is best with 4.00× [4.00, 4.00] vs sequential, "
        "faster than "
        "every other model by more than 10%"
    )
    assert headline(0.52).startswith("cpu_pure: at 4 workers processes and threads tie")


def index_entry(run_id, started_at, **changes):
    entry = {
        "id": run_id,
        "name": f"run{run_id}",
        "status": "finished",
        "started_at": started_at,
        "host": "box",
        "interpreters": "python3",
        "trial_count": 10,
        "report_href": f"run-{run_id}/index.html",
        "verdicts": [
            {
                "claim": "threads_io",
                "title": "threads suit I/O",
                "verdict": "supported",
                "headline": "3.99× [3.98, 4.00]",
            },
            {
                "claim": "memory",
                "title": "processes use more memory",
                "verdict": "not measured",
                "headline": "",
            },
        ],
    }
    return {**entry, **changes}


def test_index_lists_runs_newest_first(tmp_path):
    runs = [
        index_entry(1, datetime(2024, 6, 1)),
        index_entry(3, datetime(2024, 6, 3)),
        index_entry(2, datetime(2024, 6, 2), name=SCRIPT),
    ]
    path = write_index(runs, tmp_path)
    assert path == tmp_path / "index.html"
    html = path.read_text()
    links = parse(html).links
    # per run: its id, its name, then one badge per claim linking to the evidence
    badges = ["#claim-threads_io", "#claim-memory"]
    assert links == [
        f"run-{run_id}/index.html{part}" for run_id in (3, 2, 1) for part in ("", "", *badges)
    ]
    assert 'class="badge badge-supported"' in html
    assert 'class="badge badge-not-measured"' in html
    assert ESCAPED_SCRIPT in html
    assert "<script" not in html


def test_index_without_runs(tmp_path):
    assert "No runs yet." in write_index([], tmp_path).read_text()


@pytest.mark.parametrize("href", ["https://example.org/run", "//example.org/x", "/abs/index.html"])
def test_index_rejects_links_that_are_not_relative(tmp_path, href):
    with pytest.raises(ValueError, match="relative"):
        write_index([index_entry(1, datetime(2024, 6, 1), report_href=href)], tmp_path)


def test_run_report_accepts_a_summary_read_back_from_sql(tmp_path, summary):
    summary = summary.assign(speedup_ci_low=math.nan, speedup_ci_high=math.nan, cv_wall=math.nan)
    as_from_sql = summary.astype(object).where(summary.notna(), None)
    html = write_run_report(run(), ENVIRONMENT, as_from_sql, {}, tmp_path).read_text()
    assert "cpu_pure: at 4 workers, processes is best with 4.00× vs sequential" in html


def test_task_facts_and_machine_warnings_are_shown_escaped(tmp_path, summary):
    cell_id = int(summary["cell_id"].iloc[0])
    facts = pd.DataFrame(
        {
            "cell_id": [cell_id, cell_id],
            "name": ["lost_updates", SCRIPT],
            "n": [3, 3],
            "median": [4.0, 0.25],
            "min": [0.0, 0.25],
            "max": [9.0, 0.25],
        }
    )
    html = write_run_report(
        run(), ENVIRONMENT, summary, {}, tmp_path, facts=facts, warnings=[f"busy {SCRIPT}"]
    ).read_text()
    assert "Task facts" in html
    assert '<td class="num">4 [0–9]</td>' in html
    assert '<td class="num">0.25</td>' in html
    assert "Warning: busy " + ESCAPED_SCRIPT in html
    assert "<script" not in html


def test_swept_variants_become_sections_of_their_own(summary):
    swept = summary.assign(variant=["transport=pickle"] + [""] * (len(summary) - 1))
    tasks = variant_sections(swept)["task"].tolist()
    assert tasks[0] == f"{summary['task'].iloc[0]} (transport=pickle)"
    assert tasks[1:] == summary["task"].tolist()[1:]
