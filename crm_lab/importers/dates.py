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
ISO_PATTERN = r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?"
# A day, a month and a year with one separator (which comes first is the question), then
# optionally a space and a time.
NUMERIC_DATE = r"(\d{1,2})([/.-])(\d{1,2})[/.-](\d{2}|\d{4})( (.+))?"
SEPARATORS = {"/": "D/M/Y or M/D/Y", ".": "D.M.Y or M.D.Y", "-": "D-M-Y or M-D-Y"}
# A time after a numeric date: (regular expression, its strftime format, how the message names it).
TIMES = (
    (r"\d{1,2}:\d{2}", "%H:%M", "HH:MM"),
    (r"\d{1,2}:\d{2}:\d{2}", "%H:%M:%S", "HH:MM:SS"),
    (r"\d{1,2}:\d{2} [AaPp][Mm]", "%I:%M %p", "h:MM AM/PM"),
    (r"\d{1,2}:\d{2}[AaPp][Mm]", "%I:%M%p", "h:MMAM/PM"),
    (r"\d{1,2}:\d{2}:\d{2} [AaPp][Mm]", "%I:%M:%S %p", "h:MM:SS AM/PM"),
    (r"\d{1,2}:\d{2}:\d{2}[AaPp][Mm]", "%I:%M:%S%p", "h:MM:SSAM/PM"),
)
NOT_A_DATE = "text that is not a date"


def time_sql(con: duckdb.DuckDBPyConnection, export: ExportTable, field: str, declared: str | None = None, *, date: bool = False) -> str:
    """SQL reading ``field`` of ``export`` as TIMESTAMPTZ (or DATE), after checking every value.

    Raises LoadError naming the file, line and field: for a column whose values are written in
    several formats (no one format reads them all: the export must be made consistent), a
    format other than ISO 8601 without a declared one (the message gives the ``dates:`` line
    that reads it, time included), or a value the format does not read."""
    if not export.has(field):
        return "CAST(NULL AS DATE)" if date else "CAST(NULL AS TIMESTAMPTZ)"
    column = export.column(field)
    target = "DATE" if date else "TIMESTAMPTZ"
    if declared is not None:
        converted = f"CAST(try_strptime(trim({column}), {quote_literal(declared)}) AS {target})"
        refuse_first(con, export, field, f"{converted} IS NULL", f"does not match the declared format {declared!r}")
        return converted
    _check_one_format(con, export, field)
    converted = f"TRY_CAST(trim({column}) AS {target})"
    refuse_first(con, export, field, f"{converted} IS NULL", f"is not a valid {'date' if date else 'date or time'}")
    return converted


def _check_one_format(con: duckdb.DuckDBPyConnection, export: ExportTable, field: str) -> None:
    """Every value of the column in ISO 8601, or a clear error: the formats met (an example of
    each with its line) when there are several, else the ``dates:`` line to declare."""
    column = export.column(field)
    times = " ".join(f"WHEN regexp_full_match(_time, {quote_literal(rx)}) THEN {quote_literal(fmt)}" for rx, fmt, _ in TIMES)
    rows = con.sql(
        f"""WITH v AS (SELECT _line, trim({column}) AS value FROM {export.table} WHERE {column} IS NOT NULL),
            shaped AS (
                SELECT *, CASE WHEN regexp_full_match(value, {quote_literal(ISO_PATTERN)}) THEN 'iso'
                               WHEN regexp_full_match(value, {quote_literal(NUMERIC_DATE)}) THEN 'numeric' ELSE 'text' END AS kind,
                       regexp_extract(value, {quote_literal('^' + NUMERIC_DATE + '$')}, 6) AS _time
                FROM v),
            formatted AS (
                SELECT *, CASE WHEN kind = 'numeric' THEN regexp_extract(value, {quote_literal('^' + NUMERIC_DATE + '$')}, 2) END AS sep,
                       CASE WHEN kind = 'numeric' THEN length(regexp_extract(value, {quote_literal('^' + NUMERIC_DATE + '$')}, 4)) END AS year_digits,
                       CASE WHEN kind <> 'numeric' OR _time = '' THEN '' ELSE CASE {times} ELSE '?' END END AS time_format,
                       TRY_CAST(regexp_extract(value, {quote_literal('^' + NUMERIC_DATE + '$')}, 1) AS INTEGER) AS first_part,
                       TRY_CAST(regexp_extract(value, {quote_literal('^' + NUMERIC_DATE + '$')}, 3) AS INTEGER) AS second_part
                FROM shaped)
            SELECT kind, sep, year_digits, time_format, min(_line) AS line, arg_min(value, _line) AS example,
                   min(_line) FILTER (WHERE first_part > 12) AS day_first_line, arg_min(value, _line) FILTER (WHERE first_part > 12),
                   min(_line) FILTER (WHERE second_part > 12) AS month_first_line, arg_min(value, _line) FILTER (WHERE second_part > 12)
            FROM formatted GROUP BY ALL ORDER BY line"""
    ).fetchall()
    if all(row[0] == "iso" for row in rows):
        return
    where = f"{export.path} line {{}}, field {field}"
    if len(rows) > 1:
        listed = ", ".join(f"{_shape_name(*row[:4])} (line {row[4]}: {row[5]!r})" for row in rows)
        raise LoadError(
            f"{where.format(rows[1][4])}: the column mixes date formats: {listed}; no one format reads them all: "
            "export the column again with every value in one format (ISO 8601 needs no declaration), or correct the odd values"
        )
    kind, sep, year_digits, time_format, line, example, day_line, day_example, month_line, month_example = rows[0]
    name = _shape_name(kind, sep, year_digits, time_format)
    if kind == "text" or time_format == "?":
        raise LoadError(
            f"{where.format(line)}: dates that are not ISO 8601: {name} (line {line}: {example!r}); "
            "fix the values or declare the column's format in the mapping file (dates:)"
        )
    if day_line is not None and month_line is not None:
        raise LoadError(
            f"{where.format(max(day_line, month_line))}: the column mixes day-first and month-first dates: "
            f"day first (line {day_line}: {day_example!r}), month first (line {month_line}: {month_example!r}); "
            "no one format reads them all: export the column again with every value in one format (ISO 8601 needs no declaration)"
        )
    year = "%Y" if year_digits == 4 else "%y"
    time = f" {time_format}" if time_format else ""
    day_first, month_first = f"%d{sep}%m{sep}{year}{time}", f"%m{sep}%d{sep}{year}{time}"
    if month_line is not None:
        hint = f"dates: {{{field}: '{month_first}'}}"
    elif day_line is not None:
        hint = f"dates: {{{field}: '{day_first}'}}"
    else:
        hint = f"dates: {{{field}: '{day_first}'}} (or '{month_first}' when the month comes first)"
    raise LoadError(
        f"{where.format(line)}: dates that are not ISO 8601: {name} (line {line}: {example!r}); "
        f"declare the format in the mapping file, e.g. {hint}"
    )


def _shape_name(kind: str, sep: str | None, year_digits: int | None, time_format: str) -> str:
    if kind == "iso":
        return ISO
    if kind == "text":
        return NOT_A_DATE
    name = SEPARATORS[sep] if year_digits == 4 else SEPARATORS[sep].replace("Y", "YY")
    if time_format == "?":
        return f"{name} with a time in no known format"
    described = {fmt: text for _, fmt, text in TIMES}
    return f"{name} with a time ({described[time_format]})" if time_format else name
