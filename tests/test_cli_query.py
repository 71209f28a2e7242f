"""pipeline query: read-only SQL over the results on every backend and in every format."""

from __future__ import annotations

import sqlite3

from pipeline.cli import cli

from .helpers import FAKE_SPEC, fake_execute


def test_query_refuses_to_write(cli_runner, tmp_path) -> None:
    db_file = tmp_path / "r.db"
    sqlite3.connect(db_file).execute("CREATE TABLE t (x)")
    result = cli_runner.invoke(cli, ["query", "--db", f"sqlite:///{db_file}", "DROP TABLE t"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: refused: the statement would write")
    assert sqlite3.connect(db_file).execute("SELECT count(*) FROM sqlite_master").fetchone() == (1,)


def test_query_formats(cli_runner, tmp_path) -> None:
    db_file = tmp_path / "r.db"
    connection = sqlite3.connect(db_file)
    connection.execute("CREATE TABLE t (a, b)")
    connection.execute("INSERT INTO t VALUES (1, 'x|y')")
    connection.commit()
    url = f"sqlite:///{db_file}"
    markdown = cli_runner.invoke(cli, ["query", "--db", url, "-f", "markdown", "SELECT * FROM t"])
    assert markdown.stdout == "| a | b |\n|---|---|\n| 1 | x\\|y |\n"
    table = cli_runner.invoke(cli, ["query", "--db", url, "SELECT * FROM t"])
    assert "x|y" in table.stdout


def test_query_reads_binds_and_refuses_writes_on_every_backend(cli_runner, write_spec, db_url):
    from pipeline import app

    app.run(app.plan(write_spec(FAKE_SPEC)), db_url, execute=fake_execute, reports_dir=None)
    read = cli_runner.invoke(
        cli,
        [
            "query",
            "--db",
            db_url,
            "-f",
            "csv",
            "SELECT count(*) AS n FROM trial_results WHERE model = :m",
            "-p",
            "m=threads",
        ],
    )
    assert read.exit_code == 0, read.output
    assert read.stdout == "n\n3\n"
    for statement in ("DELETE FROM trial", "DROP VIEW cell_summary", "UPDATE run SET name = 'x'"):
        refused = cli_runner.invoke(cli, ["query", "--db", db_url, statement])
        assert refused.exit_code == 2
        assert refused.stderr.startswith("error: refused: the statement would write (")
    assert store_count(db_url) == 8  # nothing was deleted


def store_count(url: str) -> int:
    from pipeline.storage import readonly

    return int(readonly.query(url, "SELECT count(*) AS n FROM trial")["n"][0])
