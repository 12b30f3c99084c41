"""Reps and accounts of a Salesforce export beside what other loads set: a user's Latitude and
Longitude are the rep's home, and a weekly import keeps the columns its export does not carry
(an account's workload_hours, a rep's capacity) that a native file supplied."""

from __future__ import annotations

from crm_lab.importers import import_export
from crm_lab.load import load
from import_exports import SALESFORCE, fetch, write_export

USERS = """
Id,FirstName,LastName,Email,Title,Department,IsActive,CreatedDate,Latitude,Longitude
005A,Ada,Lovelace,ada@example.com,AE,SMB,true,2020-01-06T00:00:00.000Z,47.61,-122.33
005B,Alan,Turing,alan@example.com,AE,Enterprise,true,2021-05-03T00:00:00.000Z,,
"""


def test_a_users_latitude_and_longitude_are_the_reps_home(tmp_path):
    folder = write_export(tmp_path / "northwind", {**SALESFORCE, "User.csv": USERS})
    import_export(tmp_path / "crm.duckdb", folder, fmt="salesforce")
    assert fetch(tmp_path / "crm.duckdb", "SELECT rep_id, home_lat, home_lon FROM reps ORDER BY 1") == [
        ("005A", 47.61, -122.33), ("005B", None, None)
    ]


def test_a_reimport_keeps_the_columns_its_export_does_not_carry(tmp_path):
    folder = write_export(tmp_path / "northwind", {**SALESFORCE, "User.csv": USERS})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder, fmt="salesforce")
    # What Salesforce does not export, supplied by native files of the key and those columns:
    # they set them and clear nothing the import wrote.
    native = tmp_path / "native"
    native.mkdir()
    (native / "accounts.csv").write_text("company_id,account_id,workload_hours\nnorthwind,001X,12.5\n")
    (native / "reps.csv").write_text("company_id,rep_id,capacity_hours,fte,home_lat,home_lon\nnorthwind,005B,160,1,51.5,-0.12\n")
    load(db, [native / "accounts.csv", native / "reps.csv"])
    accounts = "SELECT account_id, name, industry, employees, lat, lon, owner_rep_id, workload_hours FROM accounts"
    reps = "SELECT rep_id, name, team, home_lat, home_lon, capacity_hours, fte FROM reps ORDER BY 1"
    assert fetch(db, accounts) == [("001X", "Northwind", "retail", 120, 47.6, -122.3, "005A", 12.5)]
    assert fetch(db, reps) == [
        ("005A", "Ada Lovelace", "SMB", 47.61, -122.33, None, None),
        ("005B", "Alan Turing", "Enterprise", 51.5, -0.12, 160.0, 1.0),
    ]
    # Next week's export: the Salesforce columns are its values again (005B has no location in
    # Salesforce: the export's empty Latitude clears it); the others keep what was supplied.
    second = import_export(db, folder, fmt="salesforce")
    assert fetch(db, accounts) == [("001X", "Northwind", "retail", 120, 47.6, -122.3, "005A", 12.5)]
    assert fetch(db, reps) == [
        ("005A", "Ada Lovelace", "SMB", 47.61, -122.33, None, None),
        ("005B", "Alan Turing", "Enterprise", None, None, 160.0, 1.0),
    ]
    # An export without Latitude / Longitude at all keeps the supplied homes.
    load(db, [native / "reps.csv"])
    write_export(folder, {**SALESFORCE})
    import_export(db, folder, fmt="salesforce")
    assert fetch(db, reps)[1] == ("005B", "Alan Turing", "Enterprise", 51.5, -0.12, 160.0, 1.0)
    assert [(f.table, f.rows_unchanged) for f in second.files if f.table in ("accounts", "reps")] == [("reps", 1), ("accounts", 1)]
