"""`crm-lab dashboard` in a real browser: the what-if notebook served by Voilà, knobs moved through
the page, and the numbers on screen checked against the same computation made here in Python."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from crm_lab.forecast import Scenario, prepare, run_scenarios
from crm_lab.leads import analyse_leads
from crm_lab.serve import offline_environment
from crm_lab.widgets.forecast import p50_text
from crm_lab.widgets.leads import routed_text
from crm_lab.workbench import open_workbench, sample_database

from .conftest import ARTIFACTS, free_port, start_server, stop_server

pytestmark = pytest.mark.slow

COMPANY = "c2"
AS_OF = "2025-04-01"
TRIALS = 700
SEED = 3
LEAD_PARAMETERS = dict(test_days=180, capacity_hours=90.0, hours_per_lead=1.5, cost_per_lead=60.0, replicates=20)
PAGE_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def database() -> Path:
    return sample_database()


@pytest.fixture(scope="module")
def dashboard(database, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("dashboard") / "voila.log"
    parameters = [f"-p{name}={value}" for name, value in
                  dict(trials=TRIALS, seed=SEED, as_of=AS_OF, replicates=LEAD_PARAMETERS["replicates"]).items()]
    command = [sys.executable, "-m", "crm_lab", "dashboard", "--db", str(database), "--company", COMPANY,
               "--port", str(port), "--no-browser", *parameters]
    server = start_server(command, port, log, env=offline_environment())
    yield f"http://127.0.0.1:{port}/"
    stop_server(server)


def set_readout(page, panel: str, index: int, value: str) -> None:
    """Type a value into a slider's editable readout, as a user can, and commit it with Enter."""
    readout = page.locator(f"{panel} .widget-readout").nth(index)
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def test_moving_the_knobs_shows_what_python_computes(dashboard, database, offline_page):
    page = offline_page.page
    with open_workbench(database) as wb:
        as_of = wb.instant(AS_OF)
    case = prepare(database, as_of=as_of, horizon="quarter", company=COMPANY)[0]
    run = run_scenarios([case], [Scenario(name="stronger", win_rate=1.25)], trials=TRIALS, seed=SEED)
    baseline_p50, scenario_p50 = (float(np.quantile(run.samples[(COMPANY, name)].sum(axis=1), 0.5))
                                  for name in ("baseline", "stronger"))
    assert p50_text(baseline_p50, case.currency) != p50_text(scenario_p50, case.currency)

    study = analyse_leads(database, company=COMPANY, as_of=as_of, seed=SEED, **LEAD_PARAMETERS)[0]
    cutoff = 0.3
    routed = int((study.test["routing_score"] >= cutoff).sum())
    assert 0 < routed < study.test.height

    page.goto(dashboard, timeout=PAGE_TIMEOUT_MS)
    forecast, leads = ".crm-lab-panel:has(.crm-lab-p50)", ".crm-lab-panel:has(.crm-lab-routed)"
    page.wait_for_selector(f"{leads} .crm-lab-ready", timeout=PAGE_TIMEOUT_MS)
    page.get_by_text(p50_text(baseline_p50, case.currency), exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)

    set_readout(page, forecast, 0, "1.25")
    page.get_by_text(p50_text(scenario_p50, case.currency), exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)

    set_readout(page, leads, 0, f"{cutoff:.3f}")
    page.get_by_text(routed_text(routed, study.test.height), exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert offline_page.outside == []


def test_a_refused_input_shows_its_message_on_the_page(database, offline_page, tmp_path):
    """A value only the lead study refuses (test_days=0) passes the checks made before the start;
    the page then shows the study's own message where the panel would be, and the other panels."""
    port = free_port()
    command = [sys.executable, "-m", "crm_lab", "dashboard", "--db", str(database), "--company", COMPANY,
               "--port", str(port), "--no-browser", "-p", "test_days=0", "-p", f"trials={TRIALS}", "-p", f"as_of={AS_OF}"]
    server = start_server(command, port, tmp_path / "voila.log", env=offline_environment())
    try:
        page = offline_page.page
        page.goto(f"http://127.0.0.1:{port}/", timeout=PAGE_TIMEOUT_MS)
        page.get_by_text("test_days must be > 0, got 0", exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_selector(".crm-lab-panel:has(.crm-lab-p50) .crm-lab-ready", timeout=PAGE_TIMEOUT_MS)
        assert page.get_by_text("There was an error when executing cell").count() == 0
        assert offline_page.outside == []
    finally:
        stop_server(server)
