"""A child's identification profile, photos and report packet (issue 7).

Slow work happens between the read and the write: Pillow runs after the access check and before
``db.writing()``, WeasyPrint after the packet's data is read and before its audit event.
The photo and the packet are the case team's alone (DESIGN §9): anyone else gets 404.
"""
from __future__ import annotations

from flask import (Blueprint, Response, abort, current_app, flash, g, redirect, render_template,
                   request, url_for)
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import access, clock, db, packet, photos
from ..identification import (SECTION_BY_KEY, ProfileInvalid, current_cadence,
                              mark_appearance_changed, photo_overdue, photo_status, prior_episodes,
                              profile_of, section_values, sections_for, update_section)
from ..cases.forms import ActionForm
from ..episodes import open_episode_of
from ..models import Child, Episode, PacketDetails
from ..web import render
from .forms import PacketDetailsForm, PhotoForm, section_form

bp = Blueprint("profiles", __name__)
# The checklist's reporting steps link to the packet; the step keys live with the packet.
bp.add_app_template_global(packet.PACKET_STEPS, "PACKET_STEPS")
# Private: never kept by a shared cache, and not even by the browser's (the photo of a child).
PRIVATE = "private, no-store"


def _child(child_id: int, *, write: bool = False) -> Child:
    return access.child_for(db.session(), current_user, child_id, write=write)


def _case_team_child(child_id: int, *, write: bool = False) -> Child:
    """The child, for the case team only: the photo and endangerment are theirs alone."""
    child = _child(child_id, write=write)
    if not access.can_see_sensitive(db.session(), current_user, child):
        abort(404)
    return child


def _open_episode(episode_id: int, *, write: bool = False) -> Episode:
    episode = access.episode_for(db.session(), current_user, episode_id, write=write)
    if not episode.is_open or not access.can_see_sensitive(db.session(), current_user,
                                                            episode.child):
        abort(404)
    return episode


@bp.app_template_global()
def photo_flag(child: Child) -> bool:
    """For the caseload: whether this child's photo is overdue under the policy's cadence."""
    if "photo_cadence" not in g:
        g.photo_cadence = current_cadence(db.session())
    profile = child.identification_profile
    return photo_overdue(g.photo_cadence, child, profile.appearance_changed_on if profile else None,
                         clock.today())


@bp.get("/children/<int:child_id>/profile")
@login_required
def profile(child_id: int):
    db_session = db.session()
    child = _child(child_id)
    sensitive = access.can_see_sensitive(db_session, current_user, child)
    record = profile_of(db_session, child)
    latest = photos.latest_photo(db_session, child) if sensitive else None
    return render("profiles/profile.html", child=child, sensitive=sensitive, profile=record,
                  sections=[(s, section_values(record, s)) for s in sections_for(sensitive)],
                  photo=latest, photo_status=photo_status(db_session, child),
                  prior=prior_episodes(db_session, child),
                  episode=open_episode_of(db_session, child), action_form=ActionForm())


@bp.route("/children/<int:child_id>/profile/<section_key>", methods=["GET", "POST"])
@login_required
def edit_section(child_id: int, section_key: str):
    section = SECTION_BY_KEY.get(section_key) or abort(404)
    writing = request.method == "POST"
    child = (_case_team_child if section.sensitive else _child)(child_id, write=writing)
    db_session = db.session()
    form = section_form(section, data=section_values(profile_of(db_session, child), section))
    if not writing:
        return render("profiles/section_form.html", child=child, section=section, form=form)
    if not form.validate_on_submit():
        return render("profiles/section_form.html", child=child, section=section, form=form,
                      status=422)
    try:
        with db.writing() as s:
            changed = update_section(s, s.merge(child), current_user, section,
                                     {f.name: form[f.name].data for f in section.fields})
    except ProfileInvalid as invalid:
        for name, message in invalid.errors.items():
            form[name].errors = [message]
        return render("profiles/section_form.html", child=child, section=section, form=form,
                      status=422)
    flash(f"{section.title} saved." if changed else "Nothing had changed.", "success")
    return redirect(url_for("profiles.profile", child_id=child_id), 303)


@bp.post("/children/<int:child_id>/profile/appearance-changed")
@login_required
def appearance_changed(child_id: int):
    child = _case_team_child(child_id, write=True)
    if ActionForm().validate_on_submit():
        with db.writing() as s:
            mark_appearance_changed(s, s.merge(child), current_user)
        flash("Noted: a new photo is due now.", "success")
    return redirect(url_for("profiles.profile", child_id=child_id), 303)


def _photo_form_page(child: Child, form: PhotoForm, status: int = 200):
    return render("profiles/photo_form.html", child=child, form=form, status=status,
                  limit=photos.size_label(current_app.config["MAX_CONTENT_LENGTH"]))


@bp.route("/children/<int:child_id>/photos", methods=["GET", "POST"])
@login_required
def add_photo(child_id: int):
    writing = request.method == "POST"
    child = _case_team_child(child_id, write=writing)
    form = PhotoForm()
    if not writing:
        form.taken_on.data = clock.today().isoformat()
        return _photo_form_page(child, form)
    if not form.validate_on_submit():
        return _photo_form_page(child, form, 422)
    upload = form.camera.data or form.photo.data
    try:
        taken_on = photos.parse_taken_on(form.taken_on.data or "", child.date_of_birth,
                                         clock.today())
        db.session().commit()  # end the read transaction: no database work while Pillow runs
        prepared = photos.prepare(upload.read() if upload else b"",
                                  current_app.config["MAX_CONTENT_LENGTH"])
    except photos.PhotoRefused as refused:
        for name, message in refused.errors.items():
            form["camera" if name == "photo" else name].errors = [message]
        return _photo_form_page(child, form, 422)
    with db.writing() as s:
        photos.store(s, s.merge(child), current_user, prepared, taken_on)
    flash("Photo saved.", "success")
    return redirect(url_for("profiles.profile", child_id=child_id), 303)


@bp.errorhandler(RequestEntityTooLarge)
def _upload_too_large(error):
    """A photo over the limit gets the form again with the message beside it (422)."""
    if request.endpoint != "profiles.add_photo" or not current_user.is_authenticated:
        return error
    try:
        child = _case_team_child(request.view_args["child_id"], write=True)
    except HTTPException as refused:  # outside the case team: the same 404 as without a file
        return refused
    form = PhotoForm(formdata=None)
    form.taken_on.data = clock.today().isoformat()
    form.camera.errors = [photos.too_large_message(current_app.config["MAX_CONTENT_LENGTH"])]
    return _photo_form_page(child, form, 422)


@bp.get("/children/<int:child_id>/photos/<sha256>.jpg")
@login_required
def photo(child_id: int, sha256: str):
    child = _case_team_child(child_id)
    found = photos.photo_of_child(db.session(), child, sha256) or abort(404)
    return Response(found.data, mimetype=found.content_type,
                    headers={"Cache-Control": PRIVATE, "X-Content-Type-Options": "nosniff"})


# --- the packet -----------------------------------------------------------------------------

def _packet_page(episode: Episode, status: int = 200):
    db_session = db.session()
    data = packet.packet_data(db_session, episode, current_user)
    photo_src = None
    if data["photo"]:
        stored = photos.photo_of_child(db_session, episode.child, data["photo"]["sha256"])
        photo_src = packet.photo_data_uri(stored.data)
    return render("profiles/packet.html", episode=episode, packet=data, photo_src=photo_src,
                  for_pdf=False, status=status)


def _details_page(episode: Episode, form: PacketDetailsForm, status: int = 200):
    return render("profiles/packet_details.html", episode=episode, form=form, status=status,
                  details=db.session().get(PacketDetails, episode.id))


@bp.route("/episodes/<int:episode_id>/packet", methods=["GET", "POST"])
@login_required
def packet_page(episode_id: int):
    """One tap from the checklist: the short form first when the episode lacks a detail of the
    last sighting, then the packet."""
    writing = request.method == "POST"
    episode = _open_episode(episode_id, write=writing)
    details = db.session().get(PacketDetails, episode.id)
    if not writing:
        if request.args.get("details") == "ask" or (
                request.args.get("details") != "skip" and packet.details_unknown(episode, details)):
            form = PacketDetailsForm(data={
                "clothing": details.clothing if details else "",
                "circumstances": details.circumstances if details else ""})
            return _details_page(episode, form)
        return _packet_page(episode)
    form = PacketDetailsForm()
    if not form.validate_on_submit():
        return _details_page(episode, form, 422)
    try:
        with db.writing() as s:
            packet.save_details(s, s.merge(episode), current_user,
                                last_seen_at=clock.parse_local(form.last_seen_at.data or ""),
                                last_seen_raw=form.last_seen_at.data or "",
                                last_seen_place=form.last_seen_place.data or "",
                                clothing=form.clothing.data or "",
                                circumstances=form.circumstances.data or "")
    except packet.DetailsInvalid as invalid:
        for name, message in invalid.errors.items():
            form[name].errors = [message]
        return _details_page(episode, form, 422)
    return redirect(url_for("profiles.packet_page", episode_id=episode_id, details="skip"), 303)


@bp.get("/episodes/<int:episode_id>/packet.pdf")
@login_required
def packet_pdf(episode_id: int):
    episode = _open_episode(episode_id)
    db_session = db.session()
    data = packet.packet_data(db_session, episode, current_user)
    stored = (photos.photo_of_child(db_session, episode.child, data["photo"]["sha256"])
              if data["photo"] else None)
    photo_bytes = stored.data if stored else None
    html = render_template("profiles/packet.html", episode=episode, packet=data,
                           photo_src=packet.PHOTO_URL if stored else None, for_pdf=True)
    db_session.commit()  # end the read transaction: no database work while WeasyPrint runs
    document = packet.render_pdf(html, photo_bytes)
    with db.writing() as s:
        packet.record_shared(s, episode, current_user, data, "pdf")
    return Response(document, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="report-packet-episode-{episode_id}.pdf"',
        "Cache-Control": PRIVATE})


@bp.get("/episodes/<int:episode_id>/packet.txt")
@login_required
def packet_text(episode_id: int):
    episode = _open_episode(episode_id)
    data = packet.packet_data(db.session(), episode, current_user)
    text = render_template("profiles/packet.txt", packet=data)
    with db.writing() as s:
        packet.record_shared(s, episode, current_user, data, "text")
    return Response(text, mimetype="text/plain", headers={"Cache-Control": PRIVATE})
