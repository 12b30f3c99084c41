"""Native rows built by an importer, handed to the loader as one input per (table, export
file): the loader then records rejects against the export's own file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm_lab.contract import LOADABLE_TABLES
from crm_lab.importers import rejects
from crm_lab.importers.stages import CLOSED_STAGES_SQL
from crm_lab.importers.tenant import company_row_sql
from crm_lab.schema import table_spec
from crm_lab.sources import InputFile
from crm_lab.typing_checks import quote_ident, quote_literal, typed_select


@dataclass(frozen=True)
class NativeRows:
    """A work table holding rows of contract ``table`` (text columns named as in the contract,
    plus ``_file`` and ``_line``); ``source_columns`` names the export field behind a column."""

    table: str
    work_table: str
    source_columns: dict[str, str]


def company_rows(con: duckdb.DuckDBPyConnection, export_file: Path, home_currency: str | None, rates_file: Path | None) -> NativeRows:
    """The tenant's ``companies`` row: the stored one kept as it is (an export names no tenant,
    so a new one is named by its id); see :func:`crm_lab.importers.tenant.company_row_sql`."""
    row = company_row_sql(con, con.sql("SELECT getvariable('import_company')").fetchall()[0][0], home_currency, rates_file)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _import_companies AS SELECT *, {quote_literal(str(export_file))} AS _file, 1 AS _line FROM ({row})"
    )
    return NativeRows("companies", "_import_companies", {})


def deal_rows(con: duckdb.DuckDBPyConnection, source: str, closed_at: str, source_columns: dict[str, str]) -> NativeRows:
    """The ``deals`` rows (current state) from ``source``, which has the deal's native fields,
    ``created_at``, ``_file`` and ``_line``; ``closed_at`` is SQL for when a closed deal closed."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _import_deals AS
            SELECT company_id, deal_id, account_id, owner_rep_id, name, stage, CAST(amount AS VARCHAR) AS amount, currency,
                   CAST(expected_close_date AS VARCHAR) AS expected_close_date, lost_reason,
                   CAST(stage IN {CLOSED_STAGES_SQL} AS VARCHAR) AS is_closed,
                   CASE stage WHEN 'closed_won' THEN 'true' WHEN 'closed_lost' THEN 'false' END AS is_won,
                   CASE WHEN stage IN {CLOSED_STAGES_SQL} THEN CAST({closed_at} AS VARCHAR) END AS closed_at,
                   CAST(created_at AS VARCHAR) AS created_at, _file, _line
            FROM {source} d"""
    )
    return NativeRows("deals", "_import_deals", source_columns)


def lead_rows(con: duckdb.DuckDBPyConnection, source: str, source_columns: dict[str, str]) -> NativeRows:
    """The ``leads`` rows (current state) from ``source``, which has the lead's native fields
    (``created_at`` and ``converted_at`` as timestamps), ``_file`` and ``_line``."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _import_leads AS
            SELECT company_id, lead_id, account_id, owner_rep_id, name, source, industry, employees, score, status, deal_id,
                   CAST(created_at AS VARCHAR) AS created_at, CAST(converted_at AS VARCHAR) AS converted_at, _file, _line
            FROM {source}"""
    )
    return NativeRows("leads", "_import_leads", source_columns)


# Entity tables whose rows have events of their own: (aggregate type, key column).
EVENTFUL_TABLES = {"deals": ("deal", "deal_id"), "leads": ("lead", "lead_id"), "accounts": ("account", "account_id"),
                   "activities": ("activity", "activity_id")}


def drop_events_of_rejected_rows(con: duckdb.DuckDBPyConnection, rows: list[NativeRows], events: str = "_import_events") -> None:
    """A row the loader will reject (a value the contract refuses: an ``employees`` of ``many``)
    brings none of its record's events: the replayed history then agrees with the stored rows,
    and the reject in ``load_rejects`` says why the record is missing from both. The rows are
    checked as the loader checks them (the contract's column types and required values)."""
    for native in rows:
        if native.table not in EVENTFUL_TABLES:
            continue
        aggregate, key = EVENTFUL_TABLES[native.table]
        types = dict(con.sql(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? AND database_name = 'temp'",
            params=[native.work_table],
        ).fetchall())  # fmt: skip
        columns = table_spec(native.table).columns
        _, errors = typed_select(list(columns), {c.name: c.name for c in columns if c.name in types}, types)
        con.execute(
            f"""DELETE FROM {events} WHERE aggregate_type = {quote_literal(aggregate)}
                AND aggregate_id IN (SELECT r.{quote_ident(key)} FROM {native.work_table} r WHERE len({errors}) > 0)"""
        )


def as_inputs(con: duckdb.DuckDBPyConnection, rows: list[NativeRows]) -> list[InputFile]:
    """One input per (table, export file), in load order (files by name within a table): the same
    export always hands the loader the same list, so the load's fingerprint (over each input's
    table, file name and bytes) is the same however many events it brings. The events of one
    export line (a lead created, converted and deleted) share that line: the loader tells
    events apart by id, and keeps their order by row, not by line."""
    order = {name: i for i, name in enumerate(LOADABLE_TABLES)}
    judged = rejects.per_file(con)
    rows = sorted(rows, key=lambda r: order[r.table])
    files_of = {id(native): {f for (f,) in con.sql(f"SELECT DISTINCT _file FROM {native.work_table}").fetchall()} for native in rows}
    # A file whose every row the importer refused still hands its rejects to the loader: with
    # the first rows of its table (Task.csv's and Event.csv's activities are two).
    for file, table in judged:
        same_table = [native for native in rows if native.table == table]
        if same_table and not any(file in files_of[id(native)] for native in same_table):
            files_of[id(same_table[0])].add(file)
    inputs = []
    for native in rows:
        within = "_line, event_id" if native.table == "events" else "_line"
        for file in sorted(files_of[id(native)]):
            arrow = con.sql(
                f"SELECT * EXCLUDE (_file) FROM {native.work_table} WHERE _file = $file ORDER BY {within}",
                params={"file": file},
            ).to_arrow_table()
            refused = None
            if (file, native.table) in judged:
                refused = con.sql(
                    f"SELECT file, table_name, line, column_name, value, reason FROM {rejects.REJECTS_TABLE} "
                    "WHERE file = $file AND table_name = $table ORDER BY line, column_name",
                    params={"file": file, "table": native.table},
                ).to_arrow_table()
            inputs.append(
                InputFile(
                    Path(file),
                    native.table,
                    "staged",
                    stage=_stager(arrow, refused),
                    source_columns=tuple(native.source_columns.items()),
                )
            )
    return inputs


def _stager(arrow, refused=None):
    """Fill the loader's raw table with ``arrow``; the rows the importer refused (``refused``)
    go to ``load_rejects`` in the load's transaction, under the id of the load being written
    (the next after the last one recorded, as :func:`crm_lab.load.load` numbers it), where the
    loader counts them with this file's rejects."""

    def stage(con: duckdb.DuckDBPyConnection, item: InputFile, temp_table: str) -> None:
        con.register("_import_staged_rows", arrow)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(temp_table)} AS SELECT * FROM _import_staged_rows")
        finally:
            con.unregister("_import_staged_rows")
        if refused is not None and refused.num_rows:
            con.register("_import_refused_rows", refused)
            try:
                con.execute(
                    "INSERT INTO load_rejects SELECT (SELECT coalesce(max(load_id), 0) + 1 FROM load_runs), "
                    "file, table_name, line, column_name, value, reason FROM _import_refused_rows ORDER BY line, column_name"
                )
            finally:
                con.unregister("_import_refused_rows")

    return stage


def note(con: duckdb.DuckDBPyConnection, text: str) -> None:
    """A line for the load summary about what an importer passed over, and why."""
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _import_notes (note VARCHAR)")
    con.execute("INSERT INTO _import_notes VALUES (?)", [text])


def notes(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _import_notes (note VARCHAR)")
    return [text for (text,) in con.sql("SELECT note FROM _import_notes ORDER BY rowid").fetchall()]
