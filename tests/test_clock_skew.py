"""A phone whose clock is more than 5 minutes off the server's is flagged, and its work is kept."""
import uuid
from datetime import timedelta

import pytest

from helpers import fresh
from fieldapp.models import SearchContact, StepEntry

POLICE = {"outcome": "done", "ev_agency": "Springfield PD", "ev_phone": "417-555-0100",
          "ev_report_number": "R-1", "ev_officer": "Officer Diaz", "ev_reported_by": "Caseworker"}


@pytest.mark.parametrize("phone_off_by, flagged", [(timedelta(minutes=4), False),
                                                   (timedelta(minutes=6), True),
                                                   (-timedelta(minutes=6), True)])
def test_a_step_from_a_skewed_phone_is_flagged_and_kept(client, world, login, make_episode, clock,
                                                        phone_off_by, flagged):
    episode = make_episode(world.child_a, world.cw_a)
    login(world.cw_a)
    device = clock.now() + phone_off_by
    response = client.post(f"/episodes/{episode.id}/steps/report_law_enforcement", data={
        **POLICE, "done_at": _local(clock.now() - timedelta(minutes=30)),
        "recorded_at": device.isoformat(), "client_uuid": str(uuid.uuid4())})
    assert response.status_code == 303
    entry = fresh().query(StepEntry).one()
    assert entry.clock_skew is flagged
    assert entry.recorded_at == device
    page = client.get(f"/episodes/{episode.id}/steps/report_law_enforcement").text
    assert ("Phone clock off" in page) is flagged


def test_a_contact_from_a_skewed_phone_is_flagged(client, world, login, make_episode, clock):
    episode = make_episode(world.child_a, world.cw_a, t0=clock.now() - timedelta(hours=3))
    login(world.cw_a)
    response = client.post(f"/episodes/{episode.id}/contacts", data={
        "purpose": "search", "person": "Aunt May", "relationship": "relative", "method": "phone",
        "contacted_at": _local(clock.now() - timedelta(minutes=10)), "reached": "reached",
        "learned": "", "recorded_at": (clock.now() - timedelta(hours=1)).isoformat(),
        "client_uuid": str(uuid.uuid4())})
    # The phone says it is an hour earlier than the server: the contact time (server-relative)
    # is then later than the phone's clock, which is refused; with a plausible time it is kept.
    assert response.status_code == 422
    response = client.post(f"/episodes/{episode.id}/contacts", data={
        "purpose": "search", "person": "Aunt May", "relationship": "relative", "method": "phone",
        "contacted_at": _local(clock.now() - timedelta(minutes=70)), "reached": "reached",
        "learned": "", "recorded_at": (clock.now() - timedelta(hours=1)).isoformat(),
        "client_uuid": str(uuid.uuid4())})
    assert response.status_code == 303
    assert fresh().query(SearchContact).one().clock_skew is True


def _local(instant):
    from zoneinfo import ZoneInfo
    return instant.astimezone(ZoneInfo("America/Chicago")).strftime("%Y-%m-%dT%H:%M")
