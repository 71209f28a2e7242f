"""docs/schema.md stays true: every table and column is named, every SQL example runs."""

from __future__ import annotations

import platform
import re
import shlex
import sqlite3
from pathlib import Path

import pytest
from sqlmodel import SQLModel
from typer.testing import CliRunner

from pipeline import app
from pipeline.storage import readonly, schema

from .helpers import FAKE_SPEC, ROOT, fake_execute

SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"


def test_every_table_and_column_is_documented() -> None:
    text = SCHEMA_DOC.read_text()
    for table in SQLModel.metadata.sorted_tables:
        assert f"### `{table.name}`" in text, table.name
        for column in table.columns:
            assert f"`{column.name}`" in text, f"{table.name}.{column.name}"
    for view in schema.VIEWS:
        assert f"`{view}`" in text, view


def test_every_sql_example_runs(write_spec, db_url) -> None:
    app.run(app.plan(write_spec(FAKE_SPEC)), db_url, execute=fake_execute, reports_dir=None)
    examples = re.findall(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(), re.S)
    assert len(examples) >= 3
    for sql in examples:
        params = {"host": platform.node()} if ":host" in sql else None
        frame = readonly.query(db_url, sql.strip().rstrip(";"), params)
        assert list(frame.columns), sql
    fastest = readonly.query(db_url, examples[0].strip().rstrip(";"))
    assert fastest[["task", "model"]].values.tolist() == [["io_sleep", "threads"]]


# -- README: every command and option documented, every shell example run ----------------------
README = SCHEMA_DOC.parent.parent / "README.md"
# README lines that are the set-up itself (CI runs them: .ci/run calls make), not examples
SETUP_COMMANDS = ("make run", "make test")


def _readme_rows() -> dict[str, str]:
    """The command table's row of each command: 'run' -> the row's text."""
    found = re.finditer(r"^\| `pipeline (\w+)[^\n]*", README.read_text(), re.M)
    return {match.group(1): match.group(0) for match in found}


def test_every_command_and_option_of_the_help_is_in_the_readme() -> None:
    import typer.main

    from pipeline.cli import cli

    rows = _readme_rows()
    group = typer.main.get_command(cli)
    commands = group.commands  # type: ignore[attr-defined]
    assert commands, "no commands found"
    for name, command in commands.items():
        assert name in rows, f"pipeline {name} has no row in README's command table"
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            assert any(opt in rows[name] for opt in param.opts), (
                f"pipeline {name} {'/'.join(param.opts)} is not in its README row"
            )


def _shell_commands(text: str) -> list[list[str]]:
    """The commands of the README's ```sh blocks: continuation lines (indented) joined,
    comments dropped."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and commands:
                if not line.strip().startswith("#"):
                    commands[-1] += " " + line.strip()
            elif line.strip():
                commands.append(line.strip())
    return [shlex.split(command, comments=True) for command in commands]


def test_every_shell_example_in_the_readme_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_runner: CliRunner
) -> None:
    """Each ``pipeline`` example exits 0 against a database of two (fake) runs, in a folder
    laid out like the project's; the ``sqlite3`` one gives rows. Only the set-up commands
    (``make run``, ``make test``: what CI itself runs) are left out."""
    from pipeline.cli import cli, normalise_args

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINE_DB", raising=False)
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    spec = tmp_path / "fake.yaml"
    spec.write_text(FAKE_SPEC)
    for _ in range(2):
        app.run(app.plan(spec), app.database_url(), execute=fake_execute, reports_dir=None)
    commands = _shell_commands(README.read_text())
    ran = 0
    for words in commands:
        command = " ".join(words)
        if command.startswith(SETUP_COMMANDS):
            continue
        if words[0] == "pipeline":
            result = cli_runner.invoke(cli, normalise_args(words[1:]))
            assert result.exit_code == 0, f"{command}\n{result.output}"
        elif words[0] == "sqlite3":
            database, sql = words[1], words[2]
            with sqlite3.connect(database) as connection:
                assert connection.execute(sql).fetchall(), command
        else:
            raise AssertionError(f"README example {command!r}: no way to run it here")
        ran += 1
    assert ran >= 10, commands
