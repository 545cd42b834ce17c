from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from ..status import UnapprovedLocation
from ..vocabulary import STATUSES


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""


class UnapprovedLocationFields:
    """The fields DESIGN §2 asks for when a child is at a known unapproved address, shared by the
    status form and the episode's "Child found" form."""
    location_address = TextAreaField("Address where the child is staying",
                                     validators=[Length(max=500)])
    location_adult = StringField("Adult present at the address", validators=[Length(max=160)])
    location_verified_how = TextAreaField("How the address was verified",
                                          validators=[Length(max=1000)])

    def unapproved_location(self) -> UnapprovedLocation:
        return UnapprovedLocation(self.location_address.data or "", self.location_adult.data or "",
                                  self.location_verified_how.data or "")


class StatusForm(UnapprovedLocationFields, FlaskForm):
    status = SelectField("New status", choices=[SelectChoice(k, s.label) for k, s in STATUSES.items()])
    since = StringField("Since (date and time)", render_kw={"type": "datetime-local"})
    note = TextAreaField("Note", validators=[Length(max=4000)],
                         description="Required when a child goes missing or is found.")


class LocationReviewForm(FlaskForm):
    decision = RadioField("Decision", choices=[SelectChoice("approve", "Approve this address"),
                                               SelectChoice("reject", "Do not approve")],
                           default="approve")
    note = TextAreaField("Note", validators=[Length(max=2000)],
                         description="Required when you do not approve.")


class BreakGlassForm(FlaskForm):
    reason = TextAreaField("Why you need this child's record now", validators=[Length(max=2000)])
