"""Read-only workbench connections, optionally scoped to one company.

A workbench connection is an in-memory DuckDB that attaches the workbench file read-only and
defines a view under every table's name (for a company: only that company's rows); the public
views and macros are then created again on top of those views, so ``deals_as_of``,
``pipeline_movement`` and the rest answer for that company only. Being in memory, the session can
also hold notebook parameters (:func:`set_parameters`) that SQL reads with ``param('name')``.

Everything lives in the in-memory database, not in session state, because jupysql runs queries
on ``cursor()`` connections, which share the database but not the session. The company is
checked against the companies the file holds before it is written into the view definitions,
so only a known company id ever reaches SQL text.

Scoping keeps an analyst's queries inside one tenant; it is not a security boundary (the
attached file stays reachable by its qualified name ``workbench.main.<table>``)."""

from __future__ import annotations

import os
import re
from importlib.resources import files
from pathlib import Path

import duckdb

from crm_lab.db import DEFAULT_DB, connect, retry_while_locked
from crm_lab.errors import InvalidArgument

ATTACHED = "workbench"
# SQL files that define public views and macros over the tables, re-created in every session.
PUBLIC_VIEW_FILES = ("replay/views.sql",)
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def open_connection(db_path: str | os.PathLike = DEFAULT_DB, company: str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only workbench connection, scoped to ``company`` when given."""
    if company is not None and (not isinstance(company, str) or not company):
        raise InvalidArgument(f"company must be a non-empty company_id, got {company!r}")
    if not Path(db_path).exists():
        connect(db_path, read_only=True)  # raises DatabaseMissingError with what to do
    con = duckdb.connect()
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    retry_while_locked(lambda: con.execute(f"ATTACH ? AS {ATTACHED} (READ_ONLY)", [str(db_path)]), Path(db_path))
    tables = [
        (name, has_company)
        for name, has_company in con.sql(
            "SELECT table_name, bool_or(column_name = 'company_id') FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = 'main' AND NOT internal "
            "AND table_name IN (SELECT table_name FROM duckdb_tables() WHERE database_name = ?) "
            "GROUP BY ALL ORDER BY 1",
            params=[ATTACHED, ATTACHED],
        ).fetchall()
    ]
    if company is not None:
        _check_known(con, company, {name for name, _ in tables}, db_path)
    for table, has_company in tables:
        source_name = f'{ATTACHED}.main."{table}"'
        if company is None:
            con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM {source_name}')
        elif has_company:
            # `company` is one of the ids the file holds (checked above), so quoting it is safe.
            literal = "'" + company.replace("'", "''") + "'"
            con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM {source_name} WHERE company_id = {literal}')
        # Tables without company_id (load_runs, load_rejects, replay_runs) span tenants: not shown.
    con.execute("CREATE TABLE crm_lab_parameters (name VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("CREATE MACRO param(parameter_name) AS (SELECT value FROM crm_lab_parameters WHERE name = parameter_name)")
    if any(name == "deal_history" for name, _ in tables):
        for relative in PUBLIC_VIEW_FILES:
            con.execute((files("crm_lab") / "sql" / relative).read_text(encoding="utf-8"))
    return con


def set_parameters(con: duckdb.DuckDBPyConnection, **values) -> None:
    """Store values for SQL to read as ``param('name')`` (text; cast where used). They are bound,
    never formatted into a query, and visible to jupysql's cursors."""
    for name, value in values.items():
        if not PARAMETER_NAME.fullmatch(name):
            raise InvalidArgument(f"parameter names are letters, digits and underscores, got {name!r}")
        con.execute("INSERT OR REPLACE INTO crm_lab_parameters VALUES (?, CAST(? AS VARCHAR))", [name, value])


def _check_known(con: duckdb.DuckDBPyConnection, company: str, tables: set[str], db_path) -> None:
    sources = [f"SELECT company_id FROM {ATTACHED}.main.{t}" for t in ("companies", "events") if t in tables]
    known = set()
    if sources:
        known = {c for (c,) in con.sql(" UNION ".join(sources)).fetchall()}
    if company not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise InvalidArgument(f"company {company!r} is not in {db_path}: known companies are {listed}")
