"""Which tenant an import may write into, and what it leaves of the tenant's own rows: an import
goes into a new tenant or one that only imports of its kind wrote; it keeps a stored companies
row (the user's name, fiscal year and creation), and refuses another home currency."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from crm_lab.errors import LoadError
from crm_lab.importers import import_export
from crm_lab.load import load
from import_exports import SALESFORCE, fetch, write_export

DEALS = """
id,name,stage,amount,created,closed,modified
D1,Northwind,Won,1200,2024-01-05,2024-02-01,2024-02-01
D2,Contoso,Discovery,500,2024-01-20,,2024-01-20
"""
DEALS_MAPPING = """
columns:
  deal_id: id
  name: name
  stage: stage
  amount: amount
  created_at: created
  close_date: closed
  updated_at: modified
stages:
  Discovery: qualification
  Won: closed_won
currency: USD
"""
NATIVE_COMPANY = "company_id,name,home_currency,fiscal_year_start_month,created_at\nacme,Acme GmbH,USD,4,2020-01-01\n"
NATIVE_EVENTS = (
    "event_id,company_id,aggregate_type,aggregate_id,seq,event_type,occurred_at,recorded_at,actor_id,payload\n"
    'evt-1,acme,deal,D1,1,created,2024-01-01T00:00:00Z,,,"{""stage"": ""prospecting""}"\n'
    'evt-2,acme,deal,D9,1,created,2024-01-02T00:00:00Z,,,"{""stage"": ""prospecting""}"\n'
)


def native(db: Path, folder: Path, files: dict[str, str]) -> None:
    """Load native contract files (a tenant's own data, not an import)."""
    write_export(folder, files)
    load(db, [folder / name for name in files])


def deals_export(folder: Path, deals: str = DEALS) -> Path:
    write_export(folder, {"deals.csv": deals, "deals.yaml": DEALS_MAPPING})
    return folder / "deals.csv"


def import_deals(db: Path, export: Path, **kwargs):
    return import_export(db, export, fmt="mapped", mapping=export.parent / "deals.yaml", **kwargs)


def refused(call) -> str:
    with pytest.raises(LoadError) as error:
        call()
    return str(error.value)


def snapshot(db: Path) -> tuple:
    return tuple(fetch(db, f"SELECT * FROM {table} ORDER BY ALL") for table in ("companies", "deals", "events", "load_runs"))


def test_an_import_into_a_natively_loaded_tenant_is_refused_and_writes_nothing(tmp_path):
    db = tmp_path / "crm.duckdb"
    native(db, tmp_path / "native", {"companies.csv": NATIVE_COMPANY, "events.csv": NATIVE_EVENTS})
    before = snapshot(db)
    # No --company: the tenant is the folder's name, which the user did not choose.
    export = deals_export(tmp_path / "acme")
    assert refused(lambda: import_deals(db, export)) == (
        f"{db}: tenant 'acme' (the export folder's name, taken when --company is not given) holds data that did not come "
        "from a --mapping import (HubSpot, a spreadsheet): its event 'evt-1' (deal 'D1') and 1 more. Importing into it "
        "would add events to records the import did not create and overwrite rows it does not own; import into a tenant "
        "of its own with --company NEW_ID"
    )
    assert refused(lambda: import_deals(db, deals_export(tmp_path / "q3"), company="acme")) == (
        f"{db}: tenant 'acme' holds data that did not come from a --mapping import (HubSpot, a spreadsheet): its event "
        "'evt-1' (deal 'D1') and 1 more. Importing into it would add events to records the import did not create and "
        "overwrite rows it does not own; import into a tenant of its own with --company NEW_ID"
    )
    sf = write_export(tmp_path / "sf" / "acme", SALESFORCE)
    assert refused(lambda: import_export(db, sf, fmt="salesforce")).startswith(
        f"{db}: tenant 'acme' (the export folder's name, taken when --company is not given) holds data that did not "
        "come from a Salesforce import: its event 'evt-1' (deal 'D1') and 1 more."
    )
    assert snapshot(db) == before
    # The way out the message names: a tenant of its own.
    import_deals(db, export, company="acme-hubspot")
    assert fetch(db, "SELECT DISTINCT company_id FROM deals") == [("acme-hubspot",)]
    assert fetch(db, "SELECT count(*) FROM events WHERE company_id = 'acme'") == [(2,)]


def test_deals_rows_loaded_without_events_refuse_an_import(tmp_path):
    db = tmp_path / "crm.duckdb"
    native(db, tmp_path / "native", {"deals.csv": "company_id,deal_id,stage\nacme,D1,prospecting\nacme,D2,proposal\n"})
    assert refused(lambda: import_deals(db, deals_export(tmp_path / "acme"))) == (
        f"{db}: tenant 'acme' (the export folder's name, taken when --company is not given) holds data that did not come "
        "from a --mapping import (HubSpot, a spreadsheet): its deals row 'D1' and 1 more, without events (loaded "
        "natively, without their history). Importing into it would add events to records the import did not create and "
        "overwrite rows it does not own; import into a tenant of its own with --company NEW_ID"
    )


def test_one_importer_does_not_write_into_the_other_importers_tenant(tmp_path):
    db = tmp_path / "crm.duckdb"
    sf = write_export(tmp_path / "northwind", SALESFORCE)
    import_export(db, sf, fmt="salesforce")
    message = refused(lambda: import_deals(db, deals_export(tmp_path / "deals"), company="northwind"))
    assert message.startswith(
        f"{db}: tenant 'northwind' holds data that did not come from a --mapping import (HubSpot, a spreadsheet): its event 'sf-"
    )
    import_deals(db, deals_export(tmp_path / "hubspot"))  # 3 events: D1 created and won, D2 created
    assert refused(lambda: import_export(db, sf, fmt="salesforce", company="hubspot")) == (
        f"{db}: tenant 'hubspot' holds data that did not come from a Salesforce import: its event 'deals-D1' (deal 'D1') "
        "and 2 more. Importing into it would add events to records the import did not create and overwrite rows it does "
        "not own; import into a tenant of its own with --company NEW_ID"
    )


def test_a_deals_and_a_leads_export_share_a_tenant_and_a_native_companies_row_is_kept(tmp_path):
    db = tmp_path / "crm.duckdb"
    # A tenant whose companies row (and nothing else) the user loaded: imports go into it.
    native(db, tmp_path / "native", {"companies.csv": NATIVE_COMPANY})
    company = [("acme", "Acme GmbH", "USD", 4, datetime(2020, 1, 1, tzinfo=timezone.utc))]
    export = deals_export(tmp_path / "acme")
    import_deals(db, export)
    assert fetch(db, "SELECT * FROM companies") == company
    contacts = "id,created,stage\nL1,2024-01-02,Lead\n"
    leads_mapping = "kind: leads\ncolumns:\n  lead_id: id\n  created_at: created\n  status: stage\nlead_statuses:\n  Lead: open\n"
    write_export(tmp_path / "acme", {"contacts.csv": contacts, "leads.yaml": leads_mapping})
    import_export(db, tmp_path / "acme" / "contacts.csv", fmt="mapped", mapping=tmp_path / "acme" / "leads.yaml")
    # next week's export: D2 won since
    later = deals_export(tmp_path / "acme-w2" / "acme", DEALS.replace("Discovery,500,2024-01-20,,", "Won,500,2024-01-20,2024-03-01,"))
    report = import_deals(db, later)
    assert [(f.table, f.rows_loaded - f.rows_unchanged) for f in report.files] == [("companies", 0), ("deals", 1), ("events", 2)]
    assert fetch(db, "SELECT * FROM companies") == company
    # its expected close date set at its last modification (2024-01-20), and won at its close date
    events = fetch(db, "SELECT event_id, event_type, CAST(occurred_at AS DATE) FROM events WHERE aggregate_id = 'D2' ORDER BY order_key")
    assert [(e[0][:22], *e[1:]) for e in events] == [
        ("deals-D2", "created", date(2024, 1, 20)), ("mapped-deal-D2:changed", "close_date_changed", date(2024, 1, 20)),
        ("deals-D2:closed", "won", date(2024, 3, 1)),
    ]


def test_a_new_tenant_is_named_by_its_id_and_a_missing_home_currency_is_filled(tmp_path):
    db = tmp_path / "crm.duckdb"
    import_deals(db, deals_export(tmp_path / "acme"))
    assert fetch(db, "SELECT * FROM companies") == [("acme", "acme", "USD", 1, None)]
    other = tmp_path / "other.duckdb"
    native(other, tmp_path / "native", {"companies.csv": "company_id,name\nacme,Acme GmbH\n"})
    import_deals(other, deals_export(tmp_path / "acme"))
    assert fetch(other, "SELECT * FROM companies") == [("acme", "Acme GmbH", "USD", None, None)]


def test_a_stored_home_currency_other_than_the_exports_is_refused_naming_both(tmp_path):
    db = tmp_path / "crm.duckdb"
    native(db, tmp_path / "native", {"companies.csv": NATIVE_COMPANY.replace(",USD,", ",EUR,")})
    before = snapshot(db)
    export = deals_export(tmp_path / "acme")
    assert refused(lambda: import_deals(db, export)) == (
        "tenant 'acme' keeps its amounts in EUR (its companies row), and the export's amounts are in USD: pass --rates "
        "FILE listing EUR with rate 1 to convert them, or import into a tenant of its own with --company NEW_ID"
    )
    rates = write_export(tmp_path / "rates", {"rates.csv": "currency,rate\nUSD,1\nEUR,1.1\n"}) / "rates.csv"
    assert refused(lambda: import_deals(db, export, rates=rates)) == (
        f"tenant 'acme' keeps its amounts in EUR (its companies row), and {rates} converts the export's amounts to USD: "
        f"list EUR with rate 1 in {rates} to convert them, or import into a tenant of its own with --company NEW_ID"
    )
    assert snapshot(db) == before
    # Following the message: amounts converted to the tenant's currency.
    write_export(tmp_path / "rates", {"rates.csv": "currency,rate\nEUR,1\nUSD,0.5\n"})
    import_deals(db, export, rates=rates)
    assert fetch(db, "SELECT deal_id, amount, currency FROM deals ORDER BY 1") == [("D1", 600, "EUR"), ("D2", 250, "EUR")]
    assert fetch(db, "SELECT name, home_currency FROM companies") == [("Acme GmbH", "EUR")]


def test_a_salesforce_reimport_keeps_the_companies_row(tmp_path):
    db = tmp_path / "crm.duckdb"
    folder = write_export(tmp_path / "northwind", SALESFORCE)
    import_export(db, folder, fmt="salesforce")
    assert fetch(db, "SELECT * FROM companies") == [("northwind", "northwind", "USD", 1, None)]
    # The user names the company and its fiscal year (a native load of the companies row).
    native(db, tmp_path / "native", {"companies.csv": "company_id,name,home_currency,fiscal_year_start_month\nnorthwind,Northwind Traders,USD,7\n"})
    import_export(db, folder, fmt="salesforce")
    assert fetch(db, "SELECT * FROM companies") == [("northwind", "Northwind Traders", "USD", 7, None)]
