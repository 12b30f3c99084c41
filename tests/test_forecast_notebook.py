"""notebooks/03_forecast.ipynb on data whose reps carry no bookings quota (a Salesforce import:
User has none) and no target given: it runs, and says there is no target instead of failing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import papermill

from crm_lab.workbench import sample_database

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_forecast.ipynb"


def test_without_a_quota_or_a_target_the_forecast_notebook_runs_and_says_so(tmp_path):
    db = tmp_path / "crm.duckdb"
    shutil.copy(sample_database(), db)
    con = duckdb.connect(str(db))
    con.execute("UPDATE reps SET quota = NULL")
    con.close()
    out = tmp_path / "03.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, log_output=False,
                               parameters={"db_path": str(db), "company": "c2", "trials": 300, "backtest_months": 0})
    cells = json.loads(out.read_text(encoding="utf-8"))["cells"]
    outputs = [o for cell in cells if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    printed = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    assert "No target: the reps carry no bookings quota to default to; pass one with -p target AMOUNT" in printed
    assert "P(reaching" not in printed
    assert not [o for o in outputs if o.get("output_type") == "error"]
