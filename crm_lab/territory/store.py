"""The thin layer between the territory model and the workbench database: read a company's
accounts and reps (read-only), and write a plan's rows in one short transaction
(:func:`plan_frames` builds them, :func:`save_plan` writes them; a batch report writes the same
frames to files: :func:`write_report_results`).

Tables (SQL in ``crm_lab/sql/schema/``): ``territory_plans`` (one row per plan, starting with the
common run columns, ``plan_id`` being the run id), ``territory_assignments`` (one row per account)
and ``territory_plan_reps`` (one row per rep, loads against bands).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from importlib.resources import files

import duckdb
import numpy as np
import polars as pl

from crm_lab.db import DEFAULT_DB, check_writable, reading
from crm_lab.errors import InvalidArgument
from crm_lab.results import report_run_id, store_frames, stored_text, write_result_files
from crm_lab.runs import RunRecord, _jsonable, input_fingerprint
from crm_lab.territory.data import TerritoryData
from crm_lab.territory.model import PLAN_GAP, TerritoryPlan, plan_territories
from crm_lab.territory.rules import TerritorySettings
from crm_lab.territory.solve import SolverOptions
from crm_lab.territory.whatif import NewRep, add_rep, remove_rep

TERRITORY_TABLES = ("territory_plans", "territory_assignments", "territory_plan_reps")
DEFAULT_ROLES = ("AE",)


def territory_sql(name: str) -> str:
    return (files("crm_lab") / "sql" / "territory" / f"{name}.sql").read_text(encoding="utf-8")


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    query = "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? UNION ALL SELECT count(*) FROM duckdb_views() WHERE view_name = ?"
    return sum(n for (n,) in con.sql(query, params=[name, name]).fetchall()) > 0


class NoAccounts(InvalidArgument):
    """A company of the database (it has events) without accounts: nothing to plan."""

    def __init__(self, message: str, company: str):
        super().__init__(message)
        self.company = company


def no_accounts(company: str) -> TerritoryData:
    """A company's inputs when it has no accounts (and so no territory): empty, named."""
    empty = np.array([], dtype=float)
    return TerritoryData(account_ids=[], account_lat=empty, account_lon=empty, workload=empty, potential=empty,
                         current_rep=[], rep_ids=[], rep_home_lat=empty, rep_home_lon=empty, capacity=empty,
                         fte=empty, company_id=company)


def read_territory_data(
    con: duckdb.DuckDBPyConnection, company: str, *, roles: Sequence[str] | None = DEFAULT_ROLES
) -> TerritoryData:
    """A company's live accounts (replayed owner and potential) and its active reps in ``roles``
    (None: every active rep), from a replayed workbench database."""
    for table in ("accounts", "reps", "account_history", "accounts_current"):
        if not _has_table(con, table):
            raise InvalidArgument(f"the database has no {table}: load the export and run `crm-lab replay` first")
    companies = [c for (c,) in con.sql("SELECT DISTINCT company_id FROM accounts ORDER BY 1").fetchall()]
    if company not in companies:
        message = f"company: no accounts for {company!r}; companies: {', '.join(companies) or 'none'}"
        if _has_table(con, "events") and con.sql("SELECT count(*) FROM events WHERE company_id = ?",
                                                 params=[company]).fetchall()[0][0]:
            raise NoAccounts(message, company)
        raise InvalidArgument(message)
    params = {"company": company}
    accounts = con.sql(territory_sql("accounts"), params=params).pl()
    reps = con.sql(territory_sql("reps"), params=params | {"roles": list(roles) if roles is not None else None}).pl()
    if reps.height == 0:
        raise InvalidArgument(f"roles: company {company!r} has no active rep with role in {list(roles or [])}")
    return TerritoryData.from_frames(accounts, reps, company_id=company)


def company_inputs(
    db_path: str | os.PathLike | None = None, company: str | None = None, *, roles: Sequence[str] | None = DEFAULT_ROLES
) -> TerritoryData:
    """What a notebook starts from: a company's inputs from ``db_path`` (None: see
    :func:`crm_lab.workbench.default_database`), the first company when None. A company of the
    database that has no accounts (e.g. a CRM export of deals only) gives empty inputs
    (:func:`no_accounts`): a notebook or panel then says there is nothing to plan, and the rest of
    its page still works; a company the database does not know is refused."""
    if db_path is None:
        from crm_lab.workbench import default_database

        db_path = default_database()
    with reading(db_path) as con:
        if company is None:
            first = con.sql("SELECT min(company_id) FROM accounts").fetchall()[0][0]
            if first is None:
                raise InvalidArgument(f"database {db_path} has no accounts")
            company = first
        try:
            return read_territory_data(con, company, roles=roles)
        except NoAccounts:
            return no_accounts(company)


def apply_whatifs(data: TerritoryData, add_reps: Sequence[NewRep] = (), remove_reps: Sequence[str] = ()) -> TerritoryData:
    """``data`` with reps removed, then reps added. A rep named twice for removal is removed once;
    a new rep id given twice is refused (the two may differ in home or capacity)."""
    for rep_id in dict.fromkeys(remove_reps):
        data = remove_rep(data, rep_id)
    seen: set[str] = set()
    for rep in add_reps:
        if rep.rep_id in seen:
            raise InvalidArgument(f"add_rep: rep {rep.rep_id!r} is given twice; give each new rep once")
        seen.add(rep.rep_id)
        data = add_rep(data, rep)
    return data


def run_territory(
    db_path: str | os.PathLike = DEFAULT_DB,
    company: str | None = None,
    settings: TerritorySettings | None = None,
    solver: SolverOptions | None = None,
    *,
    add_reps: Sequence[NewRep] = (),
    remove_reps: Sequence[str] = (),
    roles: Sequence[str] | None = DEFAULT_ROLES,
    save: bool = True,
    lock_timeout: float | None = None,
) -> TerritoryPlan:
    """Plan a company's territories from the workbench database and store the plan.

    Parameters
    ----------
    db_path : path
        A loaded and replayed workbench database.
    company : str
        The tenant (required).
    settings, solver
        See :class:`TerritorySettings` and :class:`SolverOptions`.
    add_reps, remove_reps
        What-if: reps to add (:class:`NewRep`) and rep ids to remove before planning.
    roles : sequence of str or None
        Which reps own accounts (default AEs); None for every active rep.
    save : bool
        Write ``territory_plans``, ``territory_assignments`` and ``territory_plan_reps`` rows
        (one short transaction). The returned plan's ``plan_id`` is set either way.
    """
    if not company:
        raise InvalidArgument("company is required: a territory plan is for one company")
    settings = settings or TerritorySettings()
    solver = solver or SolverOptions(gap_rel=PLAN_GAP)
    if save:
        check_writable(db_path)  # before the solve, not after it
    started = time.perf_counter()
    with reading(db_path, lock_timeout=lock_timeout) as con:
        data = read_territory_data(con, company, roles=roles)
        fingerprint = input_fingerprint(con)
    data = apply_whatifs(data, add_reps, remove_reps)
    plan = plan_territories(data, settings, solver)
    record = plan_record(plan, solver, fingerprint=fingerprint, add_reps=add_reps, remove_reps=remove_reps,
                         roles=roles, seconds=time.perf_counter() - started)
    if save:
        save_plan(db_path, plan, record, lock_timeout=lock_timeout)
    return plan


def plan_record(
    plan: TerritoryPlan,
    solver: SolverOptions,
    *,
    fingerprint: str,
    add_reps: Sequence[NewRep | dict] = (),
    remove_reps: Sequence[str] = (),
    roles: Sequence[str] | None = DEFAULT_ROLES,
    seconds: float | None = None,
) -> RunRecord:
    """A plan's run record, as ``crm-lab territory`` keeps it (its parameters: the settings, the
    solver options, the what-if reps and the roles); sets the plan's ``plan_id`` to its run id."""
    parameters = {
        "settings": dataclasses.asdict(plan.settings),
        "solver": dataclasses.asdict(solver),
        "add_reps": [dataclasses.asdict(rep) if dataclasses.is_dataclass(rep) else dict(rep) for rep in add_reps],
        "remove_reps": list(dict.fromkeys(remove_reps)),
        "roles": None if roles is None else list(roles),
    }
    record = RunRecord(kind="territory", parameters=parameters, input_fingerprint=fingerprint,
                       company_id=plan.data.company_id, seed=solver.seed, seconds=seconds)
    plan.plan_id = record.run_id
    return record


def write_report_results(
    results_dir,
    plans: dict[str, TerritoryPlan | None],
    solver: SolverOptions,
    *,
    db_path: str | os.PathLike | None = None,
    roles: Sequence[str] | None = DEFAULT_ROLES,
) -> str | None:
    """What notebook 05 does with its ``results_dir`` parameter: write the plans it shows as
    ``territory_plans``, ``territory_assignments`` and ``territory_plan_reps`` parquet files for
    the batch to store, the rows ``crm-lab territory`` stores for each plan.

    ``plans`` maps the labels the report shows to plans (None: not solved, skipped); the first
    is the plan of the report, the others what-ifs on it. A what-if's record names the reps it
    adds and removes against the first plan's data (as ``--add-rep`` / ``--remove-rep`` would).
    In a batch the first plan's ``plan_id`` is the report run's (``report_runs.run_id``) and
    each other plan's that id followed by ``/`` and its label (``+ rep-9``: ``add-rep-9``, ``-
    rep-2``: ``remove-rep-2``). ``db_path`` (None: the notebook's default database) gives the
    input fingerprint. Returns what the report says about it; None (nothing written) when
    ``results_dir`` is None."""
    if results_dir is None:
        return None
    if db_path is None:
        from crm_lab.workbench import default_database

        db_path = default_database()
    shown = {label: plan for label, plan in plans.items() if plan is not None}
    if not shown:
        raise InvalidArgument("plans: no plan to store")
    with reading(db_path) as con:
        fingerprint = input_fingerprint(con)
    report = report_run_id(results_dir)
    base = next(iter(shown.values())).data
    frame_sets, ids = [], []
    for index, (label, plan) in enumerate(shown.items()):
        added, removed = _whatif_against(base, plan.data)
        record = plan_record(plan, solver, fingerprint=fingerprint, add_reps=added, remove_reps=removed, roles=roles,
                             seconds=plan.seconds)
        if report is not None:
            record.run_id = plan.plan_id = report if index == 0 else f"{report}/{_label_id(label)}"
        frame_sets.append(plan_frames(plan, record))
        ids.append(record.run_id)
    counts = write_result_files(results_dir, *frame_sets, tables=TERRITORY_TABLES)
    return stored_text(results_dir, counts, ids, key="plan_id", table="territory_plans")


def _whatif_against(base: TerritoryData, data: TerritoryData) -> tuple[list[dict], list[str]]:
    """The reps ``data`` adds to ``base`` (NewRep's fields; a home or capacity the data does not
    have is None) and the rep ids it removes."""
    before, after = set(base.rep_ids.tolist()), data.rep_ids.tolist()
    added = [
        {"rep_id": rep, "home_lat": _finite(float(data.rep_home_lat[i])), "home_lon": _finite(float(data.rep_home_lon[i])),
         "capacity_hours": _finite(float(data.capacity[i])), "fte": float(data.fte[i])}
        for i, rep in enumerate(after) if rep not in before
    ]
    return added, [rep for rep in base.rep_ids.tolist() if rep not in set(after)]


def _label_id(label: str) -> str:
    """A plan label as an id part: '+ rep-9' -> 'add-rep-9', '- rep-2' -> 'remove-rep-2'."""
    text = label.strip()
    if text.startswith("+"):
        text = "add " + text[1:]
    elif text.startswith("-"):
        text = "remove " + text[1:]
    return "-".join(part for part in "".join(c if c.isalnum() or c in "._" else " " for c in text.lower()).split())


def _finite(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def plan_frames(plan: TerritoryPlan, record: RunRecord) -> dict[str, pl.DataFrame]:
    """The rows a plan writes, per table (pure: no database)."""
    company = plan.data.company_id
    if company is None:
        raise InvalidArgument("plan: data.company_id is required to store a plan (every row carries company_id)")
    summary = plan.summary()
    head = dict(zip(("plan_id", "company_id", "started_at", "seconds", "parameters", "seed", "crm_lab_version",
                     "input_fingerprint"), record.values()))
    plans = pl.DataFrame([head | {
        "status": plan.status, "plan_kind": plan.kind, "solve_status": plan.solve_status, "solver": plan.solver,
        "solver_status": plan.solver_status, "objective": _finite(plan.objective), "bound": _finite(plan.bound),
        "gap": _finite(plan.gap), "message": plan.message or None, "accounts": plan.data.n_accounts,
        "reps": plan.data.n_reps, "moved": summary.get("moved"), "moved_potential": summary.get("moved_potential"),
        "reassigned": summary.get("reassigned"), "total_distance_km": summary.get("total_distance_km"),
        "max_workload_deviation": summary.get("max_workload_deviation"),
        "max_potential_deviation": summary.get("max_potential_deviation"),
        "diagnosis": json.dumps(plan.diagnosis),
        "violations": json.dumps(_jsonable([v.as_dict() for v in plan.violations])),
    }], strict=False)
    assignments = plan.assignments().drop("lat", "lon").with_columns(
        pl.lit(record.run_id).alias("plan_id"), pl.lit(company).alias("company_id"),
        *[pl.col(c).fill_nan(None) for c in ("distance_km", "workload_hours", "potential")],
    )
    loads = plan.rep_loads()
    home = pl.DataFrame({"rep_id": plan.data.rep_ids.tolist(), "home_lat": plan.data.rep_home_lat,
                         "home_lon": plan.data.rep_home_lon})
    reps = (
        loads.join(home, on="rep_id")
        .with_columns(pl.lit(record.run_id).alias("plan_id"), pl.lit(company).alias("company_id"))
        .with_columns(  # no limit (inf) and missing inputs (NaN: no home, no workload...) are NULL
            [pl.when(pl.col(c).is_infinite() | pl.col(c).is_nan()).then(None).otherwise(pl.col(c)).alias(c)
             for c in ("capacity_hours", "home_lat", "home_lon", "workload_hours", "workload_target",
                       "workload_lower", "workload_upper", "potential", "potential_target", "potential_lower",
                       "potential_upper", "distance_km")]
        )
        .select("plan_id", "company_id", "rep_id", "is_new", "fte", "capacity_hours", "home_lat", "home_lon", "accounts",
                "workload_hours", "workload_target", "workload_lower", "workload_upper", "potential",
                "potential_target", "potential_lower", "potential_upper", "distance_km")
    )
    return {"territory_plans": plans, "territory_assignments": assignments, "territory_plan_reps": reps}


def save_plan(db_path: str | os.PathLike, plan: TerritoryPlan, record: RunRecord, *, lock_timeout: float | None = None) -> None:
    """Write a plan's rows in one transaction (tables are created when missing)."""
    store_frames(db_path, plan_frames(plan, record), tables=TERRITORY_TABLES, lock_timeout=lock_timeout)

