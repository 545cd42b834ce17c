"""Benchmark: a full episode's PDF record, against WeasyPrint alone on the very same HTML.

Run with ``make bench`` (never part of the tests). It builds, in a temporary SQLite database, an
episode with every missing and return step recorded and 10 contacts logged, then times:

- ``pdf_record``: the whole ``GET /episodes/<id>/record.pdf`` through the app (access check,
  the record's data, the template, WeasyPrint and the audit event);
- ``pdf_weasyprint_only``: WeasyPrint's own parse and ``write_pdf`` of the HTML that request
  rendered, captured as it was handed over, with the same fetcher;

alternately, after one warm-up of each, and prints the medians and their ratio.

    python bench/pdf_bench.py [--runs 10] [--keep record.pdf]
"""
from __future__ import annotations

import argparse
import gc
import io
import platform
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import weasyprint
from pypdf import PdfReader
from werkzeug.security import generate_password_hash

from common import child_in_placement, sqlite_bench_app
from fieldapp import db, pdf
from fieldapp.accounts import create_user, get_or_create_team
from fieldapp.checklists import record_item, step_views
from fieldapp.clock import FixedClock
from fieldapp.contacts import log_contact
from fieldapp.episodes import mark_located, mark_returned, open_episode
from fieldapp.reviews import approve_stage, open_steps, submit_stage
from fieldapp.stages import base_stage
from fieldapp.models import Child, Episode, User
from fieldapp.policy import install_packaged, policy_of

TARGET_SECONDS = 1.0
TARGET_RATIO = 1.20
PASSWORD = "benchmark password, not a secret"
T0 = datetime(2026, 3, 1, 14, tzinfo=UTC)
T1 = T0 + timedelta(days=9)
T2 = T1 + timedelta(hours=5)
LONG_NOTE = ("Spoke at length; the notes run to a few sentences as real case notes do, so that "
             "the record's layout has paragraphs to break across lines and pages. ")


def evidence_for(spec, policy, day: date) -> dict:
    """Plausible evidence for every field of a step, as a worker would enter it."""
    if spec.screening:
        return {f"q_{q.key}": "no" for q in policy.screening.questions}
    values = {}
    for f in spec.evidence:
        values[f.name] = {
            "text": f"{f.label} (bench)", "textarea": LONG_NOTE * 2, "phone": "417-555-0100",
            "date": day.isoformat(), "datetime": f"{day.isoformat()}T09:30",
            "choice": f.options[0] if f.options else "",
            "categories": [c.key for c in policy.categories.get(f.options_from or "", ())[:2]],
        }[f.type]
    return values


def build_full_episode(app, clock: FixedClock) -> tuple[int, str]:
    """An episode with every step recorded, 10 contacts and the return steps; returns its id and
    the caseworker's username."""
    with app.app_context():
        with db.writing() as s:
            install_packaged(s)
            team = get_or_create_team(s, "Bench team")
            worker = create_user(s, username="bench.worker", display_name="Bench Worker",
                                 role="caseworker", password_hash=generate_password_hash(PASSWORD),
                                 team=team)
            child = child_in_placement(s, worker, clock.now())
        clock.set(T0 + timedelta(minutes=10))
        with db.writing() as s:
            episode = open_episode(s, s.get(Child, child.id), s.merge(worker),
                                   status="whereabouts_unknown", discovered_at=T0,
                                   discovered_by_role="placement_provider",
                                   discovered_by_name="House parent", how_missing="ran_away",
                                   last_seen_at=T0 - timedelta(hours=2),
                                   last_seen_place="Left after dinner", note="Bed check")
            episode_id = episode.id
        for n in range(10):
            at = T0 + timedelta(hours=3 + 20 * n)
            clock.set(at + timedelta(minutes=5))
            with db.writing() as s:
                log_contact(s, s.get(Episode, episode_id), s.merge(worker),
                            person=f"Contact {n + 1}", relationship="friend", method="phone",
                            contacted_at=at, reached="reached" if n % 3 else "attempt",
                            learned=LONG_NOTE, purpose="follow_up" if n == 9 else "search",
                            client_uuid=str(uuid.uuid4()))
        _record_checklist(clock, episode_id, worker, "missing", T0 + timedelta(hours=1))
        clock.set(T2 + timedelta(minutes=5))
        with db.writing() as s:
            episode, actor = s.get(Episode, episode_id), s.merge(worker)
            mark_located(s, episode, actor, located_at=T1, located_where="in_state",
                         located_place="A friend's flat", located_by="Springfield PD",
                         status="located_pending_return", note="Found")
            mark_returned(s, episode, actor, returned_at=T2, setting="group_home_staff",
                          provider_name="Maple House")
        _record_checklist(clock, episode_id, worker, "return", T2 + timedelta(hours=1))
        _review_everything(clock, episode_id, worker)
        return episode_id, worker.username


def _sign(s, stage, worker, supervisor) -> None:
    reasons = {v.spec.key: "Bench: left open on purpose" for v in open_steps(stage)}
    submit_stage(s, stage, s.merge(worker), reasons)
    approve_stage(s, stage, supervisor, password_ok=True)


def _review_everything(clock: FixedClock, episode_id: int, worker) -> None:
    """Sign all three stages, then correct two entries, each in its own signed addendum, so the
    record carries every stage, signature and addendum the issue's benchmark names."""
    clock.set(T2 + timedelta(days=4))
    with db.writing() as s:
        supervisor = create_user(s, username="bench.supervisor", display_name="Bench Supervisor",
                                 role="supervisor", password_hash=generate_password_hash(PASSWORD),
                                 team=get_or_create_team(s, "Bench team"))
        episode = s.get(Episode, episode_id)
        for kind in ("initial_response", "return", "closure"):
            _sign(s, base_stage(s, episode, kind), worker, supervisor)
    for n, key in enumerate(("report_contents", "family_support_team")):
        clock.set(T2 + timedelta(days=5 + n))
        with db.writing() as s:
            episode = s.get(Episode, episode_id)
            policy = policy_of(episode.policy_version)
            view = next(v for v in step_views(episode) if v.spec.key == key)
            spec = policy.step(key)
            entry, _ = record_item(s, episode, key, s.merge(worker), outcome="done",
                                   done_at=view.latest.done_at, recorded_at=None,
                                   raw_evidence=evidence_for(spec, policy, view.latest.done_at.date()),
                                   reason="Correction: a detail was wrong",
                                   client_uuid=str(uuid.uuid4()), supersedes_id=view.latest.id)
            _sign(s, entry.review_stage, worker, s.get(User, supervisor.id))


def _record_checklist(clock: FixedClock, episode_id: int, worker, checklist: str, start) -> None:
    with db.writing() as s:
        episode = s.get(Episode, episode_id)
        policy = policy_of(episode.policy_version)
        keys = [v.spec.key for v in step_views(episode)
                if v.spec.checklist == checklist and not v.spec.contact_log]
    for n, key in enumerate(keys):
        done_at = start + timedelta(minutes=20 * n)
        clock.set(done_at + timedelta(minutes=3))
        with db.writing() as s:
            episode = s.get(Episode, episode_id)
            spec = policy.step(key)
            record_item(s, episode, key, s.merge(worker), outcome="done", done_at=done_at,
                        recorded_at=None, raw_evidence=evidence_for(spec, policy, done_at.date()),
                        reason="", client_uuid=str(uuid.uuid4()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="also write the PDF here")
    args = parser.parse_args(argv)

    clock = FixedClock(T0)
    app, _folder = sqlite_bench_app("pdf-bench", clock, TESTING=True, WTF_CSRF_ENABLED=False)
    episode_id, username = build_full_episode(app, clock)
    clock.set(T2 + timedelta(days=2))

    captured: list[str] = []
    render = pdf.render_pdf

    def capturing(html: str) -> bytes:
        captured.append(html)
        return render(html)

    pdf.render_pdf = capturing  # the view calls pdf.render_pdf: keep the HTML it hands over
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, "could not log in"

    def app_run() -> bytes:
        gc.collect()
        started = time.perf_counter()
        response = client.get(f"/episodes/{episode_id}/record.pdf")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        app_times.append(elapsed)
        return response.data

    with app.test_request_context():
        fetcher = pdf.static_files()

    def weasyprint_run(html: str) -> None:
        gc.collect()
        started = time.perf_counter()
        weasyprint.HTML(string=html, base_url=pdf.BASE_URL, url_fetcher=fetcher).write_pdf()
        engine_times.append(time.perf_counter() - started)

    app_times: list[float] = []
    engine_times: list[float] = []
    document = app_run()  # warm-up: fonts, templates, the policy cache
    weasyprint_run(captured[-1])
    app_times.clear()
    engine_times.clear()
    for _ in range(args.runs):
        app_run()
        weasyprint_run(captured[-1])
    if args.keep:
        args.keep.write_bytes(document)

    pages = len(PdfReader(io.BytesIO(document)).pages)
    with app.app_context():
        episode = db.session().get(Episode, episode_id)
        steps = step_views(episode)
        recorded = sum(1 for v in steps if v.row.entries or v.spec.contact_log)
        contacts = len(episode.contacts)
    record_median = statistics.median(app_times)
    engine_median = statistics.median(engine_times)
    ratio = record_median / engine_median
    print(f"pdf_bench: python {platform.python_version()}, WeasyPrint {weasyprint.__version__}, "
          f"{platform.machine()}, {args.runs} runs after one warm-up")
    print(f"pdf_bench: full episode: {recorded} of {len(steps)} steps recorded (missing and "
          f"return checklists), {contacts} contacts, {pages} pages, {len(document) // 1024} KiB")
    with app.app_context():
        review = pdf.review_section(db.session().get(Episode, episode_id))
    print(f"pdf_bench: review: {len(review['stages'])} signed stages and "
          f"{len(review['addenda'])} signed addenda")
    print(f"pdf_record_median: {record_median:.2f} s")
    print(f"pdf_weasyprint_only_median: {engine_median:.2f} s")
    print(f"pdf_overhead_ratio: {ratio:.2f}")
    met_time = record_median <= TARGET_SECONDS
    met_ratio = ratio <= TARGET_RATIO
    print(f"target_record_within_{TARGET_SECONDS:.1f}_s: {'met' if met_time else 'NOT met'}")
    print(f"target_overhead_within_20_percent: {'met' if met_ratio else 'NOT met'}")
    app.extensions["fieldapp.engine"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
