"""A company without a won deal yet: a run over every company forecasts the others and says
which company was skipped, why, and its earliest usable as-of (in the summary and the run
record); a run naming that company, or one where no company can be forecast, is refused
naming the company, the option (--as-of, or --from for a backtest) and that date."""

from __future__ import annotations

import json

import duckdb
import pytest

from crm_lab.cli import main
from crm_lab.demo import build_demo
from crm_lab.errors import InvalidArgument
from crm_lab.forecast import backtest, forecast

C2 = ("company c2 has no won deal with a known outcome at or before 2024-02-18: cannot learn its win rates; "
      "its earliest usable --as-of is 2024-02-20 (as_of= in Python)")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """The demo world (seed 42): c2 wins its first deal on 2024-02-19, c1 on 2024-02-17."""
    path = tmp_path_factory.mktemp("skipped") / "crm.duckdb"
    build_demo(path, pipeline=None)
    return path


def test_a_forecast_over_every_company_skips_the_one_without_a_win_and_says_so(db, capsys):
    assert main(["forecast", "--db", str(db), "--as-of", "2024-02-18", "--trials", "200"]) == 0
    out = capsys.readouterr().out
    assert f"  c2 skipped: {C2}\n" in out
    assert "  c1 baseline (USD)" in out and "  c3 baseline (AUD)" in out and "c2 baseline" not in out
    run_id = out.split()[1].rstrip(":")
    with duckdb.connect(str(db), read_only=True) as con:
        (models,) = con.sql("SELECT models FROM forecast_runs WHERE run_id = ?", params=[run_id]).fetchall()[0]
        companies = {c for (c,) in con.sql("SELECT DISTINCT company_id FROM forecast_summary WHERE run_id = ?",
                                           params=[run_id]).fetchall()}
    assert json.loads(models)["c2"] == {"skipped": C2}
    assert companies == {"c1", "c3"}


def test_a_forecast_of_that_company_is_refused_with_its_earliest_as_of(db, capsys):
    assert main(["forecast", "--db", str(db), "--as-of", "2024-02-18", "--company", "c2"]) == 2
    assert capsys.readouterr().err.strip() == f"crm-lab forecast: {C2}"
    assert main(["forecast", "--db", str(db), "--as-of", "2024-02-20", "--company", "c2", "--trials", "50",
                 "--seed", "1"]) == 0


def test_when_no_company_can_be_forecast_each_is_listed_with_its_earliest_as_of(db):
    with pytest.raises(InvalidArgument) as error:
        forecast(db, as_of="2024-01-18", store=False)
    assert str(error.value) == "\n".join([
        "no company can be forecast: pick a later --as-of (as_of= in Python)",
        "  company c1 has no won deal with a known outcome at or before 2024-01-18: cannot learn its win rates; "
        "its earliest usable --as-of is 2024-02-18 (as_of= in Python)",
        "  company c2 has no won deal with a known outcome at or before 2024-01-18: cannot learn its win rates; "
        "its earliest usable --as-of is 2024-02-20 (as_of= in Python)",
        "  company c3 has no won deal with a known outcome at or before 2024-01-18: cannot learn its win rates; "
        "its earliest usable --as-of is 2024-01-31 (as_of= in Python)",
    ])


def test_a_backtest_skips_the_as_of_dates_a_company_cannot_be_forecast_at(db, capsys):
    result = backtest(db, start="2024-02-01", stop="2024-04-01", trials=100)
    text = result.describe()
    assert ("  c2 skipped at 1 as-of date(s) (2024-02-01): company c2 has no won deal with a known outcome at or "
            "before 2024-02-01: cannot learn its win rates; its earliest usable --from is 2024-02-20 (start= in Python)") in text
    assert set(result.rows.filter(result.rows["company_id"] == "c2")["as_of"].dt.date().cast(str)) == {"2024-03-01", "2024-04-01"}
    with duckdb.connect(str(db), read_only=True) as con:
        (models,) = con.sql("SELECT models FROM forecast_runs WHERE run_id = ?", params=[result.run_id]).fetchall()[0]
    assert json.loads(models)["c2 2024-02-01T00:00:00+00:00"]["skipped"].startswith("company c2 has no won deal")
    assert main(["backtest", "--db", str(db), "--from", "2024-02-01", "--to", "2024-04-01", "--company", "c2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "crm-lab backtest: company c2 has no won deal with a known outcome at or before 2024-02-01: cannot learn "
        "its win rates; its earliest usable --from is 2024-02-20 (start= in Python)")
