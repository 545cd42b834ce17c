"""Roster import from the command line and the admin page: checked whole, applied all or nothing."""
from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fieldapp.models import (AuditEvent, Child, EpisodeSummary, FacesArrangement, Handover,
                             Placement, StatusChange)
from fieldapp.roster import COLUMNS, OPTIONAL_COLUMNS
from fieldapp.vocabulary import PLACEMENT_SETTINGS

from helpers import fresh

HEADER = ",".join(COLUMNS)
ROWS = [
    "R-100,Maya,Lopez,2012-04-03,F,Greene,cw.a,foster_family_relative,Family home of the Carters,2025-11-01",
    "R-101,Noah,Price,2009-09-30,M,Christian,cw.a2,group_home_staff,Ozark Youth Home,2026-01-15",
    "R-102,Ivy,Shaw,2015-06-12,f,Taney,CW.B,qrtp,Hillcrest Residential,2026-02-20",
]


def csv_bytes(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def counts() -> dict[str, int]:
    session = fresh()
    return {model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Child, Placement, StatusChange, Handover, AuditEvent)}


def child(case_id: str) -> Child | None:
    return fresh().scalar(select(Child).where(Child.case_id == case_id))


class Outcome:
    def __init__(self, ok: bool, text: str):
        self.ok, self.text = ok, text


@pytest.fixture(params=["cli", "upload"])
def import_file(request, world, tmp_path, login):
    """Import a roster the way an administrator would: `fieldapp import-roster`, or the page."""
    if request.param == "cli":
        runner = request.getfixturevalue("runner")

        def run(raw: bytes) -> Outcome:
            path = tmp_path / "roster.csv"
            path.write_bytes(raw)
            result = runner.invoke(args=["import-roster", str(path)])
            assert result.exception is None or isinstance(result.exception, SystemExit), result.output
            return Outcome(result.exit_code == 0, result.output)
        return run

    client = request.getfixturevalue("client")
    login(world.admin)

    def upload(raw: bytes) -> Outcome:
        response = client.post("/admin/roster", data={"file": (io.BytesIO(raw), "roster.csv")},
                               content_type="multipart/form-data")
        assert response.status_code in (200, 422)
        return Outcome(response.status_code == 200, response.text)
    return upload


def test_a_valid_roster_adds_children_in_placement(import_file, world):
    before = counts()
    outcome = import_file(csv_bytes(*ROWS))

    assert outcome.ok
    assert "Roster imported: 3 added, 0 updated, 0 unchanged." in outcome.text
    after = counts()
    assert after["Child"] == before["Child"] + 3
    assert after["Placement"] == before["Placement"] + 3
    assert after["StatusChange"] == before["StatusChange"] + 3
    assert after["Handover"] == 0
    maya = child("R-100")
    assert (maya.first_name, maya.last_name, maya.date_of_birth, maya.sex, maya.county) == (
        "Maya", "Lopez", date(2012, 4, 3), "F", "Greene")
    assert maya.caseworker_id == world.cw_a.id
    assert maya.status == "in_placement"
    # Midnight in Chicago on the start date: CDT on 1 November 2025, CST on 15 January 2026.
    assert maya.status_since == datetime(2025, 11, 1, 5, tzinfo=UTC)
    assert child("R-101").status_since == datetime(2026, 1, 15, 6, tzinfo=UTC)
    placement = maya.current_placement
    assert (placement.setting, placement.provider_name, placement.started_on, placement.ended_on) == (
        "foster_family_relative", "Family home of the Carters", date(2025, 11, 1), None)
    assert [c.status for c in maya.status_changes] == ["in_placement"]
    ivy = child("R-102")
    assert (ivy.sex, ivy.caseworker_id) == ("F", world.cw_b.id)
    event = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "roster.import")).one()
    assert json.loads(event.details)["created"] == 3


def test_reimporting_the_same_file_changes_nothing(import_file):
    raw = csv_bytes(*ROWS)
    assert import_file(raw).ok
    before = counts()

    outcome = import_file(raw)

    assert outcome.ok
    assert "0 added, 0 updated, 3 unchanged" in outcome.text
    after = counts()
    after["AuditEvent"] -= 1  # the import itself is recorded
    assert after == before


def test_a_changed_placement_closes_the_old_one(import_file):
    assert import_file(csv_bytes(*ROWS)).ok
    old = child("R-100").current_placement
    moved = ROWS[0].replace("foster_family_relative,Family home of the Carters,2025-11-01",
                            "group_home_shelter,Sunrise Shelter,2026-02-27")
    before = counts()

    outcome = import_file(csv_bytes(moved, *ROWS[1:]))

    assert outcome.ok and "0 added, 1 updated, 2 unchanged" in outcome.text
    assert counts()["Placement"] == before["Placement"] + 1
    maya = child("R-100")
    placements = [(p.setting, p.provider_name, p.started_on, p.ended_on) for p in maya.placements]
    assert placements == [
        ("group_home_shelter", "Sunrise Shelter", date(2026, 2, 27), None),
        ("foster_family_relative", "Family home of the Carters", date(2025, 11, 1),
         date(2026, 2, 27)),
    ]
    assert maya.current_placement.id != old.id
    assert counts()["StatusChange"] == before["StatusChange"]


def test_a_changed_caseworker_is_a_handover(import_file, world):
    assert import_file(csv_bytes(*ROWS)).ok
    reassigned = ROWS[0].replace(",cw.a,", ",cw.a2,")

    outcome = import_file(csv_bytes(reassigned, *ROWS[1:]))

    assert outcome.ok and "0 added, 1 updated, 2 unchanged" in outcome.text
    maya = child("R-100")
    assert maya.caseworker_id == world.cw_a2.id
    handover = fresh().scalars(select(Handover)).one()
    assert (handover.child_id, handover.from_user_id, handover.to_user_id) == (
        maya.id, world.cw_a.id, world.cw_a2.id)
    assert handover.acknowledged_at is None and handover.note == "Roster import"
    assert import_file(csv_bytes(reassigned, *ROWS[1:])).ok
    assert counts()["Handover"] == 1


def test_a_corrected_name_updates_the_child(import_file):
    assert import_file(csv_bytes(*ROWS)).ok
    before = counts()
    outcome = import_file(csv_bytes(ROWS[0].replace("Maya,Lopez", "Maya,López"), *ROWS[1:]))
    assert outcome.ok and "0 added, 1 updated, 2 unchanged" in outcome.text
    assert child("R-100").last_name == "López"
    after = counts()
    assert (after["Child"], after["Placement"], after["Handover"]) == (
        before["Child"], before["Placement"], before["Handover"])


BAD_ROWS = [
    "R-200,Good,Row,2012-01-01,F,Greene,cw.a,qrtp,Maple House,2025-06-01",              # line 2
    "R-201,Bad,Date,2012-13-01,F,Greene,cw.a,qrtp,Maple House,2025-06-01",              # line 3
    "R-202,Bad,Setting,2012-01-01,F,Greene,cw.a,castle,Maple House,2025-06-01",         # line 4
    "R-203,Bad,Worker,2012-01-01,F,Greene,nobody,qrtp,Maple House,2025-06-01",          # line 5
    "R-200,Twice,Listed,2012-01-01,F,Greene,cw.a,qrtp,Maple House,2025-06-01",          # line 6
    "R-204,Future,Born,2027-01-01,F,Greene,cw.a,qrtp,Maple House,2025-06-01",           # line 7
    "R-205,Not,Caseworker,2012-01-01,F,Greene,sup.a,qrtp,Maple House,2025-06-01",       # line 8
    "R-206,Blank,County,2012-01-01,F,,cw.a,qrtp,Maple House,2025-06-01",                # line 9
    "R-207,Odd,Sex,2012-01-01,Q,Greene,cw.a,qrtp,Maple House,2025-06-01",               # line 10
]


def test_every_bad_row_is_reported_and_nothing_is_written(import_file):
    before = counts()

    outcome = import_file(csv_bytes(*BAD_ROWS))

    assert not outcome.ok
    text = outcome.text.replace("&#39;", "'")
    for line, problem in [
        (3, "date_of_birth '2012-13-01' is not a date in YYYY-MM-DD form"),
        (4, "placement_setting 'castle' is not a known setting"),
        (5, "caseworker_username 'nobody' is not an active caseworker"),
        (6, "case_id R-200 repeats line 2"),
        (7, "date_of_birth is in the future"),
        (8, "caseworker_username 'sup.a' is not an active caseworker"),
        (9, "empty county"),
        (10, "sex 'Q' is not one of F, M, U"),
    ]:
        assert f"line {line}: {problem}" in text
    assert "line 2:" not in text
    assert "nothing was imported" in text.lower()
    assert counts() == before
    assert child("R-200") is None


def test_line_numbers_count_blank_lines(import_file):
    raw = csv_bytes(BAD_ROWS[0], "", BAD_ROWS[1], BAD_ROWS[2])
    outcome = import_file(raw)
    assert not outcome.ok
    assert "line 4: date_of_birth" in outcome.text and "line 5: placement_setting" in outcome.text


@pytest.mark.parametrize("raw, problem", [
    (csv_bytes(ROWS[0].rsplit(",", 1)[0], header=HEADER.rsplit(",", 1)[0]),
     "line 1: missing column(s): placement_started_on"),
    (csv_bytes(ROWS[0], "R-300,Zoë,Ortiz,2011-02-03,F,Polk,cw.a,qrtp,Maple House,2025-06-01")
     .replace("Zoë".encode(), "Zoë".encode("latin-1")),
     "line 3: the file is not UTF-8 text"),
    (csv_bytes(), "the file has a header but no children"),
    (b"", "line 1: missing column(s): case_id"),
])
def test_a_file_that_cannot_be_read_writes_nothing(import_file, raw, problem):
    before = counts()
    outcome = import_file(raw)
    assert not outcome.ok
    assert problem in outcome.text
    assert counts() == before
    assert child("R-100") is None


def test_a_byte_order_mark_and_crlf_are_fine(import_file):
    raw = b"\xef\xbb\xbf" + csv_bytes(*ROWS).replace(b"\n", b"\r\n")
    outcome = import_file(raw)
    assert outcome.ok and "3 added" in outcome.text
    assert child("R-102").first_name == "Ivy"


# docs/roster-format.md is kept true by these tests.

DOC = Path(__file__).resolve().parent.parent / "docs" / "roster-format.md"


def doc_table_keys(heading: str) -> dict[str, str]:
    """The first column (a `key`) and the last of the table under ``heading``."""
    section = DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|(.*)\|$", section, re.M)
    return {key: rest.split("|")[-1].strip() for key, rest in rows}


def test_the_doc_lists_every_column_and_setting():
    assert list(doc_table_keys("Columns")) == list(COLUMNS) + list(OPTIONAL_COLUMNS)
    assert doc_table_keys("Placement settings") == PLACEMENT_SETTINGS


def test_the_doc_example_imports(runner, make_user, tmp_path):
    make_user("caseworker", "caseworker", "Greene County Team 1")
    make_user("caseworker2", "caseworker", "Greene County Team 1")
    example = DOC.read_text().split("```csv\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.csv"
    path.write_text(example)
    result = runner.invoke(args=["import-roster", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 added, 0 updated, 0 unchanged" in result.output


def test_a_back_dated_placement_updates_the_risk_at_t0_of_past_episodes(import_file, world,
                                                                        make_episode, clock):
    assert import_file(csv_bytes(*ROWS)).ok
    episode = make_episode(child("R-100"), world.cw_a, t0=clock.now() - timedelta(hours=1))
    assert fresh().get(EpisodeSummary, episode.id).acf_congregate is False
    moved = ROWS[0].replace("foster_family_relative,Family home of the Carters,2025-11-01",
                            "group_home_shelter,Sunrise Shelter,2026-02-27")
    assert import_file(csv_bytes(moved, *ROWS[1:])).ok
    # The shelter began before T0, so the child was in a congregate setting when they went missing.
    assert fresh().get(EpisodeSummary, episode.id).acf_congregate is True


def test_a_file_in_the_old_format_still_imports_and_keeps_no_arrangement(import_file):
    """Rosters exported before the living_arrangement column existed stay valid."""
    assert "living_arrangement" not in HEADER
    outcome = import_file(csv_bytes(*ROWS))
    assert outcome.ok and "3 added, 0 updated, 0 unchanged" in outcome.text
    assert fresh().scalars(select(FacesArrangement)).all() == []


def test_the_living_arrangement_column_is_read_in_any_position(import_file):
    header = "living_arrangement," + HEADER
    outcome = import_file(csv_bytes(*("whereabouts_unknown," + row for row in ROWS),
                                    header=header))
    assert outcome.ok and "3 added" in outcome.text
    kept = fresh().scalars(select(FacesArrangement)).all()
    assert [k.arrangement for k in kept] == ["whereabouts_unknown"] * 3
    assert child("R-100").status == "in_placement"  # FACES's word is kept, not applied

