"""A Salesforce data export (one CSV per object, standard field names) read into native rows
and dated field changes.

Objects: ``Opportunity`` (required), ``OpportunityHistory`` and ``OpportunityFieldHistory``,
``Lead`` and ``LeadHistory``, ``Account``, ``User``, ``Task`` and ``Event`` (activities). Opportunity history rows are snapshots of
stage, amount and close date; field history rows are single-field changes (``Owner``,
``Name``, ``Account``, ``Loss_Reason__c``; for leads ``Owner``, ``Status``, ``Score__c`` and
``leadConverted``). What a field was at creation is the OldValue of its first history row, or
its current value when it has none. Deleted records (``IsDeleted`` true, from an export that
includes them) end at their ``LastModifiedDate``."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import duckdb

from crm_lab.contract import ACTIVITY_TYPES
from crm_lab.errors import LoadError
from crm_lab.importers import currency, dates
from crm_lab.importers.events import add_changes, add_dated_deal_changes, changes_table
from crm_lab.importers.exports import ExportTable, read_export, read_optional_export
from crm_lab.importers.mapping import Mapping
from crm_lab.importers.problems import collecting, pending, raise_collected
from crm_lab.importers.rejects import REJECTS_TABLE, add_rejects
from crm_lab.importers.salesforce_ids import normalise_ids
from crm_lab.importers.stages import (
    DEAL_STAGES,
    LEAD_STATUSES,
    SALESFORCE_ACTIVITY_TYPES,
    SALESFORCE_LEAD_STATUSES,
    SALESFORCE_STAGES,
    name_table,
    resolve_names,
)
from crm_lab.importers.staging import NativeRows, company_rows, deal_rows, lead_rows, note
from crm_lab.importers.unique import refuse_repeated_ids
from crm_lab.typing_checks import quote_literal

# What one row of each object's file is, for the message on an Id twice.
_ROW_OF = {"OpportunityHistory": "history row", "OpportunityFieldHistory": "history row", "LeadHistory": "history row"}
_ROW_OF.update({name: "record" for name in ("Opportunity", "Lead", "Account", "User", "Task", "Event")})
OPPORTUNITY_FIELDS = {"Owner": "owner_rep_id", "Name": "name", "Account": "account_id", "Loss_Reason__c": "lost_reason"}
LEAD_FIELDS = {"Owner": "owner_rep_id", "Status": "status", "Score__c": "score"}


NEEDS_OPPORTUNITIES = "a Salesforce export needs at least its opportunities"


def read_salesforce(con: duckdb.DuckDBPyConnection, folder: Path, mapping: Mapping, rates: currency.Rates | None) -> tuple[list[NativeRows], str | None]:
    """Stage the export in ``folder``; return the native rows it gives and the home currency.

    A row with a bad value (a ragged line, a missing required value, a date that is none, an
    amount that is no number, a history row of a record not in the export) is a reject of that
    row (:mod:`crm_lab.importers.rejects`). What needs the user's settings (unknown stage,
    status or activity type names, dates in no declared format, currencies without rates, an
    Id twice) refuses the import, every such problem in one message."""
    if not folder.is_dir():
        raise LoadError(f"{folder}: not a folder; a Salesforce export is a folder of CSV files (Opportunity.csv, ...)")
    if not (folder / "Opportunity.csv").exists():
        raise LoadError(f"{folder}: no Opportunity.csv; {NEEDS_OPPORTUNITIES}")
    with collecting() as problems:
        rows, home = _read(con, folder, mapping, rates)
    raise_collected(problems)
    return rows, home


REQUIRED = {
    "Opportunity": ("Id", "StageName", "CreatedDate"),
    "OpportunityHistory": ("OpportunityId", "StageName", "CreatedDate"),
    "OpportunityFieldHistory": ("OpportunityId", "Field", "CreatedDate"),
    "Lead": ("Id", "CreatedDate"),
    "LeadHistory": ("LeadId", "Field", "CreatedDate"),
    "Account": ("Id",),
    "User": ("Id",),
    "Task": ("Id", "CreatedDate"),
    "Event": ("Id", "CreatedDate"),
}
# The native table an object's rows go to: a rejected row is counted there.
NATIVE_TABLE = {"Opportunity": "deals", "OpportunityHistory": "events", "OpportunityFieldHistory": "events", "Lead": "leads",
                "LeadHistory": "events", "Account": "accounts", "User": "reps", "Task": "activities", "Event": "activities"}
# The date fields read of each object (True: a date without a time).
DATE_FIELDS = {
    "Opportunity": {"CreatedDate": False, "CloseDate": True, "LastModifiedDate": False},
    "OpportunityHistory": {"CreatedDate": False, "CloseDate": True},
    "OpportunityFieldHistory": {"CreatedDate": False},
    "Lead": {"CreatedDate": False, "ConvertedDate": True, "LastModifiedDate": False},
    "LeadHistory": {"CreatedDate": False},
    "Account": {"CreatedDate": False, "LastModifiedDate": False},
    "User": {"CreatedDate": False},
    "Task": {"CompletedDateTime": False, "CreatedDate": False, "LastModifiedDate": False},
    "Event": {"ActivityDateTime": False, "StartDateTime": False, "ActivityDate": True, "CreatedDate": False, "LastModifiedDate": False},
}
AMOUNT_FIELDS = {"Opportunity": ("Amount",), "OpportunityHistory": ("Amount",)}


def _read(con: duckdb.DuckDBPyConnection, folder: Path, mapping: Mapping, rates: currency.Rates | None) -> tuple[list[NativeRows], str | None]:
    con.execute("CREATE OR REPLACE TEMP TABLE _sf_rejected_records (sobject VARCHAR, id VARCHAR, line BIGINT, value VARCHAR)")
    exports: dict[str, ExportTable | None] = {}
    read_as: dict[tuple[str, str, bool], str] = {}  # (file, field, date) -> SQL reading it
    for name, fields in REQUIRED.items():
        path, table = folder / f"{name}.csv", f"_sf_{name.lower()}"
        if name == "Opportunity":  # present (checked above), and with rows
            export = read_export(con, path, table, fields, needs_rows=NEEDS_OPPORTUNITIES, ragged_rejects=NATIVE_TABLE[name])
        else:
            export = read_optional_export(con, path, table, fields, ragged_rejects=NATIVE_TABLE[name])
        if export is not None:
            if name in ("Opportunity", "Lead"):  # a rejected line's record: its history rows say so
                con.execute(f"INSERT INTO _sf_rejected_records SELECT {quote_literal(name)}, NULL, line, value FROM {table}_ragged")
            # Reports write 15-character ids, data exports 18: one form, so that both match.
            normalise_ids(con, export.table, export.columns, name)
            read_as.update(_reject_bad_values(con, name, export, fields, mapping))
            # A record twice (or a history row twice) would fold into one record's events as two.
            refuse_repeated_ids(con, export, "Id", f"{name} Id", f"{export.path.name} has one row per {_ROW_OF[name]}")
        exports[name] = export
    opp, history, field_history = exports["Opportunity"], exports["OpportunityHistory"], exports["OpportunityFieldHistory"]
    lead, lead_history, account, user = exports["Lead"], exports["LeadHistory"], exports["Account"], exports["User"]
    task, event = exports["Task"], exports["Event"]
    # A history row of a record the export does not hold would start a record of its own: a
    # deal with no name, account or owner, counted in every pipeline. It is rejected instead.
    for rows_of, field, records, what in ((history, "OpportunityId", opp, "opportunity"),
                                          (field_history, "OpportunityId", opp, "opportunity"),
                                          (lead_history, "LeadId", lead, "lead")):  # fmt: skip
        if rows_of is not None and records is not None:
            _reject_rows_of_missing_records(con, rows_of, field, records, what)
    _report_unresolved_references(con, exports)

    def t(export: ExportTable, field: str, date: bool = False) -> str:
        if not export.has(field):
            return "CAST(NULL AS DATE)" if date else "CAST(NULL AS TIMESTAMPTZ)"
        return read_as[(str(export.path), field, date)]

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
    if lead is not None:
        _lead_statuses(con, lead, lead_history, mapping)
    activities, open_tasks = _activity_types(con, task, event, mapping, t)
    if pending():  # refused: the problems met so far are every one the user has to settle
        return [], None

    rows = [company_rows(con, opp.path, home, rates.path if rates else None)]
    if user is not None:
        rows.append(_reps(con, user, t))
    if account is not None:
        rows.append(_accounts(con, account, t))
    rows.append(_deals(con, opp, history, field_history, user, account, home, rates, mapping, t))
    if lead is not None:
        rows.append(_leads(con, lead, lead_history, user, t))
    rows += _activities(con, activities, open_tasks, lead, account)
    return rows, home


# (object, field, the object its ids name, the key prefix of that object's ids): references the
# summary reports when the export's file of that object lacks the record. Owners are checked
# for users only (a lead may be owned by a queue, 00G), polymorphic fields by their prefix.
REFERENCES = (
    ("Opportunity", "AccountId", "Account", "001"), ("Opportunity", "OwnerId", "User", "005"),
    ("Account", "OwnerId", "User", "005"), ("Lead", "OwnerId", "User", "005"),
    ("Lead", "ConvertedOpportunityId", "Opportunity", "006"), ("Lead", "ConvertedAccountId", "Account", "001"),
    *((activity, field, target, prefix) for activity in ("Task", "Event") for field, target, prefix in (
        ("OwnerId", "User", "005"), ("AccountId", "Account", "001"), ("WhatId", "Opportunity", "006"),
        ("WhatId", "Account", "001"), ("WhoId", "Lead", "00Q"))),
)  # fmt: skip


def _report_unresolved_references(con, exports: dict[str, ExportTable | None]) -> None:
    """Name each field whose ids (15- or 18-character: both are read as 18) are not in the
    export's file of the object they name, or whose row there was rejected: the import keeps
    them as written, and the summary says how many there are and where the first is."""
    for sobject, field, target, prefix in REFERENCES:
        source, records = exports.get(sobject), exports.get(target)
        if source is None or records is None or not source.has(field):
            continue
        value = f"trim(s.{source.column(field)})"
        first, line, n = con.sql(
            f"""SELECT arg_min({value}, s._line), min(s._line), count(*) FROM {source.table} s
                WHERE starts_with({value}, '{prefix}')
                  AND NOT EXISTS (SELECT 1 FROM {records.table} r WHERE trim(r.{records.column('Id')}) = {value})"""
        ).fetchall()[0]
        if n:
            note(con, f"{source.path}: {n} {field} value(s) name no record imported from {records.path.name} (first at line "
                      f"{line}: {first!r}): kept as written")


def _reject_bad_values(con, name: str, export: ExportTable, required: tuple[str, ...], mapping: Mapping) -> dict[tuple[str, str, bool], str]:
    """Reject (and leave out) each row of ``export`` with a bad value: a required one missing,
    a date that is none (or not in the column's format), an amount that is no number. Each bad
    value is a reject of its own (file, line, field, value, reason), as the loader writes them.
    Returns the SQL that reads each date field present, by (file, field, date)."""
    checks: list[tuple[str, str, str]] = []  # (field, bad-row condition, reason SQL)
    for field in required:
        column = export.column(field)
        checks.append((field, f"{column} IS NULL OR trim({column}) = ''", "'required value is missing'"))
    read_as = {}
    for field, date in DATE_FIELDS.get(name, {}).items():
        if not export.has(field):
            continue
        judged = dates.judge_sql(con, export, field, mapping.dates.get(field), date=date)
        if judged is None:  # the column's format is the problem, noted for the refusal
            read_as[(str(export.path), field, date)] = "CAST(NULL AS DATE)" if date else "CAST(NULL AS TIMESTAMPTZ)"
            continue
        read_as[(str(export.path), field, date)] = judged.converted
        checks.append((field, judged.bad, f"regexp_replace({judged.reason}, '^is ', '')"))  # as the loader says it: 'not a ...'
    for field in AMOUNT_FIELDS.get(name, ()):
        column = export.column(field)
        checks.append((field, f"{column} IS NOT NULL AND trim({column}) <> '' AND TRY_CAST(trim({column}) AS DECIMAL(38, 10)) IS NULL",
                       "'not a number'"))
    if not checks:
        return read_as
    file, table = quote_literal(str(export.path)), quote_literal(NATIVE_TABLE[name])
    add_rejects(con, " UNION ALL ".join(
        f"SELECT {file}, {table}, _line, {quote_literal(field)}, {export.column(field)}, {reason} FROM {export.table} WHERE {bad}"
        for field, bad, reason in checks
    ))  # fmt: skip
    any_bad = " OR ".join(f"coalesce({bad}, false)" for _, bad, _ in checks)
    if name in ("Opportunity", "Lead"):
        con.execute(
            f"INSERT INTO _sf_rejected_records SELECT {quote_literal(name)}, trim({export.column('Id')}), _line, NULL "
            f"FROM {export.table} WHERE {any_bad}"
        )
    con.execute(f"DELETE FROM {export.table} WHERE {any_bad}")
    return read_as


def _reject_rows_of_missing_records(con, rows_of: ExportTable, field: str, records: ExportTable, what: str) -> None:
    """Reject (and leave out) each row of ``rows_of`` whose ``field`` names no record of
    ``records``: file, line, field, the id, and that the record is not in its file (or that its
    row there was rejected)."""
    value = f"trim(h.{rows_of.column(field)})"
    missing = f"NOT EXISTS (SELECT 1 FROM {records.table} r WHERE trim(r.{records.column('Id')}) = {value})"
    sobject = records.path.stem
    rejected_at = (
        f"(SELECT min(x.line) FROM _sf_rejected_records x WHERE x.sobject = {quote_literal(sobject)} "
        f"AND (x.id = {value} OR (x.id IS NULL AND contains(x.value, {value}))))"
    )
    reason = (
        f"CASE WHEN {rejected_at} IS NOT NULL THEN {quote_literal(f'{what} rejected at {records.path.name} line ')} || {rejected_at} "
        f"|| ': the history row is not imported' "
        f"ELSE {quote_literal(f'{what} not in {records.path.name} (no row there has this Id): the history row is not imported')} END"
    )
    add_rejects(
        con,
        f"SELECT {quote_literal(str(rows_of.path))}, 'events', h._line, {quote_literal(field)}, h.{rows_of.column(field)}, "
        f"{reason} FROM {rows_of.table} h WHERE {missing}",
    )
    con.execute(f"DELETE FROM {rows_of.table} h WHERE {missing}")


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
                   {user.column('Latitude')} AS home_lat, {user.column('Longitude')} AS home_lon,
                   {quote_literal(str(user.path))} AS _file, _line
            FROM {user.table}"""
    )
    _drop_fields_not_exported(con, "_sf_reps", user, {"name": ("Name", "FirstName", "LastName"), "email": ("Email",),
                              "team": ("Department",), "role": ("Title",), "hired_at": ("CreatedDate",), "is_active": ("IsActive",),
                              "home_lat": ("Latitude",), "home_lon": ("Longitude",)})  # fmt: skip
    return NativeRows("reps", "_sf_reps", {"rep_id": "Id", "email": "Email", "team": "Department", "role": "Title", "hired_at": "CreatedDate",
                                           "is_active": "IsActive", "home_lat": "Latitude", "home_lon": "Longitude"})  # fmt: skip


def _drop_fields_not_exported(con, work_table: str, export: ExportTable, fields: dict[str, tuple[str, ...]]) -> None:
    """Leave out of ``work_table`` each native column none of whose export fields the file has:
    the loader then keeps the stored row's value (set by a native load of, say, reps'
    capacity_hours, or by an older export that had the field) instead of clearing it."""
    for column, names in fields.items():
        if not any(export.has(name) for name in names):
            con.execute(f"ALTER TABLE {work_table} DROP COLUMN {column}")


def _accounts(con, account: ExportTable, t) -> NativeRows:
    created = t(account, "CreatedDate")
    file = quote_literal(str(account.path))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _sf_accounts_all AS
            SELECT getvariable('import_company') AS company_id, {account.column('Id')} AS account_id, {account.column('Name')} AS name,
                   {account.column('Industry')} AS industry, {account.column('NumberOfEmployees')} AS employees,
                   {account.column('BillingLatitude')} AS lat, {account.column('BillingLongitude')} AS lon,
                   {account.column('OwnerId')} AS owner_rep_id, {created} AS created_at,
                   lower(coalesce({account.column('IsDeleted')}, 'false')) IN ('true', '1') AS _deleted,
                   {t(account, 'LastModifiedDate')} AS _modified, {file} AS _file, _line
            FROM {account.table}"""
    )
    add_changes(
        con, "account", "_sf_accounts_all",
        {"name": "name", "industry": "industry", "employees": "employees", "owner_rep_id": "owner_rep_id"},
        aggregate_id="account_id", occurred_at="created_at", rank="0",
        event_id="'sf-Account-' || account_id", actor_id="owner_rep_id", _file="_file", _line="_line",
    )  # fmt: skip
    # A deleted account (IsDeleted true, in an export that includes them) ends at its last
    # modification, as deleted opportunities, leads and activities do: absent from the
    # accounts table and from accounts_current, so no territory plan assigns it.
    _add_deletions(con, "account", "_sf_accounts_all", "Account", file, account, "accounts")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _sf_accounts AS
           SELECT * EXCLUDE (created_at, _deleted, _modified), CAST(created_at AS VARCHAR) AS created_at
           FROM _sf_accounts_all WHERE NOT _deleted"""
    )
    _drop_fields_not_exported(con, "_sf_accounts", account, {"name": ("Name",), "industry": ("Industry",),
                              "employees": ("NumberOfEmployees",), "lat": ("BillingLatitude",), "lon": ("BillingLongitude",),
                              "owner_rep_id": ("OwnerId",), "created_at": ("CreatedDate",)})  # fmt: skip
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


def _add_deletions(con, aggregate: str, records: str, sobject: str, file: str, export: ExportTable, table: str,
                   open_tasks: int = 0) -> None:
    """A ``deleted`` event for each record flagged IsDeleted, at its last modification (never
    before its creation); the summary says how the file's rows add up."""
    add_changes(
        con, aggregate, f"{records} r", {"_deleted": "'true'"}, where="r._deleted",
        aggregate_id=f"r.{aggregate}_id", occurred_at="greatest(r._modified, r.created_at)", rank="9", actor_id="NULL",
        event_id=f"'sf-{sobject}-' || r.{aggregate}_id || ':deleted'", _file=file, _line="r._line",
    )  # fmt: skip
    _note_rows(con, export, table, records, open_tasks)


def _note_rows(con, export: ExportTable, table: str, records: str, open_tasks: int = 0) -> None:
    """A line for the summary when rows of the file are not read into ``table``: rows = read
    (the loader's count for the file and table, rejected rows included) + deleted + open."""
    total, deleted = con.sql(
        # The rows the import rejected (a ragged line, a bad date) are no longer staged.
        f"""SELECT (SELECT count(*) FROM {export.table})
                   + (SELECT count(DISTINCT line) FROM {REJECTS_TABLE} WHERE file = {quote_literal(str(export.path))}),
                   (SELECT count(*) FROM {records} WHERE _deleted)"""
    ).fetchall()[0]
    if not deleted and not open_tasks:
        return
    parts = [f"{total - deleted - open_tasks} read"]
    if deleted:
        parts.append(f"{deleted} deleted (IsDeleted true: not in {table}; each ends with a deleted event)")
    if open_tasks:
        parts.append(f"{open_tasks} open (IsClosed false: not imported; each counts once it is done)")
    note(con, f"{export.path}: {total} rows = {' + '.join(parts)}")


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
    _add_deletions(con, "deal", "_sf_deals_all", "Opportunity", opp_file, opp, "deals")
    last_close = f"(SELECT max(occurred_at) FROM {changes_table('deal')} c WHERE c.aggregate_id = d.deal_id AND c.field = 'stage')"
    return deal_rows(
        con, "(SELECT * FROM _sf_deals_all WHERE NOT _deleted)", last_close,
        {"deal_id": "Id", "account_id": "AccountId", "owner_rep_id": "OwnerId", "name": "Name", "stage": "StageName",
         "amount": "Amount", "expected_close_date": "CloseDate", "lost_reason": "Loss_Reason__c", "created_at": "CreatedDate"},
    )  # fmt: skip


def _lead_statuses(con, lead: ExportTable, lead_history: ExportTable | None, mapping: Mapping) -> None:
    """``_sf_status_map``: every lead status met (Lead.Status, LeadHistory's Status rows)."""
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


def _leads(con, lead: ExportTable, lead_history: ExportTable | None, user, t) -> NativeRows:
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
                   {t(lead, 'LastModifiedDate')} AS _modified, {lead.column('ConvertedContactId')} AS _contact_id,
                   {lead_file} AS _file, _line
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
    _add_deletions(con, "lead", "_sf_leads_timed", "Lead", lead_file, lead, "leads")
    return lead_rows(
        con, "(SELECT * FROM _sf_leads_timed WHERE NOT _deleted)",
        {"lead_id": "Id", "account_id": "ConvertedAccountId", "owner_rep_id": "OwnerId", "source": "LeadSource",
         "industry": "Industry", "employees": "NumberOfEmployees", "score": "Score__c", "status": "Status",
         "deal_id": "ConvertedOpportunityId", "created_at": "CreatedDate", "converted_at": "ConvertedDate"},
    )  # fmt: skip


class _ActivityObject(NamedTuple):
    """How one activity object (Task, Event) reads: SQL over its staged rows."""

    export: ExportTable
    default_type: str  # the activity type of a row that names none
    type_name: str  # the name its type is read from
    type_field: str  # the field that name came from (for messages)
    occurred_at: str
    minutes: str
    source_columns: dict[str, str]  # native column -> the export field behind it (for rejects)
    done: str = "true"  # which rows happened: an open Task is planned work, not engagement


def _activity_types(con, task: ExportTable | None, event: ExportTable | None, mapping: Mapping, t) -> tuple[dict[str, _ActivityObject], int]:
    """How Tasks and Events read (the done ones staged as ``_sf_<object>_typed``), their type
    names mapped (``_sf_activity_type_map``), and how many Tasks are open."""
    objects: dict[str, _ActivityObject] = {}
    open_tasks = 0
    if task is not None:
        subtype, kind = f"nullif(trim({task.column('TaskSubtype')}), '')", f"nullif(trim({task.column('Type')}), '')"
        # TaskSubtype says how it was logged; the generic 'Task' defers to the user's Type.
        from_subtype = f"{subtype} IS NOT NULL AND ({subtype} <> 'Task' OR {kind} IS NULL)"
        objects["Task"] = _ActivityObject(
            task, "task",
            f"CASE WHEN {from_subtype} THEN {subtype} ELSE {kind} END",
            f"CASE WHEN {from_subtype} THEN 'TaskSubtype' ELSE 'Type' END",
            f"coalesce({t(task, 'CompletedDateTime')}, {t(task, 'CreatedDate')})",
            _seconds_as_minutes(task.column("CallDurationInSeconds")),
            {"activity_type": "TaskSubtype", "occurred_at": "CreatedDate", "duration_minutes": "CallDurationInSeconds"},
            f"lower(trim(coalesce({task.column('IsClosed')}, 'true'))) NOT IN ('false', '0')",
        )  # fmt: skip
        # A cadence schedules calls and emails weeks ahead: counted as engagement, an open Task
        # would credit a lead with contact it never had. It is imported once it is done.
        open_tasks = con.sql(f"SELECT count(*) FROM {task.table} WHERE NOT ({objects['Task'].done})").fetchall()[0][0]
    if event is not None:
        start = f"coalesce({t(event, 'ActivityDateTime')}, {t(event, 'StartDateTime')}, CAST({t(event, 'ActivityDate', True)} AS TIMESTAMPTZ), {t(event, 'CreatedDate')})"
        objects["Event"] = _ActivityObject(
            event, "meeting", f"nullif(trim({event.column('Type')}), '')", "'Type'", start, event.column("DurationInMinutes"),
            {"activity_type": "Type", "occurred_at": "ActivityDateTime", "duration_minutes": "DurationInMinutes"},
        )  # fmt: skip
    for sobject, o in objects.items():
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _sf_{sobject.lower()}_typed AS
                SELECT *, {o.type_name} AS _type_name, {o.type_field} AS _type_field, {o.occurred_at} AS _at,
                       {o.minutes} AS _minutes, {t(o.export, 'LastModifiedDate')} AS _modified
                FROM {o.export.table} WHERE {o.done}"""
        )
    seen: dict[str, tuple[Path, int, None, str]] = {}
    for sobject, o in objects.items():
        for name, line, field in con.sql(
            f"SELECT _type_name, min(_line), arg_min(_type_field, _line) FROM _sf_{sobject.lower()}_typed "
            "WHERE _type_name IS NOT NULL GROUP BY 1 ORDER BY 2"
        ).fetchall():
            seen.setdefault(name, (o.export.path, line, None, field))
    if objects:
        types = resolve_names(seen, SALESFORCE_ACTIVITY_TYPES, mapping.activity_types, section="activity_types", what="activity type", choices=ACTIVITY_TYPES)
        name_table(con, "_sf_activity_type_map", types)
    return objects, open_tasks


def _activities(con, objects: dict[str, _ActivityObject], open_tasks: int, lead, account) -> list[NativeRows]:
    """Tasks and events as ``activities`` rows and activity events: ``created`` when the task
    was done (CompletedDateTime, else CreatedDate; an open Task is left out) or the event
    starts, ``deleted`` for a row
    flagged IsDeleted. WhoId and WhatId resolve to the lead, deal and account they are: an id of
    the export's own Lead, Opportunity or Account file, else by its key prefix (00Q, 006, 001);
    a contact a lead was converted into (Lead.ConvertedContactId) stands for that lead up to
    its conversion, as Salesforce moves a lead's activities to its contact when it converts."""
    if not objects:
        return []

    known = [f"SELECT {quote_literal(kind)} AS kind, Id AS id FROM {table}" for kind, table, export in
             (("lead", "_sf_lead", lead), ("deal", "_sf_opportunity", True), ("account", "_sf_account", account)) if export is not None]
    con.execute(f"CREATE OR REPLACE TEMP TABLE _sf_known AS SELECT id, min(kind) AS kind FROM ({' UNION ALL '.join(known)}) GROUP BY id")
    prefix = "CASE WHEN starts_with({0}, '00Q') THEN 'lead' WHEN starts_with({0}, '006') THEN 'deal' WHEN starts_with({0}, '001') THEN 'account' END"
    kind_of = lambda column: f"coalesce((SELECT k.kind FROM _sf_known k WHERE k.id = {column}), {prefix.format(column)})"  # noqa: E731
    converted_lead = (
        "(SELECT arg_min(l.lead_id, l.converted_at) FROM _sf_leads_timed l WHERE l._contact_id = a._who AND a._at <= l.converted_at)"
        if lead is not None else "NULL"
    )  # fmt: skip
    rows = []
    for sobject, o in objects.items():
        export = o.export
        file = quote_literal(str(export.path))
        records = f"_sf_{sobject.lower()}s_all"  # created_at: its created event's instant, as _add_deletions reads it
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {records} AS
                WITH resolved AS (
                    SELECT *, nullif(trim({export.column('WhoId')}), '') AS _who, nullif(trim({export.column('WhatId')}), '') AS _what
                    FROM _sf_{sobject.lower()}_typed)
                SELECT getvariable('import_company') AS company_id, {export.column('Id')} AS activity_id,
                       coalesce((SELECT native FROM _sf_activity_type_map WHERE name = a._type_name), {quote_literal(o.default_type)}) AS activity_type,
                       nullif(trim({export.column('OwnerId')}), '') AS owner_rep_id,
                       coalesce(nullif(trim({export.column('AccountId')}), ''), CASE WHEN {kind_of('a._what')} = 'account' THEN a._what END,
                                (SELECT min(d.account_id) FROM _sf_deals_all d WHERE d.deal_id = a._what)) AS account_id,
                       CASE WHEN {kind_of('a._who')} = 'lead' THEN a._who ELSE {converted_lead} END AS lead_id,
                       CASE WHEN {kind_of('a._what')} = 'deal' THEN a._what END AS deal_id,
                       a._at AS created_at, CAST(a._minutes AS VARCHAR) AS duration_minutes,
                       lower(coalesce({export.column('IsDeleted')}, 'false')) IN ('true', '1') AS _deleted, a._modified,
                       {file} AS _file, a._line
                FROM resolved a"""
        )  # fmt: skip
        add_changes(
            con, "activity", f"{records} a",
            {f: f"a.{f}" for f in ("activity_type", "owner_rep_id", "account_id", "lead_id", "deal_id")},
            aggregate_id="a.activity_id", occurred_at="a.created_at", rank="0", actor_id="a.owner_rep_id",
            event_id=f"'sf-{sobject}-' || a.activity_id", _file=file, _line="a._line",
        )  # fmt: skip
        _add_deletions(con, "activity", records, sobject, file, export, "activities", open_tasks if sobject == "Task" else 0)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _sf_{sobject.lower()}_rows AS
                SELECT company_id, activity_id, activity_type, owner_rep_id, account_id, lead_id, deal_id,
                       CAST(created_at AS VARCHAR) AS occurred_at, duration_minutes, _file, _line
                FROM {records} WHERE NOT _deleted"""
        )
        rows.append(NativeRows(
            "activities", f"_sf_{sobject.lower()}_rows",
            {"activity_id": "Id", "owner_rep_id": "OwnerId", "account_id": "AccountId", "lead_id": "WhoId", "deal_id": "WhatId", **o.source_columns},
        ))  # fmt: skip
    return rows


def _seconds_as_minutes(seconds: str) -> str:
    """Seconds as whole minutes (text); a value that is not a number is passed on as it is, for
    the loader to reject its row naming the field."""
    number = f"TRY_CAST(trim({seconds}) AS DOUBLE)"
    return f"CASE WHEN {number} IS NULL THEN {seconds} ELSE CAST(CAST(round({number} / 60) AS BIGINT) AS VARCHAR) END"
