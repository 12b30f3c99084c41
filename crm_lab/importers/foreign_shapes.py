"""A native world written out in foreign shapes: a Salesforce export and a HubSpot deals and
contacts (leads) export (with their mapping files), one folder per company. Used for the samples in ``data/samples`` and by
the contract tests, which import these back and compare the replay with the native one.

The source is a replayed workbench database: an export is a CRM's view of its records' history,
which is what ``deal_history`` and ``lead_history`` are."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb

from crm_lab.db import reading
from crm_lab.typing_checks import quote_literal

SAMPLE_WORLD = {"companies": 2, "deals": 300, "seed": 11}

# Native stage -> (Salesforce StageName, Probability, ForecastCategoryName)
SALESFORCE_STAGE_NAMES = {
    "prospecting": ("Prospecting", 10, "Pipeline"),
    "qualification": ("Qualification", 20, "Pipeline"),
    "proposal": ("Proposal/Price Quote", 60, "Best Case"),
    "negotiation": ("Negotiation/Review", 80, "Commit"),
    "closed_won": ("Closed Won", 100, "Closed"),
    "closed_lost": ("Closed Lost", 0, "Omitted"),
}
SALESFORCE_TASK_SUBTYPES = {"call": "Call", "email": "Email", "task": "Task"}
SALESFORCE_LEAD_STATUS_NAMES = {"open": "Open - Not Contacted", "converted": "Closed - Converted", "disqualified": "Closed - Not Converted"}
HUBSPOT_STAGE_NAMES = {
    "prospecting": "Appointment Scheduled",
    "qualification": "Qualified To Buy",
    "proposal": "Presentation Scheduled",
    "negotiation": "Contract Sent",
    "closed_won": "Closed Won",
    "closed_lost": "Closed Lost",
}
HUBSPOT_DATE_FORMAT = "%m/%d/%Y %H:%M:%S"
HUBSPOT_MAPPING = f"""\
# crm-lab mapping: a HubSpot deals export (CRM > Deals > Export, all properties).
columns:
  deal_id: Record ID
  name: Deal Name
  stage: Deal Stage
  amount: Amount
  currency: Deal Currency Code
  created_at: Create Date
  close_date: Close Date
  owner_rep_id: Deal owner
  account_id: Associated Company IDs
  lost_reason: Closed Lost Reason
  updated_at: Last Modified Date
stages:
{''.join(f'  "{name}": {native}{chr(10)}' for native, name in HUBSPOT_STAGE_NAMES.items())}\
dates:
  Create Date: "{HUBSPOT_DATE_FORMAT}"
  Close Date: "{HUBSPOT_DATE_FORMAT}"
  Last Modified Date: "{HUBSPOT_DATE_FORMAT}"
"""


# Native lead status -> (HubSpot Lifecycle Stage, Lead Status). The portal this sample stands for
# moves a disqualified contact to the lifecycle stage Other, so the stage's "Became a ... Date"
# properties date both outcomes; Lead Status is exported too, as HubSpot does, and read past.
HUBSPOT_LEAD_STATUS_NAMES = {
    "open": ("Lead", "Open"),
    "converted": ("Opportunity", "Open Deal"),
    "disqualified": ("Other", "Unqualified"),
}
# HubSpot's default lifecycle stages: what each means for a lead.
HUBSPOT_LIFECYCLE_STAGES = {
    "Subscriber": "open",
    "Lead": "open",
    "Marketing Qualified Lead": "open",
    "Sales Qualified Lead": "open",
    "Opportunity": "converted",
    "Customer": "converted",
    "Evangelist": "converted",
    "Other": "disqualified",
}
HUBSPOT_CONTACTS_MAPPING = f"""\
# crm-lab mapping: a HubSpot contacts export (CRM > Contacts > Export, all properties), as leads.
kind: leads
columns:
  lead_id: Record ID
  first_name: First Name
  last_name: Last Name
  created_at: Create Date
  status: Lifecycle Stage
  converted_at: Became an Opportunity Date
  disqualified_at: Became a Other Lifecycle Stage Date
  score: HubSpot Score
  source: Original Source
  industry: Industry
  employees: Number of Employees
  owner_rep_id: Contact owner
  account_id: Associated Company IDs
  deal_id: Associated Deal IDs
  updated_at: Last Modified Date
lead_statuses:
{''.join(f'  "{name}": {native}{chr(10)}' for name, native in HUBSPOT_LIFECYCLE_STAGES.items())}\
dates:
  Create Date: "{HUBSPOT_DATE_FORMAT}"
  Became an Opportunity Date: "{HUBSPOT_DATE_FORMAT}"
  Became a Other Lifecycle Stage Date: "{HUBSPOT_DATE_FORMAT}"
  Last Modified Date: "{HUBSPOT_DATE_FORMAT}"
"""


def _sf_time(column: str) -> str:
    return f"strftime({column}, '%Y-%m-%dT%H:%M:%S.000Z')"


def _case(column: str, table: dict[str, object], index: int | None = None) -> str:
    whens = " ".join(
        f"WHEN {quote_literal(k)} THEN {quote_literal(str(v if index is None else v[index]))}" for k, v in table.items()
    )
    return f"CASE {column} {whens} END"


def _companies(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [c for (c,) in con.sql("SELECT company_id FROM companies ORDER BY company_id").fetchall()]


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path, company: str) -> None:
    con.execute("SET VARIABLE export_company = ?", [company])
    con.execute(f"COPY ({query}) TO {quote_literal(str(path))} (HEADER, DELIMITER ',')")


def write_salesforce(db_path: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write each company of a replayed workbench as a Salesforce export folder
    ``out_dir/<company_id>/`` (User, Account, Opportunity, OpportunityHistory,
    OpportunityFieldHistory, Lead, LeadHistory, Task, Event). Deleted records are included with
    ``IsDeleted`` true, as an export with deleted records has them. Returns the folders."""
    folders = []
    with reading(db_path) as con:
        for company in _companies(con):
            folder = Path(out_dir) / company
            folder.mkdir(parents=True, exist_ok=True)
            for name, query in _salesforce_queries().items():
                _copy(con, query, folder / f"{name}.csv", company)
            folders.append(folder)
    return folders


def _salesforce_queries() -> dict[str, str]:
    mine = "company_id = getvariable('export_company')"
    # HubSpot's Last Modified Date: when the record's current version began.
    modified = lambda aggregate, alias="d": (  # noqa: E731
        f"(SELECT max(h.valid_from) FROM {aggregate}_history h WHERE h.company_id = {alias}.company_id AND h.{aggregate}_id = {alias}.{aggregate}_id)"
    )
    stage = lambda column, i: _case(column, SALESFORCE_STAGE_NAMES, i)  # noqa: E731
    versions = f"""SELECT *, lag(stage) OVER w AS prev_stage, lag(amount) OVER w AS prev_amount,
                   lag(expected_close_date) OVER w AS prev_ecd, lag(owner_rep_id) OVER w AS prev_owner,
                   lag(lost_reason) OVER w AS prev_reason, version = 1 AS first_version
            FROM deal_history WHERE {mine} WINDOW w AS (PARTITION BY deal_id ORDER BY version)"""
    last_deal = f"SELECT * FROM deal_history WHERE {mine} QUALIFY version = max(version) OVER (PARTITION BY deal_id)"
    lead_versions = f"""SELECT *, lag(status) OVER w AS prev_status, lag(owner_rep_id) OVER w AS prev_owner,
                   lag(score) OVER w AS prev_score, version = 1 AS first_version
            FROM lead_history WHERE {mine} WINDOW w AS (PARTITION BY lead_id ORDER BY version)"""
    last_lead = f"SELECT * FROM lead_history WHERE {mine} QUALIFY version = max(version) OVER (PARTITION BY lead_id)"
    # Activities as created (the native world never updates one), with when they were deleted;
    # meetings are Events, calls, emails and tasks are Tasks.
    activities = f"""SELECT c.aggregate_id AS activity_id, c.activity_type, c.owner_rep_id, c.account_id, c.lead_id, c.deal_id,
                   c.occurred_at, d.deleted_at, a.duration_minutes,
                   c.lead_id AS WhoId, CASE WHEN c.lead_id IS NULL THEN coalesce(c.deal_id, c.account_id) END AS WhatId,
                   {_sf_time('c.occurred_at')} AS CreatedDate, {_sf_time('coalesce(d.deleted_at, c.occurred_at)')} AS LastModifiedDate,
                   d.deleted_at IS NOT NULL AS IsDeleted
            FROM events c
            LEFT JOIN (SELECT company_id, aggregate_id, min(occurred_at) AS deleted_at FROM events
                       WHERE aggregate_type = 'activity' AND event_type = 'deleted' GROUP BY ALL) d USING (company_id, aggregate_id)
            LEFT JOIN activities a ON a.company_id = c.company_id AND a.activity_id = c.aggregate_id
            WHERE c.company_id = getvariable('export_company') AND c.aggregate_type = 'activity' AND c.event_type = 'created'"""
    return {
        "User": f"""SELECT rep_id AS Id, split_part(name, ' ', 1) AS FirstName, substr(name, strpos(name, ' ') + 1) AS LastName,
                   email AS Email, role AS Title, team AS Department, is_active AS IsActive,
                   {_sf_time('CAST(hired_at AS TIMESTAMPTZ)')} AS CreatedDate
            FROM reps WHERE {mine} ORDER BY rep_id""",
        "Account": f"""SELECT account_id AS Id, name AS Name, industry AS Industry, employees AS NumberOfEmployees,
                   lat AS BillingLatitude, lon AS BillingLongitude, owner_rep_id AS OwnerId, {_sf_time('created_at')} AS CreatedDate
            FROM accounts WHERE {mine} ORDER BY account_id""",
        "Opportunity": f"""SELECT deal_id AS Id, account_id AS AccountId, owner_rep_id AS OwnerId, name AS Name,
                   {stage('stage', 0)} AS StageName, amount AS Amount, currency AS CurrencyIsoCode, expected_close_date AS CloseDate,
                   {stage('stage', 1)} AS Probability, {stage('stage', 2)} AS ForecastCategoryName,
                   coalesce(is_closed, false) AS IsClosed, coalesce(is_won, false) AS IsWon, lost_reason AS Loss_Reason__c,
                   {_sf_time('created_at')} AS CreatedDate, {_sf_time('coalesce(valid_to, valid_from)')} AS LastModifiedDate,
                   valid_to IS NOT NULL AS IsDeleted
            FROM ({last_deal}) ORDER BY deal_id""",
        "OpportunityHistory": f"""SELECT '008' || lpad(CAST(row_number() OVER (ORDER BY deal_id, version) AS VARCHAR), 12, '0') AS Id,
                   deal_id AS OpportunityId, {stage('stage', 0)} AS StageName, amount AS Amount, expected_close_date AS CloseDate,
                   {stage('stage', 1)} AS Probability, {stage('stage', 2)} AS ForecastCategory,
                   {_sf_time('valid_from')} AS CreatedDate, owner_rep_id AS CreatedById
            FROM ({versions})
            WHERE first_version OR stage IS DISTINCT FROM prev_stage OR amount IS DISTINCT FROM prev_amount
               OR expected_close_date IS DISTINCT FROM prev_ecd
            ORDER BY deal_id, version""",
        "OpportunityFieldHistory": f"""SELECT '017' || lpad(CAST(row_number() OVER (ORDER BY deal_id, version, Field) AS VARCHAR), 12, '0') AS Id,
                   deal_id AS OpportunityId, Field, OldValue, NewValue, {_sf_time('valid_from')} AS CreatedDate, prev_owner AS CreatedById
            FROM (SELECT *, unnest(['Owner', 'Loss_Reason__c']) AS Field, unnest([prev_owner, prev_reason]) AS OldValue,
                         unnest([owner_rep_id, lost_reason]) AS NewValue FROM ({versions}) WHERE NOT first_version)
            WHERE OldValue IS DISTINCT FROM NewValue
            ORDER BY deal_id, version, Field""",
        "Lead": f"""SELECT lead_id AS Id, split_part(name, ' ', 1) AS FirstName, substr(name, strpos(name, ' ') + 1) AS LastName,
                   coalesce((SELECT a.name FROM accounts a WHERE a.company_id = l.company_id AND a.account_id = l.account_id), '[not provided]') AS Company,
                   {_case('status', SALESFORCE_LEAD_STATUS_NAMES)} AS Status, source AS LeadSource, industry AS Industry,
                   employees AS NumberOfEmployees, owner_rep_id AS OwnerId, score AS Score__c, status = 'converted' AS IsConverted,
                   CAST(converted_at AS DATE) AS ConvertedDate, CASE WHEN status = 'converted' THEN deal_id END AS ConvertedOpportunityId,
                   CASE WHEN status = 'converted' THEN account_id END AS ConvertedAccountId,
                   {_sf_time('created_at')} AS CreatedDate, {_sf_time('coalesce(valid_to, valid_from)')} AS LastModifiedDate,
                   valid_to IS NOT NULL AS IsDeleted
            FROM ({last_lead}) l ORDER BY lead_id""",
        "LeadHistory": f"""SELECT '017L' || lpad(CAST(row_number() OVER (ORDER BY lead_id, version, Field) AS VARCHAR), 11, '0') AS Id,
                   lead_id AS LeadId, Field, OldValue, NewValue, {_sf_time('valid_from')} AS CreatedDate, owner_rep_id AS CreatedById
            FROM (SELECT *, unnest(['Owner', 'Status', 'Score__c', 'leadConverted']) AS Field,
                         unnest([prev_owner, {_case('prev_status', SALESFORCE_LEAD_STATUS_NAMES)}, CAST(prev_score AS VARCHAR), CASE WHEN status = 'converted' AND prev_status <> 'converted' THEN 'false' END]) AS OldValue,
                         unnest([owner_rep_id, {_case('status', SALESFORCE_LEAD_STATUS_NAMES)}, CAST(score AS VARCHAR), CASE WHEN status = 'converted' AND prev_status <> 'converted' THEN 'true' END]) AS NewValue
                  FROM ({lead_versions}) WHERE NOT first_version)
            WHERE OldValue IS DISTINCT FROM NewValue
            ORDER BY lead_id, version, Field""",
        "Task": f"""SELECT activity_id AS Id, WhoId, WhatId, account_id AS AccountId, owner_rep_id AS OwnerId,
                   {_case('activity_type', SALESFORCE_TASK_SUBTYPES)} AS Subject,
                   CASE WHEN activity_type <> 'task' THEN {_case('activity_type', SALESFORCE_TASK_SUBTYPES)} END AS Type,
                   {_case('activity_type', SALESFORCE_TASK_SUBTYPES)} AS TaskSubtype, 'Completed' AS Status, true AS IsClosed,
                   CAST(occurred_at AS DATE) AS ActivityDate, duration_minutes * 60 AS CallDurationInSeconds,
                   CreatedDate, LastModifiedDate, IsDeleted
            FROM ({activities}) WHERE activity_type <> 'meeting' ORDER BY activity_id""",
        "Event": f"""SELECT activity_id AS Id, WhoId, WhatId, account_id AS AccountId, owner_rep_id AS OwnerId,
                   'Meeting' AS Subject, 'Meeting' AS Type, {_sf_time('occurred_at')} AS ActivityDateTime,
                   CAST(occurred_at AS DATE) AS ActivityDate, {_sf_time('occurred_at')} AS StartDateTime,
                   {_sf_time('occurred_at + to_minutes(duration_minutes)')} AS EndDateTime, duration_minutes AS DurationInMinutes,
                   CreatedDate, LastModifiedDate, IsDeleted
            FROM ({activities}) WHERE activity_type = 'meeting' ORDER BY activity_id""",
    }


def write_hubspot(db_path: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write each company's deals and leads as HubSpot exports ``out_dir/<company_id>/deals.csv``
    and ``contacts.csv`` (current state only: no history, no deleted records), plus the mappings
    that import them, ``out_dir/hubspot.yaml`` and ``out_dir/hubspot-contacts.yaml``. Returns the
    CSV files, deals before contacts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hubspot.yaml").write_text(HUBSPOT_MAPPING, encoding="utf-8")
    (out / "hubspot-contacts.yaml").write_text(HUBSPOT_CONTACTS_MAPPING, encoding="utf-8")
    hub_time = lambda column: f"strftime({column}, '{HUBSPOT_DATE_FORMAT}')"  # noqa: E731
    mine = "company_id = getvariable('export_company')"
    # HubSpot's Last Modified Date: when the record's current version began.
    modified = lambda aggregate, alias="d": (  # noqa: E731
        f"(SELECT max(h.valid_from) FROM {aggregate}_history h WHERE h.company_id = {alias}.company_id AND h.{aggregate}_id = {alias}.{aggregate}_id)"
    )
    deals = f"""SELECT deal_id AS "Record ID", name AS "Deal Name", {_case('stage', HUBSPOT_STAGE_NAMES)} AS "Deal Stage",
                   amount AS "Amount", currency AS "Deal Currency Code", {hub_time('created_at')} AS "Create Date",
                   {hub_time('coalesce(closed_at, CAST(expected_close_date AS TIMESTAMPTZ))')} AS "Close Date",
                   owner_rep_id AS "Deal owner", account_id AS "Associated Company IDs", lost_reason AS "Closed Lost Reason",
                   {hub_time(modified('deal'))} AS "Last Modified Date"
            FROM deals_current d WHERE {mine} ORDER BY deal_id"""
    # A lead's statuses only move forward (open, then converted or disqualified), so the first
    # version in its current status dates the outcome.
    contacts = f"""SELECT lead_id AS "Record ID", split_part(name, ' ', 1) AS "First Name", substr(name, strpos(name, ' ') + 1) AS "Last Name",
                   {hub_time('created_at')} AS "Create Date", {_case('status', HUBSPOT_LEAD_STATUS_NAMES, 0)} AS "Lifecycle Stage",
                   {_case('status', HUBSPOT_LEAD_STATUS_NAMES, 1)} AS "Lead Status", score AS "HubSpot Score",
                   source AS "Original Source", industry AS "Industry", employees AS "Number of Employees",
                   owner_rep_id AS "Contact owner", account_id AS "Associated Company IDs", deal_id AS "Associated Deal IDs",
                   {hub_time('converted_at')} AS "Became an Opportunity Date",
                   {hub_time("CASE WHEN status = 'disqualified' THEN (SELECT min(h.valid_from) FROM lead_history h WHERE h.company_id = l.company_id AND h.lead_id = l.lead_id AND h.status = 'disqualified') END")} AS "Became a Other Lifecycle Stage Date",
                   {hub_time(modified('lead', 'l'))} AS "Last Modified Date"
            FROM leads_current l WHERE {mine} ORDER BY lead_id"""
    files = []
    with reading(db_path) as con:
        for company in _companies(con):
            (out / company).mkdir(exist_ok=True)
            for name, query in (("deals.csv", deals), ("contacts.csv", contacts)):
                _copy(con, query, out / company / name, company)
                files.append(out / company / name)
    return sorted(files, key=lambda f: (f.parent.name, f.name != "deals.csv"))


def write_samples(out_dir: str | os.PathLike, *, companies: int = SAMPLE_WORLD["companies"], deals: int = SAMPLE_WORLD["deals"], seed: int = SAMPLE_WORLD["seed"]) -> Path:
    """Generate a small world natively and write it under ``out_dir/salesforce`` and
    ``out_dir/hubspot``: what ``data/samples`` holds (``python -m crm_lab.importers.foreign_shapes``)."""
    from crm_lab.generate import generate
    from crm_lab.load import load
    from crm_lab.replay import replay

    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as scratch:
        world = generate(Path(scratch) / "world", companies=companies, deals=deals, seed=seed, fmt="parquet")
        db = Path(scratch) / "native.duckdb"
        load(db, [world.out_dir])
        replay(db)
        write_salesforce(db, out / "salesforce")
        write_hubspot(db, out / "hubspot")
    return out


if __name__ == "__main__":
    print(write_samples(Path(__file__).resolve().parents[2] / "data" / "samples"))
