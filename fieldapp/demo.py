"""Fictional demonstration data: a small agency with one team and about 25 children.

Every name here is invented. Passwords are random, printed once and kept in the instance folder's
demo-logins.txt so that `make run` can show them again; never use demo data in production.
"""
from __future__ import annotations

import random
import secrets
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock
from .accounts import create_user, get_or_create_team
from .models import Child, Placement, User, VisitationPlan
from .checklists import record_item
from .episodes import mark_located, open_episode
from .status import UnapprovedLocation, change_status, record_initial_status
from .vocabulary import PLACEMENT_SETTINGS

DEMO_USERS = (
    # username, display name, role, team
    ("admin", "Avery Admin", "administrator", None),
    ("supervisor", "Sam Rivera", "supervisor", "Greene County Team 1"),
    ("supervisor2", "Pat Okafor", "supervisor", "Greene County Team 1"),
    ("caseworker", "Casey Morgan", "caseworker", "Greene County Team 1"),
    ("caseworker2", "Jordan Lee", "caseworker", "Greene County Team 1"),
    ("oncall", "Robin Night", "on_call", None),
    ("auditor", "Alex Auditor", "auditor", None),
)

FIRST_NAMES = ("Aaliyah", "Brandon", "Carmen", "Dakota", "Elijah", "Fatima", "Gavin", "Harper",
               "Isaiah", "Jasmine", "Kai", "Layla", "Mason", "Nevaeh", "Oscar", "Paige", "Quinn",
               "Riley", "Sofia", "Tristan", "Uma", "Violet", "Wyatt", "Ximena", "Zane")
LAST_NAMES = ("Abbott", "Baker", "Castillo", "Dunn", "Ellis", "Fischer", "Gomez", "Hale", "Ingram",
              "Jensen", "Kimura", "Lopez", "Mercer", "Nguyen", "Ortiz", "Price", "Reyes", "Shaw",
              "Tran", "Vaughn", "Walsh", "Young")
COUNTIES = ("Greene", "Christian", "Webster", "Polk", "Taney")
PROVIDERS = ("Maple House", "Ozark Youth Home", "Hillcrest Residential", "Sunrise Shelter",
             "Family home of the Carters", "Family home of the Parks", "Grandmother's home")

# The story of the demo caseload: how many children end up in each status.
STATUS_PLAN = (["in_placement"] * 16 + ["whereabouts_unknown"] * 3
               + ["in_contact_location_unknown"] * 2 + ["located_pending_return"] * 2
               + ["unapproved_location_known"] * 1 + ["released_from_custody"] * 1)


def has_data(db_session: Session) -> bool:
    return (db_session.scalar(select(func.count()).select_from(User)) or 0) > 0


def logins_file(instance_path: str) -> Path:
    return Path(instance_path) / "demo-logins.txt"


def create_demo_users(db_session: Session, password_hashes: dict[str, str]) -> dict[str, User]:
    users = {}
    for username, name, role, team_name in DEMO_USERS:
        team = get_or_create_team(db_session, team_name) if team_name else None
        users[username] = create_user(db_session, username=username, display_name=name, role=role,
                                      password_hash=password_hashes[username], team=team,
                                      phone=f"417-555-01{len(users):02d}")
    return users


def create_demo_children(db_session: Session, users: dict[str, User], seed: int = 2019) -> list[Child]:
    rng = random.Random(seed)
    now = clock.now()
    workers = [users["caseworker"], users["caseworker2"]]
    children = []
    for index, target in enumerate(STATUS_PLAN):
        age_days = rng.randint(6 * 365, 17 * 365)
        worker = workers[index % 2]
        setting = rng.choice(list(PLACEMENT_SETTINGS))
        started = (now - timedelta(days=rng.randint(40, 900))).date()
        child = Child(case_id=f"DEMO-{1000 + index}", first_name=FIRST_NAMES[index],
                      last_name=rng.choice(LAST_NAMES), date_of_birth=(now - timedelta(days=age_days)).date(),
                      sex=rng.choice("FM"), county=rng.choice(COUNTIES), caseworker=worker,
                      photo_taken_on=(now - timedelta(days=rng.randint(10, 500))).date(),
                      created_at=now)
        if index % 5 == 0:
            child.medical_notes = "Asthma; inhaler as needed (fictional)."
        if index % 7 == 0:
            child.mental_health_notes = "Weekly counselling (fictional)."
        db_session.add(child)
        db_session.add(Placement(child=child, setting=setting, provider_name=rng.choice(PROVIDERS),
                                 started_on=started, created_at=now))
        if index % 3 != 0:
            db_session.add(VisitationPlan(child=child, frequency=rng.choice(["weekly", "monthly"]),
                                          with_whom="Mother", adopted_on=started,
                                          recorded_by_id=worker.id, recorded_at=now))
        record_initial_status(db_session, child, "in_placement", clock.local_midnight(started),
                              worker, "Placement at intake (demo)")
        db_session.flush()
        _walk_to(db_session, child, worker, target, rng)
        children.append(child)
    return children


def _walk_to(db_session: Session, child: Child, worker: User, target: str, rng: random.Random) -> None:
    """Move the child through believable events until its status is ``target``: missing children
    get an open episode with its checklist, found ones a T1 as well."""
    now = clock.now()
    t0 = now - timedelta(hours=rng.randint(3, 300), minutes=rng.randint(0, 59))
    if target in ("whereabouts_unknown", "in_contact_location_unknown", "located_pending_return"):
        episode = open_episode(
            db_session, child, worker, status="whereabouts_unknown", discovered_at=t0,
            discovered_by_role="placement_provider", discovered_by_name="House parent on duty (fictional)",
            how_missing=rng.choice(["ran_away", "unknown"]), last_seen_at=t0 - timedelta(hours=2),
            last_seen_place="Left the placement after dinner (fictional)",
            note="Demo: not in the placement at bed check")
        _record_reports(db_session, episode, worker, t0, rng)
        if target == "in_contact_location_unknown":
            change_status(db_session, child, worker, target, t0 + (now - t0) / 2,
                          note="Demo: the child texted the caseworker but will not say where")
        if target == "located_pending_return":
            mark_located(db_session, episode, worker, located_at=t0 + (now - t0) / 2,
                         located_where="in_state", located_place="A friend's apartment (fictional)",
                         located_by="Springfield police (fictional)", status=target,
                         note="Demo: found by police")
    elif target == "unapproved_location_known":
        change_status(db_session, child, worker, target, t0, note="Demo: staying with an aunt",
                      location=UnapprovedLocation("1200 N Example Ave, Springfield MO (fictional)",
                                                  "An aunt, Dana (fictional)",
                                                  "Home visit by the caseworker; adult's ID seen"))
    elif target == "released_from_custody":
        change_status(db_session, child, worker, target, t0, note="Demo: custody ended by court order")


DEMO_REPORTS = {
    "report_law_enforcement": {"agency": "Springfield Police Department (fictional)",
                               "phone": "417-555-0199", "report_number": "SPD-DEMO-0001",
                               "officer": "Officer R. Diaz (fictional)", "reported_by": "Caseworker"},
    "report_ncmec": {"case_number": "NCMEC-DEMO-0001", "method": "Phone", "reported_by": "Caseworker"},
}


def _record_reports(db_session: Session, episode, worker: User, t0, rng: random.Random) -> None:
    """Most demo reports are made within the two hours; some are late, as in real case files."""
    for step_key, evidence in DEMO_REPORTS.items():
        done_at = min(t0 + timedelta(minutes=rng.choice([35, 70, 110, 200])), clock.now())
        record_item(db_session, episode, step_key, worker, outcome="done", done_at=done_at,
                    recorded_at=done_at + timedelta(minutes=5), raw_evidence=evidence, reason="",
                    client_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    clock_skew=False)  # generated now, as if typed then: not a wrong clock


def generate_passwords() -> dict[str, str]:
    return {username: secrets.token_urlsafe(12) for username, *_ in DEMO_USERS}


def format_logins(passwords: dict[str, str]) -> str:
    lines = ["Demo logins (fictional data; passwords generated on this machine):"]
    for username, name, role, _team in DEMO_USERS:
        lines.append(f"  {role:<14} {username:<12} {passwords[username]}   ({name})")
    return "\n".join(lines) + "\n"
