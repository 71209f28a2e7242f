"""docs/schema.md stays true: every table and column is named, every SQL example runs."""

from __future__ import annotations

import platform
import re
from pathlib import Path

from sqlmodel import SQLModel

from pipeline import app
from pipeline.storage import readonly, schema

from .test_app import SPEC, fake_execute

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
    app.run(app.plan(write_spec(SPEC)), db_url, execute=fake_execute, reports_dir=None)
    examples = re.findall(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(), re.S)
    assert len(examples) >= 3
    for sql in examples:
        params = {"host": platform.node()} if ":host" in sql else None
        frame = readonly.query(db_url, sql.strip().rstrip(";"), params)
        assert list(frame.columns), sql
    fastest = readonly.query(db_url, examples[0].strip().rstrip(";"))
    assert fastest[["task", "model"]].values.tolist() == [["io_sleep", "threads"]]
