"""The workbench schema: SQL files under ``sql/schema``, one per table, named for the table.

Each file states its table's key in a ``-- key: a, b`` comment; keys are not declared as
constraints because primary keys slow bulk loads and have broken WAL replay after crashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import duckdb

from crm_lab.contract import BOOKKEEPING_TABLES, EVENT_INPUT_COLUMNS, EVENT_TABLE, LOADABLE_TABLES
from crm_lab.errors import CrmLabError

_KEY_COMMENT = re.compile(r"^--\s*key:\s*(.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    required: bool


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def schema_sql(table: str) -> str:
    """The CREATE TABLE statement of a table, as shipped in the package."""
    return (files("crm_lab") / "sql" / "schema" / f"{table}.sql").read_text(encoding="utf-8")


class ForeignTableError(CrmLabError):
    """A table the load writes exists in the database without the columns crm_lab gives it."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every missing contract and bookkeeping table (idempotent), and refuse a database
    whose table of the same name lacks columns of ours (made by another tool, or by an older
    crm_lab), before a load would fail on it with DuckDB's binder error."""
    tables = LOADABLE_TABLES + BOOKKEEPING_TABLES
    for table in tables:
        con.execute(schema_sql(table))
    stored: dict[str, set[str]] = {}
    for table, column in con.sql(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND list_contains($tables, table_name)",
        params={"tables": list(tables)},
    ).fetchall():
        stored.setdefault(table, set()).add(column)
    for table in tables:
        missing = [c.name for c in table_spec(table).columns if c.name not in stored.get(table, set())]
        if missing:
            database = con.sql("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0]
            raise ForeignTableError(
                f"database {database} has a table {table} without crm_lab's column(s) {', '.join(missing)} "
                f"(it has {', '.join(sorted(stored.get(table, set())))}): it was made by another tool or an older "
                "crm_lab; load into a new database with --db"
            )


@cache
def table_spec(table: str) -> TableSpec:
    """Columns, types, required flags and key of a table, read from its SQL file via DuckDB."""
    ddl = schema_sql(table)
    match = _KEY_COMMENT.search(ddl)
    key = tuple(part.strip() for part in match.group(1).split(",")) if match else ()
    con = duckdb.connect()
    try:
        con.execute(ddl)
        rows = con.sql(
            "SELECT column_name, data_type, NOT is_nullable FROM duckdb_columns() "
            "WHERE table_name = ? ORDER BY column_index",
            params=[table],
        ).fetchall()
    finally:
        con.close()
    return TableSpec(table, key, tuple(Column(name, sql_type, required) for name, sql_type, required in rows))


def input_columns(table: str) -> list[Column]:
    """The columns a file supplies. For events: the contract's envelope, payload read as text
    (ingest validates it as JSON itself, to quarantine rather than reject a bad payload)."""
    columns = table_spec(table).columns
    if table != EVENT_TABLE:
        return list(columns)
    return [
        Column(c.name, "VARCHAR", False) if c.name == "payload" else c for c in columns if c.name in EVENT_INPUT_COLUMNS
    ]
