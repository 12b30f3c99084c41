"""Ctrl-C: one line saying what was interrupted (and, for the commands that write in one
transaction, that nothing was written), exit status 130, no traceback."""

from __future__ import annotations

import errno

import duckdb
import pytest

from crm_lab.cli import main


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), RuntimeError("Query interrupted")])
def test_an_interrupted_load_says_nothing_was_written(raised, monkeypatch, capsys, tmp_path):
    import crm_lab.load

    def interrupted(*_args, **_kwargs):
        raise raised

    monkeypatch.setattr(crm_lab.load, "load", interrupted)
    assert main(["load", "--db", str(tmp_path / "crm.duckdb"), str(tmp_path)]) == 130
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "crm-lab load: interrupted; nothing was written, the database is as it was\n")


def test_another_runtime_error_is_not_taken_for_an_interruption(monkeypatch, tmp_path):
    import crm_lab.load

    def failing(*_args, **_kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr(crm_lab.load, "load", failing)
    with pytest.raises(RuntimeError, match="something else"):
        main(["load", "--db", str(tmp_path / "crm.duckdb"), str(tmp_path)])


FULL_DISK = ("FATAL Error: Failed: database has been invalidated because of a previous fatal error. The database must "
             "be restarted prior to being used again.\nOriginal error: \"Could not write file \"crm.duckdb.wal\": "
             "No space left on device\"")


@pytest.mark.parametrize("raised", [duckdb.FatalException(FULL_DISK), OSError(errno.ENOSPC, "No space left on device")])
def test_a_full_disk_is_said_in_one_line(raised, monkeypatch, capsys, tmp_path):
    import crm_lab.load

    def full(*_args, **_kwargs):
        raise raised

    monkeypatch.setattr(crm_lab.load, "load", full)
    assert main(["load", "--db", str(tmp_path / "crm.duckdb"), str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "crm-lab load: the disk is full (No space left on device): the write failed and was rolled back; free some "
        "space (DuckDB also needs room for its .wal file beside the database, and temp space) and run it again\n")


def test_other_duckdb_and_os_errors_are_not_taken_for_a_full_disk(monkeypatch, tmp_path):
    import crm_lab.load

    for raised in (duckdb.IOException("IO Error: something else"), OSError(errno.EIO, "I/O error")):
        def failing(*_args, **_kwargs):
            raise raised

        monkeypatch.setattr(crm_lab.load, "load", failing)
        with pytest.raises(type(raised)):
            main(["load", "--db", str(tmp_path / "crm.duckdb"), str(tmp_path)])
