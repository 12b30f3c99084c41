"""The tenant an import writes into: new, or holding only what imports of the same kind wrote.

An import derives its events from its export's record ids and compares a later export with the
rows the last one left (docs/IMPORT.md, "A later export of the same records"). Into a tenant
that holds other data (a native load, the demo's generated world, another importer's records)
it would add change events to records it never created and overwrite rows it does not own, so
such a tenant is refused, naming what was found and the way out (``--company NEW_ID``).

The rule, read from the database the import goes into (attached read-only as ``stored``):

- every event of the tenant has an id this kind of import gives: ``sf-…`` for a Salesforce
  export; ``mapped-deal-…``, ``mapped-lead-…`` or a deals file's ``<file stem>-<deal id>`` (and
  ``…:closed``) for a ``--mapping`` export (deals and leads exports share a tenant);
- every ``deals`` and ``leads`` row of the tenant has events (a row without any was loaded
  natively, without its history).

Rows without events of their own (``companies``, ``reps``, ``territories``, ...) do not decide:
a tenant whose companies row or reps were loaded natively takes an import."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crm_lab.db import table_exists
from crm_lab.errors import LoadError
from crm_lab.typing_checks import quote_literal

# SQL over the events table (alias-free) for "this kind of import gave this event its id".
OWN_EVENT_IDS = {
    "salesforce": "starts_with(event_id, 'sf-')",
    "mapped": (
        "NOT starts_with(event_id, 'sf-') AND (starts_with(event_id, 'mapped-deal-') OR starts_with(event_id, 'mapped-lead-')"
        " OR (aggregate_type = 'deal' AND (ends_with(event_id, '-' || aggregate_id)"
        " OR ends_with(event_id, '-' || aggregate_id || ':closed'))))"
    ),
}
WHO = {"salesforce": "a Salesforce import", "mapped": "a --mapping import (HubSpot, a spreadsheet)"}


def check_tenant(con: duckdb.DuckDBPyConnection, db_path: Path, company: str, fmt: str, *, from_folder: bool) -> None:
    """Refuse to import into ``company`` when the database holds data of that tenant that no
    import of this kind wrote (see the module's rule). ``from_folder``: the tenant is the export
    folder's name (no ``--company``), which the message says, since the user did not choose it."""
    if not table_exists(con, "events", database="stored"):
        return
    tenant = "getvariable('import_company')"
    foreign = con.sql(
        f"""SELECT event_id, aggregate_type, aggregate_id, count(*) OVER () FROM stored.main.events
            WHERE company_id = {tenant} AND NOT ({OWN_EVENT_IDS[fmt]})
            ORDER BY occurred_at, event_id LIMIT 1"""
    ).fetchall()
    found = None
    if foreign:
        event_id, aggregate_type, aggregate_id, count = foreign[0]
        more = f" and {count - 1} more" if count > 1 else ""
        found = f"its event {event_id!r} ({aggregate_type} {aggregate_id!r}){more}"
    else:
        for table, aggregate, key in (("deals", "deal", "deal_id"), ("leads", "lead", "lead_id")):
            if not table_exists(con, table, database="stored"):
                continue
            bare = con.sql(
                f"""SELECT {key}, count(*) OVER () FROM stored.main.{table} r
                    WHERE company_id = {tenant} AND NOT EXISTS (
                        SELECT 1 FROM stored.main.events e WHERE e.company_id = r.company_id
                          AND e.aggregate_type = {quote_literal(aggregate)} AND e.aggregate_id = r.{key})
                    ORDER BY {key} LIMIT 1"""
            ).fetchall()
            if bare:
                record, count = bare[0]
                more = f" and {count - 1} more" if count > 1 else ""
                found = f"its {table} row {record!r}{more}, without events (loaded natively, without their history)"
                break
    if found is None:
        return
    named = " (the export folder's name, taken when --company is not given)" if from_folder else ""
    raise LoadError(
        f"{db_path}: tenant {company!r}{named} holds data that did not come from {WHO[fmt]}: {found}. "
        "Importing into it would add events to records the import did not create and overwrite rows it does not own; "
        "import into a tenant of its own with --company NEW_ID"
    )


def company_row_sql(con: duckdb.DuckDBPyConnection, company: str, home_currency: str | None, rates_file: Path | None) -> str:
    """SQL for the tenant's ``companies`` row (text columns): the stored one as it is when the
    tenant has one (its name, fiscal year and creation are the user's, not the export's; an empty
    home currency takes the export's), else a new one named by its id. A stored home currency
    other than the export's refuses the import: its amounts would be read as another currency's.
    ``rates_file``: the rates the export's amounts were converted with, if any (for that message)."""
    stored = None
    if table_exists(con, "companies", database="stored"):
        rows = con.sql(
            "SELECT name, home_currency, CAST(fiscal_year_start_month AS VARCHAR), CAST(created_at AS VARCHAR) "
            "FROM stored.main.companies WHERE company_id = getvariable('import_company')"
        ).fetchall()
        stored = rows[0] if rows else None
    if stored is None:
        return (
            "SELECT getvariable('import_company') AS company_id, getvariable('import_company') AS name, "
            f"{_text(home_currency)} AS home_currency, '1' AS fiscal_year_start_month, CAST(NULL AS VARCHAR) AS created_at"
        )
    name, stored_currency, fiscal, created = stored
    if stored_currency and home_currency and stored_currency != home_currency:
        if rates_file is None:
            found, fix = f"the export's amounts are in {home_currency}", f"pass --rates FILE listing {stored_currency} with rate 1"
        else:
            found, fix = f"{rates_file} converts the export's amounts to {home_currency}", f"list {stored_currency} with rate 1 in {rates_file}"
        raise LoadError(
            f"tenant {company!r} keeps its amounts in {stored_currency} (its companies row), and {found}: {fix} "
            "to convert them, or import into a tenant of its own with --company NEW_ID"
        )
    return (
        f"SELECT getvariable('import_company') AS company_id, {_text(name)} AS name, "
        f"{_text(stored_currency or home_currency)} AS home_currency, {_text(fiscal)} AS fiscal_year_start_month, "
        f"{_text(created)} AS created_at"
    )


def _text(value: str | None) -> str:
    return quote_literal(value) if value is not None else "CAST(NULL AS VARCHAR)"
