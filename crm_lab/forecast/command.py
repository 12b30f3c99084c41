"""``crm-lab forecast`` and ``crm-lab backtest``: the commands' options and handlers, kept beside
the engine so the command line and :func:`crm_lab.forecast.forecast` /
:func:`crm_lab.forecast.backtest` never drift apart. Importing this module is cheap (the engine
loads when a command runs), so the CLI's parser can import it."""

from __future__ import annotations

import argparse

FORECAST_HELP = "Monte Carlo forecast of bookings in a window, with scenarios; stored in forecast_summary and forecast_deals"
BACKTEST_HELP = "forecast past windows with what was known then and score them against the weighted pipeline"
GROUPS = ("team", "rep", "territory", "stage")


def add_forecast_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``crm-lab forecast`` (``--db`` comes from the CLI)."""
    parser.add_argument("--as-of", required=True, metavar="D",
                        help="the instant of the forecast; nothing after it is used (a bare date is its first instant)")
    parser.add_argument("--horizon", default="quarter", metavar="H",
                        help="month, quarter or year (the calendar period holding the as-of day), or the window's "
                             "last day YYYY-MM-DD (default quarter)")
    parser.add_argument("--trials", type=int, default=10_000, help="Monte Carlo trials (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--scenario", metavar="FILE", help="YAML file of what-if scenarios, run on the same random numbers")
    parser.add_argument("--target", type=float, metavar="X", help="bookings target of each company's window: adds P(total >= X)")
    parser.add_argument("--by", nargs="+", choices=GROUPS, default=[], metavar="GROUP",
                        help="also summarise by team, rep, territory and/or stage")
    parser.add_argument("--company", help="one company (default: every company)")


def run_forecast(args: argparse.Namespace) -> None:
    """Run ``crm-lab forecast`` with the parsed options and print its summary."""
    from crm_lab.forecast.run import forecast

    result = forecast(
        args.db, as_of=args.as_of, horizon=args.horizon, trials=args.trials, seed=args.seed,
        scenarios=args.scenario, target=args.target, by=tuple(args.by), company=args.company,
    )
    print(result.describe())


def add_backtest_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``crm-lab backtest`` (``--db`` comes from the CLI)."""
    parser.add_argument("--from", dest="start", required=True, metavar="D1", help="the first as-of date")
    parser.add_argument("--to", dest="stop", required=True, metavar="D2", help="the last as-of date allowed")
    parser.add_argument("--every", choices=("week", "month", "quarter"), default="month", help="as-of step (default month)")
    parser.add_argument("--horizon", choices=("month", "quarter", "year"), default="month",
                        help="the window forecast at each as-of: the calendar period holding it (default month)")
    parser.add_argument("--trials", type=int, default=4000, help="Monte Carlo trials per forecast (default 4000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--by", nargs="+", choices=GROUPS[:3], default=[], metavar="GROUP",
                        help="also score by team, rep and/or territory")
    parser.add_argument("--company", help="one company (default: every company)")


def run_backtest(args: argparse.Namespace) -> None:
    """Run ``crm-lab backtest`` with the parsed options and print its summary and calibration."""
    from crm_lab.forecast.backtesting import backtest

    result = backtest(
        args.db, start=args.start, stop=args.stop, every=args.every, horizon=args.horizon, trials=args.trials,
        seed=args.seed, company=args.company, by=tuple(args.by),
    )
    print(result.describe())
