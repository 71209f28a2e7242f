"""The documents stay true: docs/schema.md names every table and column and its SQL runs;
docs/cli.md's table has every command and option; every shell example of README.md and
docs/*.md runs; docs/architecture.md's code map names every module; README.md stays short
and its links (and the docs') lead somewhere."""

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


# -- README and docs/: every command and option documented, every shell example run -------------
ROOT_DIR = SCHEMA_DOC.parent.parent
DOCS = SCHEMA_DOC.parent
README = ROOT_DIR / "README.md"
CLI_DOC = DOCS / "cli.md"  # the command table
ARCHITECTURE_DOC = DOCS / "architecture.md"  # the code map
SPEC_DOC = DOCS / "spec.md"  # the cluster set-up
README_MAX_LINES = 250
# README lines that are the set-up itself (CI runs them: .ci/run calls make), not examples
SETUP_COMMANDS = ("make run", "make test")


def _markdown_files() -> list[Path]:
    """The README and every document under docs/: where shell examples and links are."""
    return [README, *sorted(DOCS.glob("*.md"))]


def _command_rows() -> dict[str, str]:
    """The command table's row of each command: 'run' -> the row's text."""
    found = re.finditer(r"^\| `pipeline ([\w-]+)[^\n]*", CLI_DOC.read_text(), re.M)
    return {match.group(1): match.group(0) for match in found}


def test_every_command_and_option_of_the_help_is_in_the_command_table() -> None:
    import typer.main

    from pipeline.cli import cli

    rows = _command_rows()
    group = typer.main.get_command(cli)
    commands = group.commands  # type: ignore[attr-defined]
    assert commands, "no commands found"
    for name, command in commands.items():
        assert name in rows, f"pipeline {name} has no row in docs/cli.md's command table"
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            assert any(opt in rows[name] for opt in param.opts), (
                f"pipeline {name} {'/'.join(param.opts)} is not in its row of docs/cli.md"
            )


def _shell_commands(text: str) -> list[list[str]]:
    """The commands of a document's ```sh blocks: continuation lines (indented) joined,
    comments dropped. Commands that cannot run here (servers, make targets) belong in
    ```console, ```text or ```bash blocks instead."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and commands:
                if not line.strip().startswith("#"):
                    commands[-1] += " " + line.strip()
            elif line.strip():
                commands.append(line.strip())
    return [shlex.split(command, comments=True) for command in commands]


def test_every_shell_example_in_the_docs_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_runner: CliRunner
) -> None:
    """Each ``pipeline`` example of README.md and docs/*.md exits 0 against a database of
    two (fake) runs, in a folder laid out like the project's; each ``sqlite3`` one gives
    rows. Only the set-up commands (``make run``, ``make test``: what CI itself runs) are
    left out."""
    from pipeline.cli import cli, normalise_args

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINE_DB", raising=False)
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    spec = tmp_path / "fake.yaml"
    spec.write_text(FAKE_SPEC)
    for _ in range(2):
        app.run(app.plan(spec), app.database_url(), execute=fake_execute, reports_dir=None)
    ran = 0
    for doc in _markdown_files():
        where = doc.relative_to(ROOT_DIR)
        for words in _shell_commands(doc.read_text()):
            command = " ".join(words)
            if command.startswith(SETUP_COMMANDS):
                continue
            if words[0] == "pipeline":
                result = cli_runner.invoke(cli, normalise_args(words[1:]))
                assert result.exit_code == 0, f"{where}: {command}\n{result.output}"
            elif words[0] == "sqlite3":
                database, sql = words[1], words[2]
                with sqlite3.connect(database) as connection:
                    assert connection.execute(sql).fetchall(), f"{where}: {command}"
            else:
                raise AssertionError(
                    f"{where}: example {command!r}: no way to run it here (show it in a "
                    "```console or ```text block instead of ```sh)"
                )
            ran += 1
    assert ran >= 10, ran


# -- the code map, the README's length, the links ---------------------------------------------
def _section(text: str, heading: str) -> str:
    """The text under a '## ' heading, up to the next '## ' heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_code_map_names_every_module_and_no_module_that_is_gone() -> None:
    """docs/architecture.md's "Where things are" names every module file of pipeline/ (as a
    path under pipeline/, e.g. `execution/runner.py`), and every path it names exists."""
    package = ROOT_DIR / "pipeline"
    code_map = _section(ARCHITECTURE_DOC.read_text(), "Where things are")
    named = set(re.findall(r"`((?:[\w.]+/)*\w+\.py)`", code_map))
    modules = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    }
    missing = sorted(modules - named)
    assert not missing, f"docs/architecture.md's code map lacks a line for: {missing}"
    gone = sorted(name for name in named if not (package / name).is_file())
    assert not gone, f"docs/architecture.md's code map names modules that do not exist: {gone}"


def test_the_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail into docs/"
    )


def _without_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives a document's headings."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#+ (.*)$", _without_code_blocks(doc.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower())
        slug = slug.replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_every_relative_link_leads_somewhere() -> None:
    """Every relative link of README.md and docs/*.md points to an existing file, and a
    link to a heading (file.md#heading) to a heading that is there."""
    checked = 0
    for doc in _markdown_files():
        links = re.findall(r"\]\(([^)\s]+)\)", _without_code_blocks(doc.read_text()))
        for link in links:
            if re.match(r"[a-z]+:", link):  # https:, mailto:
                continue
            path, _, anchor = link.partition("#")
            target = (doc.parent / path).resolve() if path else doc
            where = f"{doc.relative_to(ROOT_DIR)}: {link}"
            assert target.exists(), f"{where}: no such file"
            if anchor and target.suffix == ".md":
                assert anchor in _anchors(target), f"{where}: no such heading"
            checked += 1
    assert checked >= 8, checked


def test_the_cluster_set_up_uses_the_commands_the_cluster_tests_run() -> None:
    """docs/spec.md's team set-up (a ```bash block: it starts servers, so the shell-example
    test does not run it) uses the scheduler and worker commands that tests/test_cluster.py's
    LocalCluster runs."""
    section = _section(SPEC_DOC.read_text(), "Clusters: many hosts, one database")
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    assert "dask scheduler --port 8786" in block
    workers = [line for line in block.splitlines() if line.startswith("dask worker")]
    assert len(workers) == 2
    for line in workers:
        assert "--nthreads 1 --resources host=1 --name" in line
    assert "pipeline run experiments/quick.yaml --cluster tcp://127.0.0.1:8786" in block
