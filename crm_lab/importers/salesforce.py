"""A Salesforce data export (one CSV per object, standard field names) read into native rows
and dated field changes.

Objects: ``Opportunity`` (required), ``OpportunityHistory`` and ``OpportunityFieldHistory``,
``Lead`` and ``LeadHistory``, ``Account``, ``User``. Opportunity history rows are snapshots of
stage, amount and close date; field history rows are single-field changes (``Owner``,
``Name``, ``Account``, ``Loss_Reason__c``; for leads ``Owner``, ``Status``, ``Score__c`` and
``leadConverted``). What a field was at creation is the OldValue of its first history row, or
its current value when it has none. Deleted records (``IsDeleted`` true, from an export that
includes them) end at their ``LastModifiedDate``."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crm_lab.errors import LoadError
from crm_lab.importers import currency, dates
from crm_lab.importers.events import add_changes, add_dated_deal_changes, changes_table
from crm_lab.importers.exports import ExportTable, read_optional_export, require_values
from crm_lab.importers.mapping import Mapping
from crm_lab.importers.stages import (
    DEAL_STAGES,
    LEAD_STATUSES,
    SALESFORCE_LEAD_STATUSES,
    SALESFORCE_STAGES,
    name_table,
    resolve_names,
)
from crm_lab.importers.staging import NativeRows, company_rows, deal_rows
from crm_lab.typing_checks import quote_literal

OPPORTUNITY_FIELDS = {"Owner": "owner_rep_id", "Name": "name", "Account": "account_id", "Loss_Reason__c": "lost_reason"}
LEAD_FIELDS = {"Owner": "owner_rep_id", "Status": "status", "Score__c": "score"}


def read_salesforce(con: duckdb.DuckDBPyConnection, folder: Path, mapping: Mapping, rates: currency.Rates | None) -> tuple[list[NativeRows], str | None]:
    """Stage the export in ``folder``; return the native rows it gives and the home currency."""
    if not folder.is_dir():
        raise LoadError(f"{folder}: not a folder; a Salesforce export is a folder of CSV files (Opportunity.csv, ...)")
    if not (folder / "Opportunity.csv").exists():
        raise LoadError(f"{folder}: no Opportunity.csv; a Salesforce export needs at least its opportunities")
    required = {
        "Opportunity": ("Id", "StageName", "CreatedDate"),
        "OpportunityHistory": ("OpportunityId", "StageName", "CreatedDate"),
        "OpportunityFieldHistory": ("OpportunityId", "Field", "CreatedDate"),
        "Lead": ("Id", "CreatedDate"),
        "LeadHistory": ("LeadId", "Field", "CreatedDate"),
        "Account": ("Id",),
        "User": ("Id",),
    }
    exports = {}
    for name, fields in required.items():
        export = read_optional_export(con, folder / f"{name}.csv", f"_sf_{name.lower()}", fields)
        if export is not None:
            require_values(con, export, fields)
        exports[name] = export
    opp, history, field_history = exports["Opportunity"], exports["OpportunityHistory"], exports["OpportunityFieldHistory"]
    lead, lead_history, account, user = exports["Lead"], exports["LeadHistory"], exports["Account"], exports["User"]

    t = lambda export, field, date=False: dates.time_sql(con, export, field, mapping.dates.get(field), date=date)  # noqa: E731
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _sf_opp AS SELECT *, {t(opp, 'CreatedDate')} AS _created,
            {t(opp, 'CloseDate', True)} AS _close_date, {t(opp, 'LastModifiedDate')} AS _modified,
            trim({opp.column('StageName')}) AS _stage_name FROM {opp.table}"""
    )
    opp = ExportTable(opp.path, "_sf_opp", opp.columns)
    if history is not None:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _sf_history AS
                SELECT *, {t(history, 'CreatedDate')} AS _at, {t(history, 'CloseDate', True)} AS _close_date,
                       trim({history.column('StageName')}) AS _stage_name
                FROM {history.table}"""
        )
        columns = history.columns
        if not history.has("CurrencyIsoCode") and opp.has("CurrencyIsoCode"):
            # Multi-currency orgs write CurrencyIsoCode on history rows; otherwise it is the opportunity's.
            con.execute("ALTER TABLE _sf_history ADD COLUMN CurrencyIsoCode VARCHAR")
            con.execute(
                f"UPDATE _sf_history h SET CurrencyIsoCode = o.{opp.column('CurrencyIsoCode')} FROM _sf_opp o "
                f"WHERE o.{opp.column('Id')} = h.{history.column('OpportunityId')}"
            )
            columns += ("CurrencyIsoCode",)
        history = ExportTable(history.path, "_sf_history", columns)

    money = [currency.Money(opp, "Amount", "CurrencyIsoCode", "_close_date")]
    if history is not None:
        money.append(currency.Money(history, "Amount", "CurrencyIsoCode", "_close_date"))
    home = currency.home_currency(con, money, rates, mapping.currency)

    _stage_map(con, opp, history, mapping)
    rows = [company_rows(con, opp.path, home)]
    if user is not None:
        rows.append(_reps(con, user, t))
    if account is not None:
        rows.append(_accounts(con, account, t))
    rows.append(_deals(con, opp, history, field_history, user, account, home, rates, mapping, t))
    if lead is not None:
        rows.append(_leads(con, lead, lead_history, user, mapping, t))
    return rows, home


def _stage_map(con, opp: ExportTable, history: ExportTable | None, mapping: Mapping) -> None:
    """``_sf_stage_map(name, native)`` for every stage name met; a closed stage the defaults
    do not know is read from the opportunities' own IsClosed / IsWon."""
    sources = [f"SELECT _stage_name AS name, {quote_literal(str(opp.path))} AS file, _line, 0 AS source, "
               f"CASE WHEN lower({opp.column('IsClosed')}) IN ('true', '1') THEN CASE WHEN lower({opp.column('IsWon')}) IN ('true', '1') "
               f"THEN 'closed_won' ELSE 'closed_lost' END END AS implied FROM _sf_opp"]
    if history is not None:
        sources.append(f"SELECT _stage_name, {quote_literal(str(history.path))}, _line, 1, NULL FROM _sf_history")
    seen: dict[str, tuple[Path, int, str | None]] = {}
    implied: dict[str, str] = {}
    for name, file, line, closed in con.sql(
        f"SELECT name, file, _line, implied FROM ({' UNION ALL '.join(sources)}) WHERE name IS NOT NULL ORDER BY source, _line"
    ).fetchall():
        seen.setdefault(name, (Path(file), line, None))
        if closed and name not in implied:
            implied[name] = closed
    seen = {name: (path, line, implied.get(name)) for name, (path, line, _) in seen.items()}
    stage_map = resolve_names(seen, SALESFORCE_STAGES, mapping.stages, section="stages", what="stage", choices=DEAL_STAGES)
    name_table(con, "_sf_stage_map", stage_map)


def _reps(con, user: ExportTable, t) -> NativeRows:
    name = f"coalesce({user.column('Name')}, nullif(trim(concat_ws(' ', {user.column('FirstName')}, {user.column('LastName')})), ''))"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _sf_reps AS
            SELECT getvariable('import_company') AS company_id, {user.column('Id')} AS rep_id, {name} AS name,
                   {user.column('Email')} AS email, {user.column('Department')} AS team, {user.column('Title')} AS role,
                   CAST(CAST({t(user, 'CreatedDate')} AS DATE) AS VARCHAR) AS hired_at, {user.column('IsActive')} AS is_active,
                   {quote_literal(str(user.path))} AS _file, _line
            FROM {user.table}"""
    )
    return NativeRows("reps", "_sf_reps", {"rep_id": "Id", "email": "Email", "team": "Department", "role": "Title", "hired_at": "CreatedDate", "is_active": "IsActive"})


def _accounts(con, account: ExportTable, t) -> NativeRows:
    created = t(account, "CreatedDate")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _sf_accounts AS
            SELECT getvariable('import_company') AS company_id, {account.column('Id')} AS account_id, {account.column('Name')} AS name,
                   {account.column('Industry')} AS industry, {account.column('NumberOfEmployees')} AS employees,
                   {account.column('BillingLatitude')} AS lat, {account.column('BillingLongitude')} AS lon,
                   {account.column('OwnerId')} AS owner_rep_id, CAST({created} AS VARCHAR) AS created_at,
                   {quote_literal(str(account.path))} AS _file, _line
            FROM {account.table}"""
    )
    add_changes(
        con, "account", "_sf_accounts",
        {"name": "name", "industry": "industry", "employees": "employees", "owner_rep_id": "owner_rep_id"},
        aggregate_id="account_id", occurred_at="CAST(created_at AS TIMESTAMPTZ)", rank="0",
        event_id="'sf-Account-' || account_id", actor_id="owner_rep_id", _file="_file", _line="_line",
    )  # fmt: skip
    return NativeRows("accounts", "_sf_accounts", {"account_id": "Id", "employees": "NumberOfEmployees", "lat": "BillingLatitude", "lon": "BillingLongitude", "owner_rep_id": "OwnerId", "created_at": "CreatedDate"})


def _field_changes(con, table: str, export: ExportTable, record_field: str, fields: dict[str, str], lookups: dict[str, str], t) -> None:
    """``table``: the field history rows that set a native field, with the native field name.
    A lookup field's second row (Salesforce writes one with ids and one with names) is skipped:
    ``lookups`` names the id table its values must be in."""
    cases = " ".join(f"WHEN {quote_literal(k)} THEN {quote_literal(v)}" for k, v in fields.items())
    keep = " AND ".join(
        f"(native <> {quote_literal(f)} OR NewValue IS NULL OR NewValue IN (SELECT Id FROM {ids}))" for f, ids in lookups.items()
    ) or "TRUE"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM (
            SELECT _line, {export.column(record_field)} AS record_id, {export.column('Id')} AS history_id,
                   {export.column('CreatedById')} AS actor_id, {t(export, 'CreatedDate')} AS _at,
                   CASE {export.column('Field')} {cases} END AS native,
                   {export.column('OldValue')} AS OldValue, {export.column('NewValue')} AS NewValue
            FROM {export.table}) WHERE native IS NOT NULL AND {keep}"""
    )


def _value_at_creation(fields_table: str, record_id: str, native: str, current: str, tracked: set[str]) -> str:
    """A field's value at creation: the OldValue of its first history row, else its value now."""
    if native not in tracked:
        return current
    rows = f"FROM {fields_table} f WHERE f.record_id = {record_id} AND f.native = {quote_literal(native)}"
    return f"CASE WHEN EXISTS (SELECT 1 {rows}) THEN (SELECT arg_min_null(OldValue, (_at, _line)) {rows}) ELSE {current} END"


def _add_deletions(con, aggregate: str, records: str, sobject: str, file: str) -> None:
    """A ``deleted`` event for each record flagged IsDeleted, at its last modification (never
    before its creation)."""
    add_changes(
        con, aggregate, f"{records} r", {"_deleted": "'true'"}, where="r._deleted",
        aggregate_id=f"r.{aggregate}_id", occurred_at="greatest(r._modified, r.created_at)", rank="9", actor_id="NULL",
        event_id=f"'sf-{sobject}-' || r.{aggregate}_id || ':deleted'", _file=file, _line="r._line",
    )  # fmt: skip


def _deals(con, opp, history, field_history, user, account, home, rates, mapping: Mapping, t) -> NativeRows:
    amount = currency.amount_sql(currency.Money(opp, "Amount", "CurrencyIsoCode", "_close_date"), rates)
    stage = "(SELECT native FROM _sf_stage_map WHERE name = _stage_name)"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _sf_deals_all AS
            SELECT getvariable('import_company') AS company_id, {opp.column('Id')} AS deal_id, {opp.column('AccountId')} AS account_id,
                   {opp.column('OwnerId')} AS owner_rep_id, {opp.column('Name')} AS name, {stage} AS stage,
                   {amount} AS amount, {quote_literal(home) if home else 'NULL'} AS currency, _close_date AS expected_close_date,
                   {opp.column('Loss_Reason__c')} AS lost_reason, _created AS created_at, CAST(_close_date AS TIMESTAMPTZ) AS closes_at,
                   lower(coalesce({opp.column('IsDeleted')}, 'false')) IN ('true', '1') AS _deleted, _modified,
                   {quote_literal(str(opp.path))} AS _file, _line
            FROM _sf_opp"""
    )
    opp_file = quote_literal(str(opp.path))
    tracked: set[str] = set()
    if field_history is not None:
        lookups = {}
        if user is not None:
            lookups["owner_rep_id"] = "_sf_user"
        if account is not None:
            lookups["account_id"] = "_sf_account"
        _field_changes(con, "_sf_opp_fields", field_history, "OpportunityId", OPPORTUNITY_FIELDS, lookups, t)
        tracked = {f for (f,) in con.sql("SELECT DISTINCT native FROM _sf_opp_fields").fetchall()}
        add_changes(
            con, "deal", "_sf_opp_fields", {"*": "NewValue"},
            aggregate_id="record_id", occurred_at="_at", rank="2", actor_id="actor_id",
            event_id="'sf-OpportunityFieldHistory-' || coalesce(history_id, record_id || ':' || _line)",
            _file=quote_literal(str(field_history.path)), _line="_line",
        )  # fmt: skip
    first_old = lambda native, current: _value_at_creation("_sf_opp_fields", "d.deal_id", native, current, tracked)  # noqa: E731
    has_history = "FALSE"
    if history is not None:
        h_amount = currency.amount_sql(currency.Money(history, "Amount", "CurrencyIsoCode", "_close_date"), rates)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _sf_snapshots AS
                SELECT _line, {history.column('OpportunityId')} AS deal_id, {history.column('Id')} AS history_id,
                       {history.column('CreatedById')} AS actor_id, _at,
                       (SELECT native FROM _sf_stage_map WHERE name = _stage_name) AS stage, {h_amount} AS amount,
                       _close_date AS expected_close_date
                FROM _sf_history"""
        )
        add_changes(
            con, "deal", "_sf_snapshots", {"stage": "stage", "amount": "amount", "expected_close_date": "expected_close_date"},
            aggregate_id="deal_id", occurred_at="_at", rank="1", actor_id="actor_id",
            event_id="'sf-OpportunityHistory-' || coalesce(history_id, deal_id || ':' || _line)",
            _file=quote_literal(str(history.path)), _line="_line",
        )  # fmt: skip
        has_history = "d.deal_id IN (SELECT deal_id FROM _sf_snapshots)"
        first = lambda column: f"(SELECT arg_min_null({column}, (_at, _line)) FROM _sf_snapshots s WHERE s.deal_id = d.deal_id)"  # noqa: E731
    else:
        first = lambda column: "NULL"  # noqa: E731
    add_changes(
        con, "deal", "_sf_deals_all d",
        {"account_id": first_old("account_id", "d.account_id"), "owner_rep_id": first_old("owner_rep_id", "d.owner_rep_id"),
         "name": first_old("name", "d.name"), "stage": first("stage"), "amount": first("amount"), "currency": "d.currency",
         "expected_close_date": first("expected_close_date"),
         **({"lost_reason": first_old("lost_reason", "NULL")} if "lost_reason" in tracked else {})},
        where=has_history, aggregate_id="d.deal_id", occurred_at="d.created_at", rank="0", actor_id="d.owner_rep_id",
        event_id="'sf-Opportunity-' || d.deal_id", _file=opp_file, _line="d._line",
    )  # fmt: skip
    add_dated_deal_changes(
        con, "_sf_deals_all", where=f"NOT ({has_history})", event_id="'sf-Opportunity-' || d.deal_id",
        file=opp_file, initial_stage=mapping.initial_stage,
    )
    if "lost_reason" not in tracked:
        # An untracked loss reason is known only as it is now: set when the deal last changed.
        last_change = f"(SELECT max(occurred_at) FROM {changes_table('deal')} c WHERE c.aggregate_id = d.deal_id)"
        add_changes(
            con, "deal", "_sf_deals_all d", {"lost_reason": "d.lost_reason"}, where="d.lost_reason IS NOT NULL",
            aggregate_id="d.deal_id", occurred_at=last_change, rank="3", actor_id="d.owner_rep_id",
            event_id="'sf-Opportunity-' || d.deal_id || ':lost_reason'", _file=opp_file, _line="d._line",
        )  # fmt: skip
    _add_deletions(con, "deal", "_sf_deals_all", "Opportunity", opp_file)
    last_close = f"(SELECT max(occurred_at) FROM {changes_table('deal')} c WHERE c.aggregate_id = d.deal_id AND c.field = 'stage')"
    return deal_rows(
        con, "(SELECT * FROM _sf_deals_all WHERE NOT _deleted)", last_close,
        {"deal_id": "Id", "account_id": "AccountId", "owner_rep_id": "OwnerId", "name": "Name", "stage": "StageName",
         "amount": "Amount", "expected_close_date": "CloseDate", "lost_reason": "Loss_Reason__c", "created_at": "CreatedDate"},
    )  # fmt: skip


def _leads(con, lead: ExportTable, lead_history: ExportTable | None, user, mapping: Mapping, t) -> NativeRows:
    status_seen: dict[str, tuple[Path, int, str | None]] = {}
    queries = [f"SELECT trim({lead.column('Status')}), {quote_literal(str(lead.path))}, _line, 0 FROM {lead.table}"]
    if lead_history is not None:
        f, n, o = lead_history.column("Field"), lead_history.column("NewValue"), lead_history.column("OldValue")
        for value in (o, n):
            queries.append(f"SELECT trim({value}), {quote_literal(str(lead_history.path))}, _line, 1 FROM {lead_history.table} WHERE {f} = 'Status'")
    for name, file, line in con.sql(f"SELECT name, file, line FROM ({' UNION ALL '.join(queries)}) t(name, file, line, source) WHERE name IS NOT NULL ORDER BY source, line").fetchall():
        status_seen.setdefault(name, (Path(file), line, None))
    statuses = resolve_names(status_seen, SALESFORCE_LEAD_STATUSES, mapping.lead_statuses, section="lead_statuses", what="lead status", choices=LEAD_STATUSES)
    name_table(con, "_sf_status_map", statuses)
    lead_file = quote_literal(str(lead.path))
    is_converted = f"lower(coalesce({lead.column('IsConverted')}, 'false')) IN ('true', '1')"
    name = f"coalesce({lead.column('Name')}, nullif(trim(concat_ws(' ', {lead.column('FirstName')}, {lead.column('LastName')})), ''))"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _sf_leads_all AS
            SELECT getvariable('import_company') AS company_id, {lead.column('Id')} AS lead_id,
                   {lead.column('ConvertedAccountId')} AS account_id, {lead.column('OwnerId')} AS owner_rep_id, {name} AS name,
                   {lead.column('LeadSource')} AS source, {lead.column('Industry')} AS industry,
                   {lead.column('NumberOfEmployees')} AS employees, {lead.column('Score__c')} AS score,
                   CASE WHEN {is_converted} THEN 'converted' ELSE (SELECT native FROM _sf_status_map WHERE name = trim({lead.column('Status')})) END AS status,
                   {lead.column('ConvertedOpportunityId')} AS deal_id, {t(lead, 'CreatedDate')} AS created_at,
                   {is_converted} AS _converted, {t(lead, 'ConvertedDate', True)} AS _converted_date,
                   lower(coalesce({lead.column('IsDeleted')}, 'false')) IN ('true', '1') AS _deleted,
                   {t(lead, 'LastModifiedDate')} AS _modified, {lead_file} AS _file, _line
            FROM {lead.table}"""
    )
    tracked: set[str] = set()
    history_file = quote_literal(str(lead_history.path)) if lead_history is not None else "NULL"
    converted_at = "NULL"
    if lead_history is not None:
        lookups = {"owner_rep_id": "_sf_user"} if user is not None else {}
        _field_changes(con, "_sf_lead_fields", lead_history, "LeadId", {**LEAD_FIELDS, "leadConverted": "_converted"}, lookups, t)
        con.execute("UPDATE _sf_lead_fields SET OldValue = (SELECT native FROM _sf_status_map WHERE name = trim(OldValue)), "
                    "NewValue = (SELECT native FROM _sf_status_map WHERE name = trim(NewValue)) WHERE native = 'status'")
        tracked = {f for (f,) in con.sql("SELECT DISTINCT native FROM _sf_lead_fields").fetchall()}
        add_changes(
            con, "lead", "_sf_lead_fields", {"*": "NewValue"}, where="native <> '_converted'",
            aggregate_id="record_id", occurred_at="_at", rank="1", actor_id="actor_id",
            event_id="'sf-LeadHistory-' || coalesce(history_id, record_id || ':' || _line)", _file=history_file, _line="_line",
        )  # fmt: skip
        converted_at = "(SELECT min(_at) FROM _sf_lead_fields f WHERE f.record_id = l.lead_id AND f.native = '_converted')"
    first_old = lambda native, current: _value_at_creation("_sf_lead_fields", "l.lead_id", native, current, tracked)  # noqa: E731
    # A converted lead was open before; its conversion instant is the leadConverted history row,
    # else its opportunity's creation, else the start of its ConvertedDate.
    opp_created = "(SELECT d.created_at FROM _sf_deals_all d WHERE d.deal_id = l.deal_id)"
    conversion = f"greatest(coalesce({converted_at}, {opp_created}, CAST(l._converted_date AS TIMESTAMPTZ)), l.created_at)"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _sf_leads_timed AS SELECT l.*, CASE WHEN l._converted THEN {conversion} END AS converted_at FROM _sf_leads_all l")
    add_changes(
        con, "lead", "_sf_leads_timed l",
        {"owner_rep_id": first_old("owner_rep_id", "l.owner_rep_id"), "name": "l.name", "source": "l.source",
         "industry": "l.industry", "employees": "l.employees", "score": first_old("score", "l.score"),
         "status": first_old("status", "CASE WHEN l._converted THEN 'open' ELSE l.status END")},
        aggregate_id="l.lead_id", occurred_at="l.created_at", rank="0", actor_id="l.owner_rep_id",
        event_id="'sf-Lead-' || l.lead_id", _file=lead_file, _line="l._line",
    )  # fmt: skip
    add_changes(
        con, "lead", "_sf_leads_timed l", {"status": "'converted'", "deal_id": "l.deal_id", "account_id": "l.account_id"},
        where="l._converted", aggregate_id="l.lead_id", occurred_at="l.converted_at", rank="2", actor_id="l.owner_rep_id",
        event_id="'sf-Lead-' || l.lead_id || ':converted'", _file=lead_file, _line="l._line",
    )  # fmt: skip
    _add_deletions(con, "lead", "_sf_leads_timed", "Lead", lead_file)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _sf_leads AS
           SELECT company_id, lead_id, account_id, owner_rep_id, name, source, industry, employees, score, status, deal_id,
                  CAST(created_at AS VARCHAR) AS created_at, CAST(converted_at AS VARCHAR) AS converted_at, _file, _line
           FROM _sf_leads_timed WHERE NOT _deleted"""
    )
    return NativeRows(
        "leads", "_sf_leads",
        {"lead_id": "Id", "account_id": "ConvertedAccountId", "owner_rep_id": "OwnerId", "source": "LeadSource",
         "industry": "Industry", "employees": "NumberOfEmployees", "score": "Score__c", "status": "Status",
         "deal_id": "ConvertedOpportunityId", "created_at": "CreatedDate", "converted_at": "ConvertedDate"},
    )  # fmt: skip
