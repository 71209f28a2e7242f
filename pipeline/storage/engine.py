"""Opening a results database: URLs, engines (SQLite pragmas, no pool for servers), and
creating or migrating the schema, one process at a time."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel, create_engine

from ..errors import DatabaseError
from .schema import SCHEMA_VERSION, VIEWS

DEFAULT_DB_PATH = Path("data") / "results.db"
SCHEMA_LOCK_KEY = 0x70697065  # PostgreSQL advisory lock taken while creating the schema


def default_url() -> str:
    """``$PIPELINE_DB`` if set, else ``data/results.db`` under the working directory."""
    return os.environ.get("PIPELINE_DB") or f"sqlite:///{DEFAULT_DB_PATH}"


def shown_url(url: str) -> str:
    """The URL as people may see it: any password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: show nothing of it
        return "the database"


def require_existing(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (what only reads must not create)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database)
        if not path.exists():
            raise DatabaseError(f"{path}: no such database (pipeline run creates one)")


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() != "sqlite":
        # no pool: a connection is closed as soon as it is released, so short-lived
        # commands and tests leave nothing open on the server
        engine = create_engine(url, poolclass=NullPool)
        return engine.execution_options(postgresql_readonly=True) if read_only else engine
    if not parsed.database:
        return create_engine(url)  # in-memory SQLite: one connection, kept
    path = Path(parsed.database)
    if read_only:
        if not path.exists():
            raise DatabaseError(f"{path}: database file not found")
        engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas(read_only))
    if not read_only:
        event.listen(engine, "begin", _sqlite_begin)
    return engine


IMMEDIATE = "pipeline_immediate"  # execution option: open the transaction BEGIN IMMEDIATE


def _sqlite_begin(connection: Any) -> None:
    """Open each transaction ourselves (pysqlite's own implicit BEGIN is off, see
    _sqlite_pragmas): BEGIN IMMEDIATE where the IMMEDIATE option is set, so that a write
    that reads first takes the write lock before it reads (two such transactions would
    otherwise both read, and the second to write fail at once with "database is locked",
    whatever the busy timeout), plain BEGIN otherwise."""
    immediate = connection.get_execution_options().get(IMMEDIATE)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(read_only: bool) -> Any:
    def on_connect(connection: Any, _record: Any) -> None:
        if not read_only:
            connection.isolation_level = None  # transactions are begun by _sqlite_begin
        cursor = connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash of the process (not a power cut)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def add_missing_columns(engine: Engine) -> list[str]:
    """Migrate a database made by an older version: add the columns it lacks.

    Every schema change so far only added nullable or defaulted columns (and tables, which
    ``create_all`` makes), so an ALTER TABLE ... ADD COLUMN per missing column is the whole
    migration. Returns the ``table.column`` names added.
    """
    inspector = inspect(engine)
    added = []
    with engine.begin() as connection:
        for table in SQLModel.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                default = getattr(column.default, "arg", None)
                clause = ""
                if isinstance(default, bool):
                    clause = f" DEFAULT {str(default).upper()}"  # TRUE/FALSE: both dialects
                elif isinstance(default, int | float):
                    clause = f" DEFAULT {default}"
                elif isinstance(default, str):
                    clause = " DEFAULT '" + default.replace("'", "''") + "'"
                connection.execute(
                    text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}')
                )
                added.append(f"{table.name}.{column.name}")
    return added


def create_schema(engine: Engine, url: str) -> None:
    """Tables, added columns, indexes and views, by one process at a time: on
    PostgreSQL under an advisory lock; on SQLite, two processes opening a new database
    at once race ("table ... already exists") and the loser waits and checks again."""
    if engine.dialect.name != "postgresql":
        _create_schema_retrying(engine, url)
        return
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        try:
            _create_schema_retrying(engine, url)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})


def _create_schema_retrying(engine: Engine, url: str, attempts: int = 20) -> None:
    for attempt in range(attempts):
        try:
            SQLModel.metadata.create_all(engine)
            add_missing_columns(engine)
            for table in SQLModel.metadata.sorted_tables:  # indexes added since
                for index in table.indexes:
                    index.create(engine, checkfirst=True)
            _create_views(engine)
            return
        except OperationalError as error:
            message = str(error.orig)
            # the other process created it first, or both read and then tried to write
            # (SQLite refuses one at once, whatever the busy timeout)
            racing = any(
                sign in message
                for sign in ("already exists", "duplicate column", "database is locked")
            )
            if not racing or attempt == attempts - 1:
                raise DatabaseError(f"cannot open database {url}: {error.orig}") from None
            time.sleep(0.05 * (attempt + 1))


def _create_views(engine: Engine) -> None:
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as connection:
        for name, body in VIEWS.items():
            # dropped first: CREATE OR REPLACE cannot reorder a view's columns
            cascade = "" if sqlite else " CASCADE"
            connection.execute(text(f"DROP VIEW IF EXISTS {name}{cascade}"))
            connection.execute(text(f"CREATE VIEW {name} AS {body}"))
        connection.execute(text("DELETE FROM meta WHERE key = 'schema_version'"))
        connection.execute(
            text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)"),
            {"v": str(SCHEMA_VERSION)},
        )
