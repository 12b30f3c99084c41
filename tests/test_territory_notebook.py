"""notebooks/05_territory.ipynb runs under papermill with parameters (in the session's report
batch) and shows its results as text and matplotlib images (no widget needed to see them)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import declared_parameters, executed_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_territory.ipynb"


def test_the_parameters_cell_is_tagged_and_papermill_can_parse_it():
    names = declared_parameters(NOTEBOOK)
    assert {"db_path", "company", "tolerance", "potential_band", "max_moves", "add_rep", "remove_rep",
            "time_limit", "curve_budgets"} <= names


def test_the_notebook_runs_with_parameters_and_embeds_its_charts(report_batch):
    # Run by the session's report batch (tests/conftest.py) with company c2, tolerance 0.2,
    # potential_band 0.9, max_moves 30, add_rep new-9, remove_rep rep-0002, time_limit 1.5 and
    # curve_budgets [0, 10, 40]: one papermill run for this test and test_batch.py.
    executed = executed_notebook(report_batch, "territory-c2")
    outputs = [output for cell in executed["cells"] if cell["cell_type"] == "code" for output in cell.get("outputs", [])]
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert "c2: 66 accounts" in text and "territory plan for c2: " in text
    assert "+ new-9" in text and "- rep-0002" in text
    assert images >= 4  # maps before/after, workload and potential bars, trade-off curve
