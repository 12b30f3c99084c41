"""A tiny Salesforce export, worked by hand: which events its history rows become, what the
replay then says, and that the loader's guarantees (idempotence, rejects that point at the
export's own file, line and field) hold for an import."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm_lab.db import reading
from crm_lab.importers import import_export
from crm_lab.leads.features import read_lead_features
from crm_lab.replay import replay
from import_exports import SALESFORCE, fetch, stored_events, write_export


@pytest.fixture()
def imported(tmp_path):
    folder = write_export(tmp_path / "northwind", SALESFORCE)
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder, fmt="salesforce")
    return folder, db, report


def test_opportunity_history_rows_become_the_events_they_differ_by(imported):
    _, db, _ = imported
    assert stored_events(db, "deal") == [
        # the creation and the first history row are one instant: one created event
        ("006A", "sf-Opportunity-006A", "created", "2024-03-01T10:15:00Z", 2,
         {"account_id": "001X", "owner_rep_id": "005A", "name": "Northwind renewal", "stage": "prospecting",
          "amount": 1000.0, "currency": "USD", "expected_close_date": "2024-03-31"}),
        ("006A", "sf-OpportunityHistory-0082", "stage_changed", "2024-03-10T12:00:00Z", 4, {"stage": "proposal"}),
        ("006A", "sf-OpportunityHistory-0083", "amount_changed", "2024-03-12T09:30:00Z", 6, {"amount": 1200.0}),
        ("006A", "sf-OpportunityHistory-0084", "close_date_changed", "2024-03-14T09:30:00Z", 8, {"expected_close_date": "2024-04-15"}),
        # the Owner row with ids; Salesforce's twin row with names is not an owner change
        ("006A", "sf-OpportunityFieldHistory-0171", "owner_changed", "2024-03-15T11:00:00Z", 10, {"owner_rep_id": "005B"}),
        ("006A", "sf-OpportunityHistory-0085", "won", "2024-03-20T16:00:00Z", 12, {"expected_close_date": "2024-03-20"}),
        ("006B", "sf-Opportunity-006B", "created", "2024-03-05T08:00:00Z", 2,
         {"account_id": "001X", "owner_rep_id": "005A", "name": "Northwind expansion", "stage": "qualification",
          "amount": 500.0, "currency": "USD", "expected_close_date": "2024-04-30"}),
        ("006B", "sf-OpportunityHistory-0087", "lost", "2024-03-25T08:00:00Z", 4, {}),
        ("006B", "sf-OpportunityHistory-0088", "reopened", "2024-04-02T08:00:00Z", 6, {"stage": "qualification"}),
        # Loss_Reason__c has no history here: its value now is set at the deal's last change
        ("006B", "sf-OpportunityHistory-0089", "lost", "2024-04-20T08:00:00Z", 8, {"lost_reason": "price"}),
    ]  # fmt: skip


def test_lead_rows_and_history_become_lead_events(imported):
    _, db, _ = imported
    assert stored_events(db, "lead") == [
        ("00Q1", "sf-Lead-00Q1", "created", "2024-02-20T09:00:00Z", 2,
         {"owner_rep_id": "005A", "name": "Grace Hopper", "source": "web", "industry": "retail", "employees": 120,
          "score": 55.0, "status": "open"}),
        ("00Q1", "sf-LeadHistory-017L1", "updated", "2024-02-25T10:00:00Z", 4, {"score": 80.0}),
        # converted when its opportunity was created (no leadConverted history row here)
        ("00Q1", "sf-Lead-00Q1:converted", "converted", "2024-03-01T10:15:00Z", 6, {"account_id": "001X", "deal_id": "006A"}),
        ("00Q2", "sf-Lead-00Q2", "created", "2024-02-21T09:00:00Z", 2,
         {"owner_rep_id": "005B", "name": "Ada King", "source": "event", "industry": "energy", "employees": 40,
          "score": 10.0, "status": "open"}),
        ("00Q2", "sf-LeadHistory-017L2", "disqualified", "2024-02-28T10:00:00Z", 4, {}),
    ]  # fmt: skip


def test_the_replay_of_an_import_tells_the_deals_story(imported):
    _, db, _ = imported
    replay(db)
    assert fetch(db, "SELECT deal_id, stage, amount, owner_rep_id, is_won, strftime(closed_at, '%Y-%m-%d %H:%M'), lost_reason "
                     "FROM deals_current ORDER BY deal_id") == [
        ("006A", "closed_won", Decimal("1200.00"), "005B", True, "2024-03-20 16:00", None),
        ("006B", "closed_lost", Decimal("500.00"), "005A", False, "2024-04-20 08:00", "price"),
    ]  # fmt: skip
    assert fetch(db, "SELECT deal_id, stage, close_date_push_count FROM deals_as_of(TIMESTAMPTZ '2024-03-14 12:00:00+00') ORDER BY 1") == [
        ("006A", "proposal", 1),
        ("006B", "qualification", 0),
    ]


def test_tasks_and_events_become_activities_created_when_done_or_started(imported):
    _, db, _ = imported
    assert stored_events(db, "activity") == [
        ("00T1", "sf-Task-00T1", "created", "2024-02-22T15:00:00Z", 2, {"activity_type": "call", "owner_rep_id": "005B", "lead_id": "00Q2"}),
        # an opportunity's task: its account is the opportunity's
        ("00T2", "sf-Task-00T2", "created", "2024-03-10T12:05:00Z", 2,
         {"activity_type": "email", "owner_rep_id": "005A", "account_id": "001X", "deal_id": "006A"}),
        # the generic subtype Task defers to Type; done at CompletedDateTime; the contact 00Q1 was
        # converted into stands for the lead before its conversion
        ("00T3", "sf-Task-00T3", "created", "2024-02-24T09:30:00Z", 2,
         {"activity_type": "call", "owner_rep_id": "005A", "account_id": "001X", "lead_id": "00Q1"}),
        ("00T4", "sf-Task-00T4", "created", "2024-02-23T10:00:00Z", 2, {"activity_type": "task", "owner_rep_id": "005B", "lead_id": "00Q2"}),
        ("00T4", "sf-Task-00T4:deleted", "deleted", "2024-02-26T10:00:00Z", 4, {}),
        # ids the export does not hold: a lead by its key prefix 00Q, a case (500) is no deal or account
        ("00T5", "sf-Task-00T5", "created", "2024-02-24T10:00:00Z", 2, {"activity_type": "email", "owner_rep_id": "005B", "lead_id": "00Q9"}),
        # after the conversion the contact is not the lead any more
        ("00U1", "sf-Event-00U1", "created", "2024-03-21T14:00:00Z", 2,
         {"activity_type": "meeting", "owner_rep_id": "005B", "account_id": "001X", "deal_id": "006A"}),
        # an all-day event without a Type: a meeting at the start of its ActivityDate
        ("00U2", "sf-Event-00U2", "created", "2024-02-21T00:00:00Z", 2, {"activity_type": "meeting", "owner_rep_id": "005A", "lead_id": "00Q1"}),
    ]  # fmt: skip
    assert fetch(db, "SELECT activity_id, activity_type, account_id, lead_id, deal_id, duration_minutes FROM activities ORDER BY 1") == [
        ("00T1", "call", None, "00Q2", None, 5),  # 290 seconds
        ("00T2", "email", "001X", None, "006A", None),
        ("00T3", "call", "001X", "00Q1", None, None),
        ("00T5", "email", None, "00Q9", None, None),
        ("00U1", "meeting", "001X", None, "006A", 45),
        ("00U2", "meeting", None, "00Q1", None, None),
    ]


def test_the_lead_features_count_the_imported_activities_as_of_each_instant(imported):
    _, db, _ = imported
    replay(db)
    counts = lambda as_of: read_lead_features(con, as_of=as_of, company=None).select("lead_id", "calls", "emails", "meetings", "tasks").rows()  # noqa: E731
    with reading(db) as con:
        assert counts("2024-02-25") == [("00Q1", 1, 0, 1, 0), ("00Q2", 1, 0, 0, 1)]
        assert counts("2024-03-31") == [("00Q1", 1, 0, 1, 0), ("00Q2", 1, 0, 0, 0)]  # 00T4 deleted on 02-26


def test_entities_map_users_to_reps_and_accounts_to_accounts(imported):
    _, db, _ = imported
    assert fetch(db, "SELECT company_id, name, home_currency FROM companies") == [("northwind", "northwind", "USD")]
    assert fetch(db, "SELECT rep_id, name, team FROM reps ORDER BY 1") == [("005A", "Ada Lovelace", "SMB"), ("005B", "Alan Turing", "Enterprise")]
    assert fetch(db, "SELECT account_id, industry, employees, lat, lon, owner_rep_id FROM accounts") == [
        ("001X", "retail", 120, 47.6, -122.3, "005A")
    ]
    assert fetch(db, "SELECT lead_id, status, deal_id, strftime(converted_at, '%Y-%m-%d %H:%M') FROM leads ORDER BY 1") == [
        ("00Q1", "converted", "006A", "2024-03-01 10:15"),
        ("00Q2", "disqualified", None, None),
    ]


def test_importing_the_same_export_twice_changes_nothing(imported):
    folder, db, first = imported
    before = fetch(db, "SELECT count(*), sum(hash(event_id, payload)) FROM events")
    second = import_export(db, folder, fmt="salesforce")
    assert sum(f.rows_loaded for f in second.files if f.table == "events") == 0
    assert sum(f.events_duplicate for f in second.files) == sum(f.rows_loaded for f in first.files if f.table == "events") == 24
    assert fetch(db, "SELECT count(*), sum(hash(event_id, payload)) FROM events") == before
    assert fetch(db, "SELECT count(*) FROM deals") == [(2,)]
    assert fetch(db, "SELECT count(*) FROM activities") == [(6,)]
    assert all(f.rows_unchanged == f.rows_loaded for f in second.files if f.table != "events")
    # Each export file is counted once, though several feed more than one table.
    assert second.summary().startswith(f"load {second.load_id}: {len({f.file for f in second.files})} file(s)")
    assert len({f.file for f in second.files}) < len(second.files)


def test_a_rejected_row_names_the_export_file_line_and_field(tmp_path):
    files = dict(SALESFORCE)
    files["Account.csv"] = files["Account.csv"].replace("retail,120,", "retail,many,")
    folder = write_export(tmp_path / "northwind", files)
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder, fmt="salesforce")
    assert fetch(db, "SELECT file, table_name, line, column_name, value, reason FROM load_rejects") == [
        (str(folder / "Account.csv"), "accounts", 2, "NumberOfEmployees", "many", "not a whole number")
    ]
    # The rejected account brings no event either (Account.csv's only one was its created), so
    # the replayed history agrees with the accounts table: the account is in neither.
    by_table = {(f.file, f.table): f.rows_rejected for f in report.files if f.file == str(folder / "Account.csv")}
    assert by_table == {(str(folder / "Account.csv"), "accounts"): 1}
    assert report.rows_rejected == 1
    assert fetch(db, "SELECT count(*) FROM events WHERE aggregate_type = 'account'") == [(0,)]
    replay(db)
    assert fetch(db, "SELECT count(*) FROM accounts_current") == [(0,)]


def test_a_call_duration_that_is_not_a_number_rejects_its_task_only(tmp_path):
    files = dict(SALESFORCE)
    files["Task.csv"] = files["Task.csv"].replace("Completed,2024-02-22,290,", "Completed,2024-02-22,long,")
    folder = write_export(tmp_path / "northwind", files)
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder, fmt="salesforce")
    assert fetch(db, "SELECT file, table_name, line, column_name, value, reason FROM load_rejects") == [
        (str(folder / "Task.csv"), "activities", 2, "CallDurationInSeconds", "long", "not a whole number")
    ]
    assert report.rows_rejected == 1
    assert fetch(db, "SELECT count(*) FROM activities") == [(5,)]
    # Neither its row nor its events: the lead features count what the activities table holds.
    assert fetch(db, "SELECT count(*) FROM events WHERE aggregate_type = 'activity' AND aggregate_id = '00T1'") == [(0,)]


def test_the_company_is_the_folder_name_unless_given(tmp_path):
    folder = write_export(tmp_path / "northwind", SALESFORCE)
    db = tmp_path / "crm.duckdb"
    import_export(db, folder, fmt="salesforce", company="acme")
    assert fetch(db, "SELECT DISTINCT company_id FROM events") == [("acme",)]


def test_rates_convert_each_amount_at_the_rate_of_its_close_date(tmp_path):
    files = dict(SALESFORCE)
    files["Opportunity.csv"] = files["Opportunity.csv"].replace("500,USD", "500,EUR")
    files["OpportunityHistory.csv"] = files["OpportunityHistory.csv"].replace("Id,OpportunityId,", "Id,CurrencyIsoCode,OpportunityId,")
    files["OpportunityHistory.csv"] = "\n".join(
        line.replace(",006A,", ",USD,006A,").replace(",006B,", ",EUR,006B,") for line in files["OpportunityHistory.csv"].splitlines()
    )
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,rate,valid_from,valid_to\nUSD,1,,\nEUR,1.10,2024-01-01,2024-12-31\n")
    folder = write_export(tmp_path / "northwind", files)
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder, fmt="salesforce", rates=rates)
    # The rates shaped the rows: the same export read at other rates is another input.
    rates.write_text("currency,rate,valid_from,valid_to\nUSD,1,,\nEUR,1.20,2024-01-01,2024-12-31\n")
    assert import_export(tmp_path / "other.duckdb", folder, fmt="salesforce", rates=rates).fingerprint != report.fingerprint
    assert fetch(db, "SELECT deal_id, amount, currency FROM deals ORDER BY 1") == [
        ("006A", Decimal("1200.00"), "USD"),
        ("006B", Decimal("550.00"), "USD"),
    ]
    assert [e[5].get("amount") for e in stored_events(db, "deal") if e[0] == "006B" and e[2] == "created"] == [550.0]


def test_opportunities_without_history_are_created_then_closed_at_their_close_date(tmp_path):
    folder = write_export(tmp_path / "northwind", {"Opportunity.csv": SALESFORCE["Opportunity.csv"]})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder, fmt="salesforce")
    assert stored_events(db, "deal") == [
        ("006A", "sf-Opportunity-006A", "created", "2024-03-01T10:15:00Z", 2,
         {"account_id": "001X", "owner_rep_id": "005B", "name": "Northwind renewal", "stage": "prospecting",
          "amount": 1200.0, "currency": "USD", "expected_close_date": "2024-03-20"}),
        ("006A", "sf-Opportunity-006A:closed", "won", "2024-03-20T00:00:00Z", 4, {}),
        ("006B", "sf-Opportunity-006B", "created", "2024-03-05T08:00:00Z", 2,
         {"account_id": "001X", "owner_rep_id": "005A", "name": "Northwind expansion", "stage": "prospecting",
          "amount": 500.0, "currency": "USD", "expected_close_date": "2024-04-30"}),
        ("006B", "sf-Opportunity-006B:closed", "lost", "2024-04-30T00:00:00Z", 4, {"lost_reason": "price"}),
    ]  # fmt: skip


def test_an_open_task_is_not_engagement_until_it_is_done(tmp_path):
    files = dict(SALESFORCE)
    header, *rows = files["Task.csv"].strip().split("\n")
    open_call = "00T6,00Q2,,,005B,Follow-up call,Call,Call,Not Started,2024-03-05,,,2024-02-23T11:00:00.000Z,2024-02-23T11:00:00.000Z,false,false"
    files["Task.csv"] = "\n".join([header + ",IsClosed", *(row + ",true" for row in rows), open_call]) + "\n"
    folder = write_export(tmp_path / "northwind", files)
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder, fmt="salesforce")
    assert fetch(db, "SELECT count(*) FROM activities WHERE activity_id = '00T6'") == [(0,)]
    assert fetch(db, "SELECT count(*) FROM events WHERE aggregate_id = '00T6'") == [(0,)]
    assert f"  {folder / 'Task.csv'}: 6 rows = 4 read + 1 deleted (IsDeleted true: not in activities; each ends with a deleted event) " \
           "+ 1 open (IsClosed false: not imported; each counts once it is done)" in report.summary().splitlines()
    # Done since: the next import of the export adds it, as of when it was done.
    done_call = open_call.replace("Not Started,2024-03-05,,,2024-02-23T11:00:00.000Z,2024-02-23T11:00:00.000Z,false,false",
                                  "Completed,2024-03-05,,2024-03-05T16:00:00.000Z,2024-02-23T11:00:00.000Z,2024-03-05T16:00:00.000Z,false,true")
    files["Task.csv"] = files["Task.csv"].replace(open_call, done_call)
    write_export(folder, files)
    again = import_export(db, folder, fmt="salesforce")
    assert "open (IsClosed false" not in again.summary()
    assert ("00T6", "sf-Task-00T6", "created", "2024-03-05T16:00:00Z", 2,
            {"activity_type": "call", "owner_rep_id": "005B", "lead_id": "00Q2"}) in stored_events(db, "activity")
