"""An episode's record, as a printable page and as a PDF, both from ``pdf.episode_record``.

The PDF is laid out after the data is read and before anything is written, so WeasyPrint never
runs inside a write transaction; then its generation is appended to the audit log with its hash.
"""
from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask_login import current_user, login_required

from .. import access, db, pdf
from ..audit import record_event
from ..models import Episode
from ..web import render

bp = Blueprint("reports", __name__)


def _record(episode_id: int) -> tuple[Episode, dict]:
    """The episode and its record, if the user may see the child (404 otherwise, auditors too)."""
    episode = access.episode_for(db.session(), current_user, episode_id)
    return episode, pdf.episode_record(episode, current_user)


@bp.get("/episodes/<int:episode_id>/record")
@login_required
def episode_record(episode_id: int):
    episode, record = _record(episode_id)
    return render("reports/record.html", episode=episode, record=record, for_pdf=False)


@bp.get("/episodes/<int:episode_id>/record.pdf")
@login_required
def episode_pdf(episode_id: int):
    episode, record = _record(episode_id)
    html = render_template("reports/record.html", episode=episode, record=record, for_pdf=True)
    db.session().commit()  # end the read transaction: no database work while WeasyPrint runs
    document = pdf.render_pdf(html)
    with db.writing() as s:
        record_event(s, current_user, "report.pdf", "episode", episode_id,
                     child_id=episode.child_id, changes={"sha256": record["sha256"]})
    return Response(document, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="episode-{episode_id}-record.pdf"',
        "Cache-Control": "no-store"})
