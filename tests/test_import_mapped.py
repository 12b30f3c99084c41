"""A plain spreadsheet of opportunities (one row per deal, no history) through a mapping file:
its events are derived from its dates."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

from crm_lab.importers import import_export
from crm_lab.replay import replay
from import_exports import fetch, stored_events, write_export

SPREADSHEET = """
opportunity_id,sales_agent,account,deal_stage,engage_date,close_date,close_value
1C1I7A6R,Moses Frase,Cancity,Won,2016-10-20,2017-03-01,1054
Z063OYW0,Darcel Schlecht,Isdom,Lost,2016-10-25,2017-03-11,0
EC4QE1BX,Darcel Schlecht,Cancity,Engaging,2016-10-25,,
"""
MAPPING = """
columns:
  deal_id: opportunity_id
  owner_rep_id: sales_agent
  account_id: account
  stage: deal_stage
  created_at: engage_date
  close_date: close_date
  amount: close_value
stages:
  Prospecting: prospecting
  Engaging: qualification
  Won: closed_won
  Lost: closed_lost
currency: USD
"""


def test_a_spreadsheet_row_is_created_at_its_engage_date_and_closed_at_its_close_date(tmp_path):
    folder = write_export(tmp_path / "pipeline", {"deals.csv": SPREADSHEET, "mapping.yaml": MAPPING})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "mapping.yaml")
    assert stored_events(db, "deal") == [
        ("1C1I7A6R", "deals-1C1I7A6R", "created", "2016-10-20T00:00:00Z", 2,
         {"account_id": "Cancity", "owner_rep_id": "Moses Frase", "stage": "prospecting", "amount": 1054.0,
          "currency": "USD", "expected_close_date": "2017-03-01"}),
        ("1C1I7A6R", "deals-1C1I7A6R:closed", "won", "2017-03-01T00:00:00Z", 4, {}),
        ("EC4QE1BX", "deals-EC4QE1BX", "created", "2016-10-25T00:00:00Z", 2,
         {"account_id": "Cancity", "owner_rep_id": "Darcel Schlecht", "stage": "qualification", "currency": "USD"}),
        ("Z063OYW0", "deals-Z063OYW0", "created", "2016-10-25T00:00:00Z", 2,
         {"account_id": "Isdom", "owner_rep_id": "Darcel Schlecht", "stage": "prospecting", "amount": 0.0,
          "currency": "USD", "expected_close_date": "2017-03-11"}),
        ("Z063OYW0", "deals-Z063OYW0:closed", "lost", "2017-03-11T00:00:00Z", 4, {}),
    ]  # fmt: skip
    replay(db)
    assert fetch(db, "SELECT company_id, deal_id, stage, amount, is_won FROM deals_current ORDER BY deal_id") == [
        ("pipeline", "1C1I7A6R", "closed_won", Decimal("1054.00"), True),
        ("pipeline", "EC4QE1BX", "qualification", None, None),
        ("pipeline", "Z063OYW0", "closed_lost", Decimal("0.00"), False),
    ]


def test_a_declared_date_format_reads_day_first_dates(tmp_path):
    text = SPREADSHEET.replace("2016-10-20", "20/10/2016").replace("2016-10-25", "25/10/2016")
    mapping = MAPPING + "dates:\n  engage_date: '%d/%m/%Y'\n"
    folder = write_export(tmp_path / "pipeline", {"deals.csv": text, "mapping.yaml": mapping})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "mapping.yaml")
    assert fetch(db, "SELECT deal_id, strftime(created_at, '%Y-%m-%d') FROM deals ORDER BY 1") == [
        ("1C1I7A6R", "2016-10-20"),
        ("EC4QE1BX", "2016-10-25"),
        ("Z063OYW0", "2016-10-25"),
    ]


# A contacts export as HubSpot writes it (trimmed to a few properties), imported as leads.
CONTACTS = """
Record ID,First Name,Last Name,Create Date,Lifecycle Stage,HubSpot Score,Original Source,Industry,Number of Employees,Contact owner,Associated Company IDs,Associated Deal IDs,Became an Opportunity Date,Became a Other Lifecycle Stage Date
101,Grace,Hopper,03/01/2024 09:00:00,Opportunity,80,web,retail,120,rep-1,acct-7,deal-9;deal-10,03/05/2024 10:30:00,
102,Ada,King,03/02/2024 09:00:00,Other,10,event,energy,40,rep-2,,,,03/04/2024 12:00:00
103,Alan,Turing,03/03/2024 09:00:00,Lead,55.5,referral,software,,rep-1,acct-8,,,
104,Edsger,,03/03/2024 11:00:00,Other,,outbound,,,rep-2,,,,
105,Barbara,Liskov,03/04/2024 10:00:00,Sales Qualified Lead,70,web,retail,300,rep-1,acct-7,deal-11,03/04/2024 08:00:00,
"""
HUBSPOT_TIME = '"%m/%d/%Y %H:%M:%S"'
LEADS_MAPPING = f"""
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
lead_statuses:
  Lead: open
  Sales Qualified Lead: open
  Opportunity: converted
  Other: disqualified
dates:
  Create Date: {HUBSPOT_TIME}
  Became an Opportunity Date: {HUBSPOT_TIME}
  Became a Other Lifecycle Stage Date: {HUBSPOT_TIME}
"""


def test_a_contacts_row_is_created_open_and_converted_or_disqualified_at_its_dates(tmp_path):
    folder = write_export(tmp_path / "acme", {"contacts.csv": CONTACTS, "leads.yaml": LEADS_MAPPING})
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "leads.yaml", strict=True)
    # A leads export names no currency: the company's row is its deals import's to write.
    assert sorted(f.table for f in report.files) == ["events", "leads"]
    person = lambda name, **more: {"owner_rep_id": more.pop("owner"), "name": name, **more, "status": "open"}  # noqa: E731
    assert stored_events(db, "lead") == [
        # created open; converted at "Became an Opportunity Date" into the first associated deal
        ("101", "mapped-lead-101", "created", "2024-03-01T09:00:00Z", 2,
         {"account_id": "acct-7", **person("Grace Hopper", owner="rep-1", source="web", industry="retail", employees=120, score=80.0)}),
        ("101", "mapped-lead-101:converted", "converted", "2024-03-05T10:30:00Z", 4, {"deal_id": "deal-9"}),
        # disqualified at its "Became a Other Lifecycle Stage Date"
        ("102", "mapped-lead-102", "created", "2024-03-02T09:00:00Z", 2,
         person("Ada King", owner="rep-2", source="event", industry="energy", employees=40, score=10.0)),
        ("102", "mapped-lead-102:disqualified", "disqualified", "2024-03-04T12:00:00Z", 4, {}),
        # open: what it has
        ("103", "mapped-lead-103", "created", "2024-03-03T09:00:00Z", 2,
         {"account_id": "acct-8", **person("Alan Turing", owner="rep-1", source="referral", industry="software", score=55.5)}),
        # disqualified with no date: at its creation, as a Salesforce lead without LeadHistory
        ("104", "mapped-lead-104", "created", "2024-03-03T11:00:00Z", 2, {"owner_rep_id": "rep-2", "name": "Edsger", "source": "outbound"}),
        ("104", "mapped-lead-104:closed", "disqualified", "2024-03-03T11:00:00Z", 3, {}),
        # a conversion date makes a lead converted whatever its status says; never before its creation
        ("105", "mapped-lead-105", "created", "2024-03-04T10:00:00Z", 2,
         {"account_id": "acct-7", "owner_rep_id": "rep-1", "name": "Barbara Liskov", "source": "web", "industry": "retail",
          "employees": 300, "score": 70.0, "deal_id": "deal-11"}),
        ("105", "mapped-lead-105:closed", "converted", "2024-03-04T10:00:00Z", 3, {}),
    ]  # fmt: skip
    assert fetch(db, "SELECT DISTINCT company_id FROM leads") == [("acme",)]
    assert fetch(
        db, "SELECT lead_id, account_id, owner_rep_id, name, source, industry, employees, score, status, deal_id, "
        "strftime(created_at, '%Y-%m-%d %H:%M'), strftime(converted_at, '%Y-%m-%d %H:%M') FROM leads ORDER BY lead_id"
    ) == [
        ("101", "acct-7", "rep-1", "Grace Hopper", "web", "retail", 120, 80.0, "converted", "deal-9", "2024-03-01 09:00", "2024-03-05 10:30"),
        ("102", None, "rep-2", "Ada King", "event", "energy", 40, 10.0, "disqualified", None, "2024-03-02 09:00", None),
        ("103", "acct-8", "rep-1", "Alan Turing", "referral", "software", None, 55.5, "open", None, "2024-03-03 09:00", None),
        ("104", None, "rep-2", "Edsger", "outbound", None, None, None, "disqualified", None, "2024-03-03 11:00", None),
        ("105", "acct-7", "rep-1", "Barbara Liskov", "web", "retail", 300, 70.0, "converted", "deal-11", "2024-03-04 10:00", "2024-03-04 10:00"),
    ]  # fmt: skip
    replay(db)
    assert fetch(db, "SELECT lead_id, status, deal_id, converted_at FROM leads_current ORDER BY 1") == fetch(
        db, "SELECT lead_id, status, deal_id, converted_at FROM leads ORDER BY 1"
    )
    # Before its disqualification date lead 102 was open; after it, disqualified.
    assert fetch(db, "SELECT status FROM leads_as_of(TIMESTAMPTZ '2024-03-04 11:59:59+00') WHERE lead_id = '102'") == [("open",)]
    assert fetch(db, "SELECT status FROM leads_as_of(TIMESTAMPTZ '2024-03-04 12:00:00+00') WHERE lead_id = '102'") == [("disqualified",)]


def test_importing_the_same_leads_export_twice_adds_nothing(tmp_path):
    folder = write_export(tmp_path / "acme", {"contacts-2024-03-06.csv": CONTACTS, "leads.yaml": LEADS_MAPPING})
    db = tmp_path / "crm.duckdb"
    first = import_export(db, folder / "contacts-2024-03-06.csv", fmt="mapped", mapping=folder / "leads.yaml")
    before = fetch(db, "SELECT * FROM events ORDER BY event_id"), fetch(db, "SELECT * FROM leads ORDER BY lead_id")
    # The same export under next week's file name: the event ids name the records, not the file.
    (folder / "contacts-2024-03-13.csv").write_bytes((folder / "contacts-2024-03-06.csv").read_bytes())
    for name in ("contacts-2024-03-06.csv", "contacts-2024-03-13.csv"):
        again = import_export(db, folder / name, fmt="mapped", mapping=folder / "leads.yaml")
        events = [f for f in again.files if f.table == "events"]
        # the stored leads are compared with the export, not created again: their stored events
        # are read again, each one already loaded, and nothing is new
        assert [(f.rows_read, f.rows_loaded, f.events_duplicate) for f in events] == [(9, 0, 9)]
    assert sum(f.rows_loaded for f in first.files if f.table == "events") == 9
    assert (fetch(db, "SELECT * FROM events ORDER BY event_id"), fetch(db, "SELECT * FROM leads ORDER BY lead_id")) == before
    assert fetch(db, "SELECT count(*) FROM events_rejected") == [(0,)]


def test_a_deals_export_and_a_leads_export_of_one_company_import_one_after_the_other(tmp_path):
    folder = write_export(tmp_path / "pipeline", {"deals.csv": SPREADSHEET, "mapping.yaml": MAPPING, "contacts.csv": CONTACTS, "leads.yaml": LEADS_MAPPING})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "mapping.yaml")
    import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "leads.yaml")
    replay(db)
    assert fetch(db, "SELECT company_id, home_currency FROM companies") == [("pipeline", "USD")]
    assert fetch(db, "SELECT company_id, count(*) FROM deals_current GROUP BY 1") == [("pipeline", 3)]
    assert fetch(db, "SELECT company_id, count(*) FROM leads_current GROUP BY 1") == [("pipeline", 5)]


def test_a_value_the_contract_refuses_rejects_its_lead_only_naming_the_export_field(tmp_path):
    folder = write_export(tmp_path / "acme", {"contacts.csv": CONTACTS.replace(",retail,300,", ",retail,many,"), "leads.yaml": LEADS_MAPPING})
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "leads.yaml")
    assert report.rows_rejected == 1
    assert fetch(db, "SELECT file, line, column_name, value FROM load_rejects") == [
        (str(folder / "contacts.csv"), 6, "Number of Employees", "many")
    ]
    assert fetch(db, "SELECT lead_id FROM leads ORDER BY 1") == [("101",), ("102",), ("103",), ("104",)]


# Two weekly exports of the same pipeline (the spreadsheet above plus one deal, with a
# modification time): between them Z063OYW0 was reopened, EC4QE1BX won, K7M2PQ1X moved on
# to the next stage with a new owner, amount and close date; 1C1I7A6R did not change.
WEEK_1 = """
opportunity_id,sales_agent,account,deal_stage,engage_date,close_date,close_value,modified
1C1I7A6R,Moses Frase,Cancity,Won,2016-10-20,2017-03-01,1054,2017-03-01 09:00
Z063OYW0,Darcel Schlecht,Isdom,Lost,2016-10-25,2017-03-11,0,2017-03-11 09:00
EC4QE1BX,Darcel Schlecht,Cancity,Engaging,2016-10-25,,,2016-10-25 09:00
K7M2PQ1X,Moses Frase,Isdom,Prospecting,2016-11-01,2017-05-01,300,2016-11-01 09:00
"""
WEEK_2 = """
opportunity_id,sales_agent,account,deal_stage,engage_date,close_date,close_value,modified
1C1I7A6R,Moses Frase,Cancity,Won,2016-10-20,2017-03-01,1054,2017-03-01 09:00
Z063OYW0,Darcel Schlecht,Isdom,Engaging,2016-10-25,2017-04-30,200,2017-04-02 10:00
EC4QE1BX,Moses Frase,Cancity,Won,2016-10-25,2017-02-01,900,2017-02-03 16:30
K7M2PQ1X,Darcel Schlecht,Isdom,Engaging,2016-11-01,2017-06-15,450,2017-04-10 11:00
"""
DATED_MAPPING = MAPPING.replace("  amount: close_value\n", "  amount: close_value\n  updated_at: modified\n")
CHANGE_ID = r"mapped-deal-{}:changed-[0-9a-f]{{16}}"


def _import_weeks(tmp_path, mapping=DATED_MAPPING, now=None):
    folder = write_export(tmp_path / "pipeline", {"deals.csv": WEEK_1, "mapping.yaml": mapping})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "mapping.yaml")
    replay(db)
    before = {e[1] for e in stored_events(db, "deal")}
    # saved over last week's file, as an analyst does
    write_export(folder, {"deals.csv": WEEK_2})
    report = import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "mapping.yaml", now=now)
    replay(db)
    return db, folder, report, [e for e in stored_events(db, "deal") if e[1] not in before]


def test_a_later_export_of_the_same_deals_becomes_change_events_at_its_modification_time(tmp_path):
    db, _, _, added = _import_weeks(tmp_path)
    ids = [e[1] for e in added]
    assert re.fullmatch(CHANGE_ID.format("EC4QE1BX"), ids[1])
    assert re.fullmatch(CHANGE_ID.format("K7M2PQ1X"), ids[2])
    assert re.fullmatch(CHANGE_ID.format("Z063OYW0"), ids[3])
    assert added == [
        # an open deal now won: won at its close date under the id a first import would give it,
        # and what else changed at the export's modification time
        ("EC4QE1BX", "deals-EC4QE1BX:closed", "won", "2017-02-01T00:00:00Z", 4, {}),
        ("EC4QE1BX", ids[1], "amount_changed", "2017-02-03T16:30:00Z", 6,
         {"owner_rep_id": "Moses Frase", "amount": 900.0, "expected_close_date": "2017-02-01"}),
        # an open deal changed: the most telling field names the event, which carries them all
        ("K7M2PQ1X", ids[2], "stage_changed", "2017-04-10T11:00:00Z", 4,
         {"owner_rep_id": "Darcel Schlecht", "stage": "qualification", "amount": 450.0, "expected_close_date": "2017-06-15"}),
        # a lost deal open again: reopened in its open stage
        ("Z063OYW0", ids[3], "reopened", "2017-04-02T10:00:00Z", 4,
         {"stage": "qualification", "amount": 200.0, "expected_close_date": "2017-04-30"}),
    ]  # fmt: skip
    assert fetch(db, "SELECT count(*) FROM events_rejected") == [(0,)]
    state = "deal_id, account_id, owner_rep_id, name, stage, amount, currency, expected_close_date, lost_reason, is_closed, is_won, closed_at, created_at"
    assert fetch(db, f"SELECT {state} FROM deals_current ORDER BY 1") == fetch(db, f"SELECT {state} FROM deals ORDER BY 1")
    assert fetch(
        db, "SELECT deal_id, version, stage, amount, owner_rep_id, strftime(valid_from, '%Y-%m-%d %H:%M'), strftime(valid_to, '%Y-%m-%d %H:%M') "
        "FROM deal_history WHERE deal_id <> '1C1I7A6R' ORDER BY 1, 2"
    ) == [
        ("EC4QE1BX", 1, "qualification", None, "Darcel Schlecht", "2016-10-25 00:00", "2017-02-01 00:00"),
        ("EC4QE1BX", 2, "closed_won", None, "Darcel Schlecht", "2017-02-01 00:00", "2017-02-03 16:30"),
        ("EC4QE1BX", 3, "closed_won", Decimal("900.00"), "Moses Frase", "2017-02-03 16:30", None),
        ("K7M2PQ1X", 1, "prospecting", Decimal("300.00"), "Moses Frase", "2016-11-01 00:00", "2017-04-10 11:00"),
        ("K7M2PQ1X", 2, "qualification", Decimal("450.00"), "Darcel Schlecht", "2017-04-10 11:00", None),
        ("Z063OYW0", 1, "prospecting", Decimal("0.00"), "Darcel Schlecht", "2016-10-25 00:00", "2017-03-11 00:00"),
        ("Z063OYW0", 2, "closed_lost", Decimal("0.00"), "Darcel Schlecht", "2017-03-11 00:00", "2017-04-02 10:00"),
        ("Z063OYW0", 3, "qualification", Decimal("200.00"), "Darcel Schlecht", "2017-04-02 10:00", None),
    ]  # fmt: skip


def test_importing_the_later_deals_export_again_adds_nothing(tmp_path):
    db, folder, _, _ = _import_weeks(tmp_path)
    before = fetch(db, "SELECT * FROM events ORDER BY event_id"), fetch(db, "SELECT * FROM deals ORDER BY deal_id")
    # under a new name too: the change ids name the record, not the file
    (folder / "deals-copy.csv").write_bytes((folder / "deals.csv").read_bytes())
    for name in ("deals.csv", "deals-copy.csv"):
        again = import_export(db, folder / name, fmt="mapped", mapping=folder / "mapping.yaml")
        assert sum(f.rows_loaded for f in again.files if f.table == "events") == 0
    assert (fetch(db, "SELECT * FROM events ORDER BY event_id"), fetch(db, "SELECT * FROM deals ORDER BY deal_id")) == before
    assert fetch(db, "SELECT count(*) FROM events_rejected") == [(0,)]


def test_without_a_modification_time_a_change_is_dated_when_it_was_imported(tmp_path):
    now = datetime(2017, 4, 20, 8, 15, 30, 123456, tzinfo=timezone.utc)
    db, _, _, added = _import_weeks(tmp_path, mapping=MAPPING, now=now)
    assert [(e[0], e[2], e[3]) for e in added] == [
        ("EC4QE1BX", "won", "2017-02-01T00:00:00Z"),  # a closing keeps its close date
        ("EC4QE1BX", "amount_changed", "2017-04-20T08:15:30Z"),
        ("K7M2PQ1X", "stage_changed", "2017-04-20T08:15:30Z"),
        ("Z063OYW0", "reopened", "2017-04-20T08:15:30Z"),
    ]
    assert fetch(db, "SELECT count(*) FROM events_rejected") == [(0,)]
    assert fetch(db, "SELECT deal_id, stage, amount FROM deals_current ORDER BY 1") == fetch(db, "SELECT deal_id, stage, amount FROM deals ORDER BY 1")


# Two exports of the same contacts, with HubSpot's Last Modified Date. Between them: 101 moved
# to another owner and scored higher, 103 became an opportunity and scored higher, 105 changed
# industry, 107 was disqualified (no date of its own), 108 is new; 102 and 104 did not change.
CONTACTS_HEADER = CONTACTS.strip().splitlines()[0] + ",Last Modified Date"
CONTACTS_WEEK_1 = "\n".join([
    CONTACTS_HEADER,
    *(line + f",{modified}" for line, modified in zip(CONTACTS.strip().splitlines()[1:], (
        "03/05/2024 10:30:00", "03/04/2024 12:00:00", "03/03/2024 09:00:00", "03/03/2024 11:00:00", "03/04/2024 10:00:00"))),
    "107,Grace,Murray,03/05/2024 09:00:00,Lead,20,web,retail,,rep-2,,,,,03/05/2024 09:00:00",
])  # fmt: skip
CONTACTS_WEEK_2 = f"""
{CONTACTS_HEADER}
101,Grace,Hopper,03/01/2024 09:00:00,Opportunity,85,web,retail,120,rep-3,acct-7,deal-9;deal-10,03/05/2024 10:30:00,,03/10/2024 08:00:00
102,Ada,King,03/02/2024 09:00:00,Other,10,event,energy,40,rep-2,,,,03/04/2024 12:00:00,03/04/2024 12:00:00
103,Alan,Turing,03/03/2024 09:00:00,Opportunity,60,referral,software,,rep-1,acct-8,deal-12,03/08/2024 14:00:00,,03/08/2024 15:00:00
104,Edsger,,03/03/2024 11:00:00,Other,,outbound,,,rep-2,,,,,03/03/2024 11:00:00
105,Barbara,Liskov,03/04/2024 10:00:00,Sales Qualified Lead,70,web,software,300,rep-1,acct-7,deal-11,03/04/2024 08:00:00,,03/09/2024 09:00:00
107,Grace,Murray,03/05/2024 09:00:00,Other,20,web,retail,,rep-2,,,,,03/11/2024 17:00:00
108,John,Backus,03/09/2024 09:00:00,Lead,30,event,,,rep-1,,,,,03/09/2024 09:00:00
"""
DATED_LEADS_MAPPING = LEADS_MAPPING.replace("  deal_id: Associated Deal IDs\n", "  deal_id: Associated Deal IDs\n  updated_at: Last Modified Date\n") + f"  Last Modified Date: {HUBSPOT_TIME}\n"
LEAD_CHANGE_ID = r"mapped-lead-{}:changed-[0-9a-f]{{16}}"


def _import_contact_weeks(tmp_path, mapping=DATED_LEADS_MAPPING, now=None):
    folder = write_export(tmp_path / "acme", {"contacts.csv": CONTACTS_WEEK_1, "leads.yaml": mapping})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "leads.yaml", strict=True)
    replay(db)
    before = {e[1] for e in stored_events(db, "lead")}
    write_export(folder, {"contacts.csv": CONTACTS_WEEK_2})
    import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "leads.yaml", strict=True, now=now)
    replay(db)
    return db, folder, [e for e in stored_events(db, "lead") if e[1] not in before]


def test_a_later_export_of_the_same_leads_becomes_change_events_at_its_modification_time(tmp_path):
    db, _, added = _import_contact_weeks(tmp_path)
    ids = {e[0]: e[1] for e in added if ":changed-" in e[1]}
    assert sorted(ids) == ["101", "103", "105"] and all(re.fullmatch(LEAD_CHANGE_ID.format(k), v) for k, v in ids.items())
    assert added == [
        ("101", ids["101"], "owner_changed", "2024-03-10T08:00:00Z", 4, {"owner_rep_id": "rep-3", "score": 85.0}),
        # converted at its conversion date under the id a first import gives it; the score at the modification
        ("103", "mapped-lead-103:converted", "converted", "2024-03-08T14:00:00Z", 4, {"deal_id": "deal-12"}),
        ("103", ids["103"], "updated", "2024-03-08T15:00:00Z", 6, {"score": 60.0}),
        ("105", ids["105"], "updated", "2024-03-09T09:00:00Z", 4, {"industry": "software"}),
        # no disqualification date: disqualified when the export says it changed, not at its creation
        ("107", "mapped-lead-107:disqualified", "disqualified", "2024-03-11T17:00:00Z", 4, {}),
        ("108", "mapped-lead-108", "created", "2024-03-09T09:00:00Z", 2,
         {"owner_rep_id": "rep-1", "name": "John Backus", "source": "event", "score": 30.0, "status": "open"}),
    ]  # fmt: skip
    assert fetch(db, "SELECT count(*) FROM events_rejected") == [(0,)]
    state = "lead_id, account_id, owner_rep_id, name, source, industry, employees, score, status, deal_id, created_at, converted_at"
    assert fetch(db, f"SELECT {state} FROM leads_current ORDER BY 1") == fetch(db, f"SELECT {state} FROM leads ORDER BY 1")
    assert fetch(db, "SELECT lead_id, owner_rep_id, score, status, strftime(valid_from, '%m-%d %H:%M') FROM lead_history WHERE lead_id IN ('101', '103') ORDER BY 1, valid_from") == [
        ("101", "rep-1", 80.0, "open", "03-01 09:00"),
        ("101", "rep-1", 80.0, "converted", "03-05 10:30"),
        ("101", "rep-3", 85.0, "converted", "03-10 08:00"),
        ("103", "rep-1", 55.5, "open", "03-03 09:00"),
        ("103", "rep-1", 55.5, "converted", "03-08 14:00"),
        ("103", "rep-1", 60.0, "converted", "03-08 15:00"),
    ]  # fmt: skip


def test_importing_the_later_leads_export_again_adds_nothing(tmp_path):
    db, folder, _ = _import_contact_weeks(tmp_path)
    before = fetch(db, "SELECT * FROM events ORDER BY event_id"), fetch(db, "SELECT * FROM leads ORDER BY lead_id")
    again = import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "leads.yaml")
    assert sum(f.rows_loaded for f in again.files if f.table == "events") == 0
    assert (fetch(db, "SELECT * FROM events ORDER BY event_id"), fetch(db, "SELECT * FROM leads ORDER BY lead_id")) == before
    assert fetch(db, "SELECT count(*) FROM events_rejected") == [(0,)]


def test_without_a_modification_time_a_lead_change_is_dated_when_it_was_imported(tmp_path):
    db, _, added = _import_contact_weeks(tmp_path, mapping=LEADS_MAPPING, now=datetime(2024, 3, 12, 7, 0, tzinfo=timezone.utc))
    assert [(e[0], e[2], e[3]) for e in added] == [
        ("101", "owner_changed", "2024-03-12T07:00:00Z"),
        ("103", "converted", "2024-03-08T14:00:00Z"),  # a conversion keeps its date
        ("103", "updated", "2024-03-12T07:00:00Z"),
        ("105", "updated", "2024-03-12T07:00:00Z"),
        ("107", "disqualified", "2024-03-12T07:00:00Z"),
        ("108", "created", "2024-03-09T09:00:00Z"),
    ]
    assert fetch(db, "SELECT count(*) FROM events_rejected") == [(0,)]
