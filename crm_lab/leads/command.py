"""``crm-lab sweep-leads``: the command's options and handler, kept beside the engine so the
command line and :func:`crm_lab.leads.sweep_leads` never drift apart. Importing this module is
cheap (the engine loads when the command runs), so the CLI's parser can import it."""

from __future__ import annotations

import argparse

SWEEP_LEADS_HELP = "evaluate every lead-score cut-off in money and SDR capacity, with bootstrap bands; store them in lead_sweeps"


def add_sweep_leads_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``crm-lab sweep-leads`` (``--db`` comes from the CLI)."""
    parser.add_argument("--company", help="one company (default: each company with leads, one run each)")
    parser.add_argument("--as-of", required=True, metavar="D",
                        help="the instant to stand at; nothing after it is read (a bare date is its first instant)")
    parser.add_argument("--capacity-hours", type=float, required=True, metavar="H",
                        help="SDR hours available for --test-days days of new leads")
    parser.add_argument("--hours-per-lead", type=float, required=True, metavar="h", help="SDR hours per routed lead")
    parser.add_argument("--cost-per-lead", type=float, required=True, metavar="c", help="cost of working one routed lead")
    parser.add_argument("--objective", choices=("profit", "f_beta", "conversions"), default="profit",
                        help="what the best cut-off maximises (default profit)")
    parser.add_argument("--beta", type=float, default=1.0, help="F-score beta for --objective f_beta (default 1)")
    parser.add_argument("--test-days", type=float, default=90.0,
                        help="days of lead creation swept, out of time (default 90)")
    parser.add_argument("--maturity-days", type=float, default=30.0,
                        help="age at which a lead's outcome counts as known (default 30)")
    parser.add_argument("--score", dest="score_source", choices=("model", "column"), default="model",
                        help="model: fit the conversion model; column: the leads' own score column (default model)")
    parser.add_argument("--deal-value", type=float,
                        help="value of a won deal (default: mean won amount of deals from leads, as of --as-of)")
    parser.add_argument("--win-rate", type=float,
                        help="win rate of deals from leads (default: from history, as of --as-of)")
    parser.add_argument("--bootstrap", dest="replicates", type=int, default=200,
                        help="bootstrap replicates (default 200)")
    parser.add_argument("--level", type=float, default=0.9, help="bootstrap interval coverage (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def run_sweep_leads(args: argparse.Namespace) -> None:
    """Run ``crm-lab sweep-leads`` with the parsed options and print its summary."""
    from crm_lab.leads.store import sweep_leads

    report = sweep_leads(
        args.db,
        company=args.company,
        as_of=args.as_of,
        capacity_hours=args.capacity_hours,
        hours_per_lead=args.hours_per_lead,
        cost_per_lead=args.cost_per_lead,
        objective=args.objective,
        beta=args.beta,
        test_days=args.test_days,
        maturity_days=args.maturity_days,
        score_source=args.score_source,
        deal_value=args.deal_value,
        win_rate=args.win_rate,
        replicates=args.replicates,
        level=args.level,
        seed=args.seed,
    )
    print(report.summary())
