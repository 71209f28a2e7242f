"""The explorer page: one self-contained HTML file over every run of a database
(``results.explore`` gathers the data), and a local server that rebuilds it on each
visit, on 127.0.0.1 only, with the standard library.

The page needs no network: plotly.js (its basic bundle, from npm, vendored in
``vendor/`` with its licence) is inlined with the page's own script; the data is JSON in
a script element, escaped so that no value can end it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from markupsafe import Markup

from .files import templates

PLOTLY = "plotly-basic.min.js"  # npm plotly.js-basic-dist-min 3.7.0 (MIT): see vendor/


def plotly_js() -> str:
    """plotly.js, its basic bundle (scatter plots and the like), as vendored in the package:
    the full bundle took 1.35 s to load in chromium here, this one 0.4 s (make vendor)."""
    return resources.files("pipeline.publishing").joinpath("vendor", PLOTLY).read_text("utf-8")


def page(data: dict[str, Any], database: str) -> str:
    """The explorer as one HTML document."""
    code = resources.files("pipeline.publishing").joinpath("templates/explorer.js")
    scripts = {"plotly": plotly_js(), "code": code.read_text("utf-8")}
    for name, text in scripts.items():
        if "</script" in text.lower():  # would end the inline script early
            raise ValueError(f"the explorer's {name} script contains '</script'")
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (
        templates()
        .get_template("explorer.html.j2")
        .render(
            data=Markup(payload),
            plotly=Markup(scripts["plotly"]),
            code=Markup(scripts["code"]),
            database=database,
            runs=len(data["runs"]),
            cells=len(data["cells"]),
            generated=datetime.now(UTC).isoformat(sep=" ", timespec="seconds"),
        )
    )


def serve(build: Callable[[], str], port: int, ready: Callable[[str], None]) -> None:
    """Serve the page that ``build`` returns (asked at each visit) on 127.0.0.1:port
    (0: any free port) until Ctrl-C or SIGTERM; ``ready`` gets the address once
    listening. Call it from the main thread (it handles SIGTERM)."""

    allowed_hosts: set[str] = set()  # the Host headers of this server's own address

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Host") not in allowed_hosts:
                self.send_error(403, "the explorer answers to 127.0.0.1 only")  # no rebinding
                return
            if self.path.split("?")[0] not in ("/", "/index.html"):
                self.send_error(404, "the explorer is at /")
                return
            body = build().encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the terminal says where the page is, once

    def stop(_signal: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM stops it as Ctrl-C does (also where SIGINT is
        # ignored, as for a background job of a script)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
            bound = int(server.server_address[1])
            allowed_hosts.update({f"127.0.0.1:{bound}", f"localhost:{bound}"})
            ready(f"http://127.0.0.1:{bound}/")
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, previous)
