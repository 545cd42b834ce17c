"""FACES reconciliation: the roster's living arrangement is kept per child, and the report lists
the children whose status in fieldapp disagrees with it (page, CSV and CLI)."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from fieldapp.models import Child, FacesArrangement
from fieldapp.reconciliation import FACES_ARRANGEMENTS, differences
from fieldapp.roster import COLUMNS
from fieldapp.vocabulary import STATUSES

from helpers import fresh

HEADER = ",".join(COLUMNS) + ",living_arrangement"
PLACED = "foster_family_relative,Family home of the Carters,2025-11-01"
ROWS = {
    "R-100": f"R-100,Maya,Lopez,2012-04-03,F,Greene,cw.a,{PLACED},placement",        # agrees
    "R-101": f"R-101,Noah,Price,2009-09-30,M,Greene,cw.a,{PLACED},runaway",          # differs
    "R-102": f"R-102,Ivy,Shaw,2015-06-12,F,Greene,cw.a,{PLACED},placement",         # missing here
    "R-103": f"R-103,Omar,Reyes,2011-01-20,M,Taney,cw.b,{PLACED},12",               # both missing
    "R-104": f"R-104,Lena,Ford,2010-08-08,F,Taney,cw.b,{PLACED},DISCHARGED",         # differs
}


def roster(rows: dict[str, str], header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows.values()]) + "\n").encode()


@pytest.fixture
def imported(world, runner, tmp_path, make_episode):
    """The roster imported, then R-102 and R-103 go missing in fieldapp."""
    def run(raw: bytes):
        path = tmp_path / "roster.csv"
        path.write_bytes(raw)
        return runner.invoke(args=["import-roster", str(path)])

    result = run(roster(ROWS))
    assert result.exit_code == 0, result.output
    for case_id in ("R-102", "R-103"):
        child = fresh().scalar(select(Child).where(Child.case_id == case_id))
        make_episode(child, world.cw_a if case_id == "R-102" else world.cw_b)
    run.first = result
    return run


def listed(user=None) -> list[str]:
    return [d.case_id for d in differences(fresh(), user)]


def test_the_import_keeps_the_arrangement_and_the_report_lists_only_disagreements(imported):
    assert "5 added" in imported.first.output
    stored = {fresh().get(Child, r.child_id).case_id: r.arrangement
              for r in fresh().scalars(select(FacesArrangement))}
    # An AFCARS code and any case are read as the arrangement they stand for.
    assert stored == {"R-100": "placement", "R-101": "runaway", "R-102": "placement",
                      "R-103": "runaway", "R-104": "discharged"}
    found = differences(fresh())
    # Missing on one side only first, then the rest; agree.
    assert [(d.case_id, d.status, d.arrangement, d.missing_in_one) for d in found] == [
        ("R-101", "in_placement", "runaway", True),
        ("R-102", "whereabouts_unknown", "placement", True),
        ("R-104", "in_placement", "discharged", False),
    ]


def test_a_new_import_that_agrees_clears_the_difference_and_the_same_file_changes_nothing(
        imported):
    again = imported(roster(ROWS))
    assert "0 added, 0 updated, 5 unchanged" in again.output
    fixed = dict(ROWS, **{"R-101": ROWS["R-101"].replace(",runaway", ",placement")})
    assert "0 added, 1 updated, 4 unchanged" in imported(roster(fixed)).output
    assert listed() == ["R-102", "R-104"]
    # The import stores what FACES says; it never changes a status here.
    assert fresh().scalar(select(Child.status).where(Child.case_id == "R-102")) == \
        "whereabouts_unknown"


def test_a_roster_without_the_column_or_with_an_empty_cell_keeps_the_last_arrangement(imported):
    old_header = ",".join(COLUMNS)
    old_rows = {k: v.rsplit(",", 1)[0] for k, v in ROWS.items()}
    assert "5 unchanged" in imported(roster(old_rows, header=old_header)).output
    blank = {k: v.rsplit(",", 1)[0] + "," for k, v in ROWS.items()}
    assert "5 unchanged" in imported(roster(blank)).output
    assert listed() == ["R-101", "R-102", "R-104"]


def test_an_unknown_arrangement_is_refused_with_its_line(imported):
    bad = dict(ROWS, **{"R-101": ROWS["R-101"].replace(",runaway", ",on the moon")})
    result = imported(roster(bad))
    assert result.exit_code != 0
    assert "line 3: living_arrangement 'on the moon' is not one of" in result.output
    assert fresh().scalar(select(FacesArrangement.arrangement).join(
        Child, Child.id == FacesArrangement.child_id).where(Child.case_id == "R-101")) == "runaway"


def test_the_cli_lists_the_differences_as_json_and_csv(imported, runner):
    result = runner.invoke(args=["reconciliation"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["case_id"], r["child"], r["fieldapp_status"], r["faces_arrangement"])
            for r in rows] == [("R-101", "Noah Price", "in_placement", "runaway"),
                               ("R-102", "Ivy Shaw", "whereabouts_unknown", "placement"),
                               ("R-104", "Lena Ford", "in_placement", "discharged")]
    result = runner.invoke(args=["reconciliation", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert [r["case_id"] for r in csv.DictReader(io.StringIO(result.output))] == [
        "R-101", "R-102", "R-104"]


def test_a_supervisor_sees_their_team_an_administrator_everyone(imported, world, client, login):
    assert listed(world.sup_a) == ["R-101", "R-102"]
    assert listed(world.sup_b) == ["R-104"]
    assert listed(world.admin) == ["R-101", "R-102", "R-104"]
    login(world.sup_b)
    page = client.get("/compliance/reconciliation")
    assert page.status_code == 200
    assert "Lena Ford" in page.text and "R-104" in page.text
    assert "Noah Price" not in page.text and "Ivy Shaw" not in page.text
    assert "Discharged from custody" in page.text


def test_an_auditor_reads_the_report_de_identified(imported, world, client, login):
    login(world.auditor)
    page = client.get("/compliance/reconciliation")
    assert page.status_code == 200
    for name in ("Noah", "Price", "Ivy", "Lena", "R-101", "R-102", "R-104"):
        assert name not in page.text
    assert len(set(re.findall(r"C-[0-9a-f]{10}", page.text))) == 3
    download = client.get("/compliance/reconciliation.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.text.lstrip("\ufeff"))))
    assert [r["child"] for r in rows] == ["", "", ""]
    assert all(re.fullmatch(r"C-[0-9a-f]{10}", r["case_id"]) for r in rows)
    assert {r["case_id"] for r in rows} == set(re.findall(r"C-[0-9a-f]{10}", page.text))


def test_caseworkers_do_not_get_the_report(imported, world, client, login):
    login(world.cw_a)
    assert client.get("/compliance/reconciliation").status_code == 404
    assert client.get("/compliance/reconciliation.csv").status_code == 404


def test_every_status_agrees_with_some_arrangement_and_nothing_else():
    agreed = set().union(*(a.agrees_with for a in FACES_ARRANGEMENTS.values()))
    assert agreed == set(STATUSES)


def test_the_roster_doc_lists_every_arrangement():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "roster-format.md").read_text()
    section = doc.split("## FACES living arrangements\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|([^|]*)\|([^|]*)\|([^|]*)\|$", section, re.M)
    assert [key for key, *_ in rows] == list(FACES_ARRANGEMENTS)
    for key, code, statuses, label in rows:
        arrangement = FACES_ARRANGEMENTS[key]
        assert re.findall(r"`(\w+)`", code) == list(arrangement.afcars)
        assert set(re.findall(r"`(\w+)`", statuses)) == arrangement.agrees_with
        assert label.strip() == arrangement.label


def test_the_dashboard_shows_the_reconciliation_entry(imported, world, client, login):
    login(world.sup_a)
    page = client.get("/compliance")
    assert page.status_code == 200
    assert "Today, <strong>2</strong> children whose status here differs" in page.text
    assert 'href="/compliance/reconciliation"' in page.text
    assert "/compliance/export.db" not in page.text  # supervisors take no extract
