"""``crm-lab sql``: read-only queries on the workbench, optionally scoped to one company."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from crm_lab.db import DEFAULT_DB
from crm_lab.errors import CrmLabError, InvalidArgument
from crm_lab.tenancy import open_connection

READ_STATEMENTS = {"SELECT", "EXPLAIN"}
FORMATS = ("table", "csv", "json", "parquet")


class WriteRefused(CrmLabError):
    """A statement that would change something reached a read-only entry point."""


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but one SELECT (or EXPLAIN) statement, naming what was refused."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as error:
        raise CrmLabError(f"the query does not parse: {str(error).splitlines()[0]}") from error
    if len(statements) != 1:
        raise WriteRefused(f"exactly one statement is allowed; got {len(statements)}")
    kind = statements[0].type.name
    if kind not in READ_STATEMENTS:
        raise WriteRefused(
            f"read-only: a {kind} statement is refused "
            "(change the database with crm-lab load, replay and the engines' commands)"
        )


def run_query(
    sql: str,
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    company: str | None = None,
    fmt: str = "table",
    out: str | os.PathLike | None = None,
) -> str:
    """Run one read-only statement and render it.

    Parameters
    ----------
    sql : str
        One SELECT or EXPLAIN statement.
    company : str, optional
        Scope every public table, view and macro to this company (see crm_lab.tenancy).
    fmt : {"table", "csv", "json", "parquet"}
        How to render; parquet needs ``out``.
    out : path, optional
        Write the result there instead of returning it.

    Returns
    -------
    str
        The rendered result, or a one-line note of what was written to ``out``.
    """
    if fmt not in FORMATS:
        raise InvalidArgument(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet" and out is None:
        raise InvalidArgument("format parquet needs --out FILE")
    con = open_connection(db_path, company)
    try:
        check_read_only(con, sql)
        try:
            relation = con.sql(sql)
            if fmt == "table":
                text = str(relation) if relation is not None else ""
                frame = None
            else:
                frame = relation.pl()
        except duckdb.Error as error:
            raise CrmLabError(str(error).strip()) from error
    finally:
        con.close()
    if fmt == "table":
        return _emit(text, out)
    if fmt == "parquet":
        frame.write_parquet(out)
        return f"wrote {frame.height} row(s) to {out}"
    text = frame.write_csv() if fmt == "csv" else frame.write_json()
    return _emit(text, out, rows=frame.height)


def _emit(text: str, out, rows: int | None = None) -> str:
    if out is None:
        return text
    Path(out).write_text(text, encoding="utf-8")
    return f"wrote {'' if rows is None else f'{rows} row(s) '}to {out}"
