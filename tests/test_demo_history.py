"""`fieldapp demo`'s year of history: past episodes written through the app's own write paths,
so the compliance dashboard has real-looking figures on the first run (issue 6, part 7)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from fieldapp import create_app, db, migrate
from fieldapp.audit import audit_key, verify_chain
from fieldapp.compliance.query import Population
from fieldapp.compliance.summary import compliance_summary
from fieldapp.demo import HISTORY_DAYS, QUIET_DAYS
from fieldapp.models import AuditEvent, Episode, EpisodeSummary, StepEntry
from fieldapp.summaries import summary_values

from helpers import fresh


def the_year(clock) -> Population:
    today = clock.now().date()
    return Population(today - timedelta(days=HISTORY_DAYS + 1), today)


def test_the_demo_has_a_year_of_ended_episodes(app, runner, clock):
    assert runner.invoke(args=["demo"]).exit_code == 0
    s = fresh()
    episodes = s.scalars(select(Episode)).all()
    past = [e for e in episodes if e.ended_at is not None]
    reasons = {e.end_reason for e in past}
    assert len(past) >= 25
    assert {"returned_to_care", "released_from_custody"} <= reasons
    quiet = clock.now() - timedelta(days=QUIET_DAYS)
    earliest = clock.now() - timedelta(days=HISTORY_DAYS)
    for episode in past:
        assert earliest <= episode.discovered_at < episode.ended_at <= quiet
    # The open episodes the browser tests work are still there, and newer than any history.
    assert sum(e.ended_at is None for e in episodes) == 7
    # Entries were received when they were typed (the clock stood at the past moment), and no
    # entry is later than the moment it was received.
    entries = s.scalars(select(StepEntry)).all()
    assert any(e.received_at < quiet for e in entries)
    assert all(e.done_at <= e.recorded_at <= e.received_at for e in entries)


def test_summary_rows_match_the_records_and_the_chain_holds(app, runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    s = fresh()
    for episode in s.scalars(select(Episode)).all():
        stored = s.get(EpisodeSummary, episode.id)
        assert stored is not None, episode.id
        for name, value in summary_values(s, episode).items():
            if name != "refreshed_at":
                assert getattr(stored, name) == value, (episode.id, name)
    report = verify_chain(db.engine(), audit_key())
    assert report.intact and report.count > 100, report
    assert s.scalar(select(AuditEvent).where(AuditEvent.action == "episode.open").limit(1))


def test_the_measures_tell_the_audit_story(app, runner, clock):
    assert runner.invoke(args=["demo"]).exit_code == 0
    figures = compliance_summary(fresh(), the_year(clock))
    m3 = figures["M3"]
    assert m3["denominator"] >= 30
    assert 30 <= m3["percent"] <= 65  # the audit found 46% reported to neither
    assert 0 < figures["R1"]["denominator"] < m3["denominator"]  # returns only
    assert figures["M5"]["count"] > 0 and figures["P2"]["count"] > 0
    assert len(figures["M1"]["breakdowns"]["by_month"]) >= 8  # a chart over the year


def test_the_history_is_the_same_on_every_run(app, runner, clock, tmp_path):
    assert runner.invoke(args=["demo"]).exit_code == 0
    first = [(e.child.case_id, e.discovered_at, e.end_reason, len(e.steps))
             for e in fresh().scalars(select(Episode).order_by(Episode.id))]
    assert first
    # The same clock on another empty database gives the same history.
    url = f"sqlite:///{tmp_path / 'second.sqlite3'}"
    migrate.upgrade(url)
    second_app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": url,
                             "CLOCK": clock, "INSTANCE_PATH": str(tmp_path / "second")})
    with second_app.app_context():  # the CLI runs in the app context it finds
        result = second_app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0 and "already has users" not in result.output
        again = [(e.child.case_id, e.discovered_at, e.end_reason, len(e.steps))
                 for e in db.session().scalars(select(Episode).order_by(Episode.id))]
    assert again == first
