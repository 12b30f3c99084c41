"""notebooks/05_territory.ipynb runs under papermill with parameters and shows its results as
text and matplotlib images (no widget needed to see them)."""

from __future__ import annotations

import json
from pathlib import Path

import papermill

from tests.conftest import declared_parameters

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_territory.ipynb"


def test_the_parameters_cell_is_tagged_and_papermill_can_parse_it():
    names = declared_parameters(NOTEBOOK)
    assert {"db_path", "company", "tolerance", "potential_band", "max_moves", "add_rep", "remove_rep",
            "time_limit", "curve_budgets"} <= names


def test_the_notebook_runs_with_parameters_and_embeds_its_charts(tmp_path):
    out = tmp_path / "05.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, log_output=False,
        parameters={"company": "c2", "tolerance": 0.2, "potential_band": 0.9, "max_moves": 30,
                    "add_rep": "new-9:50.1:8.7:1600", "remove_rep": "rep-0002", "time_limit": 1.5,
                    "curve_budgets": [0, 10, 40]},
    )
    executed = json.loads(out.read_text(encoding="utf-8"))
    outputs = [output for cell in executed["cells"] if cell["cell_type"] == "code" for output in cell.get("outputs", [])]
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert "c2: 66 accounts" in text and "territory plan for c2: " in text
    assert "+ new-9" in text and "- rep-0002" in text
    assert images >= 4  # maps before/after, workload and potential bars, trade-off curve
