"""notebooks/04_lead_thresholds.ipynb runs under papermill with parameters and shows its results
as text and matplotlib images (no widget needed to see them)."""

from __future__ import annotations

import json
from pathlib import Path

import papermill

from tests.conftest import declared_parameters, executed_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_lead_thresholds.ipynb"


def test_the_parameters_cell_is_tagged_and_papermill_can_parse_it():
    names = declared_parameters(NOTEBOOK)
    assert {"db_path", "company", "as_of", "capacity_hours", "hours_per_lead", "cost_per_lead", "objective", "target"} <= names


def test_the_notebook_runs_with_parameters_and_embeds_its_charts(report_batch):
    # Run by the session's report batch (tests/conftest.py) with company c2, capacity_hours 60,
    # objective f_beta, 50 replicates and seed 3: one papermill run for this test and test_batch.py.
    executed = executed_notebook(report_batch, "leads")
    text = "".join(
        "".join(output.get("text", ""))
        for cell in executed["cells"] if cell["cell_type"] == "code" for output in cell.get("outputs", [])
    )
    images = sum(
        "image/png" in output.get("data", {})
        for cell in executed["cells"] if cell["cell_type"] == "code" for output in cell.get("outputs", [])
    )
    assert "c2: trained on" in text and "best cut-off for f_beta (capacity 60 h)" in text
    assert images >= 4  # calibration, curves, bootstrap choices, scenario heatmap


def test_with_no_capacity_the_notebook_says_so_instead_of_drawing_empty_charts(tmp_path):
    out = tmp_path / "04.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, log_output=False,
        parameters={"company": "c2", "capacity_hours": 0.0, "replicates": 20},
    )
    executed = json.loads(out.read_text(encoding="utf-8"))
    code = [cell for cell in executed["cells"] if cell["cell_type"] == "code"]

    def texts(cell):
        return "".join("".join(output.get("text", "")) for output in cell.get("outputs", []))

    def images(cell):
        return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))

    [bootstrap_cell] = [cell for cell in code if "".join(cell["source"]).startswith("boot = result.bootstrap")]
    [grid_cell] = [cell for cell in code if "grid_sweep(" in "".join(cell["source"])]
    [open_cell] = [cell for cell in code if "".join(cell["source"]).startswith("open_now")]
    reason = "capacity 0 h admits no lead at 1.5 h per lead"
    assert texts(bootstrap_cell) == (
        f"route nobody ({reason})\n"
        "All 20 bootstrap replicates route nobody, so there is no spread of best cut-offs to chart.\n"
    )
    assert texts(grid_cell) == (
        f"No lead is routed ({reason}), so there is no revenue from routed leads to simulate: "
        "raise capacity_hours to see this grid.\n"
    )
    assert texts(open_cell).startswith("None of the ") and texts(open_cell).endswith(f" open leads is routed: {reason}.\n")
    assert images(bootstrap_cell) == images(grid_cell) == 0
