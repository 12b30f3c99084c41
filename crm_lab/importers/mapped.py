"""A deals export of any CRM or spreadsheet, read through a ``--mapping`` file: one row per
deal, its current state and two dates. Without history, its events are derived from the dates:
created at the engage (create) date, won or lost at the close date."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crm_lab.errors import LoadError
from crm_lab.importers import currency, dates
from crm_lab.importers.events import add_dated_deal_changes
from crm_lab.importers.exports import read_export, require_values
from crm_lab.importers.mapping import REQUIRED_COLUMNS, Mapping
from crm_lab.importers.stages import CLOSED_STAGES_SQL, DEAL_STAGES, name_table, resolve_names
from crm_lab.importers.staging import NativeRows, company_rows, deal_rows
from crm_lab.typing_checks import quote_literal



def read_mapped(con: duckdb.DuckDBPyConnection, file: Path, mapping: Mapping, rates: currency.Rates | None) -> tuple[list[NativeRows], str | None]:
    """Stage ``file`` through ``mapping``; return the native rows and the home currency."""
    if not file.is_file():
        raise LoadError(f"{file}: no such file; with --mapping, name the export file itself")
    cols = mapping.columns
    export = read_export(con, file, "_mapped_export")
    for native, source in cols.items():
        if not export.has(source):
            raise LoadError(f"{file} line 1: no column {source!r}, which {mapping.path} maps to {native}")
    require_values(con, export, tuple(cols[name] for name in REQUIRED_COLUMNS))
    column = lambda native: export.column(cols[native]) if native in cols else "CAST(NULL AS VARCHAR)"  # noqa: E731
    time = lambda native, date=False: (  # noqa: E731
        dates.time_sql(con, export, cols[native], mapping.dates.get(cols[native]), date=date) if native in cols
        else ("CAST(NULL AS DATE)" if date else "CAST(NULL AS TIMESTAMPTZ)")
    )
    close_date = time("close_date")
    expected = time("expected_close_date", True) if "expected_close_date" in cols else f"CAST({close_date} AS DATE)"
    seen = {
        name: (file, line, None)
        for name, line in con.sql(
            f"SELECT trim({column('stage')}) AS name, min(_line) FROM {export.table} GROUP BY name ORDER BY 2"
        ).fetchall()
    }
    stages = resolve_names(seen, {s: s for s in DEAL_STAGES}, mapping.stages, section="stages", what="stage", choices=DEAL_STAGES)
    name_table(con, "_mapped_stage_map", stages)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _mapped_dated AS SELECT *, {close_date} AS _closes_at, {expected} AS _expected FROM {export.table}")
    dated = export.__class__(export.path, "_mapped_dated", export.columns)
    home = mapping.currency
    amount = "CAST(NULL AS DECIMAL(18, 2))"
    if "amount" in cols:
        money = currency.Money(dated, cols["amount"], cols.get("currency", ""), "CAST(_closes_at AS DATE)")
        home = currency.home_currency(con, [money], rates, mapping.currency)
        amount = currency.amount_sql(money, rates)
    file_sql = quote_literal(str(file))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _mapped_deals_all AS
            SELECT getvariable('import_company') AS company_id, trim({column('deal_id')}) AS deal_id,
                   {column('account_id')} AS account_id, {column('owner_rep_id')} AS owner_rep_id, {column('name')} AS name,
                   (SELECT native FROM _mapped_stage_map WHERE name = trim({column('stage')})) AS stage, {amount} AS amount,
                   {quote_literal(home) if home else 'NULL'} AS currency, _expected AS expected_close_date,
                   {column('lost_reason')} AS lost_reason, {time('created_at')} AS created_at, _closes_at AS closes_at,
                   {file_sql} AS _file, _line
            FROM _mapped_dated"""
    )
    missing_close = con.sql(f"SELECT min(_line) FROM _mapped_deals_all WHERE stage IN {CLOSED_STAGES_SQL} AND closes_at IS NULL").fetchall()[0][0]
    if missing_close is not None:
        if "close_date" not in cols:
            raise LoadError(f"{file} line {missing_close}: a closed deal needs its close date, and {mapping.path} maps no close_date column")
        raise LoadError(f"{file} line {missing_close}, field {cols['close_date']}: a closed deal needs its close date")
    add_dated_deal_changes(
        con, "_mapped_deals_all", where="TRUE", event_id=f"{quote_literal(file.stem + '-')} || d.deal_id",
        file=file_sql, initial_stage=mapping.initial_stage,
    )
    source_columns = {native: cols[native] for native in ("deal_id", "account_id", "owner_rep_id", "name", "stage", "amount", "lost_reason", "created_at") if native in cols}
    closed_at = "greatest(d.closes_at, d.created_at)"
    return [company_rows(con, file, home), deal_rows(con, "_mapped_deals_all", closed_at, source_columns)], home
