"""``crm-lab lab`` and ``crm-lab dashboard``: Jupyter servers on 127.0.0.1 that make no outbound
requests (no news feed, no update check, no extension-manager searches, no SQL-magic telemetry).

The dashboard is the what-if notebook served by Voilà: its parameters are filled in the way
papermill fills them (an ``injected-parameters`` cell in a copy), so the browser shows the same
computation a batch run or a test makes with the same parameters."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from crm_lab.errors import InvalidArgument

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
WHAT_IF_NOTEBOOK = NOTEBOOKS / "06_what_if.ipynb"
HOST = "127.0.0.1"
LAB_PORT = 8888
DASHBOARD_PORT = 8866

# Third-party code that calls home unless told not to (jupysql's telemetry and version check).
OFFLINE_ENVIRONMENT = {"PLOOMBER_STATS_ENABLED": "false", "PLOOMBER_VERSION_CHECK_DISABLED": "1"}

# Our Voilà template (crm_lab/jupyter/voila/templates/crm_lab), found through JUPYTER_PATH.
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"
VOILA_TEMPLATE = "crm_lab"


# Kernels reached over Unix sockets, not TCP ports: nothing listens on the network, and ipykernel
# stops warning that its traffic is unencrypted. A server names each kernel's connection file
# after its id, and the sockets after that file, so kernels never share them (the batch, which
# starts kernels without a server, gives them a prefix itself: crm_lab.batch.execute).
LOCAL_KERNELS = ("--KernelManager.transport=ipc",)


def offline_environment() -> dict[str, str]:
    jupyter_path = os.pathsep.join(p for p in (str(JUPYTER_DATA), os.environ.get("JUPYTER_PATH", "")) if p)
    return {**os.environ, **OFFLINE_ENVIRONMENT, "JUPYTER_PATH": jupyter_path}


def lab_command(notebook_dir: Path = NOTEBOOKS, *, port: int = LAB_PORT, open_browser: bool = True) -> list[str]:
    """JupyterLab with the news feed off, no update check and a read-only extension manager, so
    opening it makes no request beyond 127.0.0.1 (ipywidgets' renderer ships with the package)."""
    return [
        sys.executable, "-m", "jupyterlab",
        f"--notebook-dir={notebook_dir}",
        f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.open_browser={open_browser}",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *LOCAL_KERNELS,
        # Settings defaults that answer the "get notified about Jupyter news?" prompt with no.
        f"--LabApp.app_settings_dir={JUPYTER_DATA / 'lab' / 'settings'}",
        # Containers and CI often run as root, where Jupyter refuses to start without this.
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]


def dashboard_command(notebook: Path, *, port: int = DASHBOARD_PORT, open_browser: bool = True) -> list[str]:
    """Voilà on one notebook: outputs only, tracebacks hidden from the page (they go to the log)."""
    return [
        sys.executable, "-m", "voila", str(notebook),
        f"--Voila.ip={HOST}", f"--port={port}", "--Voila.port_retries=0",
        f"--template={VOILA_TEMPLATE}",
        "--show_tracebacks=False",
        *LOCAL_KERNELS,
        *([] if open_browser else ["--no-browser"]),
    ]


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs, each value read as YAML (``trials=500``, ``as_of="2025-07-01"``)."""
    parameters: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or not name.isidentifier():
            raise InvalidArgument(f"-p {assignment!r}: expected NAME=VALUE, e.g. -p trials=500")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise InvalidArgument(f"-p {assignment!r}: the value is not valid YAML ({error.problem})") from None
        # YAML reads 2025-07-01 as a date; notebooks take instants as text ("as_of" is parsed there).
        parameters[name] = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
    return parameters


def parameterized_copy(notebook: Path, parameters: dict[str, Any], out_dir: Path) -> Path:
    """A copy of ``notebook`` with papermill's injected-parameters cell, after checking every
    parameter against the notebook's ``parameters`` cell (name and type of the default)."""
    import nbformat
    import papermill
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from crm_lab.batch.spec import check_parameters

    if not notebook.is_file():
        raise InvalidArgument(f"notebook {notebook} does not exist")
    # No prefix of our own: the command line puts "crm-lab dashboard:" before every message.
    check_parameters(None, notebook, parameters, papermill.inspect_notebook(str(notebook)))
    filled = parameterize_notebook(load_notebook_node(str(notebook)), parameters)
    target = out_dir / notebook.name
    nbformat.write(filled, target)
    return target


def dashboard_parameters(db_path: str | os.PathLike | None, company: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """The notebook's parameters: ``db_path`` absolute (the kernel runs in another folder), None
    for the bundled sample; ``company`` when one is named."""
    parameters = dict(given)
    if db_path is not None:
        path = Path(db_path).resolve()
        if not path.exists():
            raise InvalidArgument(
                f"database {db_path} does not exist: build it with `make demo`, or pass --sample for the bundled sample"
            )
        parameters["db_path"] = str(path)
    if company is not None:
        parameters["company"] = company
    return parameters


def check_company(parameters: dict[str, Any]) -> None:
    """Open the database the notebook will read (``db_path``, else the default one) for the
    ``company`` it is given, as the notebook does, so an unknown company is refused here, with the
    companies the database knows, rather than as an error cell on the page after the server starts."""
    check_dashboard_inputs({k: v for k, v in parameters.items() if k not in ("as_of", "horizon")})


def check_dashboard_inputs(parameters: dict[str, Any]) -> None:
    """Refuse, before the server starts, what would otherwise fail a cell of the page: a company
    the database does not know, an ``as_of`` past the data (the forecast's own check) and a
    ``horizon`` the forecast does not take, each with the message the engines give."""
    company = parameters.get("company")
    if company is not None and not isinstance(company, str):
        raise InvalidArgument(f"company must be a company id (text), got {type(company).__name__} {company!r}")
    from crm_lab.forecast.periods import forecast_window
    from crm_lab.as_of import check_as_of_in_data
    from crm_lab.widgets.panel import what_if_as_of
    from crm_lab.workbench import open_workbench

    with open_workbench(parameters.get("db_path"), company) as wb:
        if "as_of" not in parameters and "horizon" not in parameters:
            return
        window = forecast_window(what_if_as_of(wb, parameters.get("as_of")), parameters.get("horizon", "quarter"))
        check_as_of_in_data(wb.con, window.as_of, company=company or wb.companies()[0], doing="forecast")


class ServerStopped(Exception):
    """SIGTERM or SIGHUP reached ``crm-lab lab`` / ``crm-lab dashboard``."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
STOP_GRACE_SECONDS = 10.0


def run_server(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
               grace: float = STOP_GRACE_SECONDS) -> int:
    """Run a server in the foreground until it exits, the user presses Ctrl-C, or SIGTERM or
    SIGHUP arrives: then the server is asked to stop (it shuts its kernels down), killed with its
    process group if it has not stopped within ``grace`` seconds, and the caller's ``finally``
    blocks and ``with`` statements (the dashboard's temporary folder) run before we return."""

    def stop(signum, _frame):
        raise ServerStopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started ignoring it (`&`)
        # Installed again so that Ctrl-C interrupts the wait below: importing polars registers
        # SIGINT with SA_RESTART, under which the wait resumed and Ctrl-C waited for the server.
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Its own process group: Ctrl-C reaches it once, from us, and a kill reaches all it started.
        server = subprocess.Popen(command, env=env or offline_environment(), cwd=cwd, start_new_session=True)
        try:
            return server.wait()
        except KeyboardInterrupt:
            return stop_server(server, grace)
        except ServerStopped as stopped:
            stop_server(server, grace)
            return 128 + stopped.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_server(server: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> int:
    """SIGTERM to the server (Jupyter servers then shut their kernels down), SIGKILL to its
    process group after ``grace`` seconds; a second signal meanwhile does not interrupt this."""
    blocked = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (*STOP_SIGNALS, signal.SIGINT)}
    try:
        if server.poll() is None:
            server.terminate()
        try:
            return server.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return server.wait()
    finally:
        for signum, handler in blocked.items():
            signal.signal(signum, handler)


def serve_dashboard(db_path: str | os.PathLike | None, *, company: str | None = None, parameters: dict | None = None,
                    notebook: Path = WHAT_IF_NOTEBOOK, port: int = DASHBOARD_PORT, open_browser: bool = True) -> int:
    values = dashboard_parameters(db_path, company, parameters or {})
    with tempfile.TemporaryDirectory(prefix="crm-lab-dashboard-") as scratch:
        served = parameterized_copy(Path(notebook), values, Path(scratch))
        check_dashboard_inputs(values)
        print(f"crm-lab dashboard: serving {notebook.name} on http://{HOST}:{port}/ (Ctrl-C stops it)", flush=True)
        return run_server(dashboard_command(served, port=port, open_browser=open_browser), cwd=Path(scratch))


def lab_environment(db_path: str | os.PathLike | None) -> dict[str, str]:
    """The offline environment, plus the database that notebooks given no ``db_path`` read
    (``crm_lab.workbench.default_database``) when ``db_path`` exists; else they use the sample."""
    from crm_lab.workbench import DATABASE_VARIABLE

    env = offline_environment()
    env.pop(DATABASE_VARIABLE, None)
    if db_path is not None and Path(db_path).exists():
        env[DATABASE_VARIABLE] = str(Path(db_path).resolve())
    return env


def serve_lab(db_path: str | os.PathLike | None = None, notebook_dir: Path = NOTEBOOKS, *, port: int = LAB_PORT,
              open_browser: bool = True) -> int:
    if not notebook_dir.is_dir():
        raise InvalidArgument(f"notebook folder {notebook_dir} does not exist")
    from crm_lab.workbench import DATABASE_VARIABLE

    env = lab_environment(db_path)
    print(f"crm-lab lab: notebooks given no db_path read {env.get(DATABASE_VARIABLE, 'the bundled sample')}", flush=True)
    return run_server(lab_command(notebook_dir, port=port, open_browser=open_browser), env=env)
