"""Reassignment hands a missing child's open steps to the new caseworker (DESIGN §9)."""
from fieldapp import db
from fieldapp.caseloads import reassign_child
from fieldapp.models import Child, User


def test_new_caseworker_sees_the_open_steps_handed_over(client, world, login, make_episode):
    episode = make_episode(world.child_a, world.cw_a)
    with db.writing() as s:
        reassign_child(s, s.get(Child, world.child_a.id), s.get(User, world.cw_a2.id),
                       s.get(User, world.admin.id), "Casey is on leave")
    login(world.cw_a2)
    page = client.get("/caseload").text
    handover = page.split('id="handovers-heading"')[1].split("</section>")[0]
    assert "Alice Avery" in handover
    assert "Casey is on leave" in handover
    assert "Report to law enforcement" in handover
    assert f"/episodes/{episode.id}/steps/report_ncmec" in handover
