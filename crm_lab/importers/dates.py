"""Dates and times in an export column: one format per column, or a clear error.

ISO 8601 (dates, and date-times with ``Z``, ``+0000`` or ``+00:00``, with or without
milliseconds) is read as it is; a time without an offset is UTC. Any other shape must be declared
(a ``strftime`` format in the mapping's ``dates``), since ``03/04/2024`` is March or April
depending on the country it was exported from."""

from __future__ import annotations

import re
from typing import NamedTuple

import duckdb

from crm_lab.errors import LoadError
from crm_lab.importers.exports import ExportTable
from crm_lab.importers.problems import refuse
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
    nothing = f"CAST(NULL AS {'DATE' if date else 'TIMESTAMPTZ'})"
    if not export.has(field):
        return nothing
    column = export.column(field)
    judged = judge_sql(con, export, field, declared, date=date)
    if judged is None:
        return nothing
    converted, bad, reason = judged
    bad_rows = con.sql(
        f"SELECT _line, {column}, {reason} FROM {export.table} WHERE {bad} ORDER BY _line LIMIT 1"
    ).fetchall()
    if bad_rows:
        line, value, problem = bad_rows[0]
        raise LoadError(f"{export.path} line {line}, field {field}: {value!r} {problem}")
    return converted


class Judged(NamedTuple):
    """How a date column reads: the value (SQL), when a row's value is bad (SQL condition) and
    what is wrong with it (SQL text, said of the value: ``is not a real date: ...``)."""

    converted: str
    bad: str
    reason: str


def judge_sql(con: duckdb.DuckDBPyConnection, export: ExportTable, field: str, declared: str | None, *, date: bool = False) -> Judged | None:
    """Read ``field`` as TIMESTAMPTZ (or DATE): its SQL, and which values are bad and why; None
    (the problem noted, see :func:`_check_one_format`) when no one format reads the column.

    A value in the column's format that names no real day (``31/02/2025`` read with
    ``%d/%m/%Y``, ``2024-02-30``) is told apart from one in another shape."""
    column = export.column(field)
    target = "DATE" if date else "TIMESTAMPTZ"
    what = "date" if date else "date or time"
    if declared is not None:
        converted = f"CAST(try_strptime(trim({column}), {quote_literal(declared)}) AS {target})"
        shaped = f"regexp_full_match(trim({column}), {quote_literal(format_pattern(declared))})"
        unreal = f"is not a real {what}: it has the declared format {declared!r}, but no such {'day' if date else 'day or time'} exists"
        reason = f"CASE WHEN {shaped} THEN {quote_literal(unreal)} ELSE {quote_literal(f'does not match the declared format {declared!r}')} END"
        return Judged(converted, f"{column} IS NOT NULL AND {converted} IS NULL", reason)
    if not _check_one_format(con, export, field):
        return None
    converted = f"TRY_CAST(trim({column}) AS {target})"
    reason = quote_literal(f"is not a valid {what}")
    return Judged(converted, f"{column} IS NOT NULL AND {converted} IS NULL", reason)


# strftime directives as regular expressions: what a value in a declared format looks like.
_DIRECTIVES = {
    "d": r"\d{1,2}", "e": r" ?\d{1,2}", "m": r"\d{1,2}", "Y": r"\d{4}", "y": r"\d{2}", "H": r"\d{1,2}", "I": r"\d{1,2}",
    "M": r"\d{1,2}", "S": r"\d{1,2}", "f": r"\d{1,9}", "j": r"\d{1,3}", "p": "[AaPp][Mm]", "b": "[A-Za-z]{3}", "h": "[A-Za-z]{3}",
    "B": "[A-Za-z]+", "a": "[A-Za-z]{3}", "A": "[A-Za-z]+", "z": r"(Z|[+-]\d{2}:?\d{2})", "Z": "[A-Za-z_/+-]+", "%": "%",
}  # fmt: skip


def format_pattern(declared: str) -> str:
    """A regular expression for the shape of values in the strftime format ``declared``: a
    value of that shape that strptime refuses names no real day. An unknown directive matches
    anything, so such a value is said to be in the format but no real date.

    >>> print(format_pattern("%d/%m/%Y"))
    \\d{1,2}/\\d{1,2}/\\d{4}
    """
    out, i = [], 0
    while i < len(declared):
        ch = declared[i]
        if ch == "%" and i + 1 < len(declared):
            out.append(_DIRECTIVES.get(declared[i + 1], ".*"))
            i += 2
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


def _check_one_format(con: duckdb.DuckDBPyConnection, export: ExportTable, field: str) -> bool:
    """Every value of the column in ISO 8601, or a clear error: the formats met (an example of
    each with its line) when there are several, else the ``dates:`` line to declare. While
    problems are collected (:mod:`crm_lab.importers.problems`), the error is noted and the
    answer is False: the column cannot be read."""
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
        return True
    where = f"{export.path} line {{}}, field {field}"
    if len(rows) > 1:
        listed = ", ".join(f"{_shape_name(*row[:4])} (line {row[4]}: {row[5]!r})" for row in rows)
        refuse(
            f"{where.format(rows[1][4])}: the column mixes date formats: {listed}; no one format reads them all: "
            "export the column again with every value in one format (ISO 8601 needs no declaration), or correct the odd values"
        )
        return False
    kind, sep, year_digits, time_format, line, example, day_line, day_example, month_line, month_example = rows[0]
    name = _shape_name(kind, sep, year_digits, time_format)
    if kind == "text" or time_format == "?":
        refuse(
            f"{where.format(line)}: dates that are not ISO 8601: {name} (line {line}: {example!r}); "
            "fix the values or declare the column's format in the mapping file (dates:)"
        )
        return False
    if day_line is not None and month_line is not None:
        refuse(
            f"{where.format(max(day_line, month_line))}: the column mixes day-first and month-first dates: "
            f"day first (line {day_line}: {day_example!r}), month first (line {month_line}: {month_example!r}); "
            "no one format reads them all: export the column again with every value in one format (ISO 8601 needs no declaration)"
        )
        return False
    year = "%Y" if year_digits == 4 else "%y"
    time = f" {time_format}" if time_format else ""
    day_first, month_first = f"%d{sep}%m{sep}{year}{time}", f"%m{sep}%d{sep}{year}{time}"
    if month_line is not None:
        hint = f"dates: {{{field}: '{month_first}'}}"
    elif day_line is not None:
        hint = f"dates: {{{field}: '{day_first}'}}"
    else:
        hint = f"dates: {{{field}: '{day_first}'}} (or '{month_first}' when the month comes first)"
    refuse(
        f"{where.format(line)}: dates that are not ISO 8601: {name} (line {line}: {example!r}); "
        f"declare the format in the mapping file, e.g. {hint}"
    )
    return False


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
