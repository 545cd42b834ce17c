"""Forms for the prevention records. Dates are plain text fields (type=date in the browser), read
by ``day_of`` and checked by the domain functions, whose messages go next to the fields."""
from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from ..interventions import INTERVENTION_KINDS
from ..risk import MISSOURI_FACTORS
from ..vocabulary import VISIT_FREQUENCIES

DATE = {"type": "date"}


def day_of(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        return None


class InterventionForm(FlaskForm):
    kind = SelectField("Intervention", validate_choice=False, choices=[SelectChoice("", "Choose…")]
                       + [SelectChoice(k, v) for k, v in INTERVENTION_KINDS.items()])
    done_on = StringField("Date", render_kw=DATE)
    note = TextAreaField("Note", validators=[Length(max=2000)])


class VisitationPlanForm(FlaskForm):
    frequency = SelectField("How often", validate_choice=False, choices=[SelectChoice("", "Choose…")]
                            + [SelectChoice(k, v) for k, v in VISIT_FREQUENCIES.items()])
    with_whom = StringField("With whom")
    adopted_on = StringField("Adopted on", render_kw=DATE)


class CaringAdultForm(FlaskForm):
    has_caring_adult = RadioField("Finding", validate_choice=False, choices=[
        SelectChoice("yes", "Has a caring-adult relationship"),
        SelectChoice("no", "Has no caring-adult relationship")])
    found_on = StringField("Date of the finding", render_kw=DATE)


class RiskFactorForm(FlaskForm):
    factor = SelectField("Risk factor (Missouri's individual set)", validate_choice=False)
    present = RadioField("Observation", validate_choice=False, choices=[SelectChoice("yes", "Present"),
                                                 SelectChoice("no", "No longer present")])
    observed_on = StringField("Date observed", render_kw=DATE)

    def limit_to(self, sensitive_ok: bool) -> RiskFactorForm:
        """Sensitive factors are offered to the case team only."""
        self.factor.choices = [SelectChoice("", "Choose…")] + [
            SelectChoice(f.key, f.label) for f in MISSOURI_FACTORS if sensitive_ok or not f.sensitive]
        return self


def yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


class DashboardForm(FlaskForm):
    """The dashboard's population, read from the query string (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    start = StringField("From (T0 on or after)", render_kw=DATE)
    end = StringField("To (T0 on or before)", render_kw=DATE)
    cohort_date = StringField("Or: the cohort missing at the close of", render_kw=DATE)
    per_child = RadioField("Count", validate_choice=False, default="episode", choices=[
        SelectChoice("episode", "Each episode"), SelectChoice("child", "Each child once")])
    min_days = StringField("Leave out absences shorter than (days)",
                           render_kw={"inputmode": "numeric"})
    team = SelectField("Team", validate_choice=False)


class DashboardInvalid(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def population_of(form: DashboardForm, team_id: int | None, team_ids: set[int],
                  default_start: date, default_end: date):
    """The Population the form asks for. ``team_id`` forces a team (a supervisor's own);
    otherwise the form's team must be one of ``team_ids`` (or empty: the whole agency)."""
    from .query import Population
    errors = {}
    start = day_of(form.start.data) if form.start.data else default_start
    end = day_of(form.end.data) if form.end.data else default_end
    if start is None:
        errors["start"] = "Give the first day as YYYY-MM-DD."
    if end is None:
        errors["end"] = "Give the last day as YYYY-MM-DD."
    if start and end and start > end:
        errors["end"] = "The last day is before the first."
    cohort = day_of(form.cohort_date.data) if form.cohort_date.data else None
    if form.cohort_date.data and cohort is None:
        errors["cohort_date"] = "Give the cohort's date as YYYY-MM-DD, or leave it empty."
    min_days = None
    if (form.min_days.data or "").strip():
        text = form.min_days.data.strip()
        min_days = int(text) if text.isdigit() and 0 < int(text) <= 3650 else None
        if min_days is None:
            errors["min_days"] = "Give a whole number of days (1 or more), or leave it empty."
    if team_id is None and form.team.data:
        team_id = int(form.team.data) if form.team.data.isdigit() else -1
        if team_id not in team_ids:
            errors["team"] = "Choose a team from the list."
    if errors:
        raise DashboardInvalid(errors)
    return Population(start, end, cohort, form.per_child.data == "child", min_days, team_id)
