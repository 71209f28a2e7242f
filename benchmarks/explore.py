"""Time for the explorer to open over a database of 100,000 trials (goal: 3 s at most).

The database holds one synthetic run of about 100,000 trials (benchmarks/report.py's),
with its cell statistics. Timed: building the page (reading every run, its verdicts and
comparisons: what `pipeline explore` does at each visit), then, in headless chromium
where it is installed, opening the page until the plot is drawn; the goal is on the sum.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from pipeline import app

from .report import synthetic_database

CHROMIUM = next(
    (
        p
        for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "")
        if p and Path(p).exists()
    ),
    None,
)


def open_in_chromium(page: Path) -> float:
    """Seconds from navigation until plotly has drawn the plot."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page()
        started_s = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_function("document.getElementById('plot').data !== undefined")
        opened_s = time.perf_counter() - started_s
        browser.close()
    return opened_s


def main(trials: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url, results, run_id, counted = synthetic_database(folder, trials)
        app.summarise(results, run_id)
        started_s = time.perf_counter()
        html = app.explorer_page(results, url)
        build_s = time.perf_counter() - started_s
        page = Path(folder, "explorer.html")
        page.write_text(html, encoding="utf-8")
        print(f"explorer over {counted} trials ({len(results.summary_frame(run_id))} cells)")
        print(f"page built (data, verdicts, page): {build_s:6.2f} s, {len(html) / 1e6:.2f} MB")
        if CHROMIUM is None:
            print("chromium not installed: the time to open the page is not measured")
            return
        opened_s = open_in_chromium(page)
        print(f"opened in chromium until drawn:    {opened_s:6.2f} s")
        print(
            f"built and opened:                  {build_s + opened_s:6.2f} s  (goal: at most 3 s)"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
