"""References between a Salesforce export's files: a history row of a record the export does
not hold is a reject naming its file, line and field, and starts no record of its own."""

from __future__ import annotations

import pytest

from crm_lab.errors import LoadError
from crm_lab.importers import import_export
from import_exports import SALESFORCE, fetch, stored_events, write_export

NOT_IN_OPPORTUNITIES = "opportunity not in Opportunity.csv (no row there has this Id): the history row is not imported"


def with_orphans() -> dict[str, str]:
    files = dict(SALESFORCE)
    files["OpportunityHistory.csv"] += "0090,006Z,Prospecting,700,2024-05-31,10,Pipeline,2024-03-02T10:00:00.000Z,005A\n"
    files["OpportunityFieldHistory.csv"] += "0173,006Z,Owner,005A,005B,2024-03-16T11:00:00.000Z,005A\n"
    files["LeadHistory.csv"] += "017L3,00Q7,Score__c,10,20,2024-02-26T10:00:00.000Z,005A\n"
    return files


def test_history_rows_of_records_not_in_the_export_are_rejected_and_start_no_record(tmp_path):
    folder = write_export(tmp_path / "northwind", with_orphans())
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder, fmt="salesforce")
    assert fetch(db, "SELECT load_id, file, table_name, line, column_name, value, reason FROM load_rejects ORDER BY file, line") == [
        (report.load_id, str(folder / "LeadHistory.csv"), "events", 4, "LeadId", "00Q7",
         "lead not in Lead.csv (no row there has this Id): the history row is not imported"),
        (report.load_id, str(folder / "OpportunityFieldHistory.csv"), "events", 4, "OpportunityId", "006Z", NOT_IN_OPPORTUNITIES),
        (report.load_id, str(folder / "OpportunityHistory.csv"), "events", 11, "OpportunityId", "006Z", NOT_IN_OPPORTUNITIES),
    ]  # fmt: skip
    assert fetch(db, "SELECT count(*) FROM events WHERE aggregate_id IN ('006Z', '00Q7')") == [(0,)]
    assert [e[0] for e in stored_events(db, "deal")] == ["006A"] * 6 + ["006B"] * 4  # as without the rows
    # Each history file: its events (the rows that are one save are one event) plus its rejected rows.
    history = {f.file: (f.rows_read, f.rows_loaded, f.rows_rejected) for f in report.files if f.table == "events"}
    assert history[str(folder / "OpportunityHistory.csv")] == (8, 7, 1)  # 0081 and 0086 are their deals' created
    assert history[str(folder / "OpportunityFieldHistory.csv")] == (2, 1, 1)
    assert (report.rows_rejected, report.status) == (3, "ok_with_rejects")
    assert f"  {folder / 'OpportunityHistory.csv'} -> events: 8 read, 7 new, 0 already loaded, 0 quarantined, 1 rejected" in report.summary()
    assert fetch(db, "SELECT rows_rejected, status FROM load_runs") == [(3, "ok_with_rejects")]


def test_a_history_file_whose_every_row_is_rejected_still_counts_them(tmp_path):
    files = dict(SALESFORCE)
    files["OpportunityFieldHistory.csv"] = "Id,OpportunityId,Field,OldValue,NewValue,CreatedDate\n0173,006Z,Name,a,b,2024-03-16T11:00:00.000Z\n"
    folder = write_export(tmp_path / "northwind", files)
    report = import_export(tmp_path / "crm.duckdb", folder, fmt="salesforce")
    field_history = [f for f in report.files if f.file == str(folder / "OpportunityFieldHistory.csv")]
    assert [(f.table, f.rows_read, f.rows_loaded, f.rows_rejected, f.empty) for f in field_history] == [("events", 1, 0, 1, "")]
    assert report.status == "ok_with_rejects"


def test_strict_refuses_an_export_with_such_rows_and_writes_nothing(tmp_path):
    folder = write_export(tmp_path / "northwind", with_orphans())
    db = tmp_path / "crm.duckdb"
    with pytest.raises(LoadError) as error:
        import_export(db, folder, fmt="salesforce", strict=True)
    assert str(error.value).splitlines()[:2] == [
        "--strict: 3 row(s) of the export rejected; nothing was loaded",
        f"  {folder / 'LeadHistory.csv'} line 4, column LeadId = '00Q7': lead not in Lead.csv (no row there has this Id): "
        "the history row is not imported",
    ]
    assert not db.exists()


# Worked by hand: a bit per uppercase letter of each 5-character chunk, read as a character of
# ABCDEFGHIJKLMNOPQRSTUVWXYZ012345. 001A0|00000|6Vm9r: A is bit 3 (8 = I), none (A), V is bit 1
# (2 = C): Salesforce's own documentation example. 00150|00000|Gv7qJ: bits 0 and 4 (17 = R).
ID_PAIRS = [
    ("001A0000006Vm9r", "001A0000006Vm9rIAC"),
    ("0015000000Gv7qJ", "0015000000Gv7qJAAR"),
    ("0065g00000AbCdE", "0065g00000AbCdEAAV"),  # A, C, E: bits 0, 2, 4 = 21 = V
    ("0065g00000abcde", "0065g00000abcdeAAA"),  # the same letters in lower case: another record
    ("0065g00000ZZZZZ", "0065g00000ZZZZZAA5"),  # all five: 31 = 5
]


@pytest.mark.parametrize(("id15", "id18"), ID_PAIRS)
def test_a_15_character_id_gets_salesforces_checksum_suffix(id15, id18):
    import duckdb

    from crm_lab.importers.salesforce_ids import id18 as python_id18
    from crm_lab.importers.salesforce_ids import id18_sql

    assert python_id18(id15) == id18
    assert duckdb.execute(f"SELECT {id18_sql('$v')}", {"v": id15}).fetchall() == [(id18,)]
    # 18-character ids, other lengths and non-alphanumeric values are left as they are
    for other in (id18, "006A", "0065g00000AbCd-", ""):
        assert python_id18(other) == other
        assert duckdb.execute(f"SELECT {id18_sql('$v')}", {"v": other}).fetchall() == [(other,)]


def with_ids(files: dict[str, str], ids: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Opportunity.csv and User.csv write each id's 18-character form, the other files the 15."""
    out = {}
    for name, text in files.items():
        for short, (id15, id18) in ids.items():
            text = text.replace(short, id18 if name in ("Opportunity.csv", "User.csv") else id15)
        out[name] = text
    return out


def test_15_and_18_character_ids_of_one_record_match_across_the_files(tmp_path):
    # Tur1N: T and N, bits 0 and 4 (17 = R)
    ids = {"006A": ID_PAIRS[2], "006B": ID_PAIRS[3], "005B": ("0055g00000Tur1N", "0055g00000Tur1NAAR")}
    plain = write_export(tmp_path / "plain", SALESFORCE)
    mixed = write_export(tmp_path / "mixed", with_ids(SALESFORCE, ids))
    import_export(tmp_path / "plain.duckdb", plain, fmt="salesforce")
    report = import_export(tmp_path / "mixed.duckdb", mixed, fmt="salesforce")
    assert report.rows_rejected == 0
    # The same events as with short ids throughout: every history row found its opportunity,
    # the lead its converted opportunity, the tasks and events theirs.
    to_long = {short: id18 for short, (_, id18) in ids.items()}
    rename = lambda value: to_long.get(value, value) if isinstance(value, str) else value  # noqa: E731

    def rename_in(event_id: str) -> str:  # sf-Opportunity-006A:closed
        for short, long in to_long.items():
            event_id = event_id.replace(f"-{short}", f"-{long}")
        return event_id

    for aggregate in ("deal", "lead", "activity"):
        expected = [(rename(a), rename_in(e), t, at, seq, {k: rename(v) for k, v in p.items()})
                    for a, e, t, at, seq, p in stored_events(tmp_path / "plain.duckdb", aggregate)]  # fmt: skip
        assert sorted(stored_events(tmp_path / "mixed.duckdb", aggregate), key=str) == sorted(expected, key=str)
    assert fetch(tmp_path / "mixed.duckdb", "SELECT deal_id, owner_rep_id FROM deals ORDER BY 1") == [
        ("0065g00000AbCdEAAV", "0055g00000Tur1NAAR"), ("0065g00000abcdeAAA", "005A")
    ]


def test_a_reference_to_a_record_not_in_the_export_is_named_in_the_summary(tmp_path):
    files = dict(SALESFORCE)
    files["Task.csv"] = files["Task.csv"].replace("00T5,00Q9,500C,", "00T5,00Q9,0065g00000ZZZZZ,")
    folder = write_export(tmp_path / "northwind", files)
    report = import_export(tmp_path / "crm.duckdb", folder, fmt="salesforce")
    assert f"  {folder / 'Task.csv'}: 1 WhatId value(s) name no record imported from Opportunity.csv (first at line 6: " \
           "'0065g00000ZZZZZAA5'): kept as written" in report.summary().splitlines()
    assert fetch(tmp_path / "crm.duckdb", "SELECT deal_id FROM activities WHERE activity_id = '00T5'") == [("0065g00000ZZZZZAA5",)]
