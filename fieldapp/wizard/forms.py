"""Reading the wizard's forms. Step forms are built from the policy, so they are read by hand
from the posted fields; fixed forms (episode, located, returned, contact) use Flask-WTF."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import HiddenField, RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from ..cases.forms import UnapprovedLocationFields
from ..contacts import METHODS, PURPOSES, RELATIONSHIPS
from ..episodes import DISCOVERED_BY, HOW_MISSING, LOCATED_WHERE
from ..policy import Step
from ..vocabulary import PLACEMENT_SETTINGS, STATUSES

DATETIME = {"type": "datetime-local"}


def _choices(pairs) -> list[SelectChoice]:
    """WTForms 3.3 deprecates (value, label) tuples as choices."""
    return [SelectChoice(value, label) for value, label in pairs]


def device_clock(value: str | None) -> datetime | None:
    """The phone's clock as the page's script sent it (ISO 8601 with a zone), if it did."""
    try:
        parsed = datetime.fromisoformat((value or "").strip())
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def submission_id(value: str | None) -> str:
    """The page's UUID for this submit, or a fresh one when there is no script."""
    try:
        return str(uuid.UUID(value or ""))
    except ValueError:
        return str(uuid.uuid4())


def step_evidence(form: MultiDict, spec: Step) -> dict:
    """The raw evidence fields of a step form, as posted."""
    if spec.screening:
        return {k: v for k, v in form.items() if k in ("disclosed", "cac_referral_date")
                or k.startswith("q_")}
    return {f.name: (form.getlist(f"ev_{f.name}") if f.type == "categories" else form.get(f"ev_{f.name}", ""))
            for f in spec.evidence}


class WriteForm(FlaskForm):
    """Every wizard write carries a submission id and the device clock."""
    client_uuid = HiddenField()
    recorded_at = HiddenField()


class OpenEpisodeForm(WriteForm):
    status = RadioField("What is known", choices=_choices([
        ("whereabouts_unknown", STATUSES["whereabouts_unknown"].label + ": nobody knows where the child is"),
        ("in_contact_location_unknown", STATUSES["in_contact_location_unknown"].label
         + ": the child calls or texts, but where they are is unknown")]),
        default="whereabouts_unknown")
    discovered_at = StringField("When the absence was discovered (T0)", render_kw=DATETIME)
    discovered_by_role = SelectField("Discovered by", choices=_choices(DISCOVERED_BY.items()))
    discovered_by_name = StringField("Name of the person who discovered it", validators=[Length(max=160)])
    how_missing = SelectField("How the child went missing", choices=_choices(HOW_MISSING.items()),
                              default="unknown")
    last_seen_at = StringField("Last seen (date and time, if known)", render_kw=DATETIME)
    last_seen_place = TextAreaField("Where last seen, wearing what, with whom", validators=[Length(max=2000)])
    note = TextAreaField("Note", validators=[Length(max=4000)])


class LocatedForm(UnapprovedLocationFields, WriteForm):
    located_at = StringField("When the child's whereabouts became known (T1)", render_kw=DATETIME)
    located_where = SelectField("Found", choices=_choices(LOCATED_WHERE.items()))
    located_place = TextAreaField("Where", validators=[Length(max=2000)])
    located_by = StringField("Located by (name and role)", validators=[Length(max=160)])
    status = RadioField("Now", choices=_choices([
        ("located_pending_return", "Located, not yet back in an approved placement"),
        ("unapproved_location_known", "Staying at a known address that is not an approved placement")]),
        default="located_pending_return")
    note = TextAreaField("Note", validators=[Length(max=4000)])


class ReturnedForm(WriteForm):
    returned_at = StringField("When the child was back in an approved placement (T2)", render_kw=DATETIME)
    setting = SelectField("Placement setting", choices=_choices(PLACEMENT_SETTINGS.items()))
    provider_name = StringField("Placement (provider or home)", validators=[Length(max=160)])
    note = TextAreaField("Note", validators=[Length(max=4000)])


class ReleaseForm(WriteForm):
    released_at = StringField("When custody ended", render_kw=DATETIME)
    court_order_date = StringField("Date of the court order", render_kw={"type": "date"})
    note = TextAreaField("Note", validators=[Length(max=4000)])


class InfoEventForm(WriteForm):
    kind = RadioField("Information received", choices=_choices([
        ("trafficking_identified", "The child has been identified as a victim of sex trafficking")]),
        default="trafficking_identified")
    info_received_at = StringField("When the information was received", render_kw=DATETIME)


class ContactForm(WriteForm):
    purpose = SelectField("What for", choices=_choices(PURPOSES.items()))
    person = StringField("Person or office", validators=[Length(max=160)])
    relationship = SelectField("Relationship", choices=_choices(RELATIONSHIPS.items()))
    method = SelectField("How", choices=_choices(METHODS.items()))
    contacted_at = StringField("When", render_kw=DATETIME)
    reached = RadioField("Result", choices=_choices([("reached", "Reached them"),
                                                  ("attempt", "Tried, not reached")]),
                         default="reached")
    learned = TextAreaField("What was learned", validators=[Length(max=4000)])
