"""The compliance measures as a PDF: the dashboard's sections, charts included, on Letter pages.

The same partial (templates/compliance/_measures.html) draws the dashboard and this report, so the
two never disagree. The charts are the dashboard's SVGs, handed to WeasyPrint as files made for this
one document (``pdf.render_pdf``'s ``extra``), so the PDF needs nothing from the network.
"""
from __future__ import annotations

from flask import render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock, pdf
from ..models import Team
from .charts import chart_svg, month_rows, text_alternative
from .query import Population
from .specs import STEP_LABELS


def describe(db_session: Session, pop: Population) -> str:
    """The population in words, as the dashboard and the report head it."""
    if pop.cohort_date:
        text = f"Children missing at the close of {pop.cohort_date.isoformat()}"
    else:
        text = f"Episodes with T0 from {pop.start.isoformat()} to {pop.end.isoformat()}"
    if pop.per_child:
        text += ", each child counted once"
    if pop.min_days:
        text += f", absences of {pop.min_days} days or more"
    if pop.team_id is None:
        return text + ", the whole agency."
    team = db_session.scalar(select(Team.name).where(Team.id == pop.team_id))
    return text + f", team {team}."


def _chart_url(key: str) -> str:
    return f"{pdf.BASE_URL}compliance/{key}.svg"


def compliance_pdf(db_session: Session, pop: Population, summary: dict) -> bytes:
    """The report's PDF. Slow (WeasyPrint): never inside a write transaction."""
    charts = {_chart_url(key): (chart_svg(key, figures), "image/svg+xml")
              for key, figures in summary.items() if key != "S1"}
    html = render_template("compliance/report.html", summary=summary, for_pdf=True,
                           population=describe(db_session, pop), generated_at=clock.now(),
                           chart_src=_chart_url, month_rows=month_rows,
                           alternative=text_alternative, STEP_LABELS=STEP_LABELS, args={})
    return pdf.render_pdf(html, charts)
