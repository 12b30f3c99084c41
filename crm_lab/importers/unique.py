"""One row per record: an export with a record's id on two rows is refused, naming both lines.

Two rows of one id would fold into one record's events as if one were a later change of the
other, and the loader would keep one row and reject the other: the replayed history and the
stored rows would tell two stories. No order of the rows says which one is right, so the user
fixes the export (or exports again)."""

from __future__ import annotations

import duckdb

from crm_lab.importers.exports import ExportTable
from crm_lab.importers.problems import refuse


def refuse_repeated_ids(con: duckdb.DuckDBPyConnection, export: ExportTable, field: str, what: str, rule: str) -> None:
    """Fail at the first line whose ``field`` (trimmed; empty values aside) repeats an earlier
    line's: ``{file} line {line}, field {field}: {what} {value!r} is also at line {first}; {rule}``."""
    column = f"trim({export.column(field)})"
    repeated = con.sql(
        f"SELECT _line, {column} AS id, min(_line) OVER (PARTITION BY {column}) AS first FROM {export.table} "
        f"WHERE {column} <> '' QUALIFY _line <> first ORDER BY _line LIMIT 1"
    ).fetchall()
    if repeated:
        line, value, first = repeated[0]
        refuse(f"{export.path} line {line}, field {field}: {what} {value!r} is also at line {first}; {rule}")
