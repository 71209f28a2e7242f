"""``pipeline query``: one read-only SQL statement. SQLite is opened ``mode=ro`` with an
authorizer that refuses anything that writes; PostgreSQL runs it in a read-only
transaction."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ..errors import QueryError
from .engine import make_engine

_WRITE_ACTIONS = {
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    23,
    24,
    25,
    26,
    27,
    29,
    30,
    32,
}
_READ_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "database_list",
    "table_list",
    "collation_list",
    "function_list",
    "pragma_list",
    "compile_options",
}
_DENY, _OK = 1, 0


def _read_only_authorizer(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    if action in _WRITE_ACTIONS:
        return _DENY
    if action == 19 and arg2 is not None and (arg1 or "").lower() not in _READ_PRAGMAS:
        return _DENY  # a PRAGMA that sets a value
    return _OK


def query(url: str, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run one read-only statement; anything that would write raises QueryError."""
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                raw = connection.connection.driver_connection
                raw.set_authorizer(_read_only_authorizer)  # type: ignore[union-attr]
            else:
                connection.execute(text("SET TRANSACTION READ ONLY"))
            if engine.dialect.name == "sqlite":  # sqlite3 binds :name itself
                result = connection.exec_driver_sql(sql, () if params is None else params)
            else:  # other drivers use other placeholders: let SQLAlchemy bind :name
                result = connection.execute(text(sql), params or {})
            if not result.returns_rows:
                raise QueryError("the statement returned no rows; pipeline query only reads")
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    except DBAPIError as error:
        message = str(error.orig).strip()
        if "not authorized" in message or "readonly" in message or "read-only" in message:
            raise QueryError(
                f"refused: the statement would write ({message}); pipeline query is read-only"
            ) from None
        raise QueryError(f"bad SQL: {message}") from None
    finally:
        engine.dispose()
