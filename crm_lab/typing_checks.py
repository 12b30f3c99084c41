"""Turn a raw staged file into typed rows plus rejects, in one vectorised pass.

For every target column a value that is present but does not cast to the column's type, or a
required value that is missing, becomes a reject naming the column, the value and the reason."""

from __future__ import annotations

import re

from crm_lab.schema import Column

FRIENDLY_TYPES = {
    "VARCHAR": "text",
    "DOUBLE": "a number",
    "INTEGER": "a whole number",
    "BIGINT": "a whole number",
    "BOOLEAN": "true or false",
    "DATE": "a date (YYYY-MM-DD)",
    "TIMESTAMP WITH TIME ZONE": "a timestamp (ISO 8601, e.g. 2024-03-31T17:00:00Z)",
    "DECIMAL(18,2)": "an amount with at most 2 decimals",
}


REJECT_TYPE = "STRUCT(column_name VARCHAR, value VARCHAR, reason VARCHAR)"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_TEXT_TYPES = ("VARCHAR", "JSON")
_INEXACT_NUMBERS = re.compile(r"DOUBLE|FLOAT|REAL|DECIMAL\(\d+,\s*(\d+)\)")


def decimal_places(sql_type: str) -> tuple[int, int] | None:
    """(precision, scale) of a DECIMAL type, None for any other."""
    match = _DECIMAL.fullmatch(sql_type.replace(" ", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def rounded_text_sql(text: str, cast: str, sql_type: str) -> str | None:
    """A condition true when the number in ``text`` had more decimals than the DECIMAL
    ``sql_type`` holds, so that ``cast`` (its TRY_CAST, which rounds) is not its value; None for
    any other type.

    The text is cast again, to DECIMAL(38, s) with the integer digits of ``sql_type``, only when
    it has more characters after its '.' than ``sql_type`` has decimals, or an exponent: any other
    number casts exactly, and a second cast of every amount costs as much as the first. Digits
    past the wide type's last decimal (the 22nd for DECIMAL(18,2)) go unseen: 1e-30 loads as 0."""
    places = decimal_places(sql_type)
    if places is None:
        return None
    precision, scale = places
    wide = f"DECIMAL(38, {38 - (precision - scale)})"
    longer = quote_literal("%." + "_" * (scale + 1) + "%")
    return (
        f"CASE WHEN {text} LIKE {longer} OR {text} ILIKE '%e%' "
        f"THEN TRY_CAST({text} AS {wide}) IS DISTINCT FROM {cast} ELSE false END"
    )


def _rounded_sql(source: str, source_type: str, cast: str, sql_type: str) -> str | None:
    """Whether casting ``source`` to the DECIMAL ``sql_type`` rounded it: by its text, or for a
    binary or decimal number with more decimals, by casting the result back to the source's type
    (a DOUBLE 100.1 is the double nearest 100.10, so it passes; 100.125 does not)."""
    if decimal_places(sql_type) is None:
        return None
    if source_type in _TEXT_TYPES:
        return rounded_text_sql(source, cast, sql_type)
    number = _INEXACT_NUMBERS.fullmatch(source_type.replace(" ", ""))
    if number is None or (number.group(1) is not None and int(number.group(1)) <= decimal_places(sql_type)[1]):
        return None  # whole numbers and decimals with no more places always cast exactly
    return f"CAST({cast} AS {source_type}) <> {source}"


def typed_select(
    columns: list[Column], source_names: dict[str, str], source_types: dict[str, str] | None = None, alias: str = "r"
) -> tuple[str, str]:
    """SQL for the typed columns and for the ``_errors`` list of one row.

    ``source_names`` maps a target column to the file's column (matched case-insensitively);
    targets the file lacks become NULL. ``source_types``: the file's column types (text when not
    given), which say how to tell that an amount had more decimals than its column keeps."""
    typed: list[str] = []
    checks: list[tuple[str, str]] = []  # (condition, the reject it makes)
    for column in columns:
        target = quote_ident(column.name)
        if column.name not in source_names:
            typed.append(f"CAST(NULL AS {column.sql_type}) AS {target}")
            continue
        source = f"{alias}.{quote_ident(source_names[column.name])}"
        cast = f"TRY_CAST({source} AS {column.sql_type})"
        typed.append(f"{cast} AS {target}")
        label = quote_literal(column.name)
        if column.required:
            checks.append(
                (f"{source} IS NULL",
                 f"{{'column_name': {label}, 'value': CAST(NULL AS VARCHAR), 'reason': 'required value is missing'}}")
            )
        if column.sql_type != "VARCHAR":
            wanted = quote_literal(f"not {FRIENDLY_TYPES.get(column.sql_type, column.sql_type)}")
            reject = f"{{'column_name': {label}, 'value': CAST({source} AS VARCHAR), 'reason': {wanted}}}"
            checks.append((f"{source} IS NOT NULL AND {cast} IS NULL", reject))
            # TRY_CAST rounds an amount to the column's decimals: money with fractions of a cent
            # would load changed without a word.
            source_type = (source_types or {}).get(source_names[column.name], "VARCHAR")
            rounded = _rounded_sql(source, source_type, cast, column.sql_type)
            if rounded is not None:
                checks.append((f"{cast} IS NOT NULL AND ({rounded})", reject))
    no_errors = f"CAST([] AS {REJECT_TYPE}[])"
    if not checks:
        return ", ".join(typed), no_errors
    # The list is built only for a row that fails a check: building and filtering it for every
    # row cost more than the checks themselves.
    error_list = "list_filter([{}], lambda e: e IS NOT NULL)".format(
        ", ".join(f"CASE WHEN {condition} THEN {reject} END" for condition, reject in checks)
    )
    any_error = " OR ".join(f"({condition})" for condition, _ in checks)
    return ", ".join(typed), f"CASE WHEN {any_error} THEN {error_list} ELSE {no_errors} END"
