"""Fictional demonstration data: a small agency with one team and about 25 children, and a year
of their history (past episodes, their steps, contacts and prevention records), so that the
compliance dashboard has real-looking measures and charts on the first run.

Every name here is invented. Passwords are random, printed once and kept in the instance folder's
demo-logins.txt so that `make run` can show them again; never use demo data in production.
"""
from __future__ import annotations

import io
import random
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from PIL import Image, ImageDraw
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock, summaries
from .accounts import create_user, get_or_create_team, password_problem
from .models import Child, Placement, User, VisitationPlan
from .checklists import record_item
from .contacts import log_contact
from .episodes import mark_located, mark_returned, open_episode, release_from_custody
from .identification import SECTIONS, update_section
from .interventions import (INTERVENTION_KINDS, record_caring_adult_finding, record_intervention,
                            record_risk_observation, record_visitation_plan)
from .photos import prepare, store
from .policy import policy_of
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

MISSING_OR_FOUND = ("whereabouts_unknown", "in_contact_location_unknown", "located_pending_return")

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
        _history(db_session, child, worker, started)
        _walk_to(db_session, child, worker, target, rng)
        _identify(db_session, child, worker)
        children.append(child)
    children += _released_children(db_session, workers, len(children))
    return children


HAIR = ("Black, short", "Brown, shoulder length", "Blond, long", "Red, curly", "Dark brown, braids")
EYES = ("Brown", "Blue", "Green", "Hazel")
COMPLEXIONS = ("Light", "Medium", "Olive", "Dark", "Fair, freckles")
RACES = ("White", "Black", "Hispanic", "Asian", "Two or more races")
SKIN = ((241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172))
HAIR_RGB = ((20, 20, 20), (90, 56, 37), (220, 190, 110), (165, 60, 30), (50, 30, 20))


def demo_portrait(rng: random.Random) -> bytes:
    """A drawn head-and-shoulders picture, so the demo's packets have a photo (no real face)."""
    image = Image.new("RGB", (360, 480), rng.choice(((210, 220, 230), (225, 225, 215))))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 330, 320, 600), fill=rng.choice(((40, 70, 140), (150, 30, 40), (60, 60, 60))))
    draw.ellipse((105, 90, 255, 290), fill=rng.choice(HAIR_RGB))
    draw.ellipse((115, 120, 245, 300), fill=rng.choice(SKIN))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


def _identify(db_session: Session, child: Child, worker: User) -> None:
    """A plausible identification profile, and for most children (every missing one) a photo.

    A random source of its own, so the rest of the demo stays as it was. The demo loads in one
    transaction at set-up, before anyone uses the app; the small drawing is processed inside it
    (a real upload is processed before its transaction)."""
    rng = random.Random(child.case_id)
    values = {
        "race_ethnicity": rng.choice(RACES), "height": f"{rng.randint(4, 5)} ft {rng.randint(0, 11)} in",
        "weight": f"{rng.randint(70, 170)} lb", "hair_colour": rng.choice(HAIR),
        "eye_colour": rng.choice(EYES), "complexion": rng.choice(COMPLEXIONS),
        "tattoos": rng.choice(("None known", "Small heart, right ankle (fictional)")),
        "scars": rng.choice(("None known", "Scar on the chin")),
        "piercings": rng.choice(("None known", "Both ears", "Left eyebrow")),
        "pregnancy": "None known", "suicidal": "None known",
        "medications": rng.choice(("None known", "Inhaler for asthma, as needed (fictional)")),
        "trafficking": rng.choice(("None known", "Older contacts met online (fictional)")),
        "health_risks": rng.choice(("None known", "Allergic to peanuts (fictional)")),
        "associates": f"{rng.choice(FIRST_NAMES)} (friend from school, fictional)",
        "places": rng.choice(("The skate park on Grant Ave (fictional)", "The mall food court")),
        "phones": f"417-555-{rng.randint(200, 999):04d}", "social_media": "",
    }
    for section in SECTIONS:
        update_section(db_session, child, worker, section, values)
    if child.status in MISSING_OR_FOUND or rng.random() < 0.6:
        store(db_session, child, worker, prepare(demo_portrait(rng), None), child.photo_taken_on)


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


def display_names() -> dict[str, str]:
    return {username: name for username, name, *_ in DEMO_USERS}


def generate_passwords() -> dict[str, str]:
    """A random password per demo user, drawn again in the rare case the policy refuses it."""
    passwords = {}
    for username, name, *_ in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        while password_problem(password, username, name):
            password = secrets.token_urlsafe(12)
        passwords[username] = password
    return passwords


def format_logins(passwords: dict[str, str]) -> str:
    lines = ["Demo logins (fictional data; passwords generated on this machine):"]
    for username, name, role, _team in DEMO_USERS:
        lines.append(f"  {role:<14} {username:<12} {passwords[username]}   ({name})")
    return "\n".join(lines) + "\n"


# --- a year of history ----------------------------------------------------------------------
#
# Each past episode is written through the app's own write functions, with the clock set to the
# moment each thing happened, so its audit events, received times and summary row are what a
# year of real use would have left. Each child has a random source of its own (seeded by case id),
# so the history is the same on every machine and the rest of the demo is unchanged by it.

HISTORY_DAYS = 365
QUIET_DAYS = 21  # the history ends three weeks ago: the demo's current absences are all newer
# How many past episodes a child has, with weights (most children who run, run more than once).
EPISODES_PER_CHILD = ((0, 22), (1, 36), (2, 28), (3, 14))
# The audit found 46% of episodes reported to neither law enforcement nor NCMEC.
NEITHER_REPORT = 0.46
RETURN_STEPS = ("safety_assessment", "medical_exam", "family_support_team",
                "trafficking_screening", "interview_factors", "interview_experiences",
                "supportive_services")
NOTIFICATIONS = ("notify_juvenile_officer", "notify_court_representative", "notify_parents")
RELEASED_CHILDREN = 2  # children whose custody ended while they were missing


@contextmanager
def _clock_at(moment: datetime) -> Iterator[None]:
    """Run the writes inside as if at ``moment``: the app's clock stands there meanwhile."""
    extensions = current_app.extensions
    kept = extensions["fieldapp.clock"]
    extensions["fieldapp.clock"] = clock.FixedClock(moment)
    try:
        yield
    finally:
        extensions["fieldapp.clock"] = kept


def _evidence(spec, policy, at: datetime) -> dict:
    """Plausible evidence for every field of a step, as the worker would have typed it at ``at``."""
    if spec.screening:
        return {f"q_{q.key}": "no" for q in policy.screening.questions}
    local = at.astimezone(clock.agency_zone())
    values = {}
    for f in spec.evidence:
        values[f.name] = {
            "text": f"{f.label} (fictional)", "textarea": "Demo record (fictional).",
            "phone": "417-555-0199", "date": local.date().isoformat(),
            "datetime": local.strftime("%Y-%m-%dT%H:%M"),
            "choice": f.options[0] if f.options else "",
            "categories": [c.key for c in policy.categories.get(f.options_from or "", ())[:2]],
        }[f.type]
    return values


class _Plan:
    """One child's past writes, each at its moment, run in time order (a late report is typed
    after the child was found, as in the case files)."""

    def __init__(self) -> None:
        self.writes: list[tuple[datetime, int, Callable[[], None]]] = []

    def at(self, moment: datetime, write: Callable[[], None]) -> None:
        self.writes.append((moment, len(self.writes), write))

    def run(self) -> None:
        for moment, _order, write in sorted(self.writes, key=lambda w: w[:2]):
            with _clock_at(moment):
                write()


def _history(db_session: Session, child: Child, worker: User, placed_on) -> None:
    """A year of past episodes for ``child`` (placed on ``placed_on``), all ended by now."""
    rng = random.Random(f"history-{child.case_id}")
    now = clock.now()
    start = max(now - timedelta(days=HISTORY_DAYS), clock.local_midnight(placed_on) + timedelta(days=3))
    end = now - timedelta(days=QUIET_DAYS)
    count = rng.choices([n for n, _ in EPISODES_PER_CHILD], [w for _, w in EPISODES_PER_CHILD])[0]
    if count == 0 or end - start < timedelta(days=30 * count):
        return
    slot = (end - start) / count
    with summaries.deferred(db_session):  # each episode's summary row is written once
        for n in range(count):
            t0 = start + slot * n + slot * rng.uniform(0.0, 0.5)
            _past_episode(db_session, child, worker, rng, t0, latest_end=start + slot * (n + 1))
        if rng.random() < 0.45:
            day = (start + (end - start) * rng.random()).astimezone(clock.agency_zone()).date()
            with _clock_at(clock.local_midnight(day) + timedelta(hours=15)):
                record_intervention(db_session, child, worker,
                                    kind=rng.choice(list(INTERVENTION_KINDS)), done_on=day,
                                    note="Demo (fictional)")
        if rng.random() < 0.25:
            day = (start + (end - start) * rng.random()).astimezone(clock.agency_zone()).date()
            with _clock_at(clock.local_midnight(day) + timedelta(hours=16)):
                record_caring_adult_finding(db_session, child, worker,
                                            has_caring_adult=rng.random() < 0.6, found_on=day)
        if child.current_visitation_plan is None and rng.random() < 0.6:
            # A plan adopted during the year: the episodes before it count in P3, those after not.
            day = (start + (end - start) * rng.random()).astimezone(clock.agency_zone()).date()
            with _clock_at(clock.local_midnight(day) + timedelta(hours=14)):
                record_visitation_plan(db_session, child, worker, adopted_on=day,
                                       frequency=rng.choice(("weekly", "biweekly")),
                                       with_whom="Mother and siblings (fictional)")
        if rng.random() < 0.35:  # only the factors anyone may see: the demo shows them freely
            day = start.astimezone(clock.agency_zone()).date()
            with _clock_at(clock.local_midnight(day) + timedelta(hours=17)):
                record_risk_observation(db_session, child, worker, present=True, observed_on=day,
                                        factor=rng.choice(("substance_use", "gang_or_weapon")))


def _past_episode(db_session: Session, child: Child, worker: User, rng: random.Random,
                  t0: datetime, latest_end: datetime, released: bool = False) -> None:
    """One ended episode: opened at T0, its reports, notifications and search contacts, then
    found and returned (or released from custody), and some of the return steps."""
    plan = _Plan()
    missing_for = timedelta(hours=rng.randint(3, 24 * 12))
    t1 = min(t0 + missing_for, latest_end - timedelta(days=2))
    t2 = t1 + timedelta(hours=rng.randint(1, 30))
    state = {}

    def open_it():
        state["episode"] = open_episode(
            db_session, child, worker, status="whereabouts_unknown", discovered_at=t0,
            discovered_by_role="placement_provider", discovered_by_name="House parent (fictional)",
            how_missing=rng.choice(["ran_away", "ran_away", "unknown"]), last_seen_at=t0 - timedelta(hours=1),
            last_seen_place="Left the placement (fictional)", note="Demo history: not at bed check")
    plan.at(t0 + timedelta(minutes=15), open_it)

    def entry(step_key: str, done_at: datetime, outcome: str = "done", reason: str = ""):
        typed = done_at + timedelta(minutes=rng.randint(3, 90))
        if typed >= latest_end:
            return  # never done before the child's next absence: left undone, as it happens

        def write():
            episode = state["episode"]
            policy = policy_of(episode.policy_version)
            record_item(db_session, episode, step_key, worker, outcome=outcome, done_at=done_at,
                        recorded_at=typed, raw_evidence=_evidence(policy.step(step_key), policy, done_at),
                        reason=reason, client_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        clock_skew=False)
        plan.at(typed, write)

    # Reports: on time, late, attempted, or not made at all (the audit's 46% with neither).
    neither = rng.random() < NEITHER_REPORT
    for step_key in ("report_law_enforcement", "report_ncmec"):
        if neither:
            if rng.random() < 0.25:
                entry(step_key, t0 + timedelta(minutes=rng.randint(20, 100)), "attempted",
                      "The line was busy; to try again (demo)")
            continue
        roll = rng.random()
        if roll < 0.65:
            entry(step_key, t0 + timedelta(minutes=rng.randint(15, 115)))
        elif roll < 0.9:
            entry(step_key, t0 + timedelta(hours=rng.randint(3, 40)))
    for step_key in NOTIFICATIONS:
        roll = rng.random()
        if roll < 0.6:
            entry(step_key, t0 + timedelta(hours=rng.randint(1, 22)))
        elif roll < 0.75:
            entry(step_key, t0 + timedelta(hours=rng.randint(25, 90)))
        elif roll < 0.82 and step_key == "notify_parents":
            entry(step_key, t0 + timedelta(hours=2), "not_applicable", "Parental rights terminated (demo)")
    ends = t2 if not released else t1
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        at = t0 + (ends - t0) * rng.uniform(0.05, 0.95)
        typed = at + timedelta(minutes=10)

        def contact(at=at, typed=typed):
            log_contact(db_session, state["episode"], worker, person=rng.choice(
                ("A school friend (fictional)", "Grandmother (fictional)", "School counselor (fictional)")),
                relationship=rng.choice(("friend", "relative", "counselor")),
                method=rng.choice(("phone", "text", "in_person")), contacted_at=at,
                reached=rng.choice(("reached", "attempt")), learned="Demo: no news of the child",
                purpose="search", client_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                recorded_at=typed, clock_skew=False)
        plan.at(typed, contact)

    if released:
        def release():
            release_from_custody(db_session, state["episode"], worker, released_at=t1,
                                 court_order_date=t1.astimezone(clock.agency_zone()).date(),
                                 note="Demo: custody ended by court order while missing")
        plan.at(t1 + timedelta(minutes=30), release)
        plan.run()
        return

    def found():
        mark_located(db_session, state["episode"], worker, located_at=t1, located_where="in_state",
                     located_place="A friend's home (fictional)",
                     located_by=rng.choice(("Springfield police (fictional)", "The caseworker")),
                     status="located_pending_return", note="Demo history: found")
    plan.at(t1 + timedelta(minutes=20), found)

    def back():
        mark_returned(db_session, state["episode"], worker, returned_at=t2,
                      setting=rng.choice(list(PLACEMENT_SETTINGS)), provider_name=rng.choice(PROVIDERS),
                      note="Demo history: back in placement")
    plan.at(t2 + timedelta(minutes=10), back)
    # The return steps: most done, some late, and a fifth of returns with none of them (R1).
    if rng.random() >= 0.2:
        for step_key in RETURN_STEPS:
            anchor = t1 if step_key == "safety_assessment" else t2  # due 2 h after T1
            roll = rng.random()
            if roll < 0.55:
                entry(step_key, anchor + timedelta(minutes=rng.randint(40, 20 * 60)))
            elif roll < 0.75:
                entry(step_key, anchor + timedelta(hours=rng.randint(30, 24 * 9)))
    plan.run()


def _released_children(db_session: Session, workers: list[User], first: int) -> list[Child]:
    """A few more children, whose custody ended by court order while they were missing."""
    rng = random.Random("history-released")
    now = clock.now()
    children = []
    for n in range(RELEASED_CHILDREN):
        worker = workers[n % 2]
        started = (now - timedelta(days=rng.randint(400, 700))).date()
        child = Child(case_id=f"DEMO-{1000 + first + n}", first_name=rng.choice(FIRST_NAMES),
                      last_name=rng.choice(LAST_NAMES),
                      date_of_birth=(now - timedelta(days=rng.randint(16 * 365, 17 * 365))).date(),
                      sex=rng.choice("FM"), county=rng.choice(COUNTIES), caseworker=worker,
                      created_at=now)
        db_session.add(child)
        db_session.add(Placement(child=child, setting="group_home_staff", provider_name=rng.choice(PROVIDERS),
                                 started_on=started, created_at=now))
        record_initial_status(db_session, child, "in_placement", clock.local_midnight(started),
                              worker, "Placement at intake (demo)")
        db_session.flush()
        t0 = now - timedelta(days=rng.randint(60, 300))
        with summaries.deferred(db_session):
            _past_episode(db_session, child, worker, rng, t0, latest_end=t0 + timedelta(days=40),
                          released=True)
        children.append(child)
    return children
