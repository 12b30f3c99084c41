"""The sample exports in data/samples are what the writers make of the sample world, byte for
byte, and each imports cleanly as the README's "Bring your own CRM" says."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from crm_lab.cli import main
from crm_lab.importers import import_export
from crm_lab.importers.foreign_shapes import write_samples
from crm_lab.leads import analyse_leads
from import_exports import fetch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


def test_committed_samples_are_what_the_writers_make(tmp_path):
    write_samples(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*") if p.is_file())
    assert written == committed
    for name in written:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), (
            f"regenerate data/samples (python -m crm_lab.importers.foreign_shapes): {name}"
        )


def test_the_samples_the_readme_does_not_import_import_without_a_reject(tmp_path):
    folder = SAMPLES / "salesforce" / "c2"
    assert import_export(tmp_path / "salesforce.duckdb", folder, fmt="salesforce", strict=True).rows_rejected == 0
    deals, mapping = SAMPLES / "hubspot" / "c1" / "deals.csv", SAMPLES / "hubspot" / "hubspot.yaml"
    assert import_export(tmp_path / "hubspot.duckdb", deals, fmt="mapped", mapping=mapping, strict=True).rows_rejected == 0
    contacts, mapping = SAMPLES / "hubspot" / "c1" / "contacts.csv", SAMPLES / "hubspot" / "hubspot-contacts.yaml"
    assert import_export(tmp_path / "hubspot.duckdb", contacts, fmt="mapped", mapping=mapping, strict=True).rows_rejected == 0


def test_crm_lab_load_imports_an_export_from_the_command_line(tmp_path, capsys):
    db = str(tmp_path / "crm.duckdb")
    assert main(["load", "--db", db, "--format", "salesforce", str(SAMPLES / "salesforce" / "c1")]) == 0
    out = capsys.readouterr().out
    assert f"{SAMPLES / 'salesforce' / 'c1' / 'OpportunityHistory.csv'} -> events: " in out
    # One line per export file and table, however many parts the importer handed over.
    assert out.count(f"{SAMPLES / 'salesforce' / 'c1' / 'Opportunity.csv'} -> events: ") == 1
    assert fetch(Path(db), "SELECT count(*) FROM events") == [(sum(int(n) for n in re.findall(r"events: \d+ read, (\d+) new", out)),)]
    deals = str(SAMPLES / "hubspot" / "c2" / "deals.csv")
    mapping = str(SAMPLES / "hubspot" / "hubspot.yaml")
    assert main(["load", "--db", db, "--mapping", mapping, "--company", "borealis", deals]) == 0
    assert f"{deals} -> deals: " in capsys.readouterr().out
    assert fetch(Path(db), "SELECT DISTINCT company_id FROM deals ORDER BY 1") == [("borealis",), ("c1",)]


def test_a_refused_import_is_one_message_and_status_2(tmp_path, capsys):
    deals = str(SAMPLES / "hubspot" / "c1" / "deals.csv")
    assert main(["load", "--db", str(tmp_path / "crm.duckdb"), "--format", "native", "--rates", "r.csv", deals]) == 2
    assert capsys.readouterr().err == "crm-lab load: --rates and --company are for imports: add --format salesforce or --mapping FILE\n"
    assert main(["load", "--db", str(tmp_path / "crm.duckdb"), "--format", "salesforce", deals]) == 2
    assert capsys.readouterr().err == (
        f"crm-lab load: {deals}: not a folder; a Salesforce export is a folder of CSV files (Opportunity.csv, ...)\n"
    )


def test_the_readme_bring_your_own_crm_block_runs_as_written():
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Bring your own CRM", 1)[1]
    commands = [c for c in re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1).splitlines() if c.strip()]
    for leftover in ("data/generated/byo.duckdb", "data/generated/byo.duckdb.wal"):
        (ROOT / leftover).unlink(missing_ok=True)
    outputs = []
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    assert "c1" in outputs[-1] and "hubspot" in outputs[-1] and "closed_won" in outputs[-1]


def test_the_hubspot_sample_deals_and_contacts_import_replay_and_sweep(tmp_path, capsys):
    """The lead sweep runs on a HubSpot import: its leads, their outcomes, and what the deals
    they converted into were worth, from the deals export imported beside them."""
    db = str(tmp_path / "crm.duckdb")
    hubspot = SAMPLES / "hubspot"
    assert main(["load", "--db", db, "--mapping", str(hubspot / "hubspot.yaml"), str(hubspot / "c2" / "deals.csv")]) == 0
    assert main(["load", "--db", db, "--mapping", str(hubspot / "hubspot-contacts.yaml"), "--strict", str(hubspot / "c2" / "contacts.csv")]) == 0
    assert f"{hubspot / 'c2' / 'contacts.csv'} -> leads: " in capsys.readouterr().out
    assert main(["replay", "--db", db]) == 0
    [study] = analyse_leads(db, as_of="2025-12-01", capacity_hours=100.0, hours_per_lead=1.0, cost_per_lead=50.0, replicates=20)
    assert study.company_id == "c2"
    assert study.train.height > 100 and study.test.height > 20 and study.test["converted"].any()
    assert study.economics.won_deals > 0 and study.deal_value_source == "history"
    assert study.curve.height > 10
    capsys.readouterr()
    assert main(["sweep-leads", "--db", db, "--as-of", "2025-12-01", "--capacity-hours", "100", "--hours-per-lead", "1",
                 "--cost-per-lead", "50", "--bootstrap", "20"]) == 0
    assert "best cut-off for profit" in capsys.readouterr().out
    assert fetch(Path(db), "SELECT DISTINCT company_id FROM lead_sweeps") == [("c2",)]
