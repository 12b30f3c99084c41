"""``crm-lab sql``: read-only queries on the workbench, optionally scoped to one company."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

from crm_lab.db import DEFAULT_DB
from crm_lab.errors import CrmLabError, InvalidArgument
from crm_lab.tenancy import explain_error, open_connection

READ_STATEMENTS = {"SELECT", "EXPLAIN"}
FORMATS = ("table", "csv", "json", "jsonl", "parquet")
# The format an --out file's name asks for, when --format is not given.
FORMAT_BY_SUFFIX = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class WriteRefused(CrmLabError):
    """A statement that would change something reached a read-only entry point."""


class OutputError(CrmLabError):
    """The result cannot be written where --out says."""


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


def output_format(fmt: str | None, out: str | os.PathLike | None) -> str:
    """The format to render: ``fmt`` when given, else the one ``out``'s extension names, else table.

    The table format is for the screen (it shows the first and last rows and the columns that
    fit), so it is refused for a file."""
    if fmt is not None and fmt not in FORMATS:
        raise InvalidArgument(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if out is None:
        if fmt == "parquet":
            raise InvalidArgument("format parquet needs --out FILE")
        return fmt or "table"
    named = FORMAT_BY_SUFFIX.get(Path(out).suffix.lower())
    if fmt == "table":
        raise InvalidArgument(
            f"--out {out}: the table format is for the screen and shows only part of a large result; "
            "write the file with --format csv (or json, jsonl, parquet)"
        )
    if fmt is None:
        if named is None:
            raise InvalidArgument(
                f"--out {out}: name a .csv, .json, .jsonl or .parquet file, or give --format csv, json, jsonl or parquet"
            )
        return named
    if named is not None and named != fmt:
        raise InvalidArgument(f"--format {fmt} does not match --out {out}: drop --format, or name a .{fmt} file")
    return fmt


def check_writable(out: str | os.PathLike) -> None:
    """Refuse an --out path whose folder is missing, or that is a folder, before running the query."""
    path = Path(out)
    if path.is_dir():
        raise OutputError(f"cannot write {out}: it is a folder")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {path.parent} does not exist")


def run_query(
    sql: str,
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    company: str | None = None,
    fmt: str | None = None,
    out: str | os.PathLike | None = None,
) -> str:
    """Run one read-only statement and render it.

    Parameters
    ----------
    sql : str
        One SELECT or EXPLAIN statement.
    company : str, optional
        Scope every public table, view and macro to this company (see crm_lab.tenancy).
    fmt : {"table", "csv", "json", "jsonl", "parquet"}, optional
        How to render. Default: the format ``out``'s extension names (.csv, .json, .jsonl,
        .parquet), or table when there is no ``out``. Table is for the screen only; parquet needs
        ``out``. In csv, nested values (lists, structs, maps) are JSON text; json, jsonl and
        parquet keep them nested.
    out : path, optional
        Write the whole result there instead of returning it.

    Returns
    -------
    str
        The rendered result, or a one-line note of what was written to ``out``.
    """
    if out is not None:
        check_writable(out)
    fmt = output_format(fmt, out)
    con = open_connection(db_path, company)
    try:
        check_read_only(con, sql)
        try:
            relation = con.sql(sql)
            if fmt == "table":
                text = str(relation) if relation is not None else ""
                frame = None
            else:
                frame = relation.pl() if relation is not None else pl.DataFrame()
        except duckdb.Error as error:
            raise CrmLabError(explain_error(con, str(error), db_path, company)) from error
    finally:
        con.close()
    if fmt == "table":
        return text
    try:
        if fmt == "parquet":
            frame.write_parquet(out)
            return f"wrote {frame.height} row(s) to {out}"
        if fmt == "csv":
            text = nested_as_json(frame).write_csv()
        else:
            text = frame.write_json() if fmt == "json" else frame.write_ndjson()
        if out is None:
            return text
        Path(out).write_text(text, encoding="utf-8")
    except OSError as error:
        raise OutputError(f"cannot write {out}: {error.strerror or error}") from error
    return f"wrote {frame.height} row(s) to {out}"


def nested_as_json(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every nested column (list, array, struct, map) as JSON text, for CSV."""
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    if not nested:
        return frame
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("result", frame)
        quoted = ['"' + name.replace('"', '""') + '"' for name in nested]
        replace = ", ".join(f"CAST(to_json({q}) AS VARCHAR) AS {q}" for q in quoted)
        return con.sql(f"SELECT * REPLACE ({replace}) FROM result").pl()
    finally:
        con.close()
