"""The compliance blueprint: prevention records on a child, the high-risk list, and the template
helpers that the child page and the caseload include (their own partials, templates/risk/)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import (Blueprint, Response, abort, flash, redirect, request, send_file,
                   url_for)
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import access, clock, db
from ..audit import record_event
from ..csv_safe import csv_response
from ..exports import export_to_handle, record_export
from ..interventions import (INTERVENTION_KINDS, PreventionInvalid, high_risk_without_intervention,
                             prevention_of, record_caring_adult_finding, record_intervention,
                             record_risk_observation, record_visitation_plan)
from ..models import Child, Team
from ..risk import ACF_FACTORS, MISSOURI_FACTORS, add_months, profile_at
from ..web import render, require_role
from .charts import CHART_CSP, chart_svg, month_rows, text_alternative
from ..reconciliation import (CSV_COLUMNS as RECONCILIATION_CSV_COLUMNS, FACES_ARRANGEMENTS,
                              csv_rows as reconciliation_csv_rows, differences,
                              without_arrangement)
from .drill import (child_pseudonym, csv_columns as drill_csv_columns, csv_rows as drill_csv_rows,
                    drill_rows)
from .forms import (CaringAdultForm, DashboardForm, DashboardInvalid, InterventionForm,
                    RiskFactorForm, VisitationPlanForm, day_of, population_of, yes_no)
from .report import compliance_pdf, describe
from .specs import BY_KEY, STEP_LABELS
from .summary import compliance_summary, drill_down

bp = Blueprint("compliance", __name__)
bp.add_app_template_global(INTERVENTION_KINDS, "INTERVENTION_KINDS")


@dataclass(frozen=True)
class RecordKind:
    """One kind of prevention record: its form and how the form becomes a domain call."""
    form: type
    write: Callable
    arguments: Callable  # form -> keyword arguments of ``write``
    saved: str


RECORDS = {
    "intervention": RecordKind(
        InterventionForm, record_intervention,
        lambda f: {"kind": f.kind.data or "", "done_on": day_of(f.done_on.data),
                   "note": f.note.data or ""}, "Intervention recorded."),
    "visitation-plan": RecordKind(
        VisitationPlanForm, record_visitation_plan,
        lambda f: {"frequency": f.frequency.data or "", "with_whom": f.with_whom.data or "",
                   "adopted_on": day_of(f.adopted_on.data)}, "Visitation plan recorded."),
    "caring-adult": RecordKind(
        CaringAdultForm, record_caring_adult_finding,
        lambda f: {"has_caring_adult": yes_no(f.has_caring_adult.data),
                   "found_on": day_of(f.found_on.data)}, "Caring-adult finding recorded."),
    "risk-factor": RecordKind(
        RiskFactorForm, record_risk_observation,
        lambda f: {"factor": f.factor.data or "", "present": yes_no(f.present.data),
                   "observed_on": day_of(f.observed_on.data)}, "Risk factor recorded."),
}


def _forms(sensitive_ok: bool, posted: str | None = None) -> dict:
    """The three forms; only the posted one reads the request."""
    forms = {}
    for key, kind in RECORDS.items():
        forms[key] = kind.form(prefix=key) if key == posted else kind.form(prefix=key, formdata=None)
    forms["risk-factor"].limit_to(sensitive_ok)
    return forms


def _page(child: Child, forms: dict, status: int = 200):
    db_session = db.session()
    sensitive_ok = access.can_see_sensitive(db_session, current_user, child)
    return render("risk/prevention.html", child=child, forms=forms, status=status,
                  prevention=prevention_of(db_session, child, sensitive_ok), sensitive=sensitive_ok)


@bp.get("/children/<int:child_id>/prevention")
@login_required
def prevention(child_id: int):
    child = access.child_for(db.session(), current_user, child_id)
    return _page(child, _forms(access.can_see_sensitive(db.session(), current_user, child)))


@bp.post("/children/<int:child_id>/prevention/<kind>")
@login_required
def record(child_id: int, kind: str):
    if kind not in RECORDS:
        abort(404)
    db_session = db.session()
    child = access.child_for(db_session, current_user, child_id, write=True)
    sensitive_ok = access.can_see_sensitive(db_session, current_user, child)
    forms = _forms(sensitive_ok, posted=kind)
    form = forms[kind]
    if not form.validate_on_submit():
        return _page(child, forms, 422)
    arguments = RECORDS[kind].arguments(form)
    if "factor" in arguments and arguments["factor"] not in {c.value for c in form.factor.choices}:
        arguments["factor"] = ""  # a sensitive factor is not the business of this user
    try:
        with db.writing() as s:
            RECORDS[kind].write(s, child, current_user, **arguments)
    except PreventionInvalid as invalid:
        for field, message in invalid.errors.items():
            form[field].errors.append(message)
        return _page(child, forms, 422)
    flash(RECORDS[kind].saved, "success")
    return redirect(url_for("compliance.prevention", child_id=child.id), 303)


@bp.get("/prevention/high-risk")
@require_role("caseworker", "supervisor", "administrator")
def high_risk():
    db_session = db.session()
    rows = high_risk_without_intervention(db_session, current_user)
    visible = {child.id: profile.visible(access.can_see_sensitive(db_session, current_user, child))
               for child, profile in rows}
    return render("risk/high_risk.html", rows=rows, visible=visible)


# --- for the child page and the caseload, which include templates/risk/ partials ------------

@bp.app_template_global()
def prevention_panel(child: Child):
    """The child page's risk and prevention panel, as this user may see it."""
    db_session = db.session()
    return prevention_of(db_session, child,
                         access.can_see_sensitive(db_session, current_user, child))


@dataclass(frozen=True)
class Badge:
    high: bool
    factors: tuple  # the factors this user may see
    withheld: bool  # some factors are sensitive and this user is not on the case team


@bp.app_template_global()
def risk_badge(child: Child) -> Badge:
    """A caseload row's risk now: high or not, and the factors this user may see."""
    db_session = db.session()
    profile = profile_at(db_session, child)
    factors = profile.visible(access.can_see_sensitive(db_session, current_user, child))
    return Badge(profile.high, factors, len(factors) < len(profile.acf + profile.missouri))


bp.add_app_template_global(ACF_FACTORS, "ACF_FACTORS")
bp.add_app_template_global(MISSOURI_FACTORS, "MISSOURI_FACTORS")


# --- the dashboard: supervisors (their team), administrators and auditors (any team) ---------

READERS = ("supervisor", "administrator", "auditor")


def _dashboard_form():
    """The query string's population, or the form with its errors (DashboardInvalid)."""
    db_session = db.session()
    teams = db_session.execute(select(Team.id, Team.name).order_by(Team.name)).all()
    form = DashboardForm(formdata=request.args)
    form.team.choices = [("", "The whole agency")] + [(str(t.id), t.name) for t in teams]
    today = clock.today()
    forced = current_user.team_id if current_user.role == "supervisor" else None
    if current_user.role == "supervisor" and forced is None:
        abort(404)  # a supervisor without a team has no figures to read
    try:
        pop = population_of(form, forced, {t.id for t in teams},
                            add_months(today.replace(day=1), -11), today)
    except DashboardInvalid as invalid:
        for field, message in invalid.errors.items():
            form[field].errors = [message]  # never validated by WTForms: the rule is ours
        return form, None
    return form, pop


@bp.get("/compliance")
@require_role(*READERS)
def dashboard():
    form, pop = _dashboard_form()
    if pop is None:
        return render("compliance/dashboard.html", form=form, summary=None, status=422)
    summary = compliance_summary(db.session(), pop)
    args = request.args.to_dict()
    return render("compliance/dashboard.html", form=form, pop=pop, summary=summary, args=args,
                  population=describe(db.session(), pop), month_rows=month_rows,
                  alternative=text_alternative, STEP_LABELS=STEP_LABELS, for_pdf=False,
                  chart_src=lambda key: url_for("compliance.chart", key=key, **args),
                  reconciliation=len(differences(db.session(), current_user)))


@bp.get("/compliance.pdf")
@require_role(*READERS)
def report_pdf():
    """The dashboard's figures and charts as a PDF; downloading it is an audit event."""
    _form, pop = _dashboard_form()
    if pop is None:
        abort(404)
    db_session = db.session()
    document = compliance_pdf(db_session, pop, compliance_summary(db_session, pop))
    with db.writing() as s:
        record_event(s, current_user, "compliance.pdf", "compliance", None,
                     changes={"start": pop.start, "end": pop.end, "cohort_date": pop.cohort_date,
                              "per_child": pop.per_child, "min_days": pop.min_days,
                              "team_id": pop.team_id})
    return Response(document, mimetype="application/pdf", headers={
        "Content-Disposition": 'attachment; filename="compliance-measures.pdf"'})


@bp.get("/compliance/charts/<key>.svg")
@require_role(*READERS)
def chart(key: str):
    if key not in BY_KEY or BY_KEY[key].shape == "status":
        abort(404)
    _form, pop = _dashboard_form()
    if pop is None:
        abort(404)
    figures = compliance_summary(db.session(), pop, only=key)[key]
    response = Response(chart_svg(key, figures), mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = CHART_CSP
    return response


def _drill(key: str) -> dict:
    """The drill-down the query string asks for (404 if it names none), as this reader sees it:
    an auditor's rows are de-identified."""
    variant, step = request.args.get("variant", "any"), request.args.get("step") or None
    measure = BY_KEY.get(key)
    if (measure is None or measure.shape == "status" or variant not in ("any", "within", "attempted")
            or (step is not None and step not in measure.steps)):
        abort(404)
    _form, pop = _dashboard_form()
    if pop is None:
        abort(404)
    db_session = db.session()
    ids = drill_down(db_session, pop, key, variant, step)
    deidentified = current_user.role == "auditor"
    return {"measure": measure, "variant": variant, "step": step, "deidentified": deidentified,
            "rows": drill_rows(db_session, ids, deidentified)}


@bp.get("/compliance/<key>/episodes")
@require_role(*READERS)
def episodes(key: str):
    return render("compliance/episodes.html", **_drill(key), STEP_LABELS=STEP_LABELS,
                  args={k: v for k, v in request.args.items() if k not in ("variant", "step")},
                  csv_args=request.args.to_dict())


@bp.get("/compliance/<key>/episodes.csv")
@require_role(*READERS)
def episodes_csv(key: str):
    drill = _drill(key)
    name = "-".join(filter(None, (key, drill["variant"], drill["step"])))
    return csv_response(f"{name}-episodes.csv", drill_csv_columns(drill["deidentified"]),
                        drill_csv_rows(drill["rows"]))


# --- FACES reconciliation: children whose status here differs from the state system's --------

def _reconciliation() -> tuple[list, bool]:
    deidentified = current_user.role == "auditor"
    return differences(db.session(), current_user), deidentified


@bp.get("/compliance/reconciliation")
@require_role(*READERS)
def reconciliation():
    found, deidentified = _reconciliation()
    return render("compliance/reconciliation.html", differences=found, deidentified=deidentified,
                  unknown=without_arrangement(db.session(), current_user),
                  pseudonym=child_pseudonym, ARRANGEMENTS=FACES_ARRANGEMENTS)


@bp.get("/compliance/reconciliation.csv")
@require_role(*READERS)
def reconciliation_csv():
    found, deidentified = _reconciliation()
    rows = reconciliation_csv_rows(found, child_pseudonym if deidentified else None)
    return csv_response("faces-reconciliation.csv", RECONCILIATION_CSV_COLUMNS, rows)


@bp.get("/compliance/export.db")
@require_role("administrator", "auditor")
def export_db():
    """The SQLite extract for Datasette. An auditor gets only the de-identified one."""
    deidentified = current_user.role == "auditor" or request.args.get("deidentified") == "1"
    handle, report = export_to_handle(db.session(), deidentified=deidentified)
    with db.writing() as s:
        record_export(s, current_user, report)
    name = "fieldapp-deidentified.db" if deidentified else "fieldapp.db"
    return send_file(handle, mimetype="application/vnd.sqlite3", as_attachment=True,
                     download_name=name)

