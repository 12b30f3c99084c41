"""Dates and times in an export column: one format per column, or a clear error.

ISO 8601 (dates, and date-times with ``Z``, ``+0000`` or ``+00:00``, with or without
milliseconds) is read as it is; a time without an offset is UTC. Any other shape must be declared
(a ``strftime`` format in the mapping's ``dates``), since ``03/04/2024`` is March or April
depending on the country it was exported from."""

from __future__ import annotations

import duckdb

from crm_lab.errors import LoadError
from crm_lab.importers.exports import ExportTable, refuse_first
from crm_lab.typing_checks import quote_literal

ISO = "ISO 8601"
# (name, regular expression) in the order a value is classified; the last one catches the rest.
SHAPES = (
    (ISO, r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?"),
    ("D/M/Y or M/D/Y", r"\d{1,2}/\d{1,2}/\d{2,4}( .*)?"),
    ("D.M.Y", r"\d{1,2}\.\d{1,2}\.\d{2,4}( .*)?"),
    ("D-M-Y or M-D-Y", r"\d{1,2}-\d{1,2}-\d{2,4}( .*)?"),
    ("text that is not a date", r".*"),
)
SUGGESTED = {"D/M/Y or M/D/Y": "%d/%m/%Y", "D.M.Y": "%d.%m.%Y", "D-M-Y or M-D-Y": "%d-%m-%Y"}


def time_sql(con: duckdb.DuckDBPyConnection, export: ExportTable, field: str, declared: str | None = None, *, date: bool = False) -> str:
    """SQL reading ``field`` of ``export`` as TIMESTAMPTZ (or DATE), after checking every value.

    Raises LoadError naming the file, line and field: for values in several shapes, a shape
    other than ISO 8601 without a declared format, or a value the format does not read."""
    if not export.has(field):
        return "CAST(NULL AS DATE)" if date else "CAST(NULL AS TIMESTAMPTZ)"
    column = export.column(field)
    target = "DATE" if date else "TIMESTAMPTZ"
    if declared is not None:
        converted = f"CAST(try_strptime(trim({column}), {quote_literal(declared)}) AS {target})"
        refuse_first(con, export, field, f"{converted} IS NULL", f"does not match the declared format {declared!r}")
        return converted
    shape = "CASE " + " ".join(
        f"WHEN regexp_full_match(trim({column}), {quote_literal(pattern)}) THEN {quote_literal(name)}" for name, pattern in SHAPES
    ) + " END"
    seen = con.sql(
        f"SELECT {shape} AS shape, min(_line) AS line, arg_min({column}, _line) AS example "
        f"FROM {export.table} WHERE {column} IS NOT NULL GROUP BY shape ORDER BY line"
    ).fetchall()
    converted = f"TRY_CAST(trim({column}) AS {target})"
    foreign = [(name, line, example) for name, line, example in seen if name != ISO]
    if foreign:
        listed = ", ".join(f"{name} (line {line}: {example!r})" for name, line, example in seen)
        first_name, first_line, example = foreign[0]
        several = "dates in several formats" if len(seen) > 1 else "dates that are not ISO 8601"
        hint = SUGGESTED.get(first_name)
        fix = (
            f"; declare the format in the mapping file, e.g. dates: {{{field}: '{hint}'}}"
            if hint
            else "; fix the value or declare the column's format in the mapping file (dates:)"
        )
        raise LoadError(f"{export.path} line {first_line}, field {field}: {several}: {listed}{fix}")
    refuse_first(con, export, field, f"{converted} IS NULL", f"is not a valid {'date' if date else 'date or time'}")
    return converted
