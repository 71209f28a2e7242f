"""The report in a real browser: Debian's headless chromium, driven by Playwright.

No browser is downloaded: Playwright launches the system's chromium. Where it is missing
the tests skip with the reason, except under ``PIPELINE_REQUIRE_BROWSER=1`` (set by
.ci/run, which installs chromium), where they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import app
from pipeline.storage import readonly, schema, store

from .helpers import FAKE_SPEC, fake_execute

CHROMIUM = next(
    (
        path
        for path in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "")
        if path and Path(path).exists()
    ),
    None,
)
if CHROMIUM is None:
    if os.environ.get("PIPELINE_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium is required (PIPELINE_REQUIRE_BROWSER=1) but not installed")
    pytest.skip("no chromium: apt-get install chromium (.ci/run does)", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

HOSTILE = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
LINK = '<a href="https://evil.example/x">CLICK</a><b>BIG</b>'  # markup plotly would honour


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def report(tmp_path: Path, spec_text: str) -> Path:
    """A real report of a (fake-executed) run, with charts, verdicts and tables."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    outcome = app.run(app.plan(spec), url, execute=fake_execute, reports_dir=tmp_path / "site")
    assert outcome.report_path is not None
    assert store.Store(url).resolve_run(1).status == "finished"
    return outcome.report_path


class Visit:
    """A page opened from a file, with every console error and request recorded."""

    def __init__(self, browser: Browser, path: Path) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page: Page = browser.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")


def test_report_loads_offline_with_every_chart_visible(browser: Browser, tmp_path: Path) -> None:
    page_path = report(tmp_path, FAKE_SPEC)
    visit = Visit(browser, page_path)
    assert visit.errors == []
    assert visit.requests == [page_path.as_uri()]  # nothing but the page itself
    charts = visit.page.locator("svg[role=img]")
    assert charts.count() >= 1
    for index in range(charts.count()):
        chart = charts.nth(index)
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 150
        assert chart.get_attribute("aria-label")
    assert visit.page.locator("ul.verdicts > li").count() == 11
    shot = tmp_path / "site" / "report.png"
    visit.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000


def test_hostile_spec_text_shows_and_runs_nothing(browser: Browser, tmp_path: Path) -> None:
    hostile = FAKE_SPEC.replace("name: fake", f"name: fake\ndescription: {HOSTILE!r}")
    visit = Visit(browser, report(tmp_path, hostile))
    assert visit.page.evaluate("window.pwned") is None
    assert visit.errors == []
    assert HOSTILE in visit.page.inner_text("header")
    assert HOSTILE in visit.page.inner_text("pre")  # the spec itself, shown as text


@pytest.fixture
def explored(db_url: str, tmp_path: Path) -> tuple[str, Path]:
    """A database (SQLite, and PostgreSQL under .ci/run) with two fake runs, a pyperf
    suite whose benchmarks have hostile names (run 3) and a run on two hosts (run 4);
    the explorer page written over it."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(FAKE_SPEC)
    for _ in range(2):
        app.run(app.plan(spec), db_url, execute=fake_execute, reports_dir=None)
    suite = tmp_path / "suite.json"
    runs = [{"metadata": {"loops": 1}, "values": [0.01, 0.02]}]
    benchmarks = [{"metadata": {"name": name}, "runs": runs} for name in (HOSTILE, LINK)]
    suite.write_text(json.dumps({"version": "1.0", "benchmarks": benchmarks}))
    app.import_pyperf(db_url, suite)
    hosts_each_run(db_url)
    page = tmp_path / "explorer.html"
    page.write_text(app.explorer_page(store.Store(db_url), "test database"))
    return db_url, page


def hosts_each_run(url: str) -> int:
    """A stored run whose cells ran on hosts alpha and beta (as `hosts: each` stores
    them; beta's threads 20% slower), with its statistics; its id."""
    results = store.Store(url)
    keys = [
        (host, model, workers)
        for host in ("alpha", "beta")
        for model, workers in (("sequential", 1), ("threads", 4))
    ]
    cells = [
        schema.CellRow(
            run_id=0,
            position=n,
            task="io_sleep",
            model=m,
            workers=w,
            payload_bytes=1024,
            interpreter="python3",
            host=h,
        )
        for n, (h, m, w) in enumerate(keys)
    ]
    run = results.create_run(
        schema.Run(name="each", status="running"), schema.EnvironmentRow(run_id=0), cells
    )
    assert run.id is not None
    ids = results.cell_ids(run.id)
    trials = []
    for n, (host, model, _) in enumerate(keys):
        base = 0.4 if model == "sequential" else 0.1 * (1.2 if host == "beta" else 1.0)
        for repetition, noise in enumerate((0.99, 1.0, 1.01, 1.0, 0.995, 1.005)):
            trial = schema.Trial(
                run_id=run.id,
                cell_id=ids[n],
                sequence=len(trials),
                repetition=repetition,
                status="ok",
                wall_s=base * noise,
                host=host,
            )
            trials.append((trial, None))
    results.add_trials(trials)
    results.finish_run(run.id, "finished")
    app.summarise(results, run.id)
    return run.id


def plotted(visit: Visit) -> list[dict[str, object]]:
    """Each plotted series: its cell keys (meta) and its points."""
    return visit.page.evaluate(
        "document.getElementById('plot').data.map(t => ({meta: t.meta, x: t.x, y: t.y}))"
    )


Point = tuple[int, str, str, str, int]  # run, task, host, model, workers: a cell


def queried(url: str, metric: str, where: str) -> dict[Point, float]:
    rows = readonly.query(
        url,
        f"SELECT run_id, task, host, model, workers, {metric} FROM cell_summary WHERE {where}",
    )
    return {
        (int(r.run_id), str(r.task), str(r.host or ""), str(r.model), int(r.workers)): float(
            r[metric]
        )
        for _, r in rows.iterrows()
    }


def points(series: list[dict[str, object]]) -> dict[Point, float]:
    found = {}
    for trace in series:
        meta = trace["meta"]
        assert isinstance(meta, dict)
        for x, y in zip(trace["x"], trace["y"], strict=True):  # type: ignore[call-overload]
            key = (
                int(meta["run_id"]),
                str(meta["task"]),
                str(meta["host"] or ""),
                str(meta["model"]),
                int(x),
            )
            assert key not in found  # one point per cell
            found[key] = float(y)
    return found


def test_the_explorer_plots_what_query_says_as_runs_and_filters_change(
    browser: Browser, explored: tuple[str, Path]
) -> None:
    url, page_path = explored
    visit = Visit(browser, page_path)
    visit.page.wait_for_function("document.getElementById('plot').data !== undefined")
    assert visit.errors == []
    assert visit.requests == [page_path.as_uri()]  # offline: plotly.js is inline
    assert visit.page.evaluate("window.pwned") is None  # a hostile name is only text
    assert HOSTILE in visit.page.inner_text("#filters")
    assert visit.page.locator("#plot a[href*='evil']").count() == 0  # a name is not a link
    legend = visit.page.eval_on_selector_all("#plot .legendtext", "t => t.map(e => e.textContent)")
    assert any(LINK in text for text in legend)  # shown as the text it is
    assert points(plotted(visit)) == queried(url, "median_wall_s", "true")

    visit.page.uncheck("#runs input[data-run='2']")
    visit.page.uncheck("#runs input[data-run='4']")
    visit.page.select_option("#filters select[data-axis='model']", "threads")
    shown = plotted(visit)
    assert {trace["meta"]["run_id"] for trace in shown} == {1}  # type: ignore[index]
    assert points(shown) == queried(url, "median_wall_s", "run_id = 1 AND model = 'threads'")

    visit.page.select_option("#metric", "speedup")
    assert points(plotted(visit)) == queried(url, "speedup", "run_id = 1 AND model = 'threads'")

    visit.page.select_option("#compare-a", "1")
    visit.page.select_option("#compare-b", "2")
    verdicts = visit.page.eval_on_selector_all(
        "#compare tbody tr", "rows => rows.map(r => r.dataset.verdict)"
    )
    expected = app.compare_runs(store.Store(url), 1, 2)
    assert verdicts == expected["verdict"].tolist()
    assert visit.page.locator("#verdicts tr[data-claim]").count() == 11

    visit.page.select_option("#compare-a", "4@alpha")  # two hosts of one run
    visit.page.select_option("#compare-b", "4@beta")
    hosts = visit.page.eval_on_selector_all(
        "#compare tbody tr", "rows => rows.map(r => r.dataset.verdict)"
    )
    expected = app.compare_hosts(store.Store(url), 4, "alpha", "beta")
    assert hosts == expected["verdict"].tolist()
    assert "slower" in hosts  # beta's threads are 20% slower: the rule sees it
    assert visit.errors == []
