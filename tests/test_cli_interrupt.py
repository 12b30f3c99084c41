"""Ctrl-C: one line saying what was interrupted (and, for the commands that write in one
transaction, that nothing was written), exit status 130, no traceback."""

from __future__ import annotations

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
