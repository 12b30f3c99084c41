"""generate refuses to write a world beside another one's files (a load of the folder would mix
them), --force replaces only the generator's own files, and the summary says why a table has
fewer rows than the aggregates generated."""

from __future__ import annotations

import pytest

from crm_lab.cli import main
from crm_lab.errors import InvalidArgument
from crm_lab.generate import generate

OWN = ("accounts.csv, activities.csv, companies.csv, contacts.csv, deals.csv, events.csv, leads.csv, products.csv, "
       "reps.csv, territories.csv, truth.json")


def test_a_folder_with_a_previous_world_is_refused_and_force_replaces_it(tmp_path, capsys):
    out = tmp_path / "mix"
    assert main(["generate", str(out), "--deals", "50", "--seed", "1", "--format", "csv"]) == 0
    capsys.readouterr()
    assert main(["generate", str(out), "--deals", "50", "--seed", "2", "--format", "parquet"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"crm-lab generate: out_dir {out} already holds {OWN}: loading the folder would mix that world with the new "
        "one; generate into a new folder, or pass --force (force=True in Python) to replace the generator's files")
    (out / "notes.txt").write_text("mine")
    assert main(["generate", str(out), "--deals", "50", "--seed", "2", "--format", "parquet", "--force"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if n.endswith(".csv")] == [] and "notes.txt" in names and "deals.parquet" in names


def test_force_never_removes_loadable_files_the_generator_did_not_write(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "deals.part-2.parquet").write_bytes(b"x")
    with pytest.raises(InvalidArgument) as error:
        generate(out, deals=20, force=True)
    assert str(error.value) == (
        f"out_dir {out} holds loadable files that crm-lab generate did not write (deals.part-2.parquet): loading the "
        "folder would mix them with the new world; move them away or generate into a new folder")
    assert (out / "deals.part-2.parquet").exists() and not (out / "truth.json").exists()
    with pytest.raises(InvalidArgument, match=r"already holds deals.part-2.parquet: "):
        generate(out, deals=20)


def test_the_summary_says_why_deals_and_leads_have_fewer_rows(tmp_path):
    text = generate(tmp_path / "w", companies=3, deals=300, seed=1, fmt="csv").describe()
    assert ("  deals: 294 rows (300 deals generated, 6 deleted by their events: 294 rows in deals.csv; "
            "the deleted ones' events stay in events.csv)") in text.splitlines()
    assert ("  leads: 409 rows (412 leads generated, 3 deleted by their events: 409 rows in leads.csv; "
            "the deleted ones' events stay in events.csv)") in text.splitlines()
    assert "  accounts: 90 rows" in text.splitlines()
