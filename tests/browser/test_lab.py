"""`crm-lab lab` in a real browser: JupyterLab opens on the notebooks, renders an ipywidget from
a kernel, and asks nothing of the network beyond 127.0.0.1 (no news, no update check, no
extension-manager search)."""

from __future__ import annotations

import nbformat
import pytest

from crm_lab.serve import NOTEBOOKS, lab_command, offline_environment

from .conftest import ARTIFACTS, free_port, start_server, stop_server

pytestmark = pytest.mark.slow

TOKEN = "crm-lab-browser-test"
PAGE_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebooks")
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import ipywidgets as widgets\nwidgets.IntSlider(value=7, description='probe')")])
    probe.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(probe, folder / "probe.ipynb")
    (folder / "06_what_if.ipynb").write_bytes((NOTEBOOKS / "06_what_if.ipynb").read_bytes())
    port = free_port()
    command = [*lab_command(folder, port=port, open_browser=False), f"--IdentityProvider.token={TOKEN}"]
    server = start_server(command, port, folder.parent / "lab.log", env=offline_environment())
    yield f"http://127.0.0.1:{port}"
    stop_server(server)


def test_lab_renders_widgets_offline(lab, offline_page):
    page = offline_page.page
    page.goto(f"{lab}/lab/tree/probe.ipynb?token={TOKEN}", timeout=PAGE_TIMEOUT_MS)
    page.get_by_text("06_what_if.ipynb").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=PAGE_TIMEOUT_MS)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")
    page.locator(".jp-OutputArea .widget-slider").wait_for(timeout=PAGE_TIMEOUT_MS)
    assert page.locator(".jp-OutputArea .widget-readout").first.inner_text() == "7"
    # The news prompt would ask to call out; the settings crm-lab lab ships answer it.
    assert page.get_by_text("Would you like to get notified about official Jupyter news?").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lab.png"))
    assert offline_page.outside == []
