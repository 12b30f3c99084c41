"""Workbench connections scoped to one company.

A scoped connection is an in-memory DuckDB that attaches the workbench file read-only and
defines, under every public name, a view of that name's rows for one company; the public views
and macros are then created again on top of those views, so ``deals_as_of``,
``pipeline_movement`` and the rest answer for that company only. The company reaches SQL as a
bound value (a DuckDB variable), never by string formatting.

This keeps an analyst's queries inside one tenant; it is not a security boundary (the attached
file stays reachable by its qualified name ``workbench.main.<table>``)."""

from __future__ import annotations

import os
from importlib.resources import files

import duckdb

from crm_lab.db import DEFAULT_DB, connect
from crm_lab.errors import InvalidArgument

ATTACHED = "workbench"
# SQL files that define public views and macros over the tables, re-created in scoped sessions.
PUBLIC_VIEW_FILES = ("replay/views.sql",)


def open_connection(db_path: str | os.PathLike = DEFAULT_DB, company: str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the workbench, scoped to ``company`` when given."""
    if company is None:
        return connect(db_path, read_only=True)
    if not isinstance(company, str) or not company:
        raise InvalidArgument(f"company must be a non-empty company_id, got {company!r}")
    source = connect(db_path, read_only=True)  # waits for a writer's lock and checks the file exists
    source.close()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH ? AS {ATTACHED} (READ_ONLY)", [str(db_path)])
    known = {c for (c,) in con.sql(f"SELECT DISTINCT company_id FROM {ATTACHED}.main.companies").fetchall()} if _has_table(con, "companies") else set()
    if known and company not in known:
        raise InvalidArgument(f"company {company!r} is not in {db_path}: known companies are {', '.join(sorted(known))}")
    con.execute("SET VARIABLE crm_lab_company = ?", [company])
    for (table,) in con.sql(
        "SELECT DISTINCT table_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
        "AND column_name = 'company_id' ORDER BY 1",
        params=[ATTACHED],
    ).fetchall():
        if _is_view(con, table):
            continue  # views are re-created below from their SQL, over the scoped tables
        con.execute(
            f'CREATE VIEW "{table}" AS SELECT * FROM {ATTACHED}.main."{table}" '
            "WHERE company_id = getvariable('crm_lab_company')"
        )
    for relative in PUBLIC_VIEW_FILES:
        if _has_table(con, "deal_history"):
            con.execute((files("crm_lab") / "sql" / relative).read_text(encoding="utf-8"))
    return con


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.sql(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?", params=[ATTACHED, table]
        ).fetchall()[0][0]
    )


def _is_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.sql(
            "SELECT count(*) FROM duckdb_views() WHERE database_name = ? AND view_name = ?", params=[ATTACHED, name]
        ).fetchall()[0][0]
    )
