"""``index.html``: every run of the pipeline with status, duration, parameters and links.
Plain HTML and inline CSS, so it opens anywhere with no network."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; }
.ok { color: #1a7f37; font-weight: 600; }
.failed { color: #c62828; font-weight: 600; }
.running { color: #0550ae; font-weight: 600; }
.interrupted { color: #c62828; font-weight: 600; }
.stale { color: #9a6700; font-weight: normal; }
.stale code { white-space: nowrap; }
code { font-size: 0.85em; white-space: pre-wrap; }
"""


def write_index(out_dir: Path, manifest: dict[str, Any]) -> Path:
    rows = []
    for run in sorted(manifest["runs"], key=lambda r: r["name"]):
        links = []
        for key, label in (("output_html", "report"), ("output_notebook", "notebook")):
            if run.get(key):
                links.append(f'<a href="{html.escape(os.path.relpath(run[key], out_dir))}">{label}</a>')
        error = f"<br><code>{html.escape(run['error'])}</code>" if run.get("error") else ""
        if run.get("data_note"):
            error += f'<br><span class="stale">{html.escape(run["data_note"])}</span>'
        if run.get("stale"):
            error += (f'<br><span class="stale">stale: {html.escape(run["stale"])}; '
                      f"run it again with <code>--only {html.escape(run['name'])}</code></span>")
        duration = f"{run['seconds']:.1f} s" if run["status"] in ("ok", "failed") else ""
        rows.append(
            "<tr>"
            f"<td>{html.escape(run['name'])}</td>"
            f"<td class=\"{html.escape(run['status'])}\">{html.escape(run['status'])}{error}</td>"
            f"<td>{duration}</td>"
            f"<td><code>{html.escape(json.dumps(run['parameters'], sort_keys=True, default=str))}</code></td>"
            f"<td>{html.escape(run['notebook'])}</td>"
            f"<td>{' · '.join(links)}</td>"
            "</tr>"
        )
    # Runs still running, or stopped before they ended, are counted apart from the failed ones.
    failed = sum(run["status"] not in ("ok", "running", "interrupted") for run in manifest["runs"])
    title = f"{manifest['pipeline']}: {len(manifest['runs'])} run(s), {failed} failed"
    for status in ("running", "interrupted"):
        count = sum(run["status"] == status for run in manifest["runs"])
        title += f", {count} {status}" if count else ""
    stale = sum(bool(run.get("stale")) for run in manifest["runs"])
    title += f", {stale} stale" if stale else ""
    warning = f'\n<p class="failed">{html.escape(manifest["data_warning"])}</p>' if manifest.get("data_warning") else ""
    running = "" if manifest.get("finished_at", True) else " (running: this page is rewritten as runs end)"
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Batch {html.escape(manifest['batch_id'])}{running}, crm_lab {html.escape(manifest['crm_lab_version'])},
input fingerprint <code>{html.escape(manifest['input_fingerprint'][:16])}</code>, database
<code>{html.escape(str(manifest['db_path']))}</code>.</p>{warning}
<table>
<tr><th>run</th><th>status</th><th>duration</th><th>parameters</th><th>notebook</th><th>output</th></tr>
{''.join(rows)}
</table>
</body></html>
"""
    path = out_dir / "index.html"
    temporary = path.with_name(".index.html.partial")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, path)
    return path
