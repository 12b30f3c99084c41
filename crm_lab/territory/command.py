"""``crm-lab territory``: the command line over :func:`crm_lab.territory.run_territory`.

``add_territory_arguments`` declares the options on an argparse sub-parser and
``run_territory_command`` runs them, so the CLI stays a thin shell over the Python API.
"""

from __future__ import annotations

import argparse

# Kept here rather than imported so that declaring the options loads nothing heavy; a test
# checks they equal crm_lab.territory.solve.SOLVERS and crm_lab.territory.store.DEFAULT_ROLES.
SOLVER_CHOICES = ("auto", "highs", "cbc")
TERRITORY_HELP = (
    "assign a company's accounts to reps: balanced workload (and potential) per FTE share, capacity, "
    "compactness, few moves; prints the solver's honest status, stores the plan by plan_id"
)
DEFAULT_ROLES = ("AE",)
PLAN_GAP = 0.01  # equals crm_lab.territory.model.PLAN_GAP (a test checks)


def add_territory_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``crm-lab territory`` (``--db`` is added by the CLI itself)."""
    parser.add_argument("--company", required=True, help="the tenant to plan")
    parser.add_argument("--tolerance", type=float, default=0.10,
                        help="workload band around each rep's FTE share, e.g. 0.1 for +-10%% (default 0.1; inf leaves workload "
                             "unbalanced)")
    parser.add_argument("--potential-tolerance", type=float, default=None,
                        help="the same band for potential (default: --tolerance; inf leaves potential unbalanced)")
    parser.add_argument("--max-moves", type=int, default=None, help="at most N accounts leave their current rep")
    parser.add_argument("--max-moved-potential", type=float, default=None,
                        help="at most this much potential leaves current reps")
    parser.add_argument("--radius-km", type=float, default=None,
                        help="no account goes to a new rep farther than this (also shrinks the model)")
    parser.add_argument("--distance-to", choices=("home", "territory"), default="home",
                        help="compactness measured to the rep's home or territory centre (default home)")
    parser.add_argument("--distance-weight", type=float, default=1.0, help="objective cost per km (default 1)")
    parser.add_argument("--move-weight", type=float, default=50.0,
                        help="objective cost per account moved, in km-equivalents (default 50)")
    parser.add_argument("--add-rep", action="append", default=[], metavar="ID:LAT:LON:CAPACITY[:FTE]",
                        help="what-if: add a rep (repeatable)")
    parser.add_argument("--remove-rep", action="append", default=[], metavar="REP_ID",
                        help="what-if: remove a rep; its accounts are reassigned (repeatable)")
    parser.add_argument("--lock", action="append", default=[], metavar="ACCOUNT_ID:REP_ID",
                        help="the account must go to this rep (repeatable)")
    parser.add_argument("--forbid", action="append", default=[], metavar="ACCOUNT_ID:REP_ID",
                        help="the account must not go to this rep (repeatable)")
    parser.add_argument("--role", action="append", default=None, metavar="ROLE",
                        help=f"reps with this role own accounts (repeatable; default {', '.join(DEFAULT_ROLES)})")
    parser.add_argument("--no-soft", action="store_true",
                        help="when the rules cannot all hold, report why but do not solve the soft plan")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve (default 60)")
    parser.add_argument("--gap-rel", type=float, default=PLAN_GAP,
                        help="stop once the plan is proven within this relative gap of the best possible (the plan "
                             "is then reported feasible, with its gap; default 0.01, 0 to prove optimality)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="solver random seed (default 0)")
    parser.add_argument("--solver", choices=SOLVER_CHOICES, default="auto",
                        help="auto: HiGHS in-process, CBC if HiGHS is missing or fails (default auto)")
    parser.add_argument("--dry-run", action="store_true", help="plan and print, but write nothing")
    return parser


def run_territory_command(args: argparse.Namespace) -> str:
    """Run ``crm-lab territory`` from parsed arguments; returns the console summary."""
    from crm_lab.territory.rules import TerritorySettings
    from crm_lab.territory.solve import SolverOptions
    from crm_lab.territory.store import run_territory
    from crm_lab.territory.whatif import NewRep, parse_pair

    settings = TerritorySettings(
        tolerance=args.tolerance,
        potential_tolerance=args.potential_tolerance,
        distance_to=args.distance_to,
        distance_weight=args.distance_weight,
        move_weight=args.move_weight,
        max_moves=args.max_moves,
        max_moved_potential=args.max_moved_potential,
        max_distance_km=args.radius_km,
        locks=tuple(parse_pair(text, "lock") for text in args.lock),
        forbidden=tuple(parse_pair(text, "forbid") for text in args.forbid),
        soft_fallback=not args.no_soft,
    )
    solver = SolverOptions(solver=args.solver, time_limit=args.time_limit, gap_rel=args.gap_rel,
                           threads=args.threads, seed=args.seed)
    plan = run_territory(
        args.db, args.company, settings, solver,
        add_reps=[NewRep.parse(text) for text in args.add_rep],
        remove_reps=list(args.remove_rep),
        roles=tuple(args.role) if args.role else DEFAULT_ROLES,
        save=not args.dry_run,
    )
    lines = [plan.describe()]
    if args.dry_run:
        lines.append("dry run: nothing written")
    else:
        lines.append(f"rows: SELECT * FROM territory_assignments WHERE plan_id = '{plan.plan_id}'")
    return "\n".join(lines)
