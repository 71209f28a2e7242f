"""pipeline explore: what the page carries (against the views and the compare rule), and
the local server. The page in a real browser: tests/test_browser.py."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import app
from pipeline.cli import cli
from pipeline.results import explore
from pipeline.storage import readonly
from pipeline.storage.store import Store

from .helpers import FAKE_SPEC, fake_execute


@pytest.fixture
def two_runs(write_spec) -> Callable[[str], str]:
    def make(url: str) -> str:
        spec = write_spec(FAKE_SPEC)
        for _ in range(2):
            app.run(app.plan(spec), url, execute=fake_execute, reports_dir=None)
        return url

    return make


def test_the_data_is_the_cell_summary_verdicts_and_compare_of_every_run(two_runs, db_url):
    url = two_runs(db_url)
    data = explore.explorer_data(Store(url, read_only=True))  # as pipeline explore reads
    assert [run["id"] for run in data["runs"]] == [1, 2]
    view = readonly.query(
        url, "SELECT run_id, model, workers, median_wall_s, speedup FROM cell_summary"
    )
    carried = {
        (c["run_id"], c["model"], c["workers"]): (c["median_wall_s"], c["speedup"])
        for c in data["cells"]
    }
    assert carried == {
        (int(r.run_id), r.model, int(r.workers)): (float(r.median_wall_s), float(r.speedup))
        for _, r in view.iterrows()
    }
    claims = {(v["run_id"], v["claim"]): v["verdict"] for v in data["verdicts"]}
    for run_id in (1, 2):
        for found in app.verdicts(Store(url), run_id):
            assert claims[(run_id, found.claim)] == str(found.verdict)
    compared = app.compare_runs(Store(url), 1, 2)
    (pair,) = data["compared"]  # two runs, no hosts: one comparison
    assert (pair["run_a"], pair["run_b"], pair["host_a"]) == (1, 2, None)
    assert [row["verdict"] for row in pair["rows"]] == compared["verdict"].tolist()
    json.dumps(data, allow_nan=False)  # plain JSON: no NaN, no numpy types


def test_pairs_are_all_of_them_for_a_few_runs_else_neighbours_and_the_newest():
    assert explore.run_pairs([1, 2, 3]) == [(1, 2), (1, 3), (2, 3)]
    many = list(range(1, 11))
    pairs = explore.run_pairs(many)
    assert {(4, 5), (4, 10)} <= set(pairs)
    assert (4, 6) not in pairs
    assert len(pairs) == 9 + 8  # neighbours, and each older run with the newest


def test_out_writes_one_page_and_an_unknown_database_is_exit_2(
    two_runs, sqlite_url, tmp_path, cli_runner, write_spec
):
    url = two_runs(sqlite_url)
    page = tmp_path / "explorer.html"
    result = cli_runner.invoke(cli, ["explore", "--db", url, "--out", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert '<script type="application/json" id="explorer-data">' in text
    assert 'src="http' not in text  # everything inline (test_browser: no request at all)
    reports = tmp_path / "reports"  # a reports folder: its index links to the explorer
    app.build_report(Store(url), 1, reports)
    assert "explorer.html" not in (reports / "index.html").read_text()
    written = cli_runner.invoke(
        cli, ["explore", "--db", url, "--out", str(reports / "explorer.html")]
    )
    assert written.exit_code == 0, written.output
    assert 'href="explorer.html"' in (reports / "index.html").read_text()
    app.run(app.plan(write_spec(FAKE_SPEC)), url, execute=fake_execute, reports_dir=reports)
    assert '{"id":3' in (reports / "explorer.html").read_text()  # kept up to date by the run
    missing = cli_runner.invoke(
        cli,
        ["explore", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--out", str(tmp_path / "x.html")],
    )
    assert missing.exit_code == 2
    assert not (tmp_path / "x.html").exists()


def test_the_server_answers_on_localhost_with_the_page_rebuilt_each_visit(
    two_runs, sqlite_url, write_spec
):
    url = two_runs(sqlite_url)
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "explore", "--db", url, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        address = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert address, line
        assert '"runs":[{"id":1' in fetch(address.group(0))
        app.run(app.plan(write_spec(FAKE_SPEC)), url, execute=fake_execute, reports_dir=None)
        assert '{"id":3' in fetch(address.group(0))  # stored after the server started
        with pytest.raises(urllib.error.HTTPError, match="404") as refused:
            fetch(address.group(0) + "etc/passwd")
        refused.value.close()
        port = address.group(0).rsplit(":", 1)[1].strip("/")
        rebound = urllib.request.Request(address.group(0), headers={"Host": f"evil.example:{port}"})
        with pytest.raises(urllib.error.HTTPError, match="403") as refused:
            urllib.request.urlopen(rebound, timeout=30)  # a DNS-rebinding page's request
        refused.value.close()
    finally:
        # SIGTERM: under xdist the worker's SIGINT is ignored, and so is the server's
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        server.stdout.close()


def fetch(address: str) -> str:
    with urllib.request.urlopen(address, timeout=30) as answer:
        return answer.read().decode()


def test_the_vendored_plotly_is_npms_file_as_checked_in():
    import hashlib
    from importlib import resources

    vendor = resources.files("pipeline.publishing").joinpath("vendor")
    expected = vendor.joinpath("plotly-basic.sha256").read_text().strip()
    found = hashlib.sha256(vendor.joinpath("plotly-basic.min.js").read_bytes()).hexdigest()
    assert found == expected
    assert "MIT" in vendor.joinpath("plotly-basic.LICENSE").read_text()


def test_explore_writes_nothing_to_the_database(two_runs, sqlite_url, tmp_path, cli_runner):
    url = two_runs(sqlite_url)
    path = Path(url.removeprefix("sqlite:///"))
    files = [path, path.with_name(path.name + "-wal")]

    def fingerprint() -> list[str]:
        return [hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists()]

    before = fingerprint()
    result = cli_runner.invoke(cli, ["explore", "--db", url, "--out", str(tmp_path / "e.html")])
    assert result.exit_code == 0, result.output
    assert fingerprint() == before
