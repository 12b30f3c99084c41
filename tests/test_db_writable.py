"""A database that cannot be written (permissions, a read-only file system) is named before any
work whose result would be stored, not after minutes of it in a DuckDB traceback. The test runs
as any user (root may write anywhere), so the file system's answer is stood in for."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import crm_lab.db
from crm_lab.db import DatabaseNotWritableError, check_writable
from crm_lab.workbench import sample_database


@pytest.fixture
def read_only_folder(tmp_path, monkeypatch):
    """tmp_path/ro as if on a read-only mount, with a copy of the sample database in it."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "crm.duckdb"
    shutil.copy(sample_database(), db)
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        inside = str(path) == str(folder) or str(path).startswith(str(folder) + os.sep)
        return False if inside and mode & os.W_OK else real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(crm_lab.db.os, "access", access)
    return db


def test_the_message_names_the_database_and_what_is_read_only(read_only_folder):
    with pytest.raises(DatabaseNotWritableError) as refused:
        check_writable(read_only_folder)
    assert str(refused.value) == (
        f"database {read_only_folder} cannot be written: its database {read_only_folder} is read-only (permissions "
        "or a read-only file system; DuckDB also writes a .wal file beside the database): copy it somewhere "
        "writable and pass --db, or fix the permissions")
    missing = read_only_folder.parent / "new" / "crm.duckdb"  # judged by the nearest folder that exists
    with pytest.raises(DatabaseNotWritableError, match=f"its folder {read_only_folder.parent} is read-only"):
        check_writable(missing)


def test_every_storing_command_refuses_before_its_work(read_only_folder, monkeypatch):
    from crm_lab.forecast import backtest, forecast
    from crm_lab.leads import sweep_leads
    from crm_lab.territory import run_territory

    def no_work(*_args, **_kwargs):
        raise AssertionError("the work ran before the database was found read-only")

    import crm_lab.forecast.backtesting
    import crm_lab.forecast.run
    import crm_lab.leads.store
    import crm_lab.territory.store

    monkeypatch.setattr(crm_lab.forecast.run, "reading", no_work)
    monkeypatch.setattr(crm_lab.forecast.backtesting, "reading", no_work)
    monkeypatch.setattr(crm_lab.leads.store, "analyse_leads", no_work)
    monkeypatch.setattr(crm_lab.territory.store, "reading", no_work)
    for call in (lambda: forecast(read_only_folder, as_of="2025-07-01", trials=10),
                 lambda: backtest(read_only_folder, start="2025-01-01", stop="2025-02-01", trials=10),
                 lambda: sweep_leads(read_only_folder, as_of="2025-07-01", capacity_hours=10, hours_per_lead=1,
                                     cost_per_lead=1),
                 lambda: run_territory(read_only_folder, "c1")):
        with pytest.raises(DatabaseNotWritableError):
            call()
    # Not storing needs no write: the forecast gets as far as reading.
    with pytest.raises(AssertionError, match="the work ran"):
        forecast(read_only_folder, as_of="2025-07-01", trials=10, store=False)


def test_a_load_into_a_read_only_database_is_refused_by_name(read_only_folder, capsys):
    from crm_lab.cli import main

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    assert main(["load", "--db", str(read_only_folder), str(sample)]) == 2
    assert capsys.readouterr().err.startswith(f"crm-lab load: database {read_only_folder} cannot be written: ")
