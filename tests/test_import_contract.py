"""The importers' contract: a world generated natively, written out in a foreign shape and
imported back, replays to the same history, on every field the shape can carry.

- Salesforce (Opportunity + OpportunityHistory + OpportunityFieldHistory, Lead + LeadHistory):
  ``deal_history`` is equal on every field, and ``lead_history`` on every field but
  ``account_id`` (a Salesforce lead has no account until it converts), once versions that
  change none of the compared fields are merged with the one before (Salesforce writes a
  history row only when a tracked field changes).
- HubSpot deals export (current state, no history): for every deal not deleted, the replayed
  current state equals the native one on account, owner, name, stage, amount, currency, lost
  reason, is_closed, is_won, closed_at (the close date) and created_at (the create date), and
  expected_close_date for open deals (a closed deal's close date is when it closed). Deleted
  deals are absent from both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_lab.db import reading
from crm_lab.generate import generate
from crm_lab.importers import import_export
from crm_lab.importers.foreign_shapes import write_hubspot, write_salesforce
from crm_lab.load import load
from crm_lab.replay import replay

DEAL_FIELDS = (
    "account_id", "owner_rep_id", "name", "stage", "amount", "currency", "expected_close_date", "lost_reason",
    "is_closed", "is_won", "closed_at", "created_at", "stage_entered_at", "close_date_push_count", "amount_at_creation",
)  # fmt: skip
LEAD_FIELDS = ("owner_rep_id", "name", "source", "industry", "employees", "score", "status", "deal_id", "created_at", "converted_at")
HUBSPOT_FIELDS = (
    "account_id", "owner_rep_id", "name", "stage", "amount", "currency", "lost_reason", "is_closed", "is_won",
    "closed_at", "created_at",
)  # fmt: skip


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("import_contract")
    world = generate(root / "world", companies=2, deals=240, seed=5, fmt="csv")
    native = root / "native.duckdb"
    load(native, [world.out_dir])
    replay(native)
    imported = {}
    for shape, write in (("salesforce", write_salesforce), ("hubspot", write_hubspot)):
        out = write(native, root / shape)
        db = root / f"{shape}.duckdb"
        for export in out:
            if shape == "salesforce":
                import_export(db, export, fmt="salesforce", strict=True)
            else:
                import_export(db, export, fmt="mapped", mapping=root / shape / "hubspot.yaml", strict=True)
        replay(db)
        imported[shape] = db
    return native, imported


def changes(db: Path, table: str, key: str, fields: tuple[str, ...]) -> list[tuple]:
    """A history's versions that change a compared field, and each record's end (deletion)."""
    listed = ", ".join(fields)
    with reading(db) as con:
        versions = con.sql(
            f"""SELECT company_id, {key}, valid_from, {listed} FROM (
                    SELECT *, lag(struct_pack({listed})) OVER (PARTITION BY company_id, {key} ORDER BY version) AS previous
                    FROM {table})
                WHERE previous IS DISTINCT FROM struct_pack({listed}) ORDER BY ALL"""
        ).fetchall()
        ends = con.sql(f"SELECT company_id, {key}, valid_to FROM {table} WHERE valid_to IS NOT NULL "
                       f"QUALIFY version = max(version) OVER (PARTITION BY company_id, {key}) ORDER BY ALL").fetchall()
    return versions + [("end", *row) for row in ends]


def test_salesforce_export_replays_to_the_native_deal_history(worlds):
    native, imported = worlds
    expected = changes(native, "deal_history", "deal_id", DEAL_FIELDS)
    assert len(expected) > 500
    assert changes(imported["salesforce"], "deal_history", "deal_id", DEAL_FIELDS) == expected


def test_salesforce_export_replays_to_the_native_lead_history(worlds):
    native, imported = worlds
    expected = changes(native, "lead_history", "lead_id", LEAD_FIELDS)
    assert len(expected) > 500
    assert changes(imported["salesforce"], "lead_history", "lead_id", LEAD_FIELDS) == expected


def current(db: Path, fields: tuple[str, ...]) -> list[tuple]:
    with reading(db) as con:
        return con.sql(
            f"SELECT company_id, deal_id, {', '.join(fields)}, CASE WHEN NOT is_closed THEN expected_close_date END "
            "FROM deals_current ORDER BY ALL"
        ).fetchall()


def test_hubspot_export_replays_to_the_native_current_deals(worlds):
    native, imported = worlds
    expected = current(native, HUBSPOT_FIELDS)
    assert len(expected) > 200
    assert current(imported["hubspot"], HUBSPOT_FIELDS) == expected
