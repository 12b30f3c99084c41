"""The what-if panels without a browser: what they show equals the engines' own results computed
independently here, they recompute only what a moved control changes, and they say when they are
busy or when an input is refused."""

from __future__ import annotations

import html
import math
import re
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.forecast import Scenario, prepare, run_scenarios
from crm_lab.leads import analyse_leads, best_cutoff, sweep
from crm_lab.territory import SolverOptions, TerritorySettings, plan_territories, with_rep_count
from crm_lab.territory.synthetic import random_territory
from crm_lab.widgets import ForecastPanel, TerritoryPanel, ThresholdPanel
from crm_lab.widgets import forecast as forecast_widgets
from crm_lab.widgets.forecast import p50_text
from crm_lab.widgets.leads import home_currency, routed_text
from crm_lab.workbench import open_workbench, sample_database

COMPANY = "c1"
TRIALS = 400
SEED = 5


@pytest.fixture(scope="module")
def database():
    return sample_database()


@pytest.fixture(scope="module")
def case(database):
    return prepare(database, as_of="2025-07-01", horizon="quarter", company=COMPANY)[0]


@pytest.fixture(scope="module")
def study(database):
    with open_workbench(database) as wb:
        as_of = wb.event_span()[1]
    return analyse_leads(database, company=COMPANY, as_of=as_of, test_days=180, capacity_hours=90.0, hours_per_lead=1.5,
                         cost_per_lead=60.0, replicates=20, seed=SEED)[0]


def totals(case, *scenarios):
    """Whole-window totals per scenario name, from one joint run of the engine."""
    run = run_scenarios([case], list(scenarios), trials=TRIALS, seed=SEED)
    return {name: samples.sum(axis=1) for (_, name), samples in run.samples.items()}


def strip(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def headline(panel) -> str:
    return strip(panel.headline.value)


# ----------------------------------------------------------------------------------- forecast


def test_forecast_panel_shows_the_p50_a_joint_run_gives(case):
    panel = ForecastPanel(case, trials=TRIALS, seed=SEED)
    expected = totals(case, Scenario(name="up", win_rate=1.2, slip_days=14))
    assert headline(panel) == p50_text(float(np.quantile(expected["baseline"], 0.5)), "USD")

    panel.controls["win_rate"].value = 1.2
    panel.controls["slip_days"].value = 14
    assert headline(panel) == p50_text(float(np.quantile(expected["up"], 0.5)), "USD")
    assert "ready" in panel.status.value


def test_forecast_panel_labels_money_with_the_companys_currency(case):
    assert case.currency == "USD"
    assert p50_text(506_645.4, "USD") == "Scenario P50: 506,645 USD"
    assert p50_text(506_645.4) == "Scenario P50: 506,645"  # data that names no currency
    panel = ForecastPanel(case, trials=TRIALS, seed=SEED, target=363_466)
    assert re.fullmatch(r"Scenario P50: [\d,]+ USD", headline(panel))
    for label in ("mean (USD)", "P10 (USD)", "P50 (USD)", "P90 (USD)", "P(≥ 363,466 USD)"):
        assert f">{label}<" in panel.table.value
    assert panel.controls["target"].description == "target (USD)"
    unnamed = ForecastPanel(replace(case, currency=None), trials=TRIALS, seed=SEED, target=363_466)
    assert ">P(≥ 363,466)<" in unnamed.table.value and ">P50<" in unnamed.table.value


def test_forecast_panel_counts_the_chance_of_the_target_on_the_same_trials(case):
    panel = ForecastPanel(case, trials=TRIALS, seed=SEED, deal_size=0.8)
    expected = totals(case, Scenario(name="smaller", deal_size=0.8))
    target = float(np.quantile(expected["baseline"], 0.6))
    simulated = panel.memo.computed
    panel.controls["target"].value = target
    assert panel.memo.computed == simulated  # a new target only recounts
    baseline, scenario = panel.outcomes()
    assert baseline.p_target == pytest.approx(float((expected["baseline"] >= target).mean()))
    assert scenario.p_target == pytest.approx(float((expected["smaller"] >= target).mean()))
    assert f"{scenario.p_target:.1%}" in panel.table.value


def test_forecast_panel_simulates_each_knob_setting_once(case):
    panel = ForecastPanel(case, trials=TRIALS, seed=SEED)
    assert panel.memo.computed == 1  # neutral knobs: the scenario is the baseline
    panel.controls["win_rate"].value = 1.3
    assert panel.memo.computed == 2
    panel.controls["win_rate"].value = 1.0
    panel.controls["win_rate"].value = 1.3
    assert panel.memo.computed == 2


def test_forecast_panel_is_busy_while_it_simulates(case, monkeypatch):
    panel = ForecastPanel(case, trials=TRIALS, seed=SEED)
    seen = []
    real = forecast_widgets.scenario_samples

    def watched(*args, **kwargs):
        seen.append((panel.status.value, [c.disabled for c in panel.controls.values()]))
        return real(*args, **kwargs)

    monkeypatch.setattr(forecast_widgets, "scenario_samples", watched)
    panel.controls["new_pipeline"].value = 0.5
    assert len(seen) == 1
    status, disabled = seen[0]
    assert "crm-lab-busy" in status and "simulating 400 trials" in status
    assert all(disabled)
    assert "crm-lab-ready" in panel.status.value
    assert not any(c.disabled for c in panel.controls.values())


def test_a_refused_input_shows_in_the_status_and_keeps_the_last_result(case, monkeypatch):
    panel = ForecastPanel(case, trials=TRIALS, seed=SEED)
    before = panel.headline.value

    def refuse(*args, **kwargs):
        raise InvalidArgument("scenario remove_reps: rep-x is not a rep of c1")

    monkeypatch.setattr(forecast_widgets, "scenario_samples", refuse)
    panel.controls["deal_size"].value = 1.4
    assert "crm-lab-error" in panel.status.value and "rep-x is not a rep of c1" in panel.status.value
    assert panel.headline.value == before
    assert not any(c.disabled for c in panel.controls.values())


def test_forecast_panel_refuses_an_unknown_knob(case):
    with pytest.raises(TypeError, match="unknown knob"):
        ForecastPanel(case, trials=TRIALS, winrate=1.1)


# ------------------------------------------------------------------------------------- leads


@pytest.mark.parametrize("cutoff", [0.0, 0.15, 0.3, 0.55, 1.0])
def test_threshold_panel_routes_the_leads_scoring_at_or_above_the_cutoff(study, cutoff):
    panel = ThresholdPanel(study, cutoff=cutoff)
    routed = int((study.test["routing_score"] >= cutoff).sum())
    assert headline(panel) == routed_text(routed, study.test.height)


def test_threshold_panel_picks_the_best_cutoff_again_for_another_capacity(study):
    panel = ThresholdPanel(study)
    assert panel.memo.computed == 0  # the study's own capacity needs no work
    panel.controls["capacity_hours"].value = 30.0
    s = study.settings
    curve = sweep(study.test["routing_score"].to_numpy(), study.test["converted"].to_numpy(),
                  hours_per_lead=s.hours_per_lead, capacity_hours=30.0, cost_per_lead=s.cost_per_lead,
                  deal_value=study.deal_value, win_rate=study.win_rate)
    expected = best_cutoff(curve, s.objective)
    table, choice = panel.table()
    assert choice.threshold == expected.threshold and choice.routed == expected.routed
    assert table.filter(pl.col("is_chosen"))["threshold"].to_list() == [expected.threshold]
    assert f"cut-off {expected.threshold:.4g}, {expected.routed:,} leads" in panel.best.value
    assert "within 30 SDR hours" in panel.best.value
    panel.controls["cutoff"].value = 0.4
    panel.controls["capacity_hours"].value = 90.0
    panel.controls["capacity_hours"].value = 30.0
    assert panel.memo.computed == 1


def test_threshold_panel_says_why_it_routes_nobody(study):
    panel = ThresholdPanel(study)
    per_lead = study.settings.hours_per_lead
    panel.controls["capacity_hours"].value = per_lead / 2
    _, choice = panel.table()
    assert choice.routes_nobody
    assert (f"route nobody (capacity {per_lead / 2:g} h admits no lead at {per_lead:g} h per lead)"
            in panel.best.value)


def test_threshold_panel_without_a_capacity_limit(study):
    panel = ThresholdPanel(study)
    assert panel.controls["no_limit"].value is False  # the study has a capacity
    panel.controls["no_limit"].value = True
    table, choice = panel.table()
    assert panel.capacity_hours is None
    assert table["within_capacity"].all()
    assert "Best for profit within no capacity limit:" in panel.best.value


def test_threshold_panel_zero_sdr_hours_route_nobody_as_sweep_leads_does(study):
    panel = ThresholdPanel(study)
    panel.controls["capacity_hours"].value = 0.0
    _, choice = panel.table()
    assert panel.capacity_hours == 0.0 and choice.routes_nobody
    per_lead = study.settings.hours_per_lead
    assert strip(panel.best.value) == (f"Best for profit within 0 SDR hours: route nobody (capacity 0 h admits no lead "
                                       f"at {per_lead:g} h per lead)")
    s = study.settings  # what `crm-lab sweep-leads --capacity-hours 0` computes
    curve = sweep(study.test["routing_score"].to_numpy(), study.test["converted"].to_numpy(),
                  hours_per_lead=s.hours_per_lead, capacity_hours=0.0, cost_per_lead=s.cost_per_lead,
                  deal_value=study.deal_value, win_rate=study.win_rate)
    expected = best_cutoff(curve, s.objective, capacity_hours=0.0)
    assert expected.routes_nobody and expected.nobody_reason == choice.nobody_reason


def test_threshold_panel_refuses_negative_sdr_hours_in_its_status(study):
    panel = ThresholdPanel(study)
    before = (panel.headline.value, panel.best.value)
    panel.controls["capacity_hours"].value = -5.0
    assert strip(panel.status.value) == ('SDR hours must be 0 or more (0 routes nobody), got -5; '
                                         'tick "no limit" for no capacity limit')
    assert (panel.headline.value, panel.best.value) == before
    assert not any(c.disabled for c in panel.controls.values())


def test_threshold_panel_starts_with_no_limit_ticked_for_a_study_without_capacity(study):
    unlimited = replace(study, settings=replace(study.settings, capacity_hours=None))
    panel = ThresholdPanel(unlimited)
    assert panel.controls["no_limit"].value is True and panel.capacity_hours is None


def test_threshold_panel_labels_money_with_the_companys_home_currency(study, database):
    assert home_currency(database, "c1") == "USD" and home_currency(database, "c2") == "EUR"
    panel = ThresholdPanel(study, currency="USD")
    for label in ("cost (USD)", "revenue (USD)", "profit (USD)"):
        assert f">{label}<" in panel.row.value
    choice = study.choice
    assert f"profit {choice.value:,.0f} USD</p>" in panel.best.value
    assert ">profit<" in ThresholdPanel(study).row.value  # no currency named: bare labels


# --------------------------------------------------------------------------------- territory


def test_territory_panel_solves_each_setting_once_and_shows_the_plan():
    world = random_territory(40, 4, seed=2)
    settings = TerritorySettings(tolerance=0.3, potential_tolerance=math.inf)
    solver = SolverOptions(time_limit=10, gap_rel=0.0)
    panel = TerritoryPanel(world, settings, solver)
    assert panel.memo.computed == 1
    panel.controls["reps"].value = world.n_reps + 1
    expected = plan_territories(with_rep_count(world, world.n_reps + 1), settings, solver)
    plan = panel.plan()
    assert plan.status == expected.status == "optimal"
    assert plan.objective == pytest.approx(expected.objective, rel=1e-6)
    assert expected.describe().splitlines()[0].split(",")[0] in panel.describe.value
    assert panel.maps.value[:4] == b"\x89PNG" and panel.balance.value[:4] == b"\x89PNG"
    panel.controls["reps"].value = world.n_reps
    assert panel.memo.computed == 2
    panel.controls["max_moves"].value = 3
    budgeted = plan_territories(world, replace(settings, max_moves=3), solver)
    assert (panel.plan().status, panel.plan().kind) == (budgeted.status, budgeted.kind)
    assert panel.plan().objective == pytest.approx(budgeted.objective, rel=1e-6)
    assert panel.memo.computed == 3


def test_charts_are_rendered_at_twice_the_pixels_they_are_shown_at():
    """A sharp image on a high-density screen: the PNG has twice the pixels of the width the
    Image widget is given, which is the figure's size at 90 dpi."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from crm_lab.widgets.panel import show_figure

    fig, ax = plt.subplots(figsize=(4, 2))
    ax.plot([0, 1], [0, 1])
    image = widgets.Image(format="png")
    show_figure(image, fig)
    png_width = int.from_bytes(image.value[16:20], "big")
    assert image.value[:8] == b"\x89PNG\r\n\x1a\n" and image.value[12:16] == b"IHDR"
    assert int(image.width) * 2 == png_width - png_width % 2
    assert 300 < int(image.width) < 4 * 90  # about 4 inches at 90 dpi, less the tight bounding box's trim
    assert not plt.fignum_exists(fig.number)
