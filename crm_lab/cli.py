"""``crm-lab``: a thin shell over the Python API, so the two never drift apart.

Every command but ``generate`` takes ``--db PATH`` (default data/crm.duckdb). Errors a user can
fix are printed as one message without a traceback, with exit status 2. When the reader of the
output goes away (``crm-lab sql ... | head``), a command stops quietly with status 141, as a Unix
tool stopped by SIGPIPE does."""

from __future__ import annotations

import argparse
import errno
import os
import re
import select
import sys
from collections.abc import Sequence

import duckdb

from crm_lab import __version__
from crm_lab.db import DEFAULT_DB
from crm_lab.errors import CrmLabError, InvalidArgument


def _generate(args: argparse.Namespace) -> None:
    from crm_lab.generate import generate

    summary = generate(args.out_dir, companies=args.companies, deals=args.deals, seed=args.seed, fmt=args.format,
                       force=args.force)
    print(summary.describe())


def _load(args: argparse.Namespace) -> None:
    if args.format == "native" and args.mapping is None:
        if args.rates or args.company:
            raise InvalidArgument("--rates and --company are for imports: add --format salesforce or --mapping FILE")
        from crm_lab.load import load

        report = load(args.db, args.paths, table=args.table, strict=args.strict)
    else:
        from crm_lab.importers import import_export

        if len(args.paths) != 1 or args.table:
            raise InvalidArgument("an import reads one export (a Salesforce folder, or the file a mapping reads) and no --table")
        fmt = "salesforce" if args.format == "salesforce" else "mapped"
        report = import_export(args.db, args.paths[0], fmt=fmt, mapping=args.mapping, rates=args.rates,
                               company=args.company, strict=args.strict)
    print(report.summary())


def _replay(args: argparse.Namespace) -> None:
    from crm_lab.replay import replay

    print(replay(args.db, full=args.full, period=args.period).summary())


def _sql(args: argparse.Namespace) -> None:
    from crm_lab.query import run_query

    text = run_query(args.query, args.db, company=args.company, fmt=args.format, out=args.out)
    print(text, end="" if text.endswith("\n") else "\n")


def _batch(args: argparse.Namespace) -> int:
    from crm_lab.batch.run import ingest_only, run_batch

    if args.ingest:
        print(ingest_only(args.ingest, args.db))
        return 0
    if not args.spec:
        raise InvalidArgument("name a pipeline spec (e.g. pipelines/weekly.yaml), or --ingest DIR")
    result = run_batch(args.spec, args.db, jobs=args.jobs, only=args.only, retry_failed=args.retry_failed,
                       scheduler=args.scheduler, output=args.out)
    print(result.summary())
    return 1 if result.failed else 0


def _forecast(args: argparse.Namespace) -> None:
    from crm_lab.forecast.command import run_forecast

    run_forecast(args)


# backtest()'s parameters start and stop are --from and --to on the command line.
_BACKTEST_OPTIONS = re.compile(r"^(start|stop)\b|(?<= before )start\b")


def _backtest(args: argparse.Namespace) -> None:
    from crm_lab.forecast.command import run_backtest

    try:
        run_backtest(args)
    except InvalidArgument as error:
        message = _BACKTEST_OPTIONS.sub(lambda m: "--from" if m.group(0) == "start" else "--to", str(error))
        raise InvalidArgument(message) from error


def _sweep_leads(args: argparse.Namespace) -> None:
    from crm_lab.leads.command import run_sweep_leads

    run_sweep_leads(args)


def _territory(args: argparse.Namespace) -> None:
    from crm_lab.territory.command import run_territory_command

    print(run_territory_command(args))


def _demo(args: argparse.Namespace) -> None:
    from crm_lab.demo import build_demo

    # Each part as it is done: the batch after the database takes most of the minute.
    build_demo(args.db, deals=args.deals, seed=args.seed, pipeline=None if args.no_batch else args.pipeline,
               force=args.force, echo=lambda text: print(text, flush=True))


def _dashboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crm_lab.serve import parse_assignments, serve_dashboard

    return serve_dashboard(None if args.sample else args.db, company=args.company,
                           parameters=parse_assignments(args.parameter), notebook=Path(args.notebook),
                           port=args.port, open_browser=not args.no_browser)


def _lab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crm_lab.serve import serve_lab

    return serve_lab(args.db, Path(args.notebook_dir), port=args.port, open_browser=not args.no_browser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-lab", description="A what-if workbench for revenue teams, on DuckDB.")
    parser.add_argument("--version", action="version", version=f"crm-lab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str, *, db: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if db:
            sub.add_argument("--db", default=str(DEFAULT_DB), help=f"workbench database (default {DEFAULT_DB})")
        sub.set_defaults(handler=handler)
        return sub

    gen = command("generate", _generate, "write a synthetic CRM world in the native export format", db=False)
    gen.add_argument("out_dir", metavar="OUT_DIR")
    gen.add_argument("--companies", type=int, default=2, help="number of tenants (default 2)")
    gen.add_argument("--deals", type=int, default=1000, help="deals across all tenants (default 1000)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--format", choices=("parquet", "csv", "jsonl"), default="parquet")
    gen.add_argument("--force", action="store_true",
                     help="replace a world generated into OUT_DIR before (only the generator's own files are removed)")

    load = command("load", _load, "load export files (CSV, Parquet, JSON Lines) into the database")
    load.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders of files named after tables")
    load.add_argument("--table", help="load every file into this table instead of the one its name says")
    load.add_argument("--strict", action="store_true", help="fail the whole load if any row is rejected")
    load.add_argument("--format", choices=("native", "salesforce"), default="native",
                      help="native contract files (default), or a Salesforce export folder (docs/IMPORT.md)")
    load.add_argument("--mapping", metavar="FILE", help="YAML mapping of a generic deals or leads export's columns, "
                      "stages or statuses (with --format salesforce: extra stage names and date formats)")
    load.add_argument("--rates", metavar="FILE", help="CSV of exchange rates to the corporate currency: currency,rate")
    load.add_argument("--company", metavar="ID", help="the tenant of an imported export (default: its folder's name)")

    rep = command("replay", _replay, "fold the event log into history, current state and pipeline snapshots")
    rep.add_argument("--full", action="store_true", help="rebuild everything, not only aggregates with new events")
    rep.add_argument("--period", choices=("week", "month", "quarter"), default=None,
                     help="pipeline_snapshots period; it sticks until changed (default: the last replay's, week on the "
                          "first replay; a change rebuilds everything)")

    from crm_lab.forecast import command as forecast_command

    fc = command("forecast", _forecast, forecast_command.FORECAST_HELP)
    forecast_command.add_forecast_arguments(fc)
    bt = command("backtest", _backtest, forecast_command.BACKTEST_HELP)
    forecast_command.add_backtest_arguments(bt)

    from crm_lab.territory import command as territory_command

    terr = command("territory", _territory, territory_command.TERRITORY_HELP)
    territory_command.add_territory_arguments(terr)

    from crm_lab.leads import command as leads_command

    sweep = command("sweep-leads", _sweep_leads, leads_command.SWEEP_LEADS_HELP)
    leads_command.add_sweep_leads_arguments(sweep)

    sql = command("sql", _sql, "run one read-only SQL query on the workbench")
    sql.add_argument("query", metavar="SQL", help="one SELECT or EXPLAIN statement (quote it for the shell)")
    sql.add_argument("--company", help="see only this company's rows in every table, view and macro")
    sql.add_argument("--format", choices=("table", "csv", "json", "jsonl", "parquet"),
                     help="table (the default on screen), csv, json, jsonl, or parquet (needs --out); "
                          "with --out, the default is the file's extension (.csv, .json, .jsonl, .parquet)")
    sql.add_argument("--out", metavar="FILE", help="write the whole result to this file (required for parquet)")

    batch = command("batch", _batch, "run a pipeline of notebooks with papermill into HTML reports")
    batch.add_argument("spec", nargs="?", metavar="SPEC", help="a pipeline spec, e.g. pipelines/weekly.yaml")
    batch.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    batch.add_argument("--only", nargs="+", metavar="NAME", help="run only these runs (names or glob patterns)")
    batch.add_argument("--retry-failed", action="store_true", help="rerun only the runs that failed last time")
    batch.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler (tcp://host:port) instead of the local pool")
    batch.add_argument("--out", help="output folder instead of the spec's")
    batch.add_argument("--ingest", metavar="DIR", help="only write the ledger and results a busy database kept on disk")

    demo = command("demo", _demo, "build the demo database from a generated world")
    demo.add_argument("--deals", type=int, default=3000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--pipeline", default="pipelines/weekly.yaml", help="the batch to run on it (default pipelines/weekly.yaml)")
    demo.add_argument("--no-batch", action="store_true", help="only build the database")
    demo.add_argument("--force", action="store_true",
                      help="replace the database at --db even when it is not a previous demo build")

    from crm_lab import serve

    dash = command("dashboard", _dashboard, "serve the what-if notebook as a Voilà app on 127.0.0.1")
    dash.add_argument("--company", help="the company the panels show (default: the first)")
    dash.add_argument("--sample", action="store_true", help="use the bundled sample instead of --db")
    dash.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                      help="a notebook parameter, the value read as YAML (repeatable), e.g. -p trials=500")
    dash.add_argument("--notebook", default=str(serve.WHAT_IF_NOTEBOOK), help="the notebook to serve")
    dash.add_argument("--port", type=int, default=serve.DASHBOARD_PORT)
    dash.add_argument("--no-browser", action="store_true", help="do not open a browser")

    lab = command("lab", _lab, "open JupyterLab on the notebooks, with widgets and no outbound requests")
    lab.add_argument("--notebook-dir", default=str(serve.NOTEBOOKS))
    lab.add_argument("--port", type=int, default=serve.LAB_PORT)
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    return parser


# The exit status when the reader of stdout went away (`crm-lab sql ... | head`): 128 + SIGPIPE,
# what a shell reports for a Unix tool that SIGPIPE stopped.
BROKEN_PIPE_STATUS = 141


# What a command interrupted by Ctrl-C has left: these write in one transaction (or not at all
# before their last step), so an interruption leaves the database as it was.
ONE_TRANSACTION = {"load", "replay", "forecast", "backtest", "sweep-leads", "territory"}
INTERRUPTED_STATUS = 130  # 128 + SIGINT, as a shell reports it


def no_space(command: str) -> str:
    """A full disk, said once. DuckDB rolls a failed write back (filling a disk mid-load left
    the database as it was), so the one-transaction commands can say so."""
    undone = "the write failed and was rolled back; " if command in ONE_TRANSACTION else ""
    return (f"the disk is full (No space left on device): {undone}free some space (DuckDB also needs room for "
            "its .wal file beside the database, and temp space) and run it again")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.handler(args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
    except CrmLabError as error:
        print(f"crm-lab {args.command}: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, RuntimeError) as error:
        # DuckDB stops a query on Ctrl-C with RuntimeError('Query interrupted').
        if isinstance(error, RuntimeError) and str(error) != "Query interrupted":
            raise
        left = "; nothing was written, the database is as it was" if args.command in ONE_TRANSACTION else ""
        print(f"crm-lab {args.command}: interrupted{left}", file=sys.stderr)
        return INTERRUPTED_STATUS
    except BrokenPipeError:
        if not _reader_gone(default=True):
            raise  # a pipe of the command's own, not stdout
        return _stop_writing()
    except (OSError, duckdb.Error) as error:  # after BrokenPipeError, an OSError too
        full = error.errno == errno.ENOSPC if isinstance(error, OSError) else "No space left on device" in str(error)
        if not full:
            raise
        print(f"crm-lab {args.command}: {no_space(args.command)}", file=sys.stderr)
        return 2
    # A write cut short when the reader left can pass without an error: the pipe still tells.
    return _stop_writing() if _reader_gone(default=False) else status or 0


def _reader_gone(*, default: bool) -> bool:
    """Whether stdout is a pipe whose reader has gone (``default`` when that cannot be told)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout has no descriptor
        return default


def _stop_writing() -> int:
    """Python's recipe for a closed stdout: point it at devnull, so the flush at exit does not fail
    again, and stop quietly with the status a shell gives a tool stopped by SIGPIPE."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return BROKEN_PIPE_STATUS

if __name__ == "__main__":
    sys.exit(main())
