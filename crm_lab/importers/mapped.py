"""An export of any CRM or spreadsheet, read through a ``--mapping`` file: one row per deal
(``kind: deals``, the default) or per lead (``kind: leads``), its current state and a few dates.
Without history, its events are derived from the dates: a deal is created at its engage (create)
date and won or lost at its close date; a lead is created at its create date (open) and
converted at its conversion date, or disqualified at its disqualification date (else at its
creation).

A later export of records the database already holds (its ``deals`` / ``leads`` rows: the state
the last import left) does not create them again: its differences from the stored rows become
change events, dated at the export's ``updated_at`` when the mapping maps one, else at the
import's own time."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crm_lab.contract import AGGREGATES, PAYLOAD_FIELD_TYPES
from crm_lab.db import table_exists
from crm_lab.errors import LoadError
from crm_lab.importers import currency, dates
from crm_lab.importers.events import add_changes, add_dated_deal_changes
from crm_lab.importers.exports import ExportTable, read_export, require_values
from crm_lab.importers.mapping import REQUIRED_COLUMNS, REQUIRED_LEAD_COLUMNS, Mapping
from crm_lab.importers.stages import CLOSED_STAGES_SQL, DEAL_STAGES, LEAD_STATUSES, name_table, resolve_names
from crm_lab.importers.staging import NativeRows, company_rows, deal_rows, lead_rows
from crm_lab.importers.unique import refuse_repeated_ids
from crm_lab.typing_checks import quote_ident, quote_literal

# Lead event ids name the record, not the file: exports are named by date (HubSpot's
# hubspot-crm-exports-all-contacts-2024-03-01.csv), and next month's export of the same leads
# must land on the same ids.
LEAD_EVENT_PREFIX = "mapped-lead-"
# A change found against the stored state names the record too (not the file), with a hash of
# what changed and when: the same change read from any export lands on one id.
DEAL_CHANGE_PREFIX = "mapped-deal-"
# The stored state enters the fold of a record's changes as its first instant, before any real
# one; the events derived from it (a `created` of what is already stored) are dropped.
BASELINE = "CAST('-infinity' AS TIMESTAMPTZ)"


def read_mapped(con: duckdb.DuckDBPyConnection, file: Path, mapping: Mapping, rates: currency.Rates | None) -> tuple[list[NativeRows], str | None]:
    """Stage ``file`` through ``mapping``; return the native rows and the home currency."""
    if not file.is_file():
        raise LoadError(f"{file}: no such file; with --mapping, name the export file itself")
    cols = mapping.columns
    export = read_export(con, file, "_mapped_export")
    for native, source in cols.items():
        if not export.has(source):
            raise LoadError(f"{file} line 1: no column {source!r}, which {mapping.path} maps to {native}")
    if mapping.kind == "leads":
        return _read_leads(con, file, export, mapping), None
    require_values(con, export, tuple(cols[name] for name in REQUIRED_COLUMNS))
    refuse_repeated_ids(con, export, cols["deal_id"], "deal id", "an export of deals has one row per deal")
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
            # By position: an export may have a column called name (the deal's).
            f"SELECT trim({column('stage')}) AS stage_name, min(_line) FROM {export.table} GROUP BY 1 ORDER BY 2"
        ).fetchall()
    }
    stages = resolve_names(seen, {s: s for s in DEAL_STAGES}, mapping.stages, section="stages", what="stage", choices=DEAL_STAGES)
    name_table(con, "_mapped_stage_map", stages)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _mapped_dated AS SELECT *, {close_date} AS _closes_at, {expected} AS _expected FROM {export.table}")
    dated = export.__class__(export.path, "_mapped_dated", export.columns)
    home = mapping.currency
    amount = "CAST(NULL AS DECIMAL(18, 2))"
    if "amount" in cols:
        money = currency.Money(dated, cols["amount"], cols.get("currency", ""), "CAST(_closes_at AS DATE)", mapping.currency)
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
                   {time('updated_at')} AS _updated_at, {file_sql} AS _file, _line
            FROM _mapped_dated"""
    )
    missing_close = con.sql(f"SELECT min(_line) FROM _mapped_deals_all WHERE stage IN {CLOSED_STAGES_SQL} AND closes_at IS NULL").fetchall()[0][0]
    if missing_close is not None:
        if "close_date" not in cols:
            raise LoadError(f"{file} line {missing_close}: a closed deal needs its close date, and {mapping.path} maps no close_date column")
        raise LoadError(f"{file} line {missing_close}, field {cols['close_date']}: a closed deal needs its close date")
    stored = _stored_rows(con, "deal")
    event_id = f"{quote_literal(file.stem + '-')} || d.deal_id"
    add_dated_deal_changes(
        con, "_mapped_deals_all", where=f"d.deal_id NOT IN (SELECT deal_id FROM {stored})", event_id=event_id,
        file=file_sql, initial_stage=mapping.initial_stage,
    )
    _add_deal_changes(con, cols, event_id)
    source_columns = {native: cols[native] for native in ("deal_id", "account_id", "owner_rep_id", "name", "stage", "amount", "lost_reason", "created_at") if native in cols}
    closed_at = "greatest(d.closes_at, d.created_at)"
    return [company_rows(con, file, home, rates.path if rates else None), deal_rows(con, "_mapped_deals_all", closed_at, source_columns)], home


def _read_leads(con: duckdb.DuckDBPyConnection, file: Path, export: ExportTable, mapping: Mapping) -> list[NativeRows]:
    """A leads export: one row per lead, as it stands now. Its events come from its dates, as
    Salesforce's Lead.csv without LeadHistory: created open at the create date, converted at the
    conversion date (a lead with one is converted, whatever its status says, as Salesforce's
    IsConverted outranks Status), disqualified at the disqualification date, else at creation.
    No ``companies`` row: a leads export names no currency, and the company's row from its deals
    import must not be overwritten."""
    cols = mapping.columns
    require_values(con, export, tuple(cols[name] for name in REQUIRED_LEAD_COLUMNS))
    refuse_repeated_ids(con, export, cols["lead_id"], "lead id", "an export of leads has one row per lead")
    value = lambda native: f"nullif(trim({export.column(cols[native])}), '')" if native in cols else "CAST(NULL AS VARCHAR)"  # noqa: E731
    # HubSpot lists every associated record ("101;102"); the first is the one the lead is with.
    first_id = lambda native: f"nullif(trim(split_part({value(native)}, ';', 1)), '')"  # noqa: E731
    time = lambda native: (  # noqa: E731
        dates.time_sql(con, export, cols[native], mapping.dates.get(cols[native])) if native in cols else "CAST(NULL AS TIMESTAMPTZ)"
    )
    file_sql = quote_literal(str(file))
    statuses: dict[str, str] = {}
    if "status" in cols:
        seen = {
            name: (file, line, None, cols["status"])
            for name, line in con.sql(
                f"SELECT {value('status')} AS status_name, min(_line) FROM {export.table} WHERE {value('status')} IS NOT NULL GROUP BY 1 ORDER BY 2"
            ).fetchall()
        }
        statuses = resolve_names(seen, {s: s for s in LEAD_STATUSES}, mapping.lead_statuses, section="lead_statuses",
                                 what="lead status", choices=LEAD_STATUSES)  # fmt: skip
    name_table(con, "_mapped_status_map", statuses)
    name = value("name")
    if "first_name" in cols or "last_name" in cols:
        name = f"coalesce({name}, nullif(trim(concat_ws(' ', {value('first_name')}, {value('last_name')})), ''))"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _mapped_leads_read AS
            SELECT getvariable('import_company') AS company_id, {value('lead_id')} AS lead_id, {first_id('account_id')} AS account_id,
                   {value('owner_rep_id')} AS owner_rep_id, {name} AS name, {value('source')} AS source,
                   {value('industry')} AS industry, {value('employees')} AS employees, {value('score')} AS score,
                   {value('status')} AS _status_name, (SELECT native FROM _mapped_status_map WHERE name = {value('status')}) AS _status,
                   {first_id('deal_id')} AS deal_id, {time('created_at')} AS created_at, {time('converted_at')} AS _converted_at,
                   {time('disqualified_at')} AS _disqualified_at, {time('updated_at')} AS _updated_at, {file_sql} AS _file, _line
            FROM {export.table}"""
    )
    undated = con.sql(
        "SELECT _line, _status_name FROM _mapped_leads_read WHERE _status = 'converted' AND _converted_at IS NULL ORDER BY _line LIMIT 1"
    ).fetchall()
    if undated:
        line, status = undated[0]
        where = f"{file} line {line}, field {cols['status']}: {status!r} is a converted status"
        if "converted_at" not in cols:
            raise LoadError(f"{where}; a converted lead needs its conversion date, and {mapping.path} maps no converted_at column")
        raise LoadError(f"{where}, and the lead has no conversion date ({cols['converted_at']} is empty)")
    # Never before the creation (an export's dates may be whole days while its create date has a
    # time); greatest() skips a null, so an absent date stays absent only through the CASE.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _mapped_leads_all AS
           SELECT * EXCLUDE (_status_name, _status, _converted_at),
                  CASE WHEN _converted_at IS NOT NULL THEN 'converted' ELSE coalesce(_status, 'open') END AS status,
                  CASE WHEN _converted_at IS NOT NULL THEN greatest(_converted_at, created_at) END AS converted_at,
                  CASE WHEN _converted_at IS NULL AND _status = 'disqualified' THEN greatest(coalesce(_disqualified_at, created_at), created_at) END AS disqualified_at
           FROM _mapped_leads_read"""
    )
    event_id = f"{quote_literal(LEAD_EVENT_PREFIX)} || l.lead_id"
    stored = _stored_rows(con, "lead")
    new_lead = f"l.lead_id NOT IN (SELECT lead_id FROM {stored})"
    add_changes(
        con, "lead", "_mapped_leads_all l",
        {"account_id": "l.account_id", "owner_rep_id": "l.owner_rep_id", "name": "l.name", "source": "l.source",
         "industry": "l.industry", "employees": "l.employees", "score": "l.score", "status": "'open'"}, where=new_lead,
        aggregate_id="l.lead_id", occurred_at="l.created_at", rank="0", actor_id="l.owner_rep_id",
        event_id=event_id, _file=file_sql, _line="l._line",
    )  # fmt: skip
    add_changes(
        con, "lead", "_mapped_leads_all l", {"status": "'converted'", "deal_id": "l.deal_id"}, where=f"{new_lead} AND l.converted_at IS NOT NULL",
        aggregate_id="l.lead_id", occurred_at="l.converted_at", rank="1", actor_id="l.owner_rep_id",
        event_id=f"{event_id} || ':converted'", _file=file_sql, _line="l._line",
    )  # fmt: skip
    add_changes(
        con, "lead", "_mapped_leads_all l", {"status": "'disqualified'"}, where=f"{new_lead} AND l.disqualified_at IS NOT NULL",
        aggregate_id="l.lead_id", occurred_at="l.disqualified_at", rank="1", actor_id="l.owner_rep_id",
        event_id=f"{event_id} || ':disqualified'", _file=file_sql, _line="l._line",
    )  # fmt: skip
    _add_lead_changes(con, cols)
    source_columns = {
        native: cols[native]
        for native in ("lead_id", "account_id", "owner_rep_id", "name", "source", "industry", "employees", "score", "status", "deal_id", "created_at", "converted_at")
        if native in cols
    }
    return [lead_rows(con, "_mapped_leads_all", source_columns)]


def _stored_rows(con: duckdb.DuckDBPyConnection, aggregate: str) -> str:
    """This tenant's stored ``deals`` / ``leads`` rows (none before the first load) as a temp
    table; returns its name."""
    table, key = f"{aggregate}s", AGGREGATES[aggregate].id_column
    target = f"_stored_{table}"
    fields = AGGREGATES[aggregate].fields
    if table_exists(con, table, database="stored"):
        columns = ", ".join(quote_ident(c) for c in (key, *fields, "created_at"))
        query = f"SELECT {columns} FROM stored.main.{table} WHERE company_id = getvariable('import_company')"
    else:
        typed = ", ".join(f"CAST(NULL AS {PAYLOAD_FIELD_TYPES[f]}) AS {quote_ident(f)}" for f in fields)
        query = f"SELECT CAST(NULL AS VARCHAR) AS {key}, {typed}, CAST(NULL AS TIMESTAMPTZ) AS created_at WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS {query}")
    return target


def _add_later_changes(
    con: duckdb.DuckDBPyConnection, aggregate: str, staged: str, compared: dict[str, str], skip: dict[str, str], id_prefix: str
) -> None:
    """Changes of the records of ``staged`` (alias ``d``) that are already stored (alias ``s``):
    the stored state as a baseline instant, then, at the export's ``_updated_at`` (else the
    import's time; never before the stored creation), every field of ``compared`` (native field
    -> SQL of the export's value) whose value differs, unless its ``skip`` condition holds (a
    lifecycle event carries that difference). A value the contract refuses (an ``employees`` of
    ``many``) is no change: its row is rejected by the loader, naming the field."""
    key = AGGREGATES[aggregate].id_column
    pairs = f"{staged} d JOIN _stored_{aggregate}s s ON s.{key} = d.{key}"
    add_changes(
        con, aggregate, pairs, {f: f"s.{quote_ident(f)}" for f in AGGREGATES[aggregate].fields},
        aggregate_id=f"d.{key}", occurred_at=BASELINE, rank="0", event_id="NULL", _file="d._file", _line="d._line",
    )  # fmt: skip
    if not compared:
        return
    typed = {f: f"TRY_CAST(CAST({sql} AS VARCHAR) AS {PAYLOAD_FIELD_TYPES[f]})" for f, sql in compared.items()}
    differs = {
        f: f"({typed[f]} IS DISTINCT FROM s.{quote_ident(f)} AND NOT ({sql} IS NOT NULL AND {typed[f]} IS NULL)"
        f" AND NOT coalesce({skip.get(f, 'false')}, false))"
        for f, sql in compared.items()
    }
    names = ", ".join(quote_literal(f) for f in compared)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _mapped_changed AS
            SELECT * EXCLUDE (differs) FROM (
                SELECT d.{key} AS id, d.owner_rep_id AS actor, d._file, d._line,
                       greatest(coalesce(d._updated_at, getvariable('import_now')), s.created_at) AS changed_at,
                       unnest([{names}]) AS native, unnest([{', '.join(f'CAST({sql} AS VARCHAR)' for sql in compared.values())}]) AS value,
                       unnest([{', '.join(differs.values())}]) AS differs
                FROM {pairs})
            WHERE differs"""
    )
    # The id hashes what changed, to what, and when: the same export imported again finds no
    # difference, and the same change read from two exports is one event.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _mapped_changes AS
            SELECT c.*, {quote_literal(id_prefix)} || c.id || ':changed-' || h.hash AS event_id
            FROM _mapped_changed c JOIN (
                SELECT id, substr(md5(string_agg(native || '=' || coalesce(CAST(to_json(value) AS VARCHAR), 'null'), ';' ORDER BY native)
                                      || '@' || CAST(any_value(changed_at) AS VARCHAR)), 1, 16) AS hash
                FROM _mapped_changed GROUP BY id) h USING (id)"""
    )
    add_changes(
        con, aggregate, "_mapped_changes c", {"*": "c.value"}, aggregate_id="c.id", occurred_at="c.changed_at", rank="2",
        actor_id="c.actor", event_id="c.event_id", _file="c._file", _line="c._line",
    )  # fmt: skip


def _add_deal_changes(con: duckdb.DuckDBPyConnection, cols: dict[str, str], event_id: str) -> None:
    """A later export of stored deals: an open deal now closed is won or lost at its close date
    under today's ``…:closed`` id; a closed deal now closed the other way is too, under an id of
    its own; a closed deal now open is ``reopened``; other differences are patch events."""
    stages = CLOSED_STAGES_SQL
    closes = f"d.stage IN {stages} AND d.stage IS DISTINCT FROM s.stage"
    pairs = "_mapped_deals_all d JOIN _stored_deals s ON s.deal_id = d.deal_id"
    closed_id = f"{event_id} || ':closed'"
    if table_exists(con, "events", database="stored"):
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _stored_closed_ids AS
                SELECT event_id FROM stored.main.events
                WHERE company_id = getvariable('import_company') AND aggregate_type = 'deal'
                  AND event_id IN (SELECT {closed_id} FROM _mapped_deals_all d)"""
        )
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _stored_closed_ids AS SELECT CAST(NULL AS VARCHAR) AS event_id WHERE false")
    at = "greatest(d.closes_at, s.created_at)"
    # `…:closed` names the deal's first closing; a deal reopened and closed again (or moved
    # between won and lost) needs another id, or its closing would clash with the stored one.
    closing_id = (
        f"CASE WHEN s.stage NOT IN {stages} AND {closed_id} NOT IN (SELECT event_id FROM _stored_closed_ids) THEN {closed_id} "
        f"ELSE {quote_literal(DEAL_CHANGE_PREFIX)} || d.deal_id || ':closed-' || substr(md5(d.stage || '@' || CAST({at} AS VARCHAR)), 1, 16) END"
    )
    closing = {"stage": "d.stage", **({"lost_reason": "d.lost_reason"} if "lost_reason" in cols else {})}
    add_changes(
        con, "deal", pairs, closing, where=closes, aggregate_id="d.deal_id", occurred_at=at, rank="1",
        actor_id="d.owner_rep_id", event_id=closing_id, _file="d._file", _line="d._line",
    )  # fmt: skip
    fields = [f for f in ("account_id", "owner_rep_id", "name", "stage", "lost_reason") if f in cols]
    if "amount" in cols:
        fields += ["amount", "currency"]
    if "close_date" in cols or "expected_close_date" in cols:
        fields.append("expected_close_date")
    _add_later_changes(
        con, "deal", "_mapped_deals_all", {f: f"d.{f}" for f in fields},
        {"stage": f"d.stage IN {stages}", "lost_reason": closes}, DEAL_CHANGE_PREFIX,
    )  # fmt: skip


def _add_lead_changes(con: duckdb.DuckDBPyConnection, cols: dict[str, str]) -> None:
    """A later export of stored leads: a lead now converted converts at its conversion date, an
    open lead now disqualified is disqualified at its disqualification date (else when the
    change is dated), both under today's ids; other differences are patch events. The contract
    has no event that reopens a lead, so a converted or disqualified lead keeps its status."""
    pairs = "_mapped_leads_all d JOIN _stored_leads s ON s.lead_id = d.lead_id"
    event_id = f"{quote_literal(LEAD_EVENT_PREFIX)} || d.lead_id"
    converts = "d.status = 'converted' AND s.status IS DISTINCT FROM 'converted'"
    add_changes(
        con, "lead", pairs, {"status": "'converted'", "deal_id": "d.deal_id"}, where=converts,
        aggregate_id="d.lead_id", occurred_at="greatest(d.converted_at, s.created_at)", rank="1", actor_id="d.owner_rep_id",
        event_id=f"{event_id} || ':converted'", _file="d._file", _line="d._line",
    )  # fmt: skip
    # Without its own date, a disqualification found now is not moved back to the creation (as
    # for a new lead): the last import saw the lead open after that.
    disqualified_at = "greatest(coalesce(d._disqualified_at, d._updated_at, getvariable('import_now')), s.created_at)"
    add_changes(
        con, "lead", pairs, {"status": "'disqualified'"}, where="d.status = 'disqualified' AND coalesce(s.status, 'open') = 'open'",
        aggregate_id="d.lead_id", occurred_at=disqualified_at, rank="1", actor_id="d.owner_rep_id",
        event_id=f"{event_id} || ':disqualified'", _file="d._file", _line="d._line",
    )  # fmt: skip
    named = "name" in cols or "first_name" in cols or "last_name" in cols
    fields = [f for f in ("account_id", "owner_rep_id", "name", "source", "industry", "employees", "score", "deal_id") if f in cols or (f == "name" and named)]
    _add_later_changes(con, "lead", "_mapped_leads_all", {f: f"d.{f}" for f in fields}, {"deal_id": converts}, LEAD_EVENT_PREFIX)


def drop_stored_baselines(con: duckdb.DuckDBPyConnection, target: str = "_import_events") -> None:
    """Drop the events derived from a stored record's baseline instant: it is stored already."""
    con.execute(f"DELETE FROM {target} WHERE occurred_at = CAST({BASELINE} AS VARCHAR)")


def add_stored_events(con: duckdb.DuckDBPyConnection, kind: str, target: str = "_import_events") -> None:
    """Hand the loader again the stored events of the export's records that are already stored
    (the tenant holds only this importer's events: :mod:`crm_lab.importers.tenant`), each on its
    record's line. They are duplicates of what is stored and add nothing; with them a later
    import of the same records reads what the export stands for, its summary counts them
    (``128 read, 0 new, 128 already loaded``), and the load's inputs are the same files whatever
    changed since (so the same export has the same fingerprint)."""
    if not table_exists(con, "events", database="stored"):
        return
    aggregate = "deal" if kind == "deals" else "lead"
    key = AGGREGATES[aggregate].id_column
    staged = "_mapped_deals_all" if kind == "deals" else "_mapped_leads_all"
    con.execute(
        f"""INSERT INTO {target}
            SELECT e.event_id, e.company_id, e.aggregate_type, e.aggregate_id, CAST(e.seq AS VARCHAR), e.event_type,
                   CAST(e.occurred_at AS VARCHAR), CAST(e.recorded_at AS VARCHAR), e.actor_id, CAST(e.payload AS VARCHAR),
                   d._file, d._line
            FROM stored.main.events e JOIN {staged} d ON e.aggregate_id = d.{key}
            WHERE e.company_id = getvariable('import_company') AND e.aggregate_type = {quote_literal(aggregate)}"""
    )

