"""Every route of the app as a concrete request, on a small world of real rows.

For tests that must cover "every route" (the authorization matrix, CSRF, hostile input) so that a
route added later is covered without anyone remembering to add it:

- ``build_world(cast)`` takes the conftest ``world`` cast (two teams, every role, A's and B's
  children; the ``app`` fixture's context must be pushed) and adds what the routes need: an open,
  located episode of A's child with a review stage, an on-call worker with a break-glass grant on
  that child and one without, a photo, a filled-in profile, an intervention, a handover waiting for
  A. It returns the cast, so ``world.cw_a``, ``world.episode``, ``world.oncall_no_grant`` ... .
- ``concrete_routes(app, world) -> list[Route]``: one ``Route`` per rule of ``app.url_map``, per
  method (HEAD and OPTIONS left out) and per variant of a parameter (a sensitive and a plain
  step, for instance). Each has its ``url`` with real ids, its ``key`` (the endpoint, with the
  variant: ``checklists.step[sensitive]``), ``is_api``, ``writes``, and ``body()``: keyword
  arguments for the test client, an empty form by default (refused by every form after its
  access check, so the world stays put) or, with ``valid=True``, a body the route would store
  (``VALID_BODIES``, where one is known: ``has_valid_body``).
- ``snapshot()`` and ``snapshot_difference(before, after)``: every row of every table, to show
  that a refused request wrote nothing.

    world = build_world(world)
    for route in concrete_routes(app, world):
        client.open(route.url, method=route.method, **route.body(valid=True))

Values for URL parameters come from ``PARAMETERS``, keyed by the parameter's name, so a new route
with a known parameter is covered at once; a parameter nobody has named raises
``UnknownParameter`` instead of being skipped.
"""
from __future__ import annotations

import io
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable

from flask import Flask
from PIL import Image
from sqlalchemy import select

from fieldapp import clock, db
from fieldapp.accounts import create_user
from fieldapp.breakglass import grant_access
from fieldapp.caseloads import reassign_child
from fieldapp.episodes import mark_located, open_episode
from fieldapp.identification import SECTION_BY_KEY, update_section
from fieldapp.interventions import INTERVENTION_KINDS, record_intervention
from fieldapp.models import Child, PolicyVersion, StatusChange
from fieldapp.photos import prepare, store
from fieldapp.policy import install_packaged
from fieldapp.stages import ensure_stage
from fieldapp.status import record_initial_status

# What only the case team may read (medical notes, the endangerment section), and what names A's
# child (the surname: the on-call list shows the first name and an initial, by design).
SENSITIVE_MARKERS = ("Insulin twice daily", "Lamotrigine 25 mg at night")
IDENTIFYING_MARKERS = ("Avery",)
PLAIN_STEP, SENSITIVE_STEP = "report_law_enforcement", "medical_exam"
PLAIN_SECTION, SENSITIVE_SECTION = "description", "endangerment"
SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})


class UnknownParameter(LookupError):
    """A URL parameter without a value in ``PARAMETERS``: add one, then the route is tested."""


# Parameter name -> the value for the world, or {variant: value} when the parameter's value
# changes the rule that applies (a sensitive step is the case team's alone).
PARAMETERS: dict[str, Callable | dict[str, Callable]] = {
    "child_id": lambda w: w.child_a.id,
    "episode_id": lambda w: w.episode.id,
    "step_key": {"plain": lambda w: PLAIN_STEP, "sensitive": lambda w: SENSITIVE_STEP},
    "section_key": {"plain": lambda w: PLAIN_SECTION, "sensitive": lambda w: SENSITIVE_SECTION},
    "sha256": lambda w: w.photo_sha256,
    "kind": lambda w: "intervention",
    "stage_id": lambda w: w.stage_id,
    "change_id": lambda w: w.change_id,
    "handover_id": lambda w: w.handover_id,
    # The one user the administrator's account buttons act on: not one of the tested actors.
    "user_id": lambda w: w.cw_a2.id,
    "action": lambda w: "log-out-everywhere",
    "key": lambda w: "M1",  # a measure with steps, so it has a chart and a drill-down
    "filename": lambda w: "css/app.css",
}


def _form_body(world) -> dict:
    # Empty: every form refuses it (422) after the access check, so the world stays as it was.
    return {"data": {}}


def _sync_body(world) -> dict:
    now = clock.now()
    op = {"uuid": str(uuid.uuid4()), "kind": "search_contact", "episode_id": world.episode.id,
          "recorded_at": (now - timedelta(minutes=5)).isoformat(),
          "fields": {"purpose": "search", "person": "Aunt May", "relationship": "relative",
                     "method": "phone", "contacted_at": (now - timedelta(minutes=15)).isoformat(),
                     "reached": "reached", "learned": "Nothing new"}}
    return {"json": {"device_time": now.isoformat(), "held": 1, "ops": [op]}}


# Endpoint -> the body its writes get; any other write gets an empty form.
BODIES: dict[str, Callable] = {"api.sync": _sync_body}


def _local(hours_ago: float) -> str:
    """A wall time in the agency's zone, as a datetime-local input sends it."""
    return (clock.now() - timedelta(hours=hours_ago)).astimezone(clock.agency_zone()).strftime(
        "%Y-%m-%dT%H:%M")


# Route key -> a body that the route accepts and stores, for the case team (or the route's role).
# Refused requests carry these, so "wrote nothing" is shown on a request that would have written.
# Routes that write on an empty body (logging out, the account buttons) need no entry.
VALID_BODIES: dict[str, Callable] = {
    "api.sync": _sync_body,
    "checklists.contacts": lambda w: {"data": {
        "purpose": "search", "person": "Aunt May", "relationship": "relative", "method": "phone",
        "contacted_at": _local(0.5), "reached": "reached", "learned": "Nothing new",
        "client_uuid": str(uuid.uuid4())}},
    "checklists.record_step[plain]": lambda w: {"data": {
        "outcome": "done", "done_at": _local(0.5), "ev_agency": "Springfield PD",
        "ev_phone": "417-555-0100", "ev_report_number": "R-1", "ev_officer": "Officer Diaz",
        "ev_reported_by": "Caseworker", "client_uuid": str(uuid.uuid4())}},
    "compliance.record": lambda w: {"data": {
        "intervention-kind": next(iter(INTERVENTION_KINDS)),
        "intervention-done_on": (clock.today() - timedelta(days=2)).isoformat(),
        "intervention-note": "Talked about school"}},
    "profiles.edit_section[plain]": lambda w: {"data": {
        "race_ethnicity": "White", "height": "5 ft 2 in", "weight": "110 lb",
        "hair_colour": "Brown, shoulder length", "eye_colour": "Green", "complexion": "Fair"}},
    "profiles.packet_page": lambda w: {"data": {
        "last_seen_at": _local(4), "last_seen_place": "Outside the library",
        "clothing": "Red coat, black jeans", "circumstances": "Left after an argument"}},
    "cases.break_glass": lambda w: {"data": {"reason": "Police need her photo for the alert"}},
    "admin.add_user": lambda w: {"data": {
        "username": "new.worker", "display_name": "New Worker", "role": "caseworker",
        "team": "Team A", "password": "a long and unusual passphrase 42"}},
}


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    url: str
    rule: str
    variant: str | None = None
    params: dict = field(default_factory=dict, compare=False)
    _body: Callable = field(default=_form_body, compare=False, repr=False)
    _world: object = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        """The endpoint, with its variant: ``checklists.step[sensitive]``."""
        return f"{self.endpoint}[{self.variant}]" if self.variant else self.endpoint

    @property
    def is_api(self) -> bool:
        return self.rule == "/api" or self.rule.startswith("/api/")

    @property
    def writes(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")

    def body(self, *, valid: bool = False) -> dict:
        """Keyword arguments for the test client (fresh each call: a sync op has a new UUID).

        By default an empty form, which every form refuses after its access check (422), so the
        world stays as it was; ``valid=True`` gives the body the route would store, if known."""
        if not self.writes:
            return {}
        if valid and self.key in VALID_BODIES:
            return VALID_BODIES[self.key](self._world)
        return self._body(self._world)

    @property
    def has_valid_body(self) -> bool:
        return self.writes and self.key in VALID_BODIES

    def __str__(self) -> str:
        return f"{self.method} {self.url} ({self.key})"


def _values_for(rule, world) -> list[tuple[str | None, dict]]:
    """Every (variant, values) combination for the rule's parameters."""
    choices = []
    for name in sorted(rule.arguments):
        if name not in PARAMETERS:
            raise UnknownParameter(f"No value for URL parameter {name!r} of {rule.rule} "
                                   f"({rule.endpoint}): add one to PARAMETERS in {__name__}.")
        values = PARAMETERS[name]
        options = values.items() if isinstance(values, dict) else [(None, values)]
        choices.append([(name, label, make(world)) for label, make in options])
    combos = []
    for combo in itertools.product(*choices):
        labels = [label for _name, label, _value in combo if label]
        combos.append(("+".join(labels) or None, {name: value for name, _label, value in combo}))
    return combos


def concrete_routes(app: Flask, world) -> list[Route]:
    routes = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for variant, values in _values_for(rule, world):
            _domain, path = rule.build(values, append_unknown=False)
            for method in sorted(rule.methods - SKIPPED_METHODS):
                routes.append(Route(rule.endpoint, method, path, rule.rule, variant, values,
                                    BODIES.get(rule.endpoint, _form_body), world))
    return routes


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, in key order, as the requests committed them."""
    with db.engine().connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(
                    select(table).order_by(*table.primary_key.columns))]
                for table in db.Base.metadata.sorted_tables}


def snapshot_difference(before: dict, after: dict) -> list[str]:
    """The tables whose rows changed, with how many rows each had before and after."""
    return [f"{name} ({len(before[name])} -> {len(after.get(name, []))} rows)"
            for name in before if before[name] != after.get(name)]


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 400), "grey").save(out, "JPEG")
    return out.getvalue()


def build_world(cast):
    """Add to the conftest cast the rows every route needs; returns the cast."""
    prepared = prepare(_jpeg(), None)  # Pillow before the write lock, as the app does
    now = clock.now()
    with db.writing() as s:
        if s.scalar(select(PolicyVersion.id).limit(1)) is None:
            install_packaged(s)
        child_a, cw_a, cw_a2 = s.merge(cast.child_a), s.merge(cast.cw_a), s.merge(cast.cw_a2)
        cast.oncall_no_grant = create_user(
            s, username="oncall.b", display_name="Oncall B", role="on_call",
            password_hash=s.merge(cast.oncall).password_hash)
        episode = open_episode(s, child_a, cw_a, status="whereabouts_unknown",
                               discovered_at=now - timedelta(hours=3),
                               discovered_by_role="placement_provider",
                               discovered_by_name="House parent", how_missing="ran_away",
                               note="Not in the placement at bed check")
        # Located, not returned: the episode is open (on-call may act) and the return checklist,
        # with its sensitive steps, is scheduled.
        mark_located(s, episode, cw_a, located_at=now - timedelta(hours=1),
                     located_where="in_state",
                     located_place="Bus station", located_by="Springfield police",
                     status="located_pending_return", note="Found by police")
        grant_access(s, s.merge(cast.oncall), child_a,
                     "Police asked for her photo and placement address")
        store(s, child_a, cw_a, prepared, date(2025, 12, 1))
        update_section(s, child_a, cw_a, SECTION_BY_KEY[SENSITIVE_SECTION],
                       {"pregnancy": "None known", "medications": SENSITIVE_MARKERS[1],
                        "suicidal": "None known", "trafficking": "None known",
                        "health_risks": "None known"})
        record_intervention(s, child_a, cw_a, kind=next(iter(INTERVENTION_KINDS)),
                            done_on=now.date() - timedelta(days=10), note="Weekly check-in")
        # A child that A's teammate hands to A: the handover A acknowledges.
        handed = Child(case_id="A-H", first_name="Hana", last_name="Hart", sex="F",
                       date_of_birth=date(2011, 2, 3), county="Greene", caseworker_id=cw_a2.id,
                       created_at=now)
        s.add(handed)
        record_initial_status(s, handed, "in_placement", now - timedelta(days=30), None, "set-up")
        handover = reassign_child(s, handed, cw_a, None, "Covering while on leave")
        stage = ensure_stage(s, episode, "initial_response")
        cast.episode, cast.photo_sha256 = episode, prepared.sha256
        cast.stage_id, cast.handover_id = stage.id, handover.id
        cast.change_id = s.scalar(select(StatusChange.id).where(StatusChange.child_id == child_a.id)
                                  .order_by(StatusChange.id.desc()).limit(1))
    return cast

