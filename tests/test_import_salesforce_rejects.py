"""Bad values in a Salesforce export reject their rows only, as in a native load; what needs
the user's settings (names to map, date formats to declare) is refused in one message that
lists every such problem."""

from __future__ import annotations

import pytest

from crm_lab.errors import LoadError
from crm_lab.importers import import_export
from import_exports import SALESFORCE, fetch, stored_events, write_export

OPPORTUNITY_B_REJECTED = "opportunity rejected at Opportunity.csv line 3: the history row is not imported"


def bad_values() -> dict[str, str]:
    files = dict(SALESFORCE)
    files["Opportunity.csv"] = files["Opportunity.csv"].replace("Northwind expansion,Closed Lost,500,", 'Northwind expansion,Closed Lost,"1,200.50",')
    files["OpportunityHistory.csv"] = files["OpportunityHistory.csv"].replace("0083,006A,Proposal/Price Quote,1200.00", "0083,006A,Proposal/Price Quote,12OO")
    files["Account.csv"] += "001Y,Old Mill,energy\n"  # a ragged line: 3 fields of 8
    files["Lead.csv"] = files["Lead.csv"].replace("true,2024-03-01,006A", "true,31/02/2024,006A")
    files["Task.csv"] = files["Task.csv"].replace("00T3,003C,", ",003C,")
    files["m.yaml"] = "dates:\n  ConvertedDate: '%d/%m/%Y'\n"
    return files


def test_bad_values_reject_their_rows_and_the_rest_is_imported(tmp_path):
    folder = write_export(tmp_path / "northwind", bad_values())
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder, fmt="salesforce", mapping=folder / "m.yaml")
    assert fetch(db, "SELECT replace(file, '" + str(folder) + "/', ''), table_name, line, column_name, value, reason "
                     "FROM load_rejects ORDER BY file, line") == [
        ("Account.csv", "accounts", 3, None, "001Y,Old Mill,energy", "expected 8 fields (the header's), found 3"),
        ("Lead.csv", "leads", 2, "ConvertedDate", "31/02/2024",
         "not a real date: it has the declared format '%d/%m/%Y', but no such day exists"),
        ("LeadHistory.csv", "events", 2, "LeadId", "00Q1", "lead rejected at Lead.csv line 2: the history row is not imported"),
        ("Opportunity.csv", "deals", 3, "Amount", "1,200.50", "not a number"),
        ("OpportunityHistory.csv", "events", 4, "Amount", "12OO", "not a number"),
        *(("OpportunityHistory.csv", "events", line, "OpportunityId", "006B", OPPORTUNITY_B_REJECTED) for line in (7, 8, 9, 10)),
        ("Task.csv", "activities", 4, "Id", None, "required value is missing"),
    ]  # fmt: skip
    assert report.rows_rejected == 10
    assert fetch(db, "SELECT deal_id FROM deals") == [("006A",)]
    assert fetch(db, "SELECT lead_id FROM leads") == [("00Q2",)]
    assert fetch(db, "SELECT account_id FROM accounts") == [("001X",)]
    assert fetch(db, "SELECT count(*) FROM activities") == [(5,)]  # 00T3 rejected, 00T4 deleted, 4 of Task.csv + 2 of Event.csv
    assert fetch(db, "SELECT count(*) FROM events WHERE aggregate_id IN ('006B', '00Q1')") == [(0,)]
    # 006A without its history row 0083: the amount it set comes with the next row, 0084.
    assert [(e[1], e[2], e[5]) for e in stored_events(db, "deal")][1:3] == [
        ("sf-OpportunityHistory-0082", "stage_changed", {"stage": "proposal"}),
        ("sf-OpportunityHistory-0084", "amount_changed", {"amount": 1200.0, "expected_close_date": "2024-04-15"}),
    ]
    by_file = {(f.file.rsplit("/", 1)[1], f.table): (f.rows_read, f.rows_loaded, f.rows_rejected) for f in report.files}
    assert by_file["Account.csv", "accounts"] == (2, 1, 1)
    assert by_file["Opportunity.csv", "deals"] == (2, 1, 1)
    assert by_file["Task.csv", "activities"] == (4, 3, 1)  # and 00T4, deleted: the summary adds it up
    assert f"  {folder / 'Task.csv'}: 5 rows = 4 read + 1 deleted (IsDeleted true: not in activities; each ends with a deleted event)" \
        in report.summary().splitlines()


def test_strict_refuses_bad_values_and_writes_nothing(tmp_path):
    folder = write_export(tmp_path / "northwind", bad_values())
    db = tmp_path / "crm.duckdb"
    with pytest.raises(LoadError) as error:
        import_export(db, folder, fmt="salesforce", mapping=folder / "m.yaml", strict=True)
    assert str(error.value).splitlines()[0] == "--strict: 10 row(s) of the export rejected; nothing was loaded"
    assert not db.exists()


def test_every_setting_an_export_needs_is_named_in_one_refusal(tmp_path):
    files = dict(SALESFORCE)
    files["Opportunity.csv"] = files["Opportunity.csv"].replace("Closed Won,1200.00", "Discovery,1200.00").replace("true,true", "false,false")
    files["Lead.csv"] = files["Lead.csv"].replace("Closed - Not Converted", "Nurture").replace("true,2024-03-01,006A", "true,01/03/2024,006A")
    files["Task.csv"] = files["Task.csv"].replace("Send brochure,,Task", "Send brochure,,LinkedIn")
    folder = write_export(tmp_path / "northwind", files)
    db = tmp_path / "crm.duckdb"
    with pytest.raises(LoadError) as error:
        import_export(db, folder, fmt="salesforce")
    assert str(error.value).replace(f"{folder}/", "") == (
        "the export cannot be imported as it is: 4 problems, each below; nothing was written\n\n"
        "Lead.csv line 2, field ConvertedDate: dates that are not ISO 8601: D/M/Y or M/D/Y (line 2: '01/03/2024'); "
        "declare the format in the mapping file, e.g. dates: {ConvertedDate: '%d/%m/%Y'} (or '%m/%d/%Y' when the month comes first)\n\n"
        "unknown stage name:\n"
        "  'Discovery' (first at Opportunity.csv line 2)\n"
        "add to a mapping file (--mapping FILE), each with the one of prospecting, qualification, proposal, negotiation, "
        "closed_won, closed_lost it means:\n"
        "stages:\n"
        '  "Discovery": prospecting\n\n'
        "unknown lead status name:\n"
        "  'Nurture' (first at Lead.csv line 3)\n"
        "add to a mapping file (--mapping FILE), each with the one of open, converted, disqualified it means:\n"
        "lead_statuses:\n"
        '  "Nurture": open\n\n'
        "unknown activity type name:\n"
        "  'LinkedIn' (first at Task.csv line 5, field TaskSubtype)\n"
        "add to a mapping file (--mapping FILE), each with the one of call, email, meeting, task it means:\n"
        "activity_types:\n"
        '  "LinkedIn": call'
    )
    assert not db.exists()
