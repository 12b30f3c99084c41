"""Backtests: calibrated ranges that beat the weighted pipeline, stored and summarised; the
commands' options and handlers."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import polars as pl
import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.forecast import backtest
from crm_lab.forecast.command import add_backtest_arguments, add_forecast_arguments, run_backtest, run_forecast
from tests.conftest import query
from tests.forecast_world import built_world, copy_of


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return built_world(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def monthly(world, tmp_path_factory):
    """Twelve monthly backtest dates over 2025, stored in a copy of the world."""
    db = copy_of(world[0], tmp_path_factory.mktemp("backtest") / "crm.duckdb")
    return db, backtest(db, start="2025-01-01", stop="2025-12-01", every="month", horizon="month", trials=2000, seed=0)


def test_monthly_ranges_are_calibrated_and_beat_the_weighted_pipeline(monthly):
    """The quality target: over at least 12 monthly as-of dates, P10-P90 covers the actual 70% to
    90% of the time (a share: pooled over the companies), and each company's CRPS (in its own
    currency) is lower than the weighted pipeline's."""
    _, result = monthly
    assert len(result.as_ofs) == 12
    rows = result.rows.filter(pl.col("group_by") == "company")
    mc = rows.filter(pl.col("method") == "monte_carlo")
    assert mc.height == 36 and 0.70 <= mc["covered"].mean() <= 0.90
    summary = result.summary()
    assert summary.select("company_id", "currency", "method", "forecasts").rows() == [
        (c, code, m, 12) for c, code in (("c1", "USD"), ("c2", "EUR"), ("c3", "AUD"))
        for m in ("monte_carlo", "weighted_pipeline")
    ]
    for company in ("c1", "c2", "c3"):
        mine = summary.filter(pl.col("company_id") == company)
        by_method = {row["method"]: row for row in mine.iter_rows(named=True)}
        assert by_method["monte_carlo"]["crps"] < by_method["weighted_pipeline"]["crps"], company


def test_the_backtest_summary_never_averages_across_companies(monthly):
    """Each company's scores are the means of its own rows only (its currency), computed here
    independently of summarize_backtest."""
    _, result = monthly
    summary = result.summary()
    for row in summary.iter_rows(named=True):
        mine = [r for r in result.rows.iter_rows(named=True)
                if r["group_by"] == "company" and r["company_id"] == row["company_id"] and r["method"] == row["method"]]
        assert row["forecasts"] == len(mine)
        assert row["crps"] == pytest.approx(sum(r["crps"] for r in mine) / len(mine), rel=1e-12)
        assert row["mae"] == pytest.approx(sum(abs(r["error"]) for r in mine) / len(mine), rel=1e-12)
        assert row["bias"] == pytest.approx(sum(r["error"] for r in mine) / len(mine), rel=1e-12)
    text = result.describe()
    assert "  c1 (USD) monte_carlo " in text and "  c2 (EUR) weighted_pipeline " in text and "  c3 (AUD) monte_carlo " in text
    assert "\ncalibration over the 3 companies (share of actuals" in text


def test_the_weighted_pipeline_never_forecasts_less_than_is_booked(monthly):
    """Its interval is a gamma distribution of the independent wins' mean and variance, shifted
    by the bookings so far: no quantile below what is booked, the mean kept exactly."""
    _, result = monthly
    wp = result.rows.filter(pl.col("method") == "weighted_pipeline")
    assert wp.height == 36
    assert (wp["p05"] >= wp["booked"] - 1e-9).all() and (wp["p05"] >= 0).all()
    assert (wp["p05"] <= wp["p10"]).all() and (wp["p10"] <= wp["p50"]).all() and (wp["p90"] <= wp["p95"]).all()


def test_a_backtest_is_stored_with_scores_per_method_and_a_calibration_table(monthly):
    db, result = monthly
    run_id = result.run_id
    assert query(db, "SELECT kind, horizon, as_of_last FROM forecast_runs WHERE run_id = ?", [run_id])[0][:2] == ("backtest", "month")
    rows = query(db, """SELECT method, count(*), count(DISTINCT as_of), count(*) FILTER (WHERE company_id IS NULL)
                        FROM forecast_backtest WHERE run_id = ? GROUP BY method ORDER BY method""", [run_id])
    assert rows == [("monte_carlo", 36, 12, 0), ("weighted_pipeline", 36, 12, 0)]
    # the actual is the same for both methods; the score columns are filled
    assert query(db, """SELECT count(*) FROM forecast_backtest a JOIN forecast_backtest b USING (run_id, company_id, as_of)
                        WHERE a.method = 'monte_carlo' AND b.method = 'weighted_pipeline' AND a.actual <> b.actual""") == [(0,)]
    assert query(db, "SELECT count(*) FROM forecast_backtest WHERE crps IS NULL OR pinball_50 IS NULL OR pit IS NULL") == [(0,)]
    table = result.calibration()
    assert table.height == 10 and set(table["level"]) == {0.05, 0.1, 0.5, 0.9, 0.95}
    mc = table.filter(pl.col("method") == "monte_carlo")
    assert mc["share_below"].is_sorted()
    text = result.describe()
    assert "coverage P10-P90" in text and "calibration" in text and run_id in text


def test_a_backtest_scores_groups_too(world):
    result = backtest(world[0], start="2025-06-01", stop="2025-07-01", horizon="quarter", trials=300, by="team",
                      company="c2", store=False)
    teams = result.rows.filter(pl.col("group_by") == "team")
    assert teams.height > 0 and set(teams["company_id"]) == {"c2"}
    assert "\ncalibration over company c2 (share of actuals" in result.describe()
    # the teams' actuals add up to the company's
    company = result.rows.filter((pl.col("group_by") == "company") & (pl.col("method") == "monte_carlo"))
    per_team = teams.filter(pl.col("method") == "monte_carlo").group_by("company_id", "as_of").agg(pl.col("actual").sum())
    joined = company.join(per_team, on=["company_id", "as_of"], suffix="_teams")
    assert (joined["actual"] - joined["actual_teams"]).abs().max() < 0.01


def test_a_backtest_whose_windows_pass_the_data_is_refused(world):
    with pytest.raises(InvalidArgument, match="after the data ends"):
        backtest(world[0], start="2025-12-01", stop="2026-02-01", trials=10, store=False)
    with pytest.raises(InvalidArgument, match="stop 2024-01-01.* is before start"):
        backtest(world[0], start="2025-01-01", stop="2024-01-01", trials=10, store=False)
    with pytest.raises(InvalidArgument, match="cannot score by stage"):
        backtest(world[0], start="2025-01-01", stop="2025-02-01", by="stage", store=False)


def parser_for(name, add, handler) -> argparse.ArgumentParser:
    """What crm_lab/cli.py builds: the command with --db, its options and its handler."""
    parser = argparse.ArgumentParser(prog="crm-lab")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser(name)
    sub.add_argument("--db")
    sub.set_defaults(handler=handler)
    add(sub)
    return parser


def test_the_commands_parse_their_options_and_print_a_summary(world, tmp_path, capsys):
    db = copy_of(world[0], tmp_path / "crm.duckdb")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: late\nslip_days: 30\n")
    args = parser_for("forecast", add_forecast_arguments, run_forecast).parse_args(
        ["forecast", "--db", str(db), "--as-of", "2025-04-01", "--horizon", "quarter", "--trials", "500", "--seed", "3",
         "--scenario", str(scenario), "--target", "400000", "--by", "team", "--company", "c1"]
    )
    args.handler(args)
    out = capsys.readouterr().out
    assert out.startswith("forecast forecast-") and "c1 late (USD):" in out and "P(>= 400,000.00)" in out
    assert query(db, "SELECT DISTINCT group_by FROM forecast_summary ORDER BY 1") == [("company",), ("team",)]
    args = parser_for("backtest", add_backtest_arguments, run_backtest).parse_args(
        ["backtest", "--db", str(db), "--from", "2025-03-01", "--to", "2025-04-01", "--every", "month",
         "--horizon", "month", "--trials", "300"]
    )
    args.handler(args)
    out = capsys.readouterr().out
    assert out.startswith("backtest backtest-") and "weighted_pipeline" in out
    assert query(db, "SELECT count(DISTINCT run_id) FROM forecast_runs") == [(2,)]


def test_the_worked_queries_of_docs_forecast_run_on_stored_runs(monthly):
    """Every ```sql block of docs/FORECAST.md runs and returns rows once a forecast (by team, with
    a scenario and a target) and a backtest are stored."""
    db, _ = monthly
    from crm_lab.forecast import forecast

    forecast(db, as_of="2025-10-01", horizon="quarter", trials=500, seed=1, target=500_000, by=("team",),
             scenarios={"name": "stronger close", "win_rate": 1.1})
    text = (Path(__file__).resolve().parents[1] / "docs" / "FORECAST.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    assert len(blocks) >= 6
    for sql in blocks:
        assert query(db, sql), sql
