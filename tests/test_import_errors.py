"""Bad input to an import: every problem is one clear message naming the file, line and field
(and the fix), and nothing is written."""

from __future__ import annotations

import re

import pytest

from crm_lab.errors import LoadError
from crm_lab.importers import import_export
from import_exports import SALESFORCE, fetch, write_export

STAGES = "prospecting, qualification, proposal, negotiation, closed_won, closed_lost"


def refused(tmp_path, files: dict[str, str], **options) -> str:
    folder = write_export(tmp_path / "acme", files)
    for key in ("mapping", "rates"):
        if key in options:
            options[key] = folder / options[key]
    export = options.pop("export", "deals.csv")
    target = folder / export if options.get("fmt") == "mapped" else folder
    db = tmp_path / "crm.duckdb"
    with pytest.raises(LoadError) as error:
        import_export(db, target, **options)
    assert not db.exists(), "a refused import writes nothing"
    return str(error.value).replace(str(folder) + "/", "")


def salesforce(**replacements: tuple[str, str]) -> dict[str, str]:
    files = dict(SALESFORCE)
    for name, (old, new) in replacements.items():
        assert old in files[f"{name}.csv"]
        files[f"{name}.csv"] = files[f"{name}.csv"].replace(old, new)
    return files


def test_unknown_stage_names_are_listed_with_the_mapping_lines_that_fix_them(tmp_path):
    files = salesforce(
        Opportunity=("Closed Won,1200.00,USD,2024-03-20,true,true", "Discovery,1200.00,USD,2024-03-20,false,false"),
        OpportunityHistory=("0082,006A,Proposal/Price Quote", "0082,006A,Demo Done"),
    )
    assert refused(tmp_path, files) == (
        "unknown stage names:\n"
        "  'Discovery' (first at Opportunity.csv line 2)\n"
        "  'Demo Done' (first at OpportunityHistory.csv line 3)\n"
        f"add to a mapping file (--mapping FILE), each with the one of {STAGES} it means:\n"
        "stages:\n"
        '  "Discovery": prospecting\n'
        '  "Demo Done": prospecting'
    )


def test_the_mapping_lines_fix_unknown_stages(tmp_path):
    files = salesforce(
        Opportunity=("Closed Won,1200.00,USD,2024-03-20,true,true", "Discovery,1200.00,USD,2024-03-20,false,false"),
        OpportunityHistory=("0082,006A,Proposal/Price Quote", "0082,006A,Demo Done"),
    )
    files["stages.yaml"] = 'stages:\n  "Discovery": negotiation\n  "Demo Done": proposal\n'
    folder = write_export(tmp_path / "acme", files)
    report = import_export(tmp_path / "crm.duckdb", folder, mapping=folder / "stages.yaml")
    assert report.rows_rejected == 0


ACTIVITY_TYPES = "call, email, meeting, task"
UNKNOWN_ACTIVITY_TYPES = dict(
    Task=("00T2,,006A,,005A,Proposal sent,,Email,", "00T2,,006A,,005A,Proposal sent,,LinkedIn,"),
    Event=("Kick-off,Meeting,", "Kick-off,Other,"),
)


def test_unknown_activity_types_are_listed_with_their_field_and_the_mapping_lines_that_fix_them(tmp_path):
    files = salesforce(**UNKNOWN_ACTIVITY_TYPES)
    files["Task.csv"] = files["Task.csv"].replace("Call back,Call,Task,", "Call back,Demo,Task,")
    assert refused(tmp_path, files) == (
        "unknown activity type names:\n"
        "  'LinkedIn' (first at Task.csv line 3, field TaskSubtype)\n"
        "  'Demo' (first at Task.csv line 4, field Type)\n"
        "  'Other' (first at Event.csv line 2, field Type)\n"
        f"add to a mapping file (--mapping FILE), each with the one of {ACTIVITY_TYPES} it means:\n"
        "activity_types:\n"
        '  "LinkedIn": call\n'
        '  "Demo": call\n'
        '  "Other": call'
    )


def test_the_mapping_lines_fix_unknown_activity_types(tmp_path):
    files = salesforce(**UNKNOWN_ACTIVITY_TYPES)
    files["types.yaml"] = 'activity_types:\n  "LinkedIn": email\n  "Other": meeting\n'
    folder = write_export(tmp_path / "acme", files)
    db = tmp_path / "crm.duckdb"
    assert import_export(db, folder, mapping=folder / "types.yaml").rows_rejected == 0
    assert fetch(db, "SELECT activity_id, activity_type FROM activities WHERE activity_id IN ('00T2', '00U1') ORDER BY 1") == [
        ("00T2", "email"), ("00U1", "meeting")
    ]


def test_an_activity_type_mapped_to_no_native_type_names_the_line(tmp_path):
    files = dict(SALESFORCE, **{"m.yaml": "stages:\n  Won: closed_won\nactivity_types:\n  Visit: visit\n"})
    assert refused(tmp_path, files, mapping="m.yaml") == (
        f"m.yaml line 4: activity_types: 'Visit' maps to 'visit', which is not one of {ACTIVITY_TYPES}"
    )


@pytest.mark.parametrize("replacements, message", [
    (dict(Event=(",CreatedDate,", ",Created,")), "Event.csv line 1: missing required field CreatedDate"),
    # Both of the Task's date columns that read 24/02/2024 09:30, each with what it needs, in one refusal.
    (dict(Task=(",2024-02-24T09:30:00.000Z,", ",24/02/2024 09:30,")),
     "the export cannot be imported as it is: 2 problems, each below; nothing was written\n\n"
     "Task.csv line 4, field CompletedDateTime: dates that are not ISO 8601: D/M/Y or M/D/Y with a time (HH:MM) "
     "(line 4: '24/02/2024 09:30'); declare the format in the mapping file, e.g. dates: {CompletedDateTime: '%d/%m/%Y %H:%M'}\n\n"
     "Task.csv line 4, field LastModifiedDate: the column mixes date formats: ISO 8601 (line 2: '2024-02-22T15:00:00.000Z'), "
     "D/M/Y or M/D/Y with a time (HH:MM) (line 4: '24/02/2024 09:30'); no one format reads them all: export the column "
     "again with every value in one format (ISO 8601 needs no declaration), or correct the odd values"),
], ids=["missing-field", "foreign-date"])  # fmt: skip
def test_a_bad_task_or_event_is_named_by_file_line_and_field(tmp_path, replacements, message):
    assert refused(tmp_path, salesforce(**replacements)) == message


def test_a_closed_stage_the_defaults_do_not_know_is_read_from_is_won(tmp_path):
    files = salesforce(
        Opportunity=("Closed Won,1200", "Signed,1200"), OpportunityHistory=("0085,006A,Closed Won", "0085,006A,Signed")
    )
    folder = write_export(tmp_path / "acme", files)
    report = import_export(tmp_path / "crm.duckdb", folder)
    assert [f.rows_loaded for f in report.files if f.table == "deals"] == [2]


def test_a_missing_required_field_names_the_file(tmp_path):
    files = salesforce(Opportunity=(",StageName,", ",Stage,"))
    assert refused(tmp_path, files) == "Opportunity.csv line 1: missing required field StageName"


def test_mixed_currencies_without_rates_name_each_currency_and_its_first_line(tmp_path):
    files = salesforce(Opportunity=("1200.00,USD", "1200.00,GBP"))
    files["Opportunity.csv"] = files["Opportunity.csv"].replace("500,USD", "500,EUR")
    assert refused(tmp_path, files) == (
        "mixed currencies and no rates file: EUR (first at Opportunity.csv line 3), GBP (first at Opportunity.csv line 2); "
        "pass --rates FILE (CSV: currency,rate) converting each to the corporate currency"
    )


def test_a_currency_without_a_rate_names_the_line_and_the_date(tmp_path):
    files = salesforce(Opportunity=("1200.00,USD", "1200.00,GBP"))
    files["rates.csv"] = "currency,rate\nUSD,1\nEUR,1.1\n"
    assert refused(tmp_path, files, rates="rates.csv") == (
        "Opportunity.csv line 2, field CurrencyIsoCode: no rate for GBP on 2024-03-20 in rates.csv"
    )


@pytest.mark.parametrize("rates, message", [
    ("currency,rate\nUSD,1\nEUR,-1.1\n", "rates.csv line 3, field rate: '-1.1' is not a positive number"),
    ("currency,rate\nUSD,1\nEUR,about 1.1\n", "rates.csv line 3, field rate: 'about 1.1' is not a positive number"),
    ("currency,rate\nUSD,1\nEUR,\n", "rates.csv line 3, field rate: required value is missing"),
    ("currency,rate,valid_from\nUSD,1,\nEUR,1.1,March\n", "rates.csv line 3, field valid_from: 'March' is not a date (YYYY-MM-DD)"),
    ("currency\nUSD\n", "rates.csv line 1: missing required field rate for a rates file"),
])
def test_a_bad_rates_file_is_named_by_line_and_field(tmp_path, rates, message):
    files = dict(SALESFORCE, **{"rates.csv": rates})
    assert refused(tmp_path, files, rates="rates.csv") == message


def test_a_rates_file_needs_its_corporate_currency(tmp_path):
    files = dict(SALESFORCE, **{"rates.csv": "currency,rate\nEUR,1.1\n"})
    assert refused(tmp_path, files, rates="rates.csv") == "rates.csv: list the corporate currency once with rate 1 (e.g. USD,1); found none"


def test_dates_in_several_formats_name_each_format_and_ask_for_one_not_for_a_declaration(tmp_path):
    # No one declared format reads both lines: the message must not suggest one.
    files = salesforce(Opportunity=("2024-03-05T08:00:00.000+0000", "03/05/2024 08:00"))
    assert refused(tmp_path, files) == (
        "Opportunity.csv line 3, field CreatedDate: the column mixes date formats: "
        "ISO 8601 (line 2: '2024-03-01T10:15:00.000Z'), D/M/Y or M/D/Y with a time (HH:MM) (line 3: '03/05/2024 08:00'); "
        "no one format reads them all: export the column again with every value in one format "
        "(ISO 8601 needs no declaration), or correct the odd values"
    )


def test_a_value_not_in_the_declared_format_is_named(tmp_path):
    deals = "id,stage,created\n1,prospecting,2024-01-31\n"
    mapping = "columns:\n  deal_id: id\n  stage: stage\n  created_at: created\ndates:\n  created: '%d/%m/%Y'\n"
    assert refused(tmp_path, {"deals.csv": deals, "m.yaml": mapping}, fmt="mapped", mapping="m.yaml") == (
        "deals.csv line 2, field created: '2024-01-31' does not match the declared format '%d/%m/%Y'"
    )


DEALS = {"deals.csv": "id,stage,created\n1,Won,2024-01-01\n"}
COLUMNS = "columns:\n  deal_id: id\n  stage: stage\n  created_at: created\n"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("columns:\n  deal_id: id\n  stage: [stage\n", "m.yaml line 4: not valid YAML: expected ',' or ']', but got '<stream end>'"),
        (COLUMNS + "stage_names:\n  Won: closed_won\n",
         "m.yaml line 5: unknown key 'stage_names' (known: kind, columns, stages, lead_statuses, activity_types, dates, currency, initial_stage)"),
        (COLUMNS + "  amout: value\n",
         "m.yaml line 5: unknown native field 'amout' under columns (known: deal_id, stage, created_at, close_date, "
         "expected_close_date, amount, currency, account_id, owner_rep_id, name, lost_reason, updated_at)"),
        ("columns:\n  deal_id: id\n  stage: stage\n",
         "m.yaml: missing required mapping columns.created_at (the engage / create date, when the deal was created)"),
        (COLUMNS + "stages:\n  Won: won\n", f"m.yaml line 6: stages: 'Won' maps to 'won', which is not one of {STAGES}"),
        (COLUMNS + "  amount: Amount\n", "deals.csv line 1: no column 'Amount', which m.yaml maps to amount"),
        (COLUMNS + "stages:\n  Won: closed_won\n",
         "deals.csv line 2: a closed deal needs its close date, and m.yaml maps no close_date column"),
        (COLUMNS,
         "unknown stage name:\n  'Won' (first at deals.csv line 2)\n"
         f"add to a mapping file (--mapping FILE), each with the one of {STAGES} it means:\nstages:\n  \"Won\": prospecting"),
    ],
    ids=["bad-yaml", "unknown-key", "unknown-field", "missing-mapping", "bad-native-stage", "column-not-in-file",
         "closed-without-close-date", "unknown-stage"],
)  # fmt: skip
def test_a_bad_mapping_is_refused_with_its_line(tmp_path, mapping, message):
    assert refused(tmp_path, {**DEALS, "m.yaml": mapping}, fmt="mapped", mapping="m.yaml") == message


def test_a_generic_export_needs_a_mapping(tmp_path):
    assert refused(tmp_path, DEALS, fmt="mapped") == re.sub(
        r"\s+", " ", "a generic export needs --mapping FILE saying which column is which (docs/IMPORT.md)"
    )


LEAD_STATUSES = "open, converted, disqualified"
CONTACTS = {"contacts.csv": "id,created,stage,converted\n7,2024-01-01,Lead,\n8,2024-01-02,Customer,2024-01-09\n"}
LEAD_COLUMNS = "kind: leads\ncolumns:\n  lead_id: id\n  created_at: created\n"
LEAD_STATUS_MAP = "lead_statuses:\n  Lead: open\n  Customer: converted\n"
KNOWN_LEAD_FIELDS = (
    "lead_id, created_at, status, converted_at, disqualified_at, deal_id, account_id, owner_rep_id, name, "
    "first_name, last_name, source, industry, employees, score, updated_at"
)


@pytest.mark.parametrize(
    ("contacts", "mapping", "message"),
    [
        (None, LEAD_COLUMNS + "  status: stage\n  converted_at: converted\n  score: HubSpot Score\n",
         "contacts.csv line 1: no column 'HubSpot Score', which m.yaml maps to score"),
        (None, LEAD_COLUMNS + "  status: stage\n  converted_at: converted\nlead_statuses:\n  Lead: open\n",
         "unknown lead status name:\n  'Customer' (first at contacts.csv line 3, field stage)\n"
         f"add to a mapping file (--mapping FILE), each with the one of {LEAD_STATUSES} it means:\nlead_statuses:\n  \"Customer\": open"),
        (None, LEAD_COLUMNS + "  status: stage\n" + LEAD_STATUS_MAP,
         "contacts.csv line 3, field stage: 'Customer' is a converted status; a converted lead needs its conversion date, "
         "and m.yaml maps no converted_at column"),
        ("id,created,stage,converted\n7,2024-01-01,Lead,\n8,2024-01-02,Customer,\n", LEAD_COLUMNS + "  status: stage\n  converted_at: converted\n" + LEAD_STATUS_MAP,
         "contacts.csv line 3, field stage: 'Customer' is a converted status, and the lead has no conversion date (converted is empty)"),
        ("id,created,stage,converted\n7,2024-01-01,Lead,\n8,2024-01-02,Lead,\n7,2024-01-03,Lead,\n", LEAD_COLUMNS,
         "contacts.csv line 4, field id: lead id '7' is also at line 2; an export of leads has one row per lead"),
        ("id,created,stage,converted\n7,2024-01-01,Lead,\n,2024-01-02,Lead,\n", LEAD_COLUMNS,
         "contacts.csv line 3, field id: required value is missing"),
        ("id,created,stage,converted\n7,2024-01-01,Lead,\n8,2024-01-32,Lead,\n", LEAD_COLUMNS,
         "contacts.csv line 3, field created: '2024-01-32' is not a valid date or time"),
        (None, LEAD_COLUMNS + "  status: stage\n  converted_at: converted\n" + LEAD_STATUS_MAP + "dates:\n  converted: '%d/%m/%Y'\n",
         "contacts.csv line 3, field converted: '2024-01-09' does not match the declared format '%d/%m/%Y'"),
        ("id,created,stage,converted\n7,01/02/2024,Lead,\n", LEAD_COLUMNS,
         "contacts.csv line 2, field created: dates that are not ISO 8601: D/M/Y or M/D/Y (line 2: '01/02/2024'); "
         "declare the format in the mapping file, e.g. dates: {created: '%d/%m/%Y'} (or '%m/%d/%Y' when the month comes first)"),
        (None, "kind: leads\ncolumns:\n  lead_id: id\n",
         "m.yaml: missing required mapping columns.created_at (the create date, when the lead was created)"),
        (None, LEAD_COLUMNS + "  stage: stage\n",
         f"m.yaml line 5: unknown native field 'stage' under columns (known: {KNOWN_LEAD_FIELDS})"),
        (None, "columns:\n  lead_id: id\n  created_at: created\n",
         "m.yaml line 2: unknown native field 'lead_id' under columns (known: deal_id, stage, created_at, close_date, "
         "expected_close_date, amount, currency, account_id, owner_rep_id, name, lost_reason, updated_at); a leads export needs kind: leads"),
        (None, "kind: contacts\n" + LEAD_COLUMNS[len("kind: leads\n"):],
         "m.yaml line 1: kind: 'contacts' is not one of deals, leads"),
        (None, LEAD_COLUMNS + "stages:\n  Lead: prospecting\n", "m.yaml line 5: stages is for a deals export; this mapping is kind: leads"),
        (None, LEAD_COLUMNS + "lead_statuses:\n  Customer: won\n",
         f"m.yaml line 6: lead_statuses: 'Customer' maps to 'won', which is not one of {LEAD_STATUSES}"),
    ],
    ids=["column-not-in-file", "unknown-status", "converted-without-converted-at", "converted-without-its-date",
         "duplicate-lead-id", "missing-lead-id", "impossible-date", "date-not-in-declared-format", "foreign-date",
         "missing-mapping", "deal-field-in-leads", "lead-field-without-kind", "unknown-kind", "stages-in-leads",
         "bad-native-status"],
)  # fmt: skip
def test_a_bad_leads_export_or_mapping_is_refused_naming_file_line_and_field(tmp_path, contacts, mapping, message):
    files = {"contacts.csv": contacts or CONTACTS["contacts.csv"], "m.yaml": mapping}
    assert refused(tmp_path, files, fmt="mapped", mapping="m.yaml", export="contacts.csv") == message


def test_the_mapping_line_fixes_an_unknown_lead_status(tmp_path):
    mapping = LEAD_COLUMNS + "  status: stage\n  converted_at: converted\nlead_statuses:\n  Lead: open\n  \"Customer\": converted\n"
    folder = write_export(tmp_path / "acme", {**CONTACTS, "m.yaml": mapping})
    db = tmp_path / "crm.duckdb"
    assert import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "m.yaml", strict=True).rows_rejected == 0
    assert fetch(db, "SELECT lead_id, status FROM leads ORDER BY 1") == [("7", "open"), ("8", "converted")]


def test_a_deal_id_twice_in_a_deals_export_is_refused(tmp_path):
    deals = {"deals.csv": "id,stage,created\n1,prospecting,2024-01-01\n2,prospecting,2024-01-02\n1,proposal,2024-01-03\n"}
    assert refused(tmp_path, {**deals, "m.yaml": COLUMNS}, fmt="mapped", mapping="m.yaml") == (
        "deals.csv line 4, field id: deal id '1' is also at line 2; an export of deals has one row per deal"
    )


def test_a_salesforce_mapping_names_no_kind(tmp_path):
    files = dict(SALESFORCE, **{"m.yaml": "kind: leads\n"})
    assert refused(tmp_path, files, mapping="m.yaml") == "m.yaml line 1: kind is for generic exports; Salesforce field names are fixed"


def test_a_value_in_the_declared_format_that_is_no_real_date_is_named_so(tmp_path):
    deals = "id,stage,created\n1,prospecting,31/02/2024\n"
    mapping = "columns:\n  deal_id: id\n  stage: stage\n  created_at: created\ndates:\n  created: '%d/%m/%Y'\n"
    assert refused(tmp_path, {"deals.csv": deals, "m.yaml": mapping}, fmt="mapped", mapping="m.yaml") == (
        "deals.csv line 2, field created: '31/02/2024' is not a real date or time: it has the declared format '%d/%m/%Y', "
        "but no such day or time exists"
    )
