"""Exports: the SQLite extract for Datasette (full and de-identified) and the CSV downloads, whose
cells a spreadsheet could take for a formula are neutralised."""
from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import timedelta

import pytest
import sqlite_utils
from sqlalchemy import func, select

from fieldapp import db
from fieldapp.compliance.drill import pseudonym
from fieldapp.contacts import log_contact
from fieldapp.csv_safe import csv_text, neutralise
from fieldapp.models import (AuditEvent, Child, Episode, EpisodeStep, EpisodeSummary, SearchContact,
                             StepEntry)

from helpers import NOW, fresh
from test_summaries import Story

FORMULA = '=HYPERLINK("http://evil.example","open")'
NOTE = "Seen near the bus station on Kearney"
REASON = "Called twice, no answer " + FORMULA
# Everything that names or describes a person in the history below: none may reach a
# de-identified extract.
PRIVATE = ("Alice", "Avery", "Bobby", "Brook", "A-1", "B-1", "2010-05-17", "Aunt May", "bus station",
           "Called twice", "HYPERLINK", "Sgt. Lee", "Cpl. Ray", "Springfield PD", "House parent",
           "Cal", "cw.a")
TABLES = {"children", "episodes", "steps", "step_entries", "contacts", "episode_measures",
          "measures"}


@pytest.fixture
def history(world, policies, clock, make_episode):
    """Alice goes missing two hours before "now"; an attempted report and a contact follow."""
    story = Story(clock, world.child_a, world.cw_a)
    story.missing(NOW - timedelta(hours=2))
    story.step("report_law_enforcement", NOW - timedelta(hours=1), outcome="attempted",
               reason=REASON)
    with db.writing() as s:
        log_contact(s, s.get(Episode, story.episode_id), s.merge(world.cw_a), person="Aunt May",
                    relationship="relative", method="phone",
                    contacted_at=NOW - timedelta(minutes=30), reached="reached", learned=NOTE,
                    purpose="search", client_uuid=str(uuid.uuid4()))
    return story


def export(runner, path, *extra):
    result = runner.invoke(args=["export-sqlite", str(path), *extra])
    assert result.exit_code == 0, result.output
    return result


def rows_of(model) -> int:
    return fresh().scalar(select(func.count()).select_from(model))


def text_cells(out: sqlite_utils.Database):
    """Every text value in every table of the file, FTS shadow tables included."""
    for name in out.table_names():
        for row in out.execute(f'SELECT * FROM "{name}"').fetchall():
            for value in row:
                if isinstance(value, str):
                    yield name, value


def leaks(out: sqlite_utils.Database) -> list[tuple[str, str]]:
    """Text cells that hold one of the PRIVATE words (as a word: "Cal" is not in "Calendar")."""
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(p)}(?!\w)" for p in PRIVATE))
    return [(table, value) for table, value in text_cells(out) if pattern.search(value)]


def test_the_extract_has_the_tables_rows_keys_and_search(history, runner, tmp_path):
    path = tmp_path / "out.db"
    result = export(runner, path)

    assert "Exporting" in result.stderr  # the progress bar's label (no bar without a terminal)
    assert re.search(r"Wrote extract .*out\.db: 2 children, 1 episodes, \d+ steps, 1 step entries, "
                     r"1 contacts, 1 episode measures, 28 measures\.", result.output)
    out = sqlite_utils.Database(path)
    assert TABLES <= set(out.table_names())
    assert out["children"].count == rows_of(Child) == 2
    assert out["episodes"].count == rows_of(Episode) == 1
    assert out["steps"].count == rows_of(EpisodeStep) > 5
    assert out["step_entries"].count == rows_of(StepEntry) == 1
    assert out["contacts"].count == rows_of(SearchContact) == 1
    keys = {(fk.table, fk.column, fk.other_table, fk.other_column)
            for name in TABLES for fk in out[name].foreign_keys}
    assert {("episodes", "child", "children", "child"),
            ("steps", "episode", "episodes", "episode"),
            ("step_entries", "step", "steps", "id"),
            ("contacts", "episode", "episodes", "episode"),
            ("episode_measures", "episode", "episodes", "episode")} <= keys
    assert out.execute("PRAGMA foreign_key_check").fetchall() == []

    alice = out["children"].get("A-1")
    assert (alice["first_name"], alice["last_name"], alice["date_of_birth"], alice["age_years"]) == (
        "Alice", "Avery", "2010-05-17", 15)
    episode = next(out["episodes"].rows)
    assert episode["child"] == "A-1" and episode["team_at_t0"] == "Team A"
    assert [r["learned"] for r in out["contacts"].search("bus station")] == [NOTE]
    assert len(leaks(out)) > 5  # the full extract has them all: the check below can fail
    assert [r["outcome"] for r in out["step_entries"].search("twice")] == ["attempted"]
    measure = out["episode_measures"].get(episode["episode"])
    live = fresh().get(EpisodeSummary, episode["episode_id"])
    assert measure["report_law_enforcement_attempted"] == 1
    assert (measure["acf_factors"], measure["t0_month"]) == (live.acf_factors, live.t0_month)
    m1 = out["measures"].get(("M1", ""))
    assert (m1["count"], m1["denominator"], m1["attempted"]) == (1, 1, 1)


def test_the_de_identified_extract_holds_no_names_notes_or_case_ids(history, runner, tmp_path, app):
    path = tmp_path / "deid.db"
    result = export(runner, path, "--deidentified")

    assert "Wrote de-identified extract" in result.output
    out = sqlite_utils.Database(path)
    assert TABLES <= set(out.table_names())
    assert leaks(out) == []
    assert not [name for name in out.table_names() if name.endswith("_fts")]
    assert "first_name" not in out["children"].columns_dict
    assert "date_of_birth" not in out["children"].columns_dict
    assert {"person", "learned"}.isdisjoint(out["contacts"].columns_dict)
    assert {"reason", "evidence"}.isdisjoint(out["step_entries"].columns_dict)
    children = list(out["children"].rows)
    assert sorted(c["age_years"] for c in children) == [15, 15]
    assert all(re.fullmatch(r"C-[0-9a-f]{10}", c["child"]) for c in children)
    # The rows, keys and measures are all still there.
    assert out["step_entries"].count == 1 and out["contacts"].count == 1
    assert out.execute("PRAGMA foreign_key_check").fetchall() == []
    # Stable: a second export names the same child and episode the same way.
    again = tmp_path / "again.db"
    export(runner, again, "--deidentified")
    assert [r["episode"] for r in sqlite_utils.Database(again)["episodes"].rows] == \
        [r["episode"] for r in out["episodes"].rows]
    assert {r["child"] for r in sqlite_utils.Database(again)["children"].rows} == \
        {c["child"] for c in children}


def test_an_export_is_audited_without_its_content(history, runner, tmp_path):
    export(runner, tmp_path / "out.db", "--deidentified")
    event = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "export.sqlite")).one()
    details = json.loads(event.details)
    assert details["deidentified"] is True and details["contacts"] == 1


def test_an_auditor_downloads_only_the_de_identified_extract(history, world, client, login,
                                                              tmp_path):
    login(world.auditor)
    response = client.get("/compliance/export.db")  # asks for no de-identification
    assert response.status_code == 200
    path = tmp_path / "download.db"
    path.write_bytes(response.data)
    out = sqlite_utils.Database(path)
    assert [r["episode"] for r in out["episodes"].rows] == [pseudonym(history.episode_id)]
    assert leaks(out) == []


def test_an_administrator_may_download_either_and_a_supervisor_neither(history, world, client,
                                                                       login, tmp_path, app):
    login(world.admin)
    full = client.get("/compliance/export.db")
    assert full.status_code == 200
    path = tmp_path / "full.db"
    path.write_bytes(full.data)
    assert sqlite_utils.Database(path)["children"].get("A-1")["first_name"] == "Alice"
    deid = client.get("/compliance/export.db?deidentified=1")
    path.write_bytes(deid.data)
    assert "first_name" not in sqlite_utils.Database(path)["children"].columns_dict
    other = app.test_client()
    login(world.sup_a, target=other)
    assert other.get("/compliance/export.db").status_code == 404


# --- CSV ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, written", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("a=b", "a=b"), (-3, -3), (2.5, 2.5),
    (None, ""),
])
def test_cells_a_spreadsheet_would_run_are_neutralised(cell, written):
    assert neutralise(cell) == written


def test_the_csv_writer_neutralises_every_cell_and_quotes_the_rest():
    text = csv_text(("name", "note", "n"), [{"name": FORMULA, "note": 'say "hi", then go', "n": -4}])
    assert list(csv.reader(io.StringIO(text))) == [
        ["name", "note", "n"], ["'" + FORMULA, 'say "hi", then go', "-4"]]


def test_a_drill_down_downloads_as_csv_with_formulas_neutralised(world, policies, make_child,
                                                                  make_episode, client, login):
    evil = make_child(world.cw_a, "=2+5", first_name=FORMULA, last_name="-Smith")
    episode = make_episode(evil, world.cw_a)
    login(world.sup_a)

    page = client.get("/compliance/M1/episodes")
    assert "/compliance/M1/episodes.csv" in page.text
    response = client.get("/compliance/M1/episodes.csv")

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert [(r["episode_id"], r["child"], r["case_id"]) for r in rows] == [
        (str(episode.id), "'" + FORMULA + " -Smith", "'=2+5")]
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())


def test_an_auditors_drill_down_csv_is_de_identified(history, world, client, login):
    login(world.auditor)
    response = client.get("/compliance/M1/episodes.csv?variant=attempted")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert list(rows[0]) == ["episode", "t0_month", "end", "team"]
    assert rows[0]["episode"] == pseudonym(history.episode_id)  # as in the auditor's extract
    assert [s for s in PRIVATE if re.search(rf"(?<!\w){re.escape(s)}(?!\w)", response.text)] == []


def test_a_bad_drill_down_csv_is_404(world, client, login):
    login(world.sup_a)
    assert client.get("/compliance/M9/episodes.csv").status_code == 404
    assert client.get("/compliance/M1/episodes.csv?variant=sideways").status_code == 404
    assert client.get("/compliance/S1/episodes.csv").status_code == 404
