"""``crm-lab sql``: read-only queries on the workbench, optionally scoped to one company."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

from crm_lab.db import DEFAULT_DB
from crm_lab.errors import CrmLabError, InvalidArgument
from crm_lab.tenancy import explain_error, open_connection
from crm_lab.typing_checks import quote_ident

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
                frame = fetch_polars(relation, text=fmt in TEXT_FORMATS) if relation is not None else pl.DataFrame()
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
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as error:
        raise UnsupportedType(f"the result cannot be written as {fmt}: {str(error).splitlines()[0]}") from None
    return f"wrote {frame.height} row(s) to {out}"


# csv, json and jsonl are text: every value must be text, a number, a boolean or nested JSON.
TEXT_FORMATS = ("csv", "json", "jsonl")
# Types polars cannot take from DuckDB's Arrow export (or takes as opaque bytes), written as
# DuckDB's own text: a union as its value, a bit string as 0s and 1s, a bignum as its digits,
# a variant as its value.
AS_TEXT = {"union", "bit", "bignum", "varint", "variant"}
# Bytes, which csv and json cannot hold: a geometry is written as WKT text ('POINT (1 2)').
BYTES = {"blob", "geometry"}


class UnsupportedType(CrmLabError):
    """A result column of a type the output cannot hold."""


def _needs_rewrite(dtype, text: bool) -> bool:
    """Whether ``dtype`` (a DuckDB type) is, or holds, a value polars (or, with ``text``, csv and
    json) cannot take as it is."""
    kind = dtype.id
    if kind in AS_TEXT or kind == "interval" or (text and kind in BYTES):
        return True
    if kind in ("list", "struct", "map", "array"):
        return any(_needs_rewrite(child, text) for name, child in dtype.children if name != "size")
    return False


def _rewritten(dtype, text: bool) -> str:
    """``dtype`` as a DuckDB type name, with every value _needs_rewrite names as VARCHAR."""
    kind = dtype.id
    if kind in AS_TEXT or kind == "interval" or (text and kind in BYTES):
        return "VARCHAR"
    children = dict(dtype.children) if kind in ("list", "struct", "map", "array") else {}
    if kind == "list":
        return f"{_rewritten(children['child'], text)}[]"
    if kind == "array":
        return f"{_rewritten(children['child'], text)}[{children['size']}]"
    if kind == "map":
        return f"MAP({_rewritten(children['key'], text)}, {_rewritten(children['value'], text)})"
    if kind == "struct":
        return "STRUCT(" + ", ".join(f"{quote_ident(name)} {_rewritten(child, text)}" for name, child in dtype.children) + ")"
    return str(dtype)


def fetch_polars(relation: duckdb.DuckDBPyRelation, *, text: bool = False) -> pl.DataFrame:
    """``relation`` as polars, with the types polars cannot take converted first.

    An INTERVAL column becomes a polars Duration (days counted as 24 hours) when no value has a
    month part, else DuckDB's text for it ('1 month 2 days'); with ``text`` (csv, json) it is
    always that text. With ``text`` a BLOB column is hex ('AA0061') and a GEOMETRY is WKT.
    Unions, bit strings, bignums and variants are DuckDB's text; inside lists, structs and maps,
    so are intervals (and, with ``text``, blobs). A column polars still cannot take raises
    UnsupportedType naming it and its type."""
    columns, types = relation.columns, relation.types
    exprs, intervals = [], []
    for name, dtype in zip(columns, types):
        q = quote_ident(name)
        if dtype.id == "interval" and not text:
            intervals.append(name)
            exprs.append(q)
        elif dtype.id == "blob" and text:
            exprs.append(f"hex({q}) AS {q}")
        elif _needs_rewrite(dtype, text):
            exprs.append(f"CAST({q} AS {_rewritten(dtype, text)}) AS {q}")
        else:
            exprs.append(q)
    if exprs != [quote_ident(name) for name in columns]:
        relation = relation.project(", ".join(exprs))
    try:
        if not intervals:
            return relation.pl()
        table = relation.to_arrow_table()
        rest = pl.from_arrow(table.drop_columns(intervals))
        converted = _intervals_as_polars(table.select(intervals))
        return pl.concat([rest, converted], how="horizontal").select(columns)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, TypeError, ValueError) as error:
        for name, dtype in zip(columns, types):
            if name in intervals:
                continue
            try:
                relation.project(quote_ident(name)).limit(0).pl()
            except (pl.exceptions.PolarsError, pl.exceptions.PanicException, TypeError, ValueError):
                raise UnsupportedType(
                    f"column {name} has type {dtype}, which polars cannot hold: "
                    f"cast it in the query, e.g. CAST({quote_ident(name)} AS VARCHAR)"
                ) from None
        raise UnsupportedType(f"the result cannot be converted to polars: {str(error).splitlines()[0]}") from None


def _intervals_as_polars(table) -> pl.DataFrame:
    """Arrow interval columns as polars Durations (microseconds), or as DuckDB's text for a
    column with a month part in any value."""
    con = duckdb.connect()
    try:
        con.register("intervals", table)
        quoted = [quote_ident(name) for name in table.column_names]
        flags = con.sql(
            "SELECT " + ", ".join(f"coalesce(bool_or(datepart('year', {q}) * 12 + datepart('month', {q}) <> 0), false)"
                                  for q in quoted) + " FROM intervals"
        ).fetchall()[0]
        exprs = [f"CAST({q} AS VARCHAR) AS {q}" if months else f"epoch_us({q}) AS {q}" for q, months in zip(quoted, flags)]
        frame = con.sql(f"SELECT {', '.join(exprs)} FROM intervals").pl()
    finally:
        con.close()
    return frame.with_columns(
        pl.col(name).cast(pl.Duration("us")) for name, months in zip(table.column_names, flags) if not months
    )


def nested_as_json(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every nested column (list, array, struct, map) as JSON text, for CSV."""
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    if not nested:
        return frame
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("result", frame)
        quoted = [quote_ident(name) for name in nested]
        replace = ", ".join(f"CAST(to_json({q}) AS VARCHAR) AS {q}" for q in quoted)
        return con.sql(f"SELECT * REPLACE ({replace}) FROM result").pl()
    finally:
        con.close()
