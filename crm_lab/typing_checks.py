"""Turn a raw staged file into typed rows plus rejects, in one vectorised pass.

For every target column a value that is present but does not cast to the column's type, or a
required value that is missing, becomes a reject naming the column, the value and the reason."""

from __future__ import annotations

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


def typed_select(columns: list[Column], source_names: dict[str, str], alias: str = "r") -> tuple[str, str]:
    """SQL for the typed columns and for the ``_errors`` list of one row.

    ``source_names`` maps a target column to the file's column (matched case-insensitively);
    targets the file lacks become NULL."""
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
            checks.append(
                (f"{source} IS NOT NULL AND {cast} IS NULL",
                 f"{{'column_name': {label}, 'value': CAST({source} AS VARCHAR), 'reason': {wanted}}}")
            )
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
