"""An export's CSV files read into a DuckDB work connection, every value as text with its line,
and the fields an importer needs looked up by name (case-insensitively, as CRMs are not
consistent about case)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm_lab.errors import LoadError
from crm_lab.importers.rejects import add_rejects
from crm_lab.importers.staging import note
from crm_lab.sources import InputFile, stage_raw
from crm_lab.typing_checks import quote_ident, quote_literal


@dataclass(frozen=True)
class ExportTable:
    """One export file staged as ``table`` (columns ``_line`` plus the file's own)."""

    path: Path
    table: str
    columns: tuple[str, ...]

    def has(self, field: str) -> bool:
        return field.lower() in {c.lower() for c in self.columns}

    def column(self, field: str) -> str:
        """The quoted column for an export field, or a typed NULL when the file lacks it."""
        for name in self.columns:
            if name.lower() == field.lower():
                return quote_ident(name)
        return "CAST(NULL AS VARCHAR)"


def read_export(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    required: tuple[str, ...] = (),
    what: str = "",
    *,
    empty_ok: bool = False,
    needs_rows: str = "",
    ragged_rejects: str | None = None,
) -> ExportTable:
    """Stage ``path`` as ``table``; a required field the header lacks fails the import, and so
    does a file of a header alone unless ``empty_ok`` (then ``table`` has no rows, and the
    summary of the load says the file was empty). ``needs_rows`` says why the import needs rows.

    A line with more or fewer fields than the header fails the import, or with
    ``ragged_rejects`` (the native table the file's rows go to) is a reject of that row alone,
    as in a native load: no field, the record as written, ``expected 4 fields (the header's),
    found 2``; ``table`` leaves it out."""
    ragged = f"{table}_ragged" if ragged_rejects else None
    staged = stage_raw(con, InputFile(path, table, "csv"), table, empty_ok=True, ragged=ragged)
    if ragged:
        add_rejects(con, f"SELECT {quote_literal(str(path))}, {quote_literal(ragged_rejects)}, line, NULL, value, reason FROM {ragged}")
    export = ExportTable(path, table, tuple(staged.columns))
    missing = [name for name in required if not export.has(name)]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise LoadError(
            f"{path} line 1: missing required field{plural} {', '.join(missing)}{f' for {what}' if what else ''}"
        )
    if staged.empty and not empty_ok:
        raise LoadError(f"{path}: file is empty (a header but no rows){f'; {needs_rows}' if needs_rows else ''}")
    if staged.empty:
        note(con, f"{path}: 0 read: the file is empty (a header but no rows)")
    return export


def read_optional_export(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, required: tuple[str, ...] = (), ragged_rejects: str | None = None
) -> ExportTable | None:
    """Stage an export file the import can do without: None when it is absent. A CRM writes a
    header alone for an object the org does not use: that is no records, not a broken export."""
    if not path.exists():
        return None
    return read_export(con, path, table, required, empty_ok=True, ragged_rejects=ragged_rejects)


def require_values(con: duckdb.DuckDBPyConnection, export: ExportTable, fields: tuple[str, ...]) -> None:
    """Every row has a value in each of ``fields``: a record without its id or its date cannot
    become events, and dropping it would lose it."""
    for field in fields:
        column = export.column(field)
        empty = con.sql(f"SELECT min(_line), count(*) FROM {export.table} WHERE {column} IS NULL OR trim({column}) = ''").fetchall()[0]
        if empty[1]:
            more = f" (and {empty[1] - 1} more row(s))" if empty[1] > 1 else ""
            raise LoadError(f"{export.path} line {empty[0]}, field {field}: required value is missing{more}")


def refuse_first(con: duckdb.DuckDBPyConnection, export: ExportTable, field: str, bad_when: str, problem: str) -> None:
    """Fail the import at the first line whose ``field`` has a value for which the SQL condition
    ``bad_when`` holds, naming file, line, field and value (``problem`` says what is wrong)."""
    column = export.column(field)
    bad = con.sql(
        f"SELECT _line, {column} FROM {export.table} WHERE {column} IS NOT NULL AND ({bad_when}) ORDER BY _line LIMIT 1"
    ).fetchall()
    if bad:
        line, value = bad[0]
        raise LoadError(f"{export.path} line {line}, field {field}: {value!r} {problem}")
