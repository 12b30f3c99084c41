"""Advice names each setting in the words of the surface showing it: command-line flags for
``crm-lab territory``, notebook 05's parameters in the notebook and a batch spec, the panel's
controls in the dashboard. On an imported CRM export (no workload, potential or rep homes) the
notebook prints the refusal as a list and skips the charts, its parameters turn the rules off,
a batch spec can set them, and the panel lists the rules, offers the boxes that turn them off,
shows no empty images, and says in one line when a company has no accounts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import papermill
import pytest

from crm_lab.batch.spec import load_spec
from crm_lab.errors import InvalidArgument
from crm_lab.importers import import_export
from crm_lab.replay import replay
from crm_lab.territory import SolverOptions, TerritorySettings, company_inputs, plan_territories, run_territory
from crm_lab.territory.inputs import MissingInputs
from crm_lab.territory.report import notebook_settings, refusal
from crm_lab.territory.whatif import with_rep_count
from crm_lab.widgets import TerritoryPanel
from tests.test_territory_model import two_towns

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
NOTEBOOK = ROOT / "notebooks" / "05_territory.ipynb"
FAST = SolverOptions(time_limit=2, gap_rel=0.02)
ACCOUNTS = "missing for 33 of 33 accounts (acct-00001, acct-00002, acct-00003, ...)"
REPS = "missing for 8 of 8 reps (rep-0001, rep-0002, rep-0003, ...)"
HEADER = "the inputs of some rules are missing for c1; nothing was solved:"


@pytest.fixture(scope="module")
def byo_db(tmp_path_factory) -> Path:
    """The README's "Bring your own CRM" block: the Salesforce sample as c1, HubSpot deals and
    contacts (no accounts) as hubspot."""
    db = tmp_path_factory.mktemp("byo-surfaces") / "byo.duckdb"
    import_export(db, SAMPLES / "salesforce" / "c1", fmt="salesforce")
    import_export(db, SAMPLES / "hubspot" / "c2" / "deals.csv", fmt="mapped", mapping=SAMPLES / "hubspot" / "hubspot.yaml",
                  company="hubspot")
    import_export(db, SAMPLES / "hubspot" / "c2" / "contacts.csv", fmt="mapped",
                  mapping=SAMPLES / "hubspot" / "hubspot-contacts.yaml", company="hubspot")
    replay(db)
    return db


def refused(data, settings) -> MissingInputs:
    with pytest.raises(MissingInputs) as caught:
        plan_territories(data, settings, FAST)
    return caught.value


def test_the_refusal_carries_structured_items_rendered_per_surface(byo_db):
    error = refused(company_inputs(byo_db, "c1"), TerritorySettings())
    assert [(i.rules, i.needs, i.missing, [(k.setting, k.value) for k in i.off]) for i in error.items] == [
        (("the workload band",), "each account's workload_hours", "33 of 33 accounts (acct-00001, acct-00002, "
         "acct-00003, ...)", [("tolerance", math.inf)]),
        (("the potential band",), "each account's potential", "33 of 33 accounts (acct-00001, acct-00002, "
         "acct-00003, ...)", [("potential_tolerance", math.inf)]),
        (("compactness",), "each rep's home_lat and home_lon", "8 of 8 reps (rep-0001, rep-0002, rep-0003, ...)",
         [("distance_weight", 0)]),
    ]
    assert error.lines("notebook") == [
        f"the workload band needs each account's workload_hours: {ACCOUNTS}; load them with a file of company_id, account_id, workload_hours, which later imports keep "
        "(the workload band can be turned off with tolerance = None)",
        f"the potential band needs each account's potential: {ACCOUNTS}; set it in the accounts export or the accounts' events (a CRM import has none), or turn it "
        "off with potential_band = None",
        f"compactness needs each rep's home_lat and home_lon: {REPS}; load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude), or turn "
        "compactness off with distance_weight = 0",
    ]
    assert error.lines("panel") == [
        f"the workload band needs each account's workload_hours: {ACCOUNTS}; load them with a file of company_id, account_id, workload_hours, which later imports keep "
        "(the workload band can be turned off with \"balance workload\" unticked)",
        f"the potential band needs each account's potential: {ACCOUNTS}; set it in the accounts export or the accounts' events (a CRM import has none), or turn it "
        "off with \"balance potential\" unticked",
        f"compactness needs each rep's home_lat and home_lon: {REPS}; load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude), or turn "
        "compactness off with \"use distance\" unticked",
    ]
    assert str(error).splitlines()[3].endswith("or turn compactness off with --distance-weight 0")


def test_the_radius_and_the_moved_potential_budget_are_dropped_in_each_surfaces_words(byo_db):
    error = refused(company_inputs(byo_db, "c1"), TerritorySettings(tolerance=math.inf, max_distance_km=300,
                                                                      max_moved_potential=5.0))
    endings = {surface: [line.split("; ")[-1] for line in error.lines(surface)] for surface in ("cli", "notebook", "panel")}
    # The potential band follows --tolerance inf, so only the budget needs potential here.
    assert endings == {
        "cli": ["set it in the accounts export or the accounts' events (a CRM import has none), or drop --max-moved-potential",
                "load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude), or turn compactness off with --distance-weight 0 and drop --radius-km"],
        "notebook": ["set it in the accounts export or the accounts' events (a CRM import has none), or set max_moved_potential = None",
                     "load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude), or turn compactness off with distance_weight = 0 and set "
                     "radius_km = None"],
        "panel": ["set it in the accounts export or the accounts' events (a CRM import has none), or start the panel with max_moved_potential=None",
                  "load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude), or turn compactness off with \"use distance\" unticked"],
    }


def test_the_potential_diagnosis_names_the_setting_per_surface():
    plan = plan_territories(two_towns(potential=(70.0, 10.0, 10.0, 10.0)),
                            TerritorySettings(tolerance=0.5, potential_tolerance=0.2), FAST)
    why = {surface: plan.describe(surface).splitlines()[2] for surface in ("cli", "notebook", "panel")}
    start = ("  why: account a1 alone has potential 70, above the upper end of the potential band of every rep it may "
             "go to (largest: r1's 60, its target 50 + 20.0%); raise the potential tolerance to at least 0.4 ")
    assert why == {
        "cli": start + "(--potential-tolerance 0.4), leave potential unbalanced (--potential-tolerance inf), or "
                       "split the account",
        "notebook": start + "(potential_band = 0.4), leave potential unbalanced (potential_band = None), or split "
                            "the account",
        "panel": start + "(\"potential ±\" at 40.0% or more), leave potential unbalanced (\"balance potential\" "
                         "unticked), or split the account",
    }
    assert plan.diagnosis[0] == why["cli"][len("  why: "):]  # stored and printed by the CLI as before
    assert json.loads(json.dumps(plan.diagnosis)) == [str(d) for d in plan.diagnosis]


def test_notebook_parameters_turn_the_rules_off():
    settings = notebook_settings(tolerance=None, potential_band=math.inf, distance_weight=0)
    assert (settings.tolerance, settings.potential_tolerance, settings.distance_weight) == (math.inf, math.inf, 0)
    assert notebook_settings(tolerance=0.15, potential_band=None).potential_tolerance == math.inf


def test_notebook_05_prints_the_refusal_as_a_list_and_skips_the_charts(byo_db, tmp_path):
    out = tmp_path / "05.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               parameters={"db_path": str(byo_db), "company": "c1", "time_limit": 1.0})
    text, images = notebook_text(out)
    assert (
        f"{HEADER}\n"
        f"  - the workload band needs each account's workload_hours: {ACCOUNTS}; load them with a file of company_id, account_id, workload_hours, which later imports keep "
        "(the workload band can be turned off with tolerance = None)\n"
        f"  - compactness needs each rep's home_lat and home_lon: {REPS}; load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude), or turn "
        "compactness off with distance_weight = 0\n"
        "set the parameters named above (papermill -p NAME VALUE, or a batch spec's parameters) to plan without "
        "those rules; the plan and its charts are skipped\n"
    ) in text
    assert "--" not in text and "Traceback" not in text and "territory plan for" not in text
    assert images == 0


def test_notebook_05_plans_an_import_with_those_parameters(byo_db, tmp_path):
    out = tmp_path / "05.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               parameters={"db_path": str(byo_db), "company": "c1", "tolerance": None,
                                           "distance_weight": 0, "time_limit": 1.0, "curve_budgets": [0, 4]})
    text, images = notebook_text(out)
    assert "rules: workload unbalanced, potential unbalanced; any number of moves, each costing 50 km (distance " \
           "weighted 0)" in text
    assert "territory plan for c1: optimal, 33 accounts, 8 reps" in text
    assert ("moved 0 account(s), reassigned 0, not measured: distance (no locations), workload (no workload_hours), "
            "potential (no potential)") in text
    assert "+ new-1" in text and "- rep-0001" in text
    assert images >= 3


def test_notebook_05_says_when_a_company_has_no_accounts(byo_db, tmp_path):
    out = tmp_path / "05.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               parameters={"db_path": str(byo_db), "company": "hubspot"})
    text, images = notebook_text(out)
    assert "hubspot: 0 accounts, 0 reps\n" in text and "no accounts to plan for company hubspot\n" in text
    assert images == 0


def test_a_batch_spec_can_turn_the_rules_off(tmp_path):
    spec = tmp_path / "byo.yaml"
    spec.write_text(
        "name: byo\nruns:\n"
        f"  - name: territory-c1\n    notebook: {NOTEBOOK}\n"
        "    parameters: {company: c1, tolerance: null, potential_band: .inf, distance_weight: 0}\n",
        encoding="utf-8",
    )
    (run,) = load_spec(spec).runs
    assert run.parameters == {"company": "c1", "tolerance": None, "potential_band": math.inf, "distance_weight": 0}


def test_the_panel_lists_the_refusal_and_its_boxes_turn_the_rules_off(byo_db):
    panel = TerritoryPanel(company_inputs(byo_db, "c1"), solver=FAST)
    assert panel.describe.value == (
        f"<div class=\"crm-lab-refusal\"><p>{HEADER}</p><ul>"
        f"<li>the workload band needs each account&#x27;s workload_hours: {ACCOUNTS}; load them with a file of company_id, account_id, workload_hours, which later imports keep "
        "(the workload band can be turned off with &quot;balance workload&quot; unticked)</li>"
        f"<li>compactness needs each rep&#x27;s home_lat and home_lon: {REPS}; load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users&#x27; Latitude and Longitude), or turn "
        "compactness off with &quot;use distance&quot; unticked</li></ul></div>"
    )
    assert "--" not in panel.describe.value and "crm-lab-error" not in panel.status.value
    assert (panel.maps.value, panel.balance.value) == (b"", b"")
    assert panel.maps.layout.display == panel.balance.layout.display == "none"  # no broken-image icons
    assert panel.controls["tolerance"].max == 2.0 and panel.controls["potential"].max == 2.0
    panel.controls["balance_workload"].value = False
    assert HEADER in panel.describe.value  # compactness still refused
    panel.controls["distance"].value = False
    assert panel.current_settings().distance_weight == 0 and panel.current_settings().tolerance == math.inf
    assert panel.describe.value.startswith("<pre>territory plan for c1: optimal, 33 accounts, 8 reps")
    assert panel.maps.value[:4] == b"\x89PNG" and panel.maps.layout.display is None


def test_a_company_without_accounts_gets_one_line_in_the_panel(byo_db):
    data = company_inputs(byo_db, "hubspot")
    assert (data.n_accounts, data.n_reps, data.company_id) == (0, 0, "hubspot")
    panel = TerritoryPanel(data, solver=FAST)
    assert panel.describe.value == "<p>no accounts to plan for company hubspot</p>"
    assert panel.controls == {} and panel.maps.layout.display == "none"
    assert refusal(data, TerritorySettings()) == "no accounts to plan for company hubspot"
    # Still refused where a plan is asked for, and an unknown company is still refused everywhere.
    with pytest.raises(InvalidArgument, match=r"^company: no accounts for 'hubspot'; companies: c1$"):
        run_territory(byo_db, "hubspot", save=False)
    with pytest.raises(InvalidArgument, match=r"^company: no accounts for 'zz'; companies: c1$"):
        company_inputs(byo_db, "zz")


def test_a_new_rep_for_data_without_homes_or_workload_has_no_home_and_no_limit(byo_db):
    data = company_inputs(byo_db, "c1")
    bigger = with_rep_count(data, data.n_reps + 1)
    assert bigger.rep_ids[-1] == "new-1" and math.isinf(bigger.capacity[-1])


def notebook_text(path: Path) -> tuple[str, int]:
    executed = json.loads(path.read_text(encoding="utf-8"))
    outputs = [o for cell in executed["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    return text, images
