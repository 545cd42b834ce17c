"""Episodes and their clocks (DESIGN §3): T0, T1, T2, the end of an episode, and the status moves
that open, keep or refuse one. Tested through the domain functions and through the forms."""
from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from fieldapp import db
from fieldapp.checklists import record_item
from fieldapp.episodes import (EpisodeInvalid, mark_located, mark_returned, open_episode,
                               record_info_event, release_from_custody)
from fieldapp.models import (Child, Episode, EpisodeStep, InfoEvent, Placement, StatusChange,
                             StepEntry)
from fieldapp.status import UnapprovedLocation

from helpers import count, field_error, fresh, utc

MISSING_KEYS = ["report_law_enforcement", "report_ncmec", "report_contents", "inform_and_obtain",
                "notify_juvenile_officer", "notify_court_representative", "notify_parents",
                "protective_alert", "update_living_arrangement", "search_contacts",
                "follow_up_le_ncmec"]
RETURN_KEYS = ["notify_located", "safety_assessment", "medical_exam", "trafficking_screening",
               "interview_factors", "interview_experiences", "family_support_team",
               "placement_visit", "cac_referral", "supportive_services", "notify_return",
               "update_living_arrangement_return"]
ADDRESS = UnapprovedLocation("1200 N Example Ave, Springfield MO", "Dana Reyes, aunt",
                             "Home visit; the aunt's ID seen")
REPORT_MISSING = "Use “Report missing”"


def steps_of(episode_id: int) -> dict[str, EpisodeStep]:
    return {s.step_key: s for s in fresh().scalars(
        select(EpisodeStep).where(EpisodeStep.episode_id == episode_id))}


def episodes_of(child) -> list[Episode]:
    return list(fresh().scalars(select(Episode).where(Episode.child_id == child.id)
                                .order_by(Episode.id)))


def locate(episode_id: int, user, at: datetime, status="located_pending_return", location=None):
    with db.writing() as s:
        return mark_located(s, s.get(Episode, episode_id), s.merge(user), located_at=at,
                            located_where="in_state", located_place="Friend's flat, Elm St",
                            located_by="Officer Diaz, Springfield PD", status=status,
                            location=location, note="Found by police")


def bring_back(episode_id: int, user, at: datetime):
    with db.writing() as s:
        return mark_returned(s, s.get(Episode, episode_id), s.merge(user), returned_at=at,
                             setting="group_home_staff", provider_name="Oak Lodge")


def record_done(episode_id: int, user, step_key: str, evidence: dict, done_at: datetime):
    with db.writing() as s:
        entry, _ = record_item(s, s.get(Episode, episode_id), step_key, s.merge(user),
                               outcome="done", done_at=done_at, recorded_at=None,
                               raw_evidence=evidence, reason="", client_uuid=str(uuid.uuid4()))
        return entry


@pytest.fixture
def as_cw_a(client, world, login, policies):
    login(world.cw_a)
    return world


# --- opening --------------------------------------------------------------------------------

OPEN_FORM = {"status": "whereabouts_unknown", "discovered_at": "2026-03-02T13:30",
             "discovered_by_role": "placement_provider", "discovered_by_name": "Jo Maple",
             "how_missing": "ran_away", "last_seen_at": "2026-03-02T12:45",
             "last_seen_place": "School gate, red hoodie", "note": "Not back from school"}


@pytest.mark.parametrize("status", ["whereabouts_unknown", "in_contact_location_unknown"])
def test_reporting_missing_opens_an_episode_at_t0(client, as_cw_a, status):
    child = as_cw_a.child_a
    response = client.post(f"/children/{child.id}/missing", data={**OPEN_FORM, "status": status})

    [episode] = episodes_of(child)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/episodes/{episode.id}/steps/report_law_enforcement"
    # 13:30 in Chicago in March (CST, UTC-6) is 19:30 UTC.
    assert episode.discovered_at == utc(2026, 3, 2, 19, 30)
    assert (episode.discovered_by_role, episode.discovered_by_name) == ("placement_provider", "Jo Maple")
    assert episode.how_missing == "ran_away"
    assert episode.last_seen_at == utc(2026, 3, 2, 18, 45)
    assert episode.last_seen_place == "School gate, red hoodie"
    assert episode.policy_version.key == "missouri-2023"
    assert episode.opened_by_id == as_cw_a.cw_a.id
    assert (episode.located_at, episode.returned_at, episode.ended_at) == (None, None, None)
    stored = fresh().get(Child, child.id)
    assert (stored.status, stored.status_since) == (status, utc(2026, 3, 2, 19, 30))
    assert [c.status for c in stored.status_changes] == [status, "in_placement"]
    # The missing checklist starts at once, with the two reports due two hours after T0.
    steps = steps_of(episode.id)
    assert sorted(steps) == sorted(MISSING_KEYS)
    assert steps["report_law_enforcement"].due_at == utc(2026, 3, 2, 21, 30)
    # The episode page says what was recorded.
    page = client.get(f"/episodes/{episode.id}").text
    assert "Mon 2 Mar 2026, 13:30 CST" in page
    assert "by Jo Maple (placement provider); ran away" in page


def test_opening_through_the_domain_records_the_clock_and_steps(world, policies, clock):
    with db.writing() as s:
        episode = open_episode(s, s.get(Child, world.child_a.id), s.merge(world.cw_a),
                               status="whereabouts_unknown", discovered_at=utc(2026, 3, 2, 6, 5),
                               discovered_by_role="custodian", discovered_by_name="Gran Avery",
                               how_missing="unknown", last_seen_at=utc(2026, 3, 1, 23, 0),
                               last_seen_place="Bedroom", note="Bed empty at 00:05")
    stored = fresh().get(Episode, episode.id)
    assert stored.discovered_at == utc(2026, 3, 2, 6, 5)
    assert stored.discovered_by_role == "custodian"
    assert stored.last_seen_at == utc(2026, 3, 1, 23, 0)
    assert fresh().get(Child, world.child_a.id).status == "whereabouts_unknown"
    assert steps_of(episode.id)["report_ncmec"].due_at == utc(2026, 3, 2, 8, 5)


def test_t0_in_the_future_is_refused_and_nothing_is_saved(client, as_cw_a):
    child = as_cw_a.child_a
    response = client.post(f"/children/{child.id}/missing",
                           data={**OPEN_FORM, "discovered_at": "2026-03-02T14:05"})

    assert response.status_code == 422
    assert "Nothing was saved yet" in response.text
    assert "This time is in the future" in field_error(response.text, "discovered_at")
    assert 'value="Jo Maple"' in response.text  # what was typed is kept
    assert episodes_of(child) == []
    assert fresh().get(Child, child.id).status == "in_placement"
    assert count(StatusChange, StatusChange.child_id == child.id) == 1

    with pytest.raises(EpisodeInvalid) as refused, db.writing() as s:
        open_episode(s, s.get(Child, child.id), s.merge(as_cw_a.cw_a), status="whereabouts_unknown",
                     discovered_at=utc(2026, 3, 2, 20, 1), discovered_by_role="caseworker",
                     discovered_by_name="Cal", how_missing="unknown", note="Gone")
    assert "future" in refused.value.errors["discovered_at"]
    assert episodes_of(child) == []


def test_a_last_sighting_after_t0_is_refused(client, as_cw_a):
    response = client.post(f"/children/{as_cw_a.child_a.id}/missing",
                           data={**OPEN_FORM, "last_seen_at": "2026-03-02T13:45"})
    assert response.status_code == 422
    assert "cannot be after" in field_error(response.text, "last_seen_at")
    assert episodes_of(as_cw_a.child_a) == []


# --- one open episode per child ---------------------------------------------------------------

def _episode_row(child_id: int, policy_id: int, ended_at=None) -> dict:
    return dict(child_id=child_id, policy_version_id=policy_id, discovered_at=utc(2026, 3, 2, 18),
                discovered_by_role="caseworker", discovered_by_name="Someone",
                how_missing="unknown", last_seen_place="", ended_at=ended_at,
                created_at=utc(2026, 3, 2, 18))


def test_the_database_allows_one_open_episode_per_child(world, make_episode):
    episode = make_episode(world.child_a, world.cw_a)
    policy_id = episode.policy_version_id

    with pytest.raises(IntegrityError), db.writing() as s:
        s.execute(insert(Episode).values(**_episode_row(world.child_a.id, policy_id)))
    with pytest.raises(IntegrityError), db.writing() as s:
        s.add(Episode(**_episode_row(world.child_a.id, policy_id)))
        s.flush()
    assert [e.id for e in episodes_of(world.child_a)] == [episode.id]

    # The index is partial: ended episodes may be many, and another child may have its own.
    with db.writing() as s:
        s.execute(insert(Episode).values(**_episode_row(world.child_a.id, policy_id,
                                                        ended_at=utc(2026, 3, 2, 19))))
        s.execute(insert(Episode).values(**_episode_row(world.child_b.id, policy_id)))
    assert count(Episode, Episode.child_id == world.child_a.id) == 2
    assert count(Episode, Episode.child_id == world.child_a.id, Episode.ended_at.is_(None)) == 1


def test_reporting_missing_again_while_missing_goes_to_the_open_episode(client, as_cw_a, make_episode):
    episode = make_episode(as_cw_a.child_a, as_cw_a.cw_a)
    response = client.get(f"/children/{as_cw_a.child_a.id}/missing")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/episodes/{episode.id}"
    assert client.post(f"/children/{as_cw_a.child_a.id}/missing", data=OPEN_FORM).status_code == 302
    assert len(episodes_of(as_cw_a.child_a)) == 1


# --- status moves -----------------------------------------------------------------------------

def post_status(client, child, **fields):
    data = {"status": "whereabouts_unknown", "since": "2026-03-02T13:40", "note": "Checking",
            "location_address": "", "location_adult": "", "location_verified_how": ""}
    data.update(fields)
    return client.post(f"/children/{child.id}/status", data=data)


def test_moving_between_the_two_missing_statuses_keeps_the_episode(client, as_cw_a, make_episode):
    child = as_cw_a.child_a
    episode = make_episode(child, as_cw_a.cw_a)

    moved = post_status(client, child, status="in_contact_location_unknown",
                        since="2026-03-02T13:40", note="She texted her friend; won't say where")
    assert moved.status_code == 303
    assert fresh().get(Child, child.id).status == "in_contact_location_unknown"
    moved_back = post_status(client, child, status="whereabouts_unknown", since="2026-03-02T13:55",
                             note="Phone off now")
    assert moved_back.status_code == 303

    [only] = episodes_of(child)
    assert only.id == episode.id and only.ended_at is None
    assert only.discovered_at == utc(2026, 3, 2, 19)  # T0 is unchanged
    assert fresh().get(Child, child.id).status == "whereabouts_unknown"
    assert count(EpisodeStep, EpisodeStep.episode_id == episode.id) == len(MISSING_KEYS)


def test_the_plain_status_form_cannot_make_a_child_missing(client, as_cw_a):
    child = as_cw_a.child_a
    response = post_status(client, child, status="whereabouts_unknown", note="Not back from school")

    assert response.status_code == 422
    assert REPORT_MISSING in response.text
    assert fresh().get(Child, child.id).status == "in_placement"
    assert episodes_of(child) == []
    assert count(StatusChange, StatusChange.child_id == child.id) == 1


def test_after_t1_the_status_form_still_sends_a_new_absence_to_report_missing(
        client, as_cw_a, make_episode):
    child = as_cw_a.child_a
    episode = make_episode(child, as_cw_a.cw_a, t0=utc(2026, 3, 2, 15))
    locate(episode.id, as_cw_a.cw_a, utc(2026, 3, 2, 17))

    response = post_status(client, child, status="in_contact_location_unknown", note="Ran again")
    assert response.status_code == 422
    assert REPORT_MISSING in response.text
    assert fresh().get(Child, child.id).status == "located_pending_return"
    assert fresh().get(Episode, episode.id).ended_at is None


def test_a_move_from_placement_to_a_known_address_opens_no_episode(client, as_cw_a):
    child = as_cw_a.child_a
    response = post_status(client, child, status="unapproved_location_known",
                           note="Staying with her aunt",
                           location_address=ADDRESS.address, location_adult=ADDRESS.adult_present,
                           location_verified_how=ADDRESS.verified_how)
    assert response.status_code == 303
    stored = fresh().get(Child, child.id)
    assert stored.status == "unapproved_location_known"
    assert stored.status_changes[0].location_adult == "Dana Reyes, aunt"
    assert episodes_of(child) == []
    assert count(EpisodeStep) == 0


# --- located (T1) -----------------------------------------------------------------------------

LOCATED_FORM = {"located_at": "2026-03-02T13:50", "located_where": "out_of_state",
                "located_place": "Bus station, Tulsa OK", "located_by": "Officer Diaz, Tulsa PD",
                "status": "located_pending_return", "location_address": "", "location_adult": "",
                "location_verified_how": "", "note": "Police called"}


def test_located_sets_t1_and_starts_the_return_checklist(client, as_cw_a, make_episode):
    child = as_cw_a.child_a
    episode = make_episode(child, as_cw_a.cw_a)  # T0 19:00 UTC
    response = client.post(f"/episodes/{episode.id}/located", data=LOCATED_FORM)

    assert response.status_code == 303
    stored = fresh().get(Episode, episode.id)
    assert stored.located_at == utc(2026, 3, 2, 19, 50)
    assert (stored.located_where, stored.located_place, stored.located_by) == (
        "out_of_state", "Bus station, Tulsa OK", "Officer Diaz, Tulsa PD")
    assert stored.ended_at is None
    assert (fresh().get(Child, child.id).status, fresh().get(Child, child.id).status_since) == (
        "located_pending_return", utc(2026, 3, 2, 19, 50))
    steps = steps_of(episode.id)
    assert sorted(steps) == sorted(MISSING_KEYS + RETURN_KEYS)
    # T1 steps get their deadline now; T2 steps wait for the return.
    assert steps["notify_located"].due_at == utc(2026, 3, 2, 21, 50)
    assert steps["safety_assessment"].due_at == utc(2026, 3, 2, 21, 50)
    assert steps["medical_exam"].due_at is None
    assert steps["trafficking_screening"].due_at is None
    assert response.headers["Location"] == f"/episodes/{episode.id}/steps/report_law_enforcement"


def test_located_before_t0_is_refused(client, as_cw_a, make_episode):
    episode = make_episode(as_cw_a.child_a, as_cw_a.cw_a)  # T0 13:00 CST
    response = client.post(f"/episodes/{episode.id}/located",
                           data={**LOCATED_FORM, "located_at": "2026-03-02T12:59"})
    assert response.status_code == 422
    assert "cannot be located before" in field_error(response.text, "located_at")
    assert fresh().get(Episode, episode.id).located_at is None
    assert fresh().get(Child, as_cw_a.child_a.id).status == "whereabouts_unknown"
    assert "notify_located" not in steps_of(episode.id)

    with pytest.raises(EpisodeInvalid) as refused:
        locate(episode.id, as_cw_a.cw_a, utc(2026, 3, 2, 18, 59))
    assert "located_at" in refused.value.errors
    with pytest.raises(EpisodeInvalid) as refused:
        locate(episode.id, as_cw_a.cw_a, utc(2026, 3, 2, 20, 1))
    assert "future" in refused.value.errors["located_at"]


def test_found_at_a_known_address_needs_the_address_the_adult_and_the_check(
        client, as_cw_a, make_episode):
    child = as_cw_a.child_a
    episode = make_episode(child, as_cw_a.cw_a)
    response = client.post(f"/episodes/{episode.id}/located",
                           data={**LOCATED_FORM, "status": "unapproved_location_known"})

    assert response.status_code == 422
    assert "Give the address" in field_error(response.text, "location_address")
    assert "Name the adult" in field_error(response.text, "location_adult")
    assert "how the address was verified" in field_error(response.text, "location_verified_how")
    assert fresh().get(Episode, episode.id).located_at is None
    assert fresh().get(Child, child.id).status == "whereabouts_unknown"

    response = client.post(f"/episodes/{episode.id}/located", data={
        **LOCATED_FORM, "status": "unapproved_location_known",
        "location_address": ADDRESS.address, "location_adult": ADDRESS.adult_present,
        "location_verified_how": ADDRESS.verified_how})
    assert response.status_code == 303
    stored = fresh().get(Child, child.id)
    assert stored.status == "unapproved_location_known"
    change = stored.status_changes[0]
    assert (change.location_address, change.location_adult, change.location_verified_how) == (
        ADDRESS.address, ADDRESS.adult_present, ADDRESS.verified_how)
    assert fresh().get(Episode, episode.id).located_at == utc(2026, 3, 2, 19, 50)
    assert "notify_located" in steps_of(episode.id)


# --- returned (T2) ----------------------------------------------------------------------------

RETURNED_FORM = {"returned_at": "2026-03-02T13:55", "setting": "group_home_staff",
                 "provider_name": "Oak Lodge", "note": ""}


def test_returned_sets_t2_adds_the_placement_and_ends_the_episode(client, as_cw_a, make_episode):
    child = as_cw_a.child_a
    episode = make_episode(child, as_cw_a.cw_a)
    locate(episode.id, as_cw_a.cw_a, utc(2026, 3, 2, 19, 50))
    response = client.post(f"/episodes/{episode.id}/returned", data=RETURNED_FORM)

    assert response.status_code == 303
    stored = fresh().get(Episode, episode.id)
    assert stored.returned_at == utc(2026, 3, 2, 19, 55)
    assert (stored.end_reason, stored.ended_at) == ("returned_to_care", utc(2026, 3, 2, 19, 55))
    placement = fresh().get(Placement, stored.return_placement_id)
    assert (placement.setting, placement.provider_name, placement.started_on, placement.ended_on) == (
        "group_home_staff", "Oak Lodge", date(2026, 3, 2), None)
    placements = list(fresh().scalars(select(Placement).where(Placement.child_id == child.id)
                                      .order_by(Placement.id)))
    assert [(p.provider_name, p.ended_on) for p in placements] == [
        ("Maple House", date(2026, 3, 2)), ("Oak Lodge", None)]
    assert fresh().get(Child, child.id).status == "in_placement"
    steps = steps_of(episode.id)
    assert steps["medical_exam"].due_at == utc(2026, 3, 3, 19, 55)  # T2 + 24 h
    assert steps["family_support_team"].due_at == utc(2026, 3, 5, 19, 55)  # T2 + 72 h
    assert steps["notify_located"].due_at == utc(2026, 3, 2, 21, 50)  # still T1 + 2 h


def test_returned_before_t1_or_before_located_is_refused(client, as_cw_a, make_episode):
    child = as_cw_a.child_a
    episode = make_episode(child, as_cw_a.cw_a)

    not_found_yet = client.post(f"/episodes/{episode.id}/returned", data=RETURNED_FORM)
    assert not_found_yet.status_code == 422
    assert "Record where the child was located first" in field_error(not_found_yet.text, "returned_at")

    locate(episode.id, as_cw_a.cw_a, utc(2026, 3, 2, 19, 50))
    too_early = client.post(f"/episodes/{episode.id}/returned",
                            data={**RETURNED_FORM, "returned_at": "2026-03-02T13:49"})
    assert too_early.status_code == 422
    assert "cannot be before the child was located" in field_error(too_early.text, "returned_at")
    stored = fresh().get(Episode, episode.id)
    assert (stored.returned_at, stored.ended_at) == (None, None)
    assert fresh().get(Child, child.id).status == "located_pending_return"
    assert count(Placement, Placement.child_id == child.id) == 1


# --- released from custody --------------------------------------------------------------------

def test_release_needs_the_court_order_date(client, as_cw_a, make_episode):
    episode = make_episode(as_cw_a.child_a, as_cw_a.cw_a)
    response = client.post(f"/episodes/{episode.id}/release",
                           data={"released_at": "2026-03-02T13:30", "court_order_date": "",
                                 "note": ""})
    assert response.status_code == 422
    assert "court order" in field_error(response.text, "court_order_date")
    assert fresh().get(Episode, episode.id).ended_at is None

    with pytest.raises(EpisodeInvalid) as refused, db.writing() as s:
        release_from_custody(s, s.get(Episode, episode.id), s.merge(as_cw_a.cw_a),
                             released_at=utc(2026, 3, 2, 19, 30), court_order_date=None)
    assert "court_order_date" in refused.value.errors
    assert fresh().get(Child, as_cw_a.child_a.id).status == "whereabouts_unknown"


def test_release_while_missing_raises_the_step_to_tell_law_enforcement_and_ncmec(
        client, as_cw_a, make_episode):
    child = as_cw_a.child_a
    episode = make_episode(child, as_cw_a.cw_a)
    assert "notify_release" not in steps_of(episode.id)

    response = client.post(f"/episodes/{episode.id}/release",
                           data={"released_at": "2026-03-02T13:30", "court_order_date": "2026-03-02",
                                 "note": "Judge ended custody at the hearing"})
    assert response.status_code == 303
    stored = fresh().get(Episode, episode.id)
    assert (stored.end_reason, stored.ended_at) == ("released_from_custody", utc(2026, 3, 2, 19, 30))
    assert stored.court_order_date == date(2026, 3, 2)
    assert fresh().get(Child, child.id).status == "released_from_custody"
    step = steps_of(episode.id)["notify_release"]
    assert step.due_at == utc(2026, 3, 3, 19, 30)  # 24 h after custody ended
    assert step.closed_reason is None
    page = client.get(f"/episodes/{episode.id}/steps/notify_release")
    assert page.status_code == 200
    assert "Tell law enforcement and NCMEC the child left custody while missing" in page.text


def test_release_after_the_child_was_found_raises_no_step(client, as_cw_a, make_episode):
    episode = make_episode(as_cw_a.child_a, as_cw_a.cw_a)
    locate(episode.id, as_cw_a.cw_a, utc(2026, 3, 2, 19, 20))
    with db.writing() as s:
        release_from_custody(s, s.get(Episode, episode.id), s.merge(as_cw_a.cw_a),
                             released_at=utc(2026, 3, 2, 19, 30), court_order_date=date(2026, 3, 2))
    assert fresh().get(Episode, episode.id).end_reason == "released_from_custody"
    assert "notify_release" not in steps_of(episode.id)
    assert count(InfoEvent, InfoEvent.episode_id == episode.id) == 0


# --- missing again --------------------------------------------------------------------------

def test_missing_again_after_t1_opens_a_linked_episode_and_closes_the_old_return_steps(
        client, as_cw_a, make_episode):
    child = as_cw_a.child_a
    first = make_episode(child, as_cw_a.cw_a, t0=utc(2026, 3, 2, 12))
    locate(first.id, as_cw_a.cw_a, utc(2026, 3, 2, 15))
    record_done(first.id, as_cw_a.cw_a, "notify_located",
                {"who": "Springfield PD desk; NCMEC hotline"}, utc(2026, 3, 2, 15, 30))

    response = client.post(f"/children/{child.id}/missing",
                           data={**OPEN_FORM, "discovered_at": "2026-03-02T13:30",
                                 "last_seen_at": "2026-03-02T13:00"})
    assert response.status_code == 303

    old, new = episodes_of(child)
    assert old.id == first.id
    assert (old.end_reason, old.ended_at) == ("missing_again", utc(2026, 3, 2, 19, 30))
    assert old.returned_at is None
    assert new.previous_episode_id == old.id
    assert (new.discovered_at, new.ended_at) == (utc(2026, 3, 2, 19, 30), None)
    assert fresh().get(Child, child.id).status == "whereabouts_unknown"

    old_steps = steps_of(old.id)
    assert old_steps["notify_located"].closed_reason is None  # evidenced: it stays as it was
    for key in RETURN_KEYS:
        if key != "notify_located":
            assert old_steps[key].closed_reason == "missing_again", key
            assert old_steps[key].closed_at == utc(2026, 3, 2, 20)
    assert sorted(steps_of(new.id)) == sorted(MISSING_KEYS)
    assert steps_of(new.id)["report_law_enforcement"].due_at == utc(2026, 3, 2, 21, 30)

    overview = client.get(f"/episodes/{new.id}").text
    assert "Previous episode" in overview
    assert f'href="/episodes/{old.id}"' in overview
    old_page = client.get(f"/episodes/{old.id}").text
    assert "Episode ended: missing again" in old_page
    assert "Closed: missing again" in old_page


def test_going_missing_again_through_the_domain_refuses_a_t0_before_t1(
        as_cw_a, make_episode):
    child = as_cw_a.child_a
    first = make_episode(child, as_cw_a.cw_a, t0=utc(2026, 3, 2, 12))
    locate(first.id, as_cw_a.cw_a, utc(2026, 3, 2, 15))
    with pytest.raises(EpisodeInvalid) as refused, db.writing() as s:
        open_episode(s, s.get(Child, child.id), s.merge(as_cw_a.cw_a), status="whereabouts_unknown",
                     discovered_at=utc(2026, 3, 2, 14), discovered_by_role="caseworker",
                     discovered_by_name="Cal", how_missing="ran_away", note="Ran from the station")
    assert "discovered_at" in refused.value.errors
    assert len(episodes_of(child)) == 1
    assert fresh().get(Episode, first.id).ended_at is None


# --- information events -----------------------------------------------------------------------

def test_an_identification_as_a_trafficking_victim_raises_the_report_step(
        client, as_cw_a, make_episode):
    episode = make_episode(as_cw_a.child_a, as_cw_a.cw_a)
    assert "trafficking_report" not in steps_of(episode.id)
    assert client.get(f"/episodes/{episode.id}/steps/trafficking_report").status_code == 404

    response = client.post(f"/episodes/{episode.id}/information",
                           data={"kind": "trafficking_identified",
                                 "info_received_at": "2026-03-02T13:45"})
    assert response.status_code == 303
    [event] = fresh().scalars(select(InfoEvent).where(InfoEvent.episode_id == episode.id)).all()
    assert (event.kind, event.info_received_at) == ("trafficking_identified", utc(2026, 3, 2, 19, 45))
    assert event.recorded_by_id == as_cw_a.cw_a.id
    step = steps_of(episode.id)["trafficking_report"]
    assert step.due_at == utc(2026, 3, 3, 19, 45)  # 24 h after the information arrived
    page = client.get(f"/episodes/{episode.id}/steps/trafficking_report")
    assert page.status_code == 200
    assert "Report identified sex trafficking to law enforcement" in page.text
    assert "Tue 3 Mar 2026, 13:45 CST" in page.text


@pytest.mark.parametrize("when, message", [
    ("2026-03-02T14:10", "in the future"),
    ("2026-03-02T12:30", "before the episode began"),
    ("", "Give the date and time"),
])
def test_an_information_event_needs_a_plausible_time(client, as_cw_a, make_episode, when, message):
    episode = make_episode(as_cw_a.child_a, as_cw_a.cw_a)
    response = client.post(f"/episodes/{episode.id}/information",
                           data={"kind": "trafficking_identified", "info_received_at": when})
    assert response.status_code == 422
    assert message in field_error(response.text, "info_received_at")
    assert count(InfoEvent) == 0
    assert "trafficking_report" not in steps_of(episode.id)


def test_information_through_the_domain_schedules_from_its_own_time(as_cw_a, make_episode, clock):
    episode = make_episode(as_cw_a.child_a, as_cw_a.cw_a, t0=utc(2026, 3, 1, 12))
    with db.writing() as s:
        record_info_event(s, s.get(Episode, episode.id), s.merge(as_cw_a.cw_a),
                          "trafficking_identified", utc(2026, 3, 2, 3, 15))
    assert steps_of(episode.id)["trafficking_report"].due_at == utc(2026, 3, 3, 3, 15)
    assert count(StepEntry) == 0
