"""notebooks/01_explore.ipynb shows its SQL results as report tables (crm_lab.tables.table):
whole units with separators, percentages, no dtype row, and an empty result as "no rows"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import papermill
import polars as pl
import pytest

from crm_lab.tables import table
from crm_lab.workbench import sample_database
from tests.conftest import query

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_explore.ipynb"
AS_OF = "2025-06-30 23:59:59"


def run(tmp_path: Path, company: str) -> list[dict]:
    out = tmp_path / f"01-{company}.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, log_output=False,
                               cwd=str(ROOT), parameters={"company": company, "as_of": AS_OF})
    return [cell for cell in json.loads(out.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code"]


def cell(cells: list[dict], starts: str) -> dict:
    [found] = [c for c in cells if "".join(c["source"]).startswith(starts)]
    return found


def html(found: dict) -> str:
    [result] = [o for o in found["outputs"] if o["output_type"] == "execute_result"]
    return "".join(result["data"]["text/html"])


def cells_text(found: dict) -> list[str]:
    """The rows of an HTML table as lists of cell texts (header first)."""
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", html(found))]


def test_an_empty_table_says_no_rows_under_its_header():
    empty = table(pl.DataFrame({"detected_by": [], "reason": [], "events": []}))
    assert repr(empty) == "detected_by  reason  events\n(no rows)"
    assert empty._repr_html_().endswith('</tbody></table><p class="crm-lab-table-note">no rows</p>')
    assert "<td" not in empty._repr_html_()


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore")
    return {company: run(folder, company) for company in ("c1", "c2")}


def test_an_empty_result_reads_as_no_rows_not_as_a_row_of_nulls(executed):
    assert query(sample_database(), "SELECT count(*) FROM events_rejected WHERE company_id = 'c2'") == [(0,)]
    rejected = cell(executed["c2"], "rejected = %sql")
    assert cells_text(rejected) == [["detected_by", "reason", "events"]]
    assert html(rejected).endswith('<p class="crm-lab-table-note">no rows</p>')
    assert "null" not in html(rejected)


def test_results_are_report_tables_with_separators_and_percentages_and_no_dtype_row(executed):
    db = sample_database()
    expected = query(db, "SELECT company_id, currency, stage, count(*), sum(amount) FROM deals_as_of(?) "
                         "WHERE NOT is_closed AND company_id = 'c1' GROUP BY ALL ORDER BY company_id, currency, sum(amount) DESC",
                     [AS_OF])
    assert len(expected) > 1
    pipeline = cell(executed["c1"], "pipeline = %sql")
    assert cells_text(pipeline) == [["company_id", "currency", "stage", "deals", "amount"]] + [
        [company, currency, stage, f"{deals:,}", f"{amount:,.0f}"] for company, currency, stage, deals, amount in expected
    ]
    funnel = cell(executed["c1"], "funnel = %sql")
    rates = query(db, "SELECT stage, win_rate_from_stage FROM deal_stage_funnel WHERE company_id = 'c1' ORDER BY stage_order")
    assert [row[1::3] for row in cells_text(funnel)[1:]] == [[stage, f"{rate:.1%}"] for stage, rate in rates]
    rejected = cell(executed["c1"], "rejected = %sql")
    (count,), = query(db, "SELECT count(*) FROM events_rejected WHERE company_id = 'c1'")
    assert sum(int(row[2]) for row in cells_text(rejected)[1:]) == count > 0
    for found in executed["c1"]:
        for output in found.get("outputs", []):
            shown = "".join(output.get("data", {}).get("text/plain", "")) + "".join(output.get("text", ""))
            assert "shape: (" not in shown and "---" not in shown, shown  # polars' own repr and dtype row


def test_no_jupysql_config_notice_in_the_output(executed):
    for found in executed["c1"]:
        for output in found.get("outputs", []):
            shown = "".join(output.get("data", {}).get("text/plain", "")) + "".join(output.get("text", ""))
            assert "toml" not in shown, shown
