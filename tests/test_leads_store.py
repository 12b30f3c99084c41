"""The lead study on a workbench database: features as of an instant, no leakage across the
cut-offs, the generator's truth recovered end to end, stored results with their run records, the
command line, and the queries of docs/LEADS.md."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm_lab.db import connect
from crm_lab.errors import InvalidArgument
from crm_lab.generate import generate
from crm_lab.leads import ConversionModel, analyse_leads, sweep_leads
from crm_lab.leads import command
from crm_lab.leads.analysis import LeadSweepSettings, analyse_frames, split_leads
from crm_lab.leads.features import DealEconomics, read_deal_economics, read_lead_features
from crm_lab.load import load
from crm_lab.replay import replay
from crm_lab.runs import RUN_COLUMNS_SQL, input_fingerprint
from crm_lab.schema import table_spec

AS_OF = "2025-10-01 00:00:00"  # before the end of the generated log (2025-12-31)
SETTINGS = {"as_of": AS_OF, "capacity_hours": 300.0, "hours_per_lead": 1.5, "cost_per_lead": 60.0, "replicates": 40}
DOC = Path(__file__).resolve().parents[1] / "docs" / "LEADS.md"


def build(world: Path, db: Path, events_until: str | None = None) -> Path:
    """Load and replay a generated world; with ``events_until``, only the events that occurred by
    then (the entity tables stay whole: they must not leak either)."""
    source = world
    if events_until is not None:
        source = db.parent / f"{db.stem}-world"
        shutil.copytree(world, source)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{world / 'events.parquet'}') "
            f"WHERE occurred_at <= CAST(? AS TIMESTAMPTZ)) TO '{source / 'events.parquet'}' (FORMAT parquet)",
            [events_until],
        )
        con.close()
    load(db, [source])
    replay(db)
    return db


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    world = tmp_path_factory.mktemp("leads") / "world"
    generate(world, companies=2, deals=2400, seed=3, fmt="parquet")
    return world


@pytest.fixture(scope="module")
def small_db(small_world) -> Path:
    return build(small_world, small_world.parent / "full.duckdb")


@pytest.fixture
def writable_db(small_db, tmp_path) -> Path:
    copy = tmp_path / "crm.duckdb"
    shutil.copy(small_db, copy)
    return copy


# ------------------------------------------------------------------------------- the time split


def test_no_leakage_the_model_knows_only_what_was_known_at_the_training_cut_off(small_world, small_db):
    full = analyse_leads(small_db, company="c1", **SETTINGS)[0]
    # A log that ends at the training cut-off: the future of the training leads never happened.
    truncated_db = build(small_world, small_world.parent / "until-cutoff.duckdb", events_until=str(full.train_cutoff))
    con = connect(truncated_db)
    try:
        at_cutoff = read_lead_features(con, as_of=full.train_cutoff, company="c1")
    finally:
        con.close()
    train = split_leads(at_cutoff, at_cutoff, train_cutoff=full.train_cutoff, maturity_days=30)["train"]
    assert full.train.height > 500
    assert_frame_equal(full.train, train)
    model = ConversionModel().fit(train, train["converted"])
    np.testing.assert_array_equal(full.model.coef_, model.coef_)
    assert full.model.intercept_ == model.intercept_


def test_no_leakage_nothing_after_as_of_changes_the_study(small_world, small_db):
    truncated_db = build(small_world, small_world.parent / "until-as-of.duckdb", events_until=AS_OF)
    for full, cut in zip(analyse_leads(small_db, **SETTINGS), analyse_leads(truncated_db, **SETTINGS)):
        assert full.company_id == cut.company_id
        for name in ("train", "test", "open_leads"):
            assert_frame_equal(getattr(full, name), getattr(cut, name))
        assert_frame_equal(full.table, cut.table)
        assert full.choice == cut.choice
        assert (full.deal_value, full.win_rate) == (cut.deal_value, cut.win_rate)


def test_training_swept_and_open_leads_follow_the_time_split(small_db):
    result = analyse_leads(small_db, company="c2", **SETTINGS)[0]
    maturity = timedelta(days=result.settings.maturity_days)
    assert result.train_cutoff == result.as_of - maturity - timedelta(days=result.settings.test_days)
    assert result.train["created_at"].max() <= result.train_cutoff - maturity
    assert result.test["created_at"].min() > result.train_cutoff
    assert result.test["created_at"].max() <= result.as_of - maturity
    assert result.open_leads["created_at"].min() > result.as_of - maturity
    assert not result.open_leads["converted"].any()
    assert set(result.open_leads["status"]) <= {"open"}


# ----------------------------------------------------------------------------------- features


def test_engagement_counts_are_the_activities_logged_against_each_lead(small_db):
    con = connect(small_db)
    try:
        end = con.sql("SELECT max(occurred_at) FROM events").fetchall()[0][0]
        features = read_lead_features(con, as_of=end, company=None)
        from_table = con.sql(
            """SELECT company_id, lead_id, count(*) FILTER (WHERE activity_type = 'call') AS calls,
                      count(*) FILTER (WHERE activity_type = 'email') AS emails,
                      count(*) FILTER (WHERE activity_type = 'meeting') AS meetings,
                      count(*) FILTER (WHERE activity_type = 'task') AS tasks
               FROM activities WHERE lead_id IS NOT NULL GROUP BY ALL"""
        ).pl()
        earlier = read_lead_features(con, as_of="2025-03-31", company=None)
    finally:
        con.close()
    # At the end of the log the fold of the activity events is the exported activities table.
    counted = features.select("company_id", "lead_id", "calls", "emails", "meetings", "tasks").join(
        from_table, on=["company_id", "lead_id"], how="left", suffix="_table"
    ).fill_null(0)
    for kind in ("calls", "emails", "meetings", "tasks"):
        assert (counted[kind] == counted[f"{kind}_table"]).all(), kind
    assert features["calls"].sum() > 50
    # Earlier, only what had been logged by then.
    assert earlier["created_at"].max() <= features["created_at"].max()
    assert earlier.select(pl.sum_horizontal("calls", "emails", "meetings", "tasks")).sum().item() < features.select(
        pl.sum_horizontal("calls", "emails", "meetings", "tasks")).sum().item()


def test_deal_economics_are_those_of_deals_from_converted_leads_as_of(small_db):
    con = connect(small_db)
    try:
        economics = read_deal_economics(con, as_of=AS_OF, company="c1")
        expected = con.sql(
            """SELECT count(*) FILTER (WHERE d.is_closed) AS closed, count(*) FILTER (WHERE d.is_won) AS won,
                      avg(d.amount) FILTER (WHERE d.is_won) AS mean_won
               FROM deals_as_of(TIMESTAMPTZ '2025-10-01 00:00:00') d
               WHERE d.company_id = 'c1' AND d.deal_id IN (
                   SELECT deal_id FROM leads_as_of(TIMESTAMPTZ '2025-10-01 00:00:00')
                   WHERE company_id = 'c1' AND status = 'converted')"""
        ).fetchall()[0]
    finally:
        con.close()
    assert (economics.closed_deals, economics.won_deals) == expected[:2]
    assert economics.win_rate == pytest.approx(expected[1] / expected[0])
    assert economics.mean_won_amount == pytest.approx(float(expected[2]))
    assert len(economics.won_amounts) == economics.won_deals
    assert economics.won_amounts.mean() == pytest.approx(economics.mean_won_amount)


# ------------------------------------------------------------------------------ truth recovered


def test_coefficients_recover_the_generators_truth_end_to_end(tmp_path):
    world = tmp_path / "world"
    generate(world, companies=1, deals=9000, seed=11, fmt="parquet")
    db = build(world, tmp_path / "crm.duckdb")
    truth = json.loads((world / "truth.json").read_text())["parameters"]["leads"]["conversion"]
    result = analyse_leads(db, as_of="2025-12-31 23:59:59", replicates=10, C=1e4)[0]
    model = result.model
    assert result.train.height > 9000
    reference = {column: levels[0] for column, levels in model.levels_.items()}
    for feature, coefficient, error in zip(model.feature_names_, model.coef_, model.std_errors_):
        if "=" in feature:
            column, level = feature.split("=")
            expected = truth[column][level] - truth[column][reference[column]]
        elif feature == "log(employees)":
            expected = truth["log_employees"]
        elif feature == "score":
            expected = truth["score"]
        else:
            continue  # engagement: not part of the generator's conversion model
        assert abs(coefficient - expected) <= 4 * error, (feature, coefficient, expected, error)
    intercept = truth["intercept"] + truth["source"][reference["source"]] + truth["industry"][reference["industry"]]
    # The only leads left out are conversions later than maturity_days: a small downward bias.
    assert abs(model.intercept_ - intercept) <= 4 * model.intercept_std_error_ + 0.1
    calibration = result.calibration
    assert calibration.mean_predicted == pytest.approx(calibration.observed_rate, abs=0.03)


# ------------------------------------------------------------------------------------- storing


def test_sweep_leads_stores_a_run_record_and_the_curve_per_company(writable_db):
    report = sweep_leads(writable_db, **SETTINGS)
    assert [r.company_id for r in report.results] == ["c1", "c2"]
    con = connect(writable_db)
    try:
        runs = con.sql("SELECT * FROM lead_sweep_runs ORDER BY company_id").pl()
        rows = con.sql("SELECT * FROM lead_sweeps").pl()
        fingerprint = input_fingerprint(con)
    finally:
        con.close()
    assert runs["run_id"].to_list() == list(report.run_ids)
    assert runs["input_fingerprint"].to_list() == [fingerprint] * 2
    assert runs["seed"].to_list() == [0, 0]
    parameters = json.loads(runs["parameters"][0])
    assert parameters["as_of"] == AS_OF and parameters["company"] is None and parameters["cost_per_lead"] == 60.0
    for result, run in zip(report.results, runs.iter_rows(named=True)):
        mine = rows.filter(pl.col("run_id") == run["run_id"])
        assert set(mine["company_id"]) == {result.company_id} == {run["company_id"]}
        assert mine.height == run["thresholds"] == result.curve.height
        assert mine.filter("is_chosen")["threshold"].to_list() == [run["chosen_threshold"]]
        assert run["chosen_threshold"] == result.choice.threshold
        assert run["chosen_routed"] * 1.5 <= 300
        assert run["swept_leads"] == result.test.height and run["auc"] == pytest.approx(result.auc)
        assert run["deal_value_source"] == run["win_rate_source"] == "history"
        assert json.loads(run["model"])["coefficients"].keys() == set(result.model.feature_names_)
        assert_frame_equal(
            mine.sort("threshold", descending=True).drop("run_id", "company_id"), result.table, check_dtypes=False
        )
    assert "SELECT * FROM lead_sweeps WHERE run_id IN" in report.summary()


def test_run_record_table_starts_with_the_common_run_columns():
    common = re.findall(r"^\s*([a-z_]+)\s+([A-Z]+)", RUN_COLUMNS_SQL, flags=re.MULTILINE)
    columns = table_spec("lead_sweep_runs").columns
    assert [(c.name, c.sql_type) for c in columns[: len(common)]] == [
        (name, {"JSON": "JSON"}.get(kind, kind).replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")) for name, kind in common
    ]
    assert table_spec("lead_sweep_runs").key == ("run_id",)
    assert table_spec("lead_sweeps").key == ("run_id", "threshold")
    assert {"run_id", "company_id"} <= {c.name for c in table_spec("lead_sweeps").columns}


def test_the_score_column_can_be_swept_as_given_with_overridden_economics(writable_db):
    report = sweep_leads(writable_db, company="c1", score_source="column", deal_value=5000.0, win_rate=0.25,
                         objective="f_beta", beta=2.0, **SETTINGS)
    result = report.results[0]
    assert result.model is None and result.calibration is None
    assert result.curve["threshold"].min() >= 0 and result.curve["threshold"].max() <= 100
    assert result.curve["expected_conversions"].null_count() == result.curve.height
    assert result.curve["revenue"].to_list() == pytest.approx((result.curve["tp"] * 5000.0 * 0.25).to_list())
    con = connect(writable_db)
    try:
        run = con.sql("SELECT model, deal_value_source, objective, beta, train_leads FROM lead_sweep_runs").fetchall()
    finally:
        con.close()
    assert run == [(None, "given", "f_beta", 2.0, None)]


def test_the_command_line_runs_the_sweep_and_prints_where_the_results_are(writable_db, capsys):
    parser = argparse.ArgumentParser(prog="crm-lab sweep-leads")
    parser.add_argument("--db")
    command.add_sweep_leads_arguments(parser)
    args = parser.parse_args(["--db", str(writable_db), "--as-of", AS_OF, "--capacity-hours", "200", "--hours-per-lead",
                              "2", "--cost-per-lead", "50", "--company", "c2", "--bootstrap", "30", "--seed", "5"])
    command.run_sweep_leads(args)
    out = capsys.readouterr().out
    assert "c2: trained on" in out and "best cut-off for profit (capacity 200 h)" in out
    assert re.search(r"run leads-\d{8}T\d{6}Z-[0-9a-f]{6}", out)
    with pytest.raises(SystemExit):
        parser.parse_args(["--db", str(writable_db), "--as-of", AS_OF])  # capacity and money are required


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"company": "acme"}, "company 'acme' has no leads in"),
        ({"as_of": "2024-02-01"}, "no lead was mature at the training cut-off"),
        ({"as_of": "not a date"}, "as_of must be a date or timestamp, got 'not a date'"),
        ({"cost_per_lead": -1.0}, "cost_per_lead must be >= 0, got -1.0"),
        ({"objective": "revenue"}, "objective must be one of profit, f_beta, conversions; got 'revenue'"),
        ({"window": 3}, "unknown setting"),
    ],
)
def test_bad_settings_get_a_clear_message(small_db, kwargs, message):
    with pytest.raises(InvalidArgument) as error:
        analyse_leads(small_db, **{**SETTINGS, **kwargs})
    assert message in str(error.value)


def _event_span(db: Path, company: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql("SELECT min(occurred_at AT TIME ZONE 'UTC')::DATE, max(occurred_at AT TIME ZONE 'UTC')::DATE "
                       "FROM events WHERE company_id = ?", params=[company]).fetchall()[0]
    finally:
        con.close()


def test_an_as_of_after_the_data_ends_is_refused_like_a_forecasts(small_db):
    first, last = _event_span(small_db, "c1")
    for as_of, shown in [("2030-01-01", "2030-01-01"), (str(last + timedelta(days=8)), str(last + timedelta(days=8)))]:
        with pytest.raises(InvalidArgument) as refused:
            analyse_leads(small_db, **{**SETTINGS, "as_of": as_of, "company": "c1"})
        assert str(refused.value) == (
            f"company c1: as_of {shown}: after the data ends (the event log spans {first} to {last}); "
            f"sweep as of at most 7 days after {last}, or load and replay newer events"
        )


def test_every_company_is_checked_when_none_is_named(small_db):
    first, last = _event_span(small_db, "c1")
    with pytest.raises(InvalidArgument, match=r"^company c1: as_of 2030-01-01: after the data ends"):
        analyse_leads(small_db, **{**SETTINGS, "as_of": "2030-01-01"})


def test_up_to_the_end_of_the_seventh_day_after_the_data_ends_still_runs(small_db):
    _, last = _event_span(small_db, "c1")
    as_of = f"{last + timedelta(days=7)} 23:59:59"
    result = analyse_leads(small_db, **{**SETTINGS, "as_of": as_of, "company": "c1"})[0]
    assert result.as_of == datetime.combine(last + timedelta(days=7), datetime.max.time().replace(microsecond=0),
                                            timezone.utc)
    assert result.test.height > 0


def test_past_the_lead_data_the_advice_names_a_bare_date_at_which_the_last_lead_is_mature():
    empty = pl.DataFrame({"converted": pl.Series([], dtype=pl.Boolean)})
    first = datetime(2024, 1, 1, 16, 54, tzinfo=timezone.utc)
    last = datetime(2025, 8, 31, 22, 15, 26, tzinfo=timezone.utc)  # 30 days later: 2025-09-30 22:15:26
    as_of = datetime(2026, 1, 1, tzinfo=timezone.utc)
    train_cutoff = as_of - timedelta(days=120)
    with pytest.raises(InvalidArgument) as refused:
        analyse_frames("c1", train=empty, test=empty, open_leads=empty,
                       economics=DealEconomics(0, 0, 0, None, None, np.zeros(0)),
                       settings=LeadSweepSettings(as_of=as_of), as_of=as_of, train_cutoff=train_cutoff,
                       lead_span=(first, last))
    # 2025-09-30 (its first instant) would still leave the last lead 22 hours short of mature.
    assert str(refused.value) == (
        "company c1: no lead was created between 2025-09-03 00:00 and 2025-12-02 00:00 (as_of - maturity_days), "
        "so there is nothing to sweep: as_of is past the lead data (created 2024-01-01 to 2025-08-31); "
        "move --as-of (as_of= in Python) earlier, to 2025-10-01 or before"
    )
    named = datetime(2025, 10, 1, tzinfo=timezone.utc)
    assert named - last >= timedelta(days=30) > named - timedelta(days=1) - last


def test_zero_capacity_says_it_admits_no_lead(small_db):
    result = analyse_leads(small_db, company="c1", **{**SETTINGS, "capacity_hours": 0.0, "replicates": 20})[0]
    assert (result.curve["profit"] > 0).any()
    line = result.summary().splitlines()[3]
    assert line == "  best cut-off for profit (capacity 0 h): route nobody (capacity 0 h admits no lead at 1.5 h per lead)"


def test_a_database_that_was_not_replayed_is_refused(small_world, tmp_path):
    db = tmp_path / "loaded-only.duckdb"
    load(db, [small_world])
    with pytest.raises(InvalidArgument, match=r"run `crm-lab replay` first"):
        analyse_leads(db, **SETTINGS)


# ------------------------------------------------------------------------------------ the docs


def test_every_query_in_the_leads_doc_runs_on_a_stored_sweep(writable_db):
    queries = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(queries) >= 3
    sweep_leads(writable_db, **SETTINGS)
    con = connect(writable_db)
    try:
        for sql in queries:
            assert con.sql(sql).fetchall(), sql
    finally:
        con.close()


def test_a_mature_leads_outcome_is_whether_it_converted_within_its_first_maturity_days():
    """Hand-made leads at as_of 2025-06-30 with a 30-day maturity: the 120-day-old lead that
    converted on its 40th day counts as not converted, like a 30-day-old lead would; one that
    converted on day 30 exactly counts; a converted status with no converted_at keeps its mark."""
    as_of = datetime(2025, 6, 30, tzinfo=timezone.utc)
    created = [as_of - timedelta(days=d) for d in (120, 120, 45, 60, 10)]
    converted_at = [created[0] + timedelta(days=40), created[1] + timedelta(days=30), None, None,
                    created[4] + timedelta(days=2)]
    frame = pl.DataFrame({
        "lead_id": ["late", "on-day-30", "never", "no-date", "young"],
        "created_at": created,
        "converted_at": converted_at,
        "converted": [True, True, False, True, True],
        "status": ["converted", "converted", "open", "converted", "converted"],
        "age_days": [120.0, 120.0, 45.0, 60.0, 10.0],
    }, schema_overrides={"created_at": pl.Datetime("us", "UTC"), "converted_at": pl.Datetime("us", "UTC")})
    split = split_leads(frame, frame, train_cutoff=as_of - timedelta(days=200), maturity_days=30)
    for name in ("train", "test"):
        assert dict(split[name].select("lead_id", "converted").iter_rows()) == {
            "late": False, "on-day-30": True, "never": False, "no-date": True}
    assert split["open_leads"].height == 0  # the young lead has converted: nothing left to route
