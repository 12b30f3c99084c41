"""The importers' contract: a world generated natively, written out in a foreign shape and
imported back, replays to the same history, on every field the shape can carry.

- Salesforce (Opportunity + OpportunityHistory + OpportunityFieldHistory, Lead + LeadHistory,
  Task + Event): ``deal_history`` is equal on every field, and ``lead_history`` on every field
  but ``account_id`` (a Salesforce lead has no account until it converts), once versions that
  change none of the compared fields are merged with the one before (Salesforce writes a
  history row only when a tracked field changes); ``activities`` are equal row for row, and so
  are the engagement counts the lead features take from the activity events.
- The forecast of the Salesforce import equals the native one (but for quotas, which User does
  not carry); its lead sweep sweeps the same leads with the same outcomes, engagement counts
  and scores.
- HubSpot deals export (current state, no history): for every deal not deleted, the replayed
  current state equals the native one on account, owner, name, stage, amount, currency, lost
  reason, is_closed, is_won, closed_at (the close date) and created_at (the create date), and
  expected_close_date for open deals (a closed deal's close date is when it closed). Deleted
  deals are absent from both.
- HubSpot contacts export as leads (current state, no history): every lead not deleted has its
  native current state on every field, and its outcome's time line (created open, then
  converted into its deal or disqualified, each at its instant) is the native one, so the lead
  sweep's outcomes at any instant are. What the shape cannot carry is lost: a score or owner
  before its last change (the import holds today's from creation on), when a lead's account was
  set (the import sets it at creation), and deleted leads.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from crm_lab.db import reading
from crm_lab.forecast import prepare, run_scenarios
from crm_lab.generate import generate
from crm_lab.importers import import_export
from crm_lab.importers.foreign_shapes import write_hubspot, write_salesforce
from crm_lab.leads import analyse_leads
from crm_lab.leads.features import read_lead_features
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
                mapping = "hubspot-contacts.yaml" if export.name == "contacts.csv" else "hubspot.yaml"
                import_export(db, export, fmt="mapped", mapping=root / shape / mapping, strict=True)
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


def test_the_forecast_of_an_imported_salesforce_export_is_the_native_one(worlds):
    native, imported = worlds
    runs = [run_scenarios(prepare(db, as_of="2025-01-01", horizon="quarter"), trials=500, seed=1)
            for db in (native, imported["salesforce"])]
    assert runs[0].summary.height > 0
    # Salesforce's User carries no bookings quota, so only the quota columns may differ.
    without_quota = [c for c in runs[0].summary.columns if "quota" not in c]
    assert runs[1].summary.select(without_quota).equals(runs[0].summary.select(without_quota))


ACTIVITY_COLUMNS = "company_id, activity_id, activity_type, owner_rep_id, account_id, lead_id, deal_id, occurred_at, duration_minutes"
ENGAGEMENT = ["calls", "emails", "meetings", "tasks"]


def test_salesforce_tasks_and_events_import_as_the_native_activities(worlds):
    native, imported = worlds
    query = f"SELECT {ACTIVITY_COLUMNS} FROM activities ORDER BY ALL"
    with reading(native) as con:
        expected = con.sql(query).fetchall()
        types = {t for (t,) in con.sql("SELECT DISTINCT activity_type FROM activities").fetchall()}
    assert len(expected) > 300 and types == {"call", "email", "meeting", "task"}
    with reading(imported["salesforce"]) as con:
        assert con.sql(query).fetchall() == expected


def test_the_engagement_counts_of_a_salesforce_import_are_the_native_worlds(worlds):
    native, imported = worlds
    # At the end of time every activity not deleted counts: the native activities table, per lead.
    with reading(native) as con:
        counted = con.sql(
            "SELECT company_id, lead_id, count(*) FILTER (activity_type = 'call'), count(*) FILTER (activity_type = 'email'), "
            "count(*) FILTER (activity_type = 'meeting'), count(*) FILTER (activity_type = 'task') "
            "FROM activities WHERE lead_id IS NOT NULL GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    assert len(counted) > 50
    with reading(imported["salesforce"]) as con:
        at_end = read_lead_features(con, as_of="2100-01-01", company=None)
        # Halfway, the deleted ones still count and the later ones not yet: as the native log says.
        halfway = read_lead_features(con, as_of="2024-09-01", company=None).select("company_id", "lead_id", *ENGAGEMENT)
    engaged = at_end.filter(sum(at_end[c] for c in ENGAGEMENT) > 0).select("company_id", "lead_id", *ENGAGEMENT)
    assert engaged.rows() == counted
    with reading(native) as con:
        expected = read_lead_features(con, as_of="2024-09-01", company=None).select("company_id", "lead_id", *ENGAGEMENT)
    assert expected[ENGAGEMENT].sum().row(0) != (0, 0, 0, 0)
    assert halfway.equals(expected)


def test_the_lead_sweep_of_an_imported_salesforce_export_sweeps_the_same_leads(worlds):
    """Same leads, same outcomes, engagement counts and scores at the same cut-off dates."""
    native, imported = worlds
    studies = [analyse_leads(db, as_of="2025-06-01", test_days=180, capacity_hours=50.0, replicates=5)
               for db in (native, imported["salesforce"])]
    for ours, theirs in zip(*studies):
        assert ours.company_id == theirs.company_id
        for frame in ("train", "test"):
            columns = ["lead_id", "converted", "source", "industry", "employees", *ENGAGEMENT]
            assert getattr(theirs, frame).select(columns).sort("lead_id").equals(getattr(ours, frame).select(columns).sort("lead_id"))
        assert theirs.test.sort("lead_id")["routing_score"].equals(ours.test.sort("lead_id")["routing_score"])


LEAD_CURRENT_FIELDS = (
    "account_id", "owner_rep_id", "name", "source", "industry", "employees", "score", "status", "deal_id",
    "created_at", "converted_at",
)  # fmt: skip


def current_leads(db: Path) -> list[tuple]:
    with reading(db) as con:
        return con.sql(f"SELECT company_id, lead_id, {', '.join(LEAD_CURRENT_FIELDS)} FROM leads_current ORDER BY ALL").fetchall()


def outcomes(db: Path) -> list[tuple]:
    """Each live lead's status time line: the versions that change its status, deal or conversion."""
    with reading(db) as con:
        return con.sql(
            """SELECT company_id, lead_id, valid_from, status, deal_id, converted_at FROM (
                   SELECT *, lag(struct_pack(status, deal_id, converted_at)) OVER (PARTITION BY company_id, lead_id ORDER BY version) AS previous
                   FROM lead_history SEMI JOIN leads_current USING (company_id, lead_id))
               WHERE previous IS DISTINCT FROM struct_pack(status, deal_id, converted_at) ORDER BY ALL"""
        ).fetchall()


def test_hubspot_contacts_export_replays_to_the_native_current_leads(worlds):
    native, imported = worlds
    expected = current_leads(native)
    assert len(expected) > 200
    assert {row[9] for row in expected} == {"open", "converted", "disqualified"}
    assert current_leads(imported["hubspot"]) == expected


def test_hubspot_contacts_export_replays_to_the_native_lead_outcomes(worlds):
    native, imported = worlds
    expected = outcomes(native)
    assert len(expected) > len(current_leads(native)) + 100  # most leads are decided by now
    assert outcomes(imported["hubspot"]) == expected
    # The history in between is what the shape loses: the native world changes scores after creation.
    with reading(native) as con:
        assert con.sql("SELECT count(DISTINCT score) > count(DISTINCT lead_id) FROM lead_history").fetchall() == [(True,)]


def test_the_lead_sweep_of_an_imported_hubspot_export_has_the_native_outcomes(worlds):
    """Same leads swept (but the deleted ones, which the export lacks), same outcomes; the
    features are today's (a current-state export has no other), so the scores may differ."""
    native, imported = worlds
    studies = [analyse_leads(db, as_of="2025-06-01", test_days=180, capacity_hours=50.0, replicates=5)
               for db in (native, imported["hubspot"])]
    with reading(native) as con:
        deleted = set(con.sql("SELECT company_id, aggregate_id FROM events WHERE aggregate_type = 'lead' AND event_type = 'deleted'").fetchall())
    assert [s.company_id for s in studies[1]] == [s.company_id for s in studies[0]]
    for ours, theirs in zip(*studies):
        for frame in ("train", "test"):
            columns = ["lead_id", "converted", "source", "industry", "employees"]
            gone = [lead for company, lead in deleted if company == ours.company_id]
            expected = getattr(ours, frame).filter(~pl.col("lead_id").is_in(gone)).select(columns).sort("lead_id")
            assert expected.height > 20 and expected["converted"].any()
            assert getattr(theirs, frame).select(columns).sort("lead_id").equals(expected)
