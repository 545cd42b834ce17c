"""The identification profile (issue 7): sections kept current and audited without their content,
endangerment for the case team only, prior episodes read from the episodes, and the photo cadence
of the policy file, tested at the age-6 boundary."""
from __future__ import annotations

import io
import json
import tomllib
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from fieldapp import db
from fieldapp.episodes import mark_located
from fieldapp.identification import (SECTIONS, add_months, age_on, cadence_months,
                                     photo_overdue)
from fieldapp.models import AuditEvent, Child, Episode, IdentificationProfile

from helpers import NOW, count, field_error, fresh, utc

POLICY_DIR = Path(__file__).resolve().parents[1] / "fieldapp" / "policies"
CADENCE = tomllib.loads((POLICY_DIR / "missouri-2023.toml").read_text())["photo_cadence"]
DESCRIPTION = {"race_ethnicity": "White, not Hispanic", "height": "5 ft 4 in", "weight": "120 lb",
               "hair_colour": "Brown, shoulder length", "eye_colour": "Green",
               "complexion": "Fair, freckles"}
ENDANGERMENT = {"pregnancy": "About 4 months pregnant", "medications": "Insulin, twice daily",
                "suicidal": "None known", "trafficking": "Older boyfriend, 23",
                "health_risks": "Type 1 diabetes"}


def test_the_cadence_is_the_policy_files():
    assert CADENCE == {"up_to_age": 6, "months_up_to_age": 6, "months_after": 12}


@pytest.mark.parametrize("today, age, months", [
    (date(2025, 3, 2), 5, 6),    # the day before the sixth birthday
    (date(2025, 3, 3), 6, 6),    # six: still "6 months for children 6 and under"
    (date(2026, 3, 2), 6, 6),    # the last day of being six
    (date(2026, 3, 3), 7, 12),   # the seventh birthday: yearly from here
])
def test_the_cadence_changes_at_the_seventh_birthday(today, age, months):
    born = date(2019, 3, 3)
    assert age_on(born, today) == age
    assert cadence_months(CADENCE, born, today) == months


def _child(born, photo_taken_on, status="in_placement"):
    return Child(date_of_birth=born, photo_taken_on=photo_taken_on, status=status)


def test_a_six_year_olds_seven_month_old_photo_is_overdue_and_a_seven_year_olds_is_not():
    photo = date(2025, 8, 1)
    six = _child(date(2019, 3, 3), photo)  # six until 3 March 2026
    assert photo_overdue(CADENCE, six, None, date(2026, 3, 2)) is True
    assert photo_overdue(CADENCE, six, None, date(2026, 3, 3)) is False  # now seven: yearly


def test_a_photo_is_overdue_the_day_after_it_is_due():
    child = _child(date(2021, 6, 1), date(2025, 9, 1))  # four: every six months
    assert photo_overdue(CADENCE, child, None, date(2026, 3, 1)) is False
    assert photo_overdue(CADENCE, child, None, date(2026, 3, 2)) is True
    older = _child(date(2012, 6, 1), date(2025, 3, 1))
    assert photo_overdue(CADENCE, older, None, date(2026, 3, 1)) is False
    assert photo_overdue(CADENCE, older, None, date(2026, 3, 2)) is True


def test_no_photo_or_a_changed_appearance_is_overdue_at_once_and_no_policy_flags_nothing():
    assert photo_overdue(CADENCE, _child(date(2012, 6, 1), None), None, date(2026, 3, 2))
    fresh_photo = _child(date(2012, 6, 1), date(2026, 3, 1))
    assert photo_overdue(CADENCE, fresh_photo, date(2026, 3, 2), date(2026, 3, 2))
    assert not photo_overdue(None, _child(date(2012, 6, 1), None), None, date(2026, 3, 2))
    released = _child(date(2012, 6, 1), None, status="released_from_custody")
    assert not photo_overdue(CADENCE, released, None, date(2026, 3, 2))


@pytest.mark.parametrize("day, months, expected", [
    (date(2025, 8, 31), 6, date(2026, 2, 28)),
    (date(2023, 8, 31), 6, date(2024, 2, 29)),
    (date(2025, 12, 15), 12, date(2026, 12, 15)),
    (date(2025, 7, 1), 6, date(2026, 1, 1)),
])
def test_months_are_added_in_the_calendar(day, months, expected):
    assert add_months(day, months) == expected


def test_the_caseload_flags_photos_by_the_policy_at_the_age_6_boundary(world, policies, login,
                                                                      client, make_child):
    # NOW is 2 March 2026 in Missouri. Both photos are seven months old; one child is six
    # (born 3 March 2019), the other turned seven yesterday.
    today = date(2026, 3, 2)
    six = make_child(world.cw_a, "SIX", first_name="Sasha", born=date(2019, 3, 3),
                     photo_taken_on=today - timedelta(days=213))
    seven = make_child(world.cw_a, "SEVEN", first_name="Sevy", born=date(2019, 3, 1),
                       photo_taken_on=today - timedelta(days=213))
    login(world.cw_a)
    html = client.get("/caseload").get_data(as_text=True)
    rows = {c: html[html.index(c.case_id):].split("</li>", 1)[0] for c in (six, seven)}
    assert "Photo due" in rows[six]
    assert "Photo due" not in rows[seven]
    # child_a has no photo at all.
    assert "Photo due" in html[html.index("A-1"):].split("</li>", 1)[0]


def test_a_change_of_appearance_flags_the_photo_until_a_new_one_is_stored(world, policies, login,
                                                                         client):
    with db.writing() as s:
        s.get(Child, world.child_a.id).photo_taken_on = date(2026, 2, 1)
    login(world.cw_a)

    def flagged() -> bool:
        html = client.get("/caseload").get_data(as_text=True)
        return "Photo due" in html[html.index("A-1"):].split("</li>", 1)[0]

    assert not flagged()
    response = client.post(f"/children/{world.child_a.id}/profile/appearance-changed")
    assert response.status_code == 303
    assert flagged()
    assert count(AuditEvent, AuditEvent.action == "identification.appearance_changed") == 1
    image = io.BytesIO()
    Image.new("RGB", (300, 400), "grey").save(image, "JPEG")
    image.seek(0)
    client.post(f"/children/{world.child_a.id}/photos",
                data={"photo": (image, "new.jpg"), "taken_on": "2026-03-02"},
                content_type="multipart/form-data")
    assert not flagged()


def test_a_section_is_saved_dated_and_audited_without_its_values(world, login, client, clock):
    login(world.cw_a)
    response = client.post(f"/children/{world.child_a.id}/profile/description", data=DESCRIPTION)
    assert response.status_code == 303
    profile = fresh().get(IdentificationProfile, world.child_a.id)
    assert profile.height == "5 ft 4 in" and profile.hair_colour == "Brown, shoulder length"
    assert profile.description_updated_at == NOW
    assert profile.description_updated_by_id == world.cw_a.id
    assert profile.marks_updated_at is None
    event = fresh().scalars(select(AuditEvent).where(
        AuditEvent.action == "identification.update")).one()
    details = json.loads(event.details)
    assert details == {"section": "description", "fields": sorted(DESCRIPTION, key=list(
        f.name for f in SECTIONS[0].fields).index)}
    for value in DESCRIPTION.values():
        assert value not in event.details

    page = client.get(f"/children/{world.child_a.id}/profile").get_data(as_text=True)
    assert "5 ft 4 in" in page and "Last updated Mon 2 Mar 2026, 14:00 CST" in page
    assert "Never filled in" in page  # the other sections

    # Saving the same values again changes nothing and adds no event.
    clock.set(NOW + timedelta(hours=1))
    client.post(f"/children/{world.child_a.id}/profile/description", data=DESCRIPTION)
    assert fresh().get(IdentificationProfile, world.child_a.id).description_updated_at == NOW
    assert count(AuditEvent, AuditEvent.action == "identification.update") == 1


def test_a_too_long_value_is_refused_next_to_its_field_and_nothing_is_lost(world, login, client):
    login(world.cw_a)
    client.post(f"/children/{world.child_a.id}/profile/description", data=DESCRIPTION)
    response = client.post(f"/children/{world.child_a.id}/profile/description",
                           data={**DESCRIPTION, "height": "x" * 41, "weight": "130 lb"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Keep it under 40 characters" in field_error(html, "height")
    assert 'value="130 lb"' in html  # what was typed comes back
    assert fresh().get(IdentificationProfile, world.child_a.id).weight == "120 lb"


def test_endangerment_is_the_case_teams_alone(world, login, client):
    login(world.cw_a)
    assert client.post(f"/children/{world.child_a.id}/profile/endangerment",
                       data=ENDANGERMENT).status_code == 303
    assert "About 4 months pregnant" in client.get(
        f"/children/{world.child_a.id}/profile").get_data(as_text=True)
    client.post("/logout")

    # The administrator works the child but is not the case team: the profile without it.
    login(world.admin)
    page = client.get(f"/children/{world.child_a.id}/profile")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Pregnancy" not in html and "About 4 months" not in html and "Insulin" not in html
    assert client.get(f"/children/{world.child_a.id}/profile/endangerment").status_code == 404
    assert client.post(f"/children/{world.child_a.id}/profile/endangerment",
                       data={"pregnancy": ""}).status_code == 404
    client.post("/logout")

    for outsider in (world.cw_b, world.sup_b, world.auditor):
        login(outsider)
        assert client.get(f"/children/{world.child_a.id}/profile").status_code == 404
        assert client.get(f"/children/{world.child_a.id}/profile/endangerment").status_code == 404
        client.post("/logout")
    login(world.auditor)
    assert client.post(f"/children/{world.child_a.id}/profile/description",
                       data=DESCRIPTION).status_code == 403
    stored = fresh().get(IdentificationProfile, world.child_a.id)
    assert stored.pregnancy == ENDANGERMENT["pregnancy"]

    # The supervisor of the caseworker's team is on the case team.
    client.post("/logout")
    login(world.sup_a)
    assert "About 4 months pregnant" in client.get(
        f"/children/{world.child_a.id}/profile").get_data(as_text=True)


def test_an_unknown_section_is_404(world, login, client):
    login(world.cw_a)
    assert client.get(f"/children/{world.child_a.id}/profile/shoe_size").status_code == 404


def test_prior_episodes_come_from_the_episodes_with_where_the_child_was_found(
        world, login, client, make_episode, clock):
    episode = make_episode(world.child_a, world.cw_a, t0=utc(2026, 2, 1, 14))
    clock.set(utc(2026, 2, 3, 14))
    with db.writing() as s:
        mark_located(s, s.get(Episode, episode.id), s.merge(world.cw_a),
                     located_at=utc(2026, 2, 3, 12), located_where="out_of_state",
                     located_place="A motel in Tulsa", located_by="Tulsa PD",
                     status="located_pending_return", note="Found")
    clock.set(NOW)
    login(world.cw_a)
    html = client.get(f"/children/{world.child_a.id}/profile").get_data(as_text=True)
    assert "A motel in Tulsa" in html and "(out of state)" in html and "Tulsa PD" in html
    assert count(IdentificationProfile) == 0  # nothing copied into the profile
