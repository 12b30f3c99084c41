"""Territory planning: accounts assigned to reps, balanced, compact and with little disruption,
with an honest solver status.

- :func:`assign` is the Generalized Assignment core (accounts x reps matrices, workload may
  differ by rep), re-checked independently of the solver.
- :func:`plan_territories` is the territory model on top of it: balance bands for workload and
  potential per FTE share, capacity, compactness, disruption (penalty or budgets), locks,
  forbidden pairs, a radius; when the rules cannot all hold, why, and the soft plan.
- What-if: :func:`add_rep`, :func:`remove_rep`, :func:`with_rep_count`, :func:`compare_plans`,
  :func:`tradeoff_curve`.
- :func:`run_territory` reads a company from the workbench database and stores the plan
  (``territory_plans``, ``territory_assignments``, ``territory_plan_reps``).
"""

from __future__ import annotations

import importlib

# Names are imported on first use, so that `crm-lab` can declare the territory command's
# options (crm_lab.territory.command) without loading PuLP, HiGHS and polars at start-up.
_EXPORTS = {
    "Assignment": "gap", "assign": "gap", "check_assignment": "gap",
    "TerritoryData": "data",
    "Rules": "rules", "TerritorySettings": "rules", "derive_rules": "rules",
    "OPTIMALITY_GAP": "solve", "SolverOptions": "solve",
    "TerritoryPlan": "model", "plan_territories": "model",
    "Violation": "check", "check_plan": "check",
    "diagnose": "diagnose",
    "NewRep": "whatif", "add_rep": "whatif", "compare_plans": "whatif", "remove_rep": "whatif",
    "tradeoff_curve": "whatif", "with_rep_count": "whatif",
    "company_inputs": "store", "read_territory_data": "store", "run_territory": "store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"crm_lab.territory.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'crm_lab.territory' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
