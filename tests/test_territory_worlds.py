"""On generated CRM worlds (crm_lab.generate, loaded and replayed), every plan the model returns
keeps its balance bands, capacities, locks and move budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crm_lab.db import reading
from crm_lab.generate import generate
from crm_lab.load import load
from crm_lab.replay import replay
from crm_lab.territory import SolverOptions, TerritorySettings, plan_territories, read_territory_data
from tests.test_territory_model import assert_keeps_every_rule


@pytest.fixture(scope="module", params=[(11, 150), (12, 600)], ids=["seed11-150deals", "seed12-600deals"])
def world_db(request, tmp_path_factory):
    seed, deals = request.param
    folder = tmp_path_factory.mktemp(f"world{seed}")
    generate(folder / "export", companies=2, deals=deals, seed=seed, fmt="parquet")
    db = folder / "crm.duckdb"
    load(db, [folder / "export"])
    replay(db)
    return db


@pytest.mark.parametrize("tolerance, max_moves", [(0.3, None), (0.4, 8)])
def test_plans_on_generated_worlds_keep_bands_capacities_locks_and_budgets(world_db, tolerance, max_moves):
    with reading(world_db) as con:
        companies = [c for (c,) in con.sql("SELECT DISTINCT company_id FROM accounts ORDER BY 1").fetchall()]
        worlds = [read_territory_data(con, company) for company in companies]
    kinds = []
    for data in worlds:
        owned = np.flatnonzero(data.current_index() >= 0)
        locks = [(data.account_ids[owned[0]], data.current_rep[owned[0]]),
                 (data.account_ids[owned[-1]], data.rep_ids[0])]
        s = TerritorySettings(tolerance=tolerance, potential_tolerance=math.inf, max_moves=max_moves, locks=locks)
        plan = plan_territories(data, s, SolverOptions(time_limit=4, gap_rel=0.02))
        kinds.append(plan.kind)
        if plan.kind == "hard":
            assert plan.status in ("optimal", "feasible") and plan.violations == []
            assert_keeps_every_rule(data, s, plan.rep_of_account)
            loads = plan.rep_loads()
            assert (loads["workload_hours"] <= loads["capacity_hours"] + 1e-6).all()
        else:
            assert plan.status in ("infeasible", "error") and plan.diagnosis or plan.message
    if max_moves is None:
        assert "hard" in kinds  # the worlds are plannable at this tolerance
