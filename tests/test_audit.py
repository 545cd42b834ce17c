"""The audit log (DESIGN §7): a gapless HMAC chain, `fieldapp verify-audit` against each kind of
tampering and under concurrency, the key kept outside the database, and the administrators' page."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import func, inspect, select, text

from fieldapp import create_app, db, migrate
from fieldapp.audit import (DEVELOPMENT_KEY, EVENTS_PER_PAGE, GENESIS, audit_key, fingerprint,
                            link_hash, record_event, verify_chain)
from fieldapp.db import UTCDateTime
from fieldapp.models import AuditEvent, AuditHead
from fieldapp.settings import SETTINGS, SettingsError

from helpers import PASSWORD, fresh

AUDIT_KEY = "test-audit-key-7c1e5a90b2d4f36e"
WRITERS = 20


@pytest.fixture
def app_config(app_config):
    """The suite's configuration with an audit key of this module's own, to look for later."""
    return {**app_config, "AUDIT_KEY": AUDIT_KEY}


def chain() -> list[AuditEvent]:
    return fresh().scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()


def head() -> tuple[int, str]:
    row = fresh().get(AuditHead, 1, populate_existing=True)
    return row.last_seq, row.last_hash


def raw(*statements: str, **params) -> None:
    """Tamper as a database writer would: plain SQL on the engine, past the ORM and the app."""
    fresh()  # the test's own session holds no snapshot or lock meanwhile
    with db.engine().begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def verify(runner):
    return runner.invoke(args=["verify-audit"])


def add_events(count: int, actor=None, child_id=None, action="test.event") -> None:
    with db.writing() as s:
        for n in range(count):
            record_event(s, actor, action, "thing", n, child_id=child_id, changes={"n": n})


@pytest.fixture
def logged(world):
    """The world's set-up events (users and children) and a few more: about fifteen in all."""
    add_events(5, child_id=world.child_a.id)
    return len(chain())


# --- The chain -------------------------------------------------------------------------------

def expected_hmac(event: AuditEvent, previous: str) -> str:
    """DESIGN §7's link, written out independently of fieldapp.audit."""
    message = json.dumps({
        "seq": event.seq, "at": event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": event.actor_id, "action": event.action, "entity": event.entity,
        "entity_id": event.entity_id, "child_id": event.child_id, "details": event.details,
        "previous": previous}, sort_keys=True, separators=(",", ":"))
    return hmac.new(AUDIT_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_every_event_gets_the_next_seq_and_an_hmac_linking_it_to_the_last(logged):
    events = chain()
    assert logged >= 10
    assert [e.seq for e in events] == list(range(1, logged + 1))
    previous = GENESIS
    for event in events:
        assert event.hash == expected_hmac(event, previous), event.seq
        previous = event.hash
    assert head() == (logged, events[-1].hash)


def test_several_events_in_one_write_and_a_rolled_back_write_leave_no_gap(app, runner):
    with db.writing() as s:
        record_event(s, None, "first", "thing", 1)
        record_event(s, None, "second", "thing", 2)
    with pytest.raises(RuntimeError, match="the write fails"):
        with db.writing() as s:
            record_event(s, None, "rolled.back", "thing", 3)
            raise RuntimeError("the write fails")
    with db.writing() as s:
        record_event(s, None, "third", "thing", 4)

    assert [(e.seq, e.action) for e in chain()] == [(1, "first"), (2, "second"), (3, "third")]
    assert head()[0] == 3
    assert verify(runner).output == "audit chain intact: 3 events\n"


def test_a_savepoint_rolled_back_between_events_leaves_no_gap(app, runner):
    """A sync batch writes many events in one transaction and rolls back a bad op's savepoint;
    the head is read once per transaction, so a rollback must make it be read again."""
    with db.writing() as s:
        record_event(s, None, "first", "thing", 1)
        with pytest.raises(RuntimeError):
            with s.begin_nested():
                record_event(s, None, "rolled.back", "thing", 2)
                record_event(s, None, "rolled.back.too", "thing", 3)
                raise RuntimeError("a bad op")
        record_event(s, None, "second", "thing", 4)
        with s.begin_nested():
            record_event(s, None, "third", "thing", 5)
        record_event(s, None, "fourth", "thing", 6)
    with db.writing() as s:
        record_event(s, None, "fifth", "thing", 7)

    assert [(e.seq, e.action) for e in chain()] == [
        (1, "first"), (2, "second"), (3, "third"), (4, "fourth"), (5, "fifth")]
    assert head()[0] == 5
    assert verify(runner).output == "audit chain intact: 5 events\n"


def test_sensitive_values_and_blobs_are_stored_as_hashes_and_times_in_utc(app):
    reason = "Staying with her uncle on Elm Street"
    pdf = b"%PDF-1.7 the whole record"
    local_time = datetime(2026, 3, 2, 3, 30, tzinfo=ZoneInfo("America/Chicago"))
    with db.writing() as s:
        record_event(s, None, "pdf.generate", "episode", 7,
                     changes={"pdf": pdf, "done_at": local_time}, sensitive={"reason": reason})
    (event,) = chain()
    assert json.loads(event.details) == {"pdf": fingerprint(pdf), "reason": fingerprint(reason),
                                         "done_at": "2026-03-02T09:30:00.000000Z"}
    assert "Elm" not in event.details and "PDF" not in event.details


def test_the_key_is_in_no_table(logged, app):
    engine = db.engine()
    needles = (AUDIT_KEY, AUDIT_KEY.encode().hex())
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    assert not any(needle in str(value) for needle in needles), table
    assert fresh().scalar(select(func.count()).select_from(AuditEvent)) == logged


# --- verify-audit ----------------------------------------------------------------------------

def test_a_clean_chain_verifies(logged, runner):
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert result.output == f"audit chain intact: {logged} events\n"


def test_an_empty_log_verifies(app, runner):
    assert verify(runner).output == "audit chain intact: 0 events\n"


@pytest.mark.parametrize("column, value", [
    ("details", """'{"role": "administrator"}'"""),
    ("action", "'user.reactivate'"),
    ("actor_id", "(SELECT max(id) FROM users)"),
    ("entity_id", "'999'"),
])
def test_an_edited_event_is_named(logged, runner, column, value):
    before = getattr(chain()[2], column)
    raw(f"UPDATE audit_events SET {column} = {value} WHERE seq = 3")
    assert getattr(chain()[2], column) != before
    result = verify(runner)
    assert result.exit_code != 0
    assert "audit chain broken at seq 3: edited" in result.output


def test_an_event_whose_hmac_was_recomputed_without_the_key_is_named(logged, runner):
    """A database writer can rewrite the hashes too, but not with the right key."""
    events = chain()
    raw("UPDATE audit_events SET details = '{}' WHERE seq = 2")
    wrong_key, previous = b"guessed", GENESIS
    for event in chain():
        previous = link_hash(wrong_key, event, previous)
        raw("UPDATE audit_events SET hash = :hash WHERE seq = :seq", hash=previous, seq=event.seq)
    raw("UPDATE audit_head SET last_hash = :hash", hash=previous)
    assert len(events) == logged

    result = verify(runner)
    assert result.exit_code != 0
    assert "audit chain broken at seq 1: edited" in result.output


def test_a_deleted_event_is_named(logged, runner):
    raw("DELETE FROM audit_events WHERE seq = 4")
    result = verify(runner)
    assert result.exit_code != 0
    assert "audit chain broken at seq 4: missing: deleted (the log jumps from seq 3 to seq 5)" \
        in result.output


def test_a_deletion_hidden_by_renumbering_is_named(logged, runner):
    raw("DELETE FROM audit_events WHERE seq = 4",
        "UPDATE audit_events SET seq = seq + 1000 WHERE seq > 4",
        "UPDATE audit_events SET seq = seq - 1001 WHERE seq > 1000",
        "UPDATE audit_head SET last_seq = last_seq - 1")
    result = verify(runner)
    assert result.exit_code != 0
    assert "audit chain broken at seq 4: missing" in result.output


def test_the_newest_event_deleted_is_named(logged, runner):
    raw("DELETE FROM audit_events WHERE seq = :seq", seq=logged)
    result = verify(runner)
    assert result.exit_code != 0
    assert f"audit chain broken at seq {logged}: missing: deleted from the end" in result.output


# A forged row: a copy of event 2 with other details, and event 2's genuine HMAC.
FORGE = ("INSERT INTO audit_events (seq, at, actor_id, action, entity, entity_id, child_id, "
         "details, hash) SELECT :seq, at, actor_id, action, entity, entity_id, child_id, "
         "'{\"role\": \"administrator\"}', hash FROM audit_events WHERE seq = 2")


def test_an_event_inserted_into_the_chain_is_named(logged, runner):
    raw("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 3",
        "UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000",
        FORGE, "UPDATE audit_head SET last_seq = last_seq + 1", seq=3)
    assert [e.seq for e in chain()] == list(range(1, logged + 2))

    result = verify(runner)
    assert result.exit_code != 0
    assert "audit chain broken at seq 3: inserted" in result.output


def test_an_event_appended_past_the_head_is_named(logged, runner):
    raw(FORGE, seq=logged + 1)
    result = verify(runner)
    assert result.exit_code != 0
    assert f"audit chain broken at seq {logged + 1}: inserted: beyond the head row" in result.output


@pytest.mark.parametrize("change", [
    "UPDATE audit_head SET last_hash = 'ffff'",
    "UPDATE audit_head SET last_seq = last_seq - 1",
    "DELETE FROM audit_head",
])
def test_a_head_that_does_not_match_is_named(logged, runner, change):
    raw(change)
    result = verify(runner)
    assert result.exit_code != 0
    assert f"audit chain broken at seq {logged}: head mismatch" in result.output


def test_only_the_first_broken_link_is_named(logged, runner):
    raw("UPDATE audit_events SET details = '{}' WHERE seq IN (2, 5)",
        "DELETE FROM audit_events WHERE seq = 7")
    result = verify(runner)
    assert "seq 2: edited" in result.output
    assert "seq 5" not in result.output and "seq 7" not in result.output


def test_verifying_with_another_key_fails(logged, app):
    assert verify_chain(db.engine(), AUDIT_KEY.encode()).intact
    report = verify_chain(db.engine(), b"not the key")
    assert (report.intact, report.broken_seq, report.count) == (False, 1, 0)


# --- Concurrency -----------------------------------------------------------------------------

def test_twenty_concurrent_writers_leave_one_gapless_chain(app, runner):
    start = threading.Barrier(WRITERS)
    failures = []

    def write(n: int) -> None:
        try:
            with app.app_context():
                start.wait(timeout=30)
                with db.writing() as s:
                    record_event(s, None, "test.concurrent", "writer", n, changes={"n": n})
                    time.sleep(0.01)  # hold the head while the others queue behind it
        except BaseException as exc:  # noqa: BLE001  (reported below, on the test's thread)
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)

    assert failures == []
    events = chain()
    assert [e.seq for e in events] == list(range(1, WRITERS + 1))
    assert sorted(int(e.entity_id) for e in events) == list(range(WRITERS))
    assert head() == (WRITERS, events[-1].hash)
    result = verify(runner)
    assert result.output == f"audit chain intact: {WRITERS} events\n"


def test_twenty_concurrent_logins_through_the_app_leave_one_gapless_chain(app, world, runner):
    before = len(chain())
    start = threading.Barrier(WRITERS)
    statuses = []

    def log_in(n: int) -> None:
        user = (world.cw_a, world.sup_a, world.admin, world.oncall)[n % 4]
        password = PASSWORD if n % 2 == 0 else "not the password"
        client = app.test_client()
        start.wait(timeout=30)
        response = client.post("/login", data={"username": user.username, "password": password})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=log_in, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(statuses) == [302] * 10 + [401] * 10
    events = chain()
    assert [e.seq for e in events] == list(range(1, before + WRITERS + 1))
    assert sorted(e.action for e in events[before:]) == (["auth.login"] * 10
                                                         + ["auth.login_failed"] * 10)
    assert verify(runner).output == f"audit chain intact: {before + WRITERS} events\n"


# --- The key at start-up ---------------------------------------------------------------------

@pytest.fixture
def build(monkeypatch, tmp_path):
    """create_app from the environment alone, as a server starts."""
    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.setenv("FIELDAPP_SECRET_KEY", "a-long-random-secret-key")
    monkeypatch.setenv("FIELDAPP_DATABASE_URL", f"sqlite:///{tmp_path / 'start.sqlite3'}")
    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path / "instance"))
    apps = []

    def build_app(config=None):
        apps.append(create_app(config))
        return apps[-1]

    yield build_app
    for app in apps:
        app.extensions["fieldapp.engine"].dispose()


@pytest.mark.parametrize("value", [None, ""])
def test_start_up_is_refused_without_an_audit_key(build, monkeypatch, value):
    if value is not None:
        monkeypatch.setenv("FIELDAPP_AUDIT_KEY", value)
    with pytest.raises(SettingsError) as refused:
        build()
    message = str(refused.value)
    assert message.startswith("FIELDAPP_AUDIT_KEY is not set.")
    assert "outside the database" in message and "make run" in message


def test_the_audit_key_comes_from_the_environment(build, monkeypatch):
    monkeypatch.setenv("FIELDAPP_AUDIT_KEY", "the-agency-audit-key")
    app = build()
    with app.app_context():
        assert audit_key() == b"the-agency-audit-key"


@pytest.mark.parametrize("flag", ["FIELDAPP_DEBUG", "TESTING"])
def test_debugging_and_testing_run_with_the_development_key(build, monkeypatch, flag):
    if flag == "TESTING":
        app = build({"TESTING": True})
    else:
        monkeypatch.setenv(flag, "1")
        app = build()
    migrate.upgrade(app.config["DATABASE_URL"])
    with app.app_context():
        assert audit_key() == DEVELOPMENT_KEY.encode()
        add_events(2)
    # Through the command line too, where Flask resets the debug flag after the factory ran.
    result = app.test_cli_runner().invoke(args=["verify-audit"])
    assert result.output == "audit chain intact: 2 events\n"


# --- Migration 0003 --------------------------------------------------------------------------

LEGACY = sa.table("audit_events", sa.column("at", UTCDateTime), sa.column("action", sa.String),
                  sa.column("entity", sa.String), sa.column("entity_id", sa.String),
                  sa.column("details", sa.Text))


@pytest.fixture
def legacy_log(empty_db_url, monkeypatch):
    """A database at 0002 whose audit log already has three events (made before the chain)."""
    monkeypatch.delenv("FIELDAPP_AUDIT_KEY", raising=False)
    migrate.upgrade(empty_db_url, "0002")
    engine = sa.create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(LEGACY.insert(), [
            {"at": datetime(2026, 1, 5, 15, n, tzinfo=UTC), "action": f"legacy.{n}",
             "entity": "user", "entity_id": str(n), "details": json.dumps({"n": n})}
            for n in range(3)])
    yield engine
    engine.dispose()


def columns(engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_the_migration_chains_the_events_already_logged(empty_db_url, legacy_log, monkeypatch,
                                                        tmp_path):
    monkeypatch.setenv("FIELDAPP_AUDIT_KEY", AUDIT_KEY)
    migrate.upgrade(empty_db_url)

    report = verify_chain(legacy_log, AUDIT_KEY.encode())
    assert (report.intact, report.count) == (True, 3)
    with legacy_log.connect() as conn:
        rows = conn.execute(text("SELECT seq, action FROM audit_events ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, "legacy.0"), (2, "legacy.1"), (3, "legacy.2")]

    app = create_app({"TESTING": True, "DATABASE_URL": empty_db_url, "AUDIT_KEY": AUDIT_KEY,
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    try:
        with app.app_context():
            add_events(1)
            assert verify(app.test_cli_runner()).output == "audit chain intact: 4 events\n"
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_the_migration_stops_without_a_key_when_events_exist(empty_db_url, legacy_log):
    with pytest.raises(RuntimeError, match="holds 3 events.*Set FIELDAPP_AUDIT_KEY"):
        migrate.upgrade(empty_db_url)
    with legacy_log.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    assert "seq" not in columns(legacy_log, "audit_events")
    assert "audit_head" not in inspect(legacy_log).get_table_names()


def test_the_migration_goes_down_keeping_the_events_and_up_again(empty_db_url, legacy_log,
                                                                monkeypatch):
    monkeypatch.setenv("FIELDAPP_AUDIT_KEY", AUDIT_KEY)
    migrate.upgrade(empty_db_url)
    migrate.downgrade(empty_db_url, "0002")
    assert {"seq", "hash"}.isdisjoint(columns(legacy_log, "audit_events"))
    assert "audit_head" not in inspect(legacy_log).get_table_names()
    with legacy_log.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 3

    migrate.upgrade(empty_db_url)
    assert verify_chain(legacy_log, AUDIT_KEY.encode()).count == 3


# --- The administrators' page ----------------------------------------------------------------

def shown_seqs(html: str) -> list[int]:
    return [int(seq) for seq in re.findall(r'<span class="meta">#(\d+) ·', html)]


def seqs_where(*where) -> list[int]:
    return fresh().scalars(select(AuditEvent.seq).where(*where)
                           .order_by(AuditEvent.seq.desc())).all()


@pytest.fixture
def as_admin(client, world, login):
    login(world.admin)
    return world


def test_the_log_is_newest_first_fifty_a_page(client, as_admin):
    add_events(110)
    total = len(chain())

    first = client.get("/admin/audit")
    assert first.status_code == 200
    assert shown_seqs(first.text) == list(range(total, total - EVENTS_PER_PAGE, -1))
    assert 'href="/admin/audit?page=2"' in first.text and "Newer events" not in first.text

    last_page = -(-total // EVENTS_PER_PAGE)
    last = client.get(f"/admin/audit?page={last_page}")
    assert shown_seqs(last.text) == list(range(total - EVENTS_PER_PAGE * (last_page - 1), 0, -1))
    assert "Older events" not in last.text and "Newer events" in last.text
    assert shown_seqs(client.get(f"/admin/audit?page={last_page + 1}").text) == []


def test_the_log_filters_by_child(client, as_admin):
    add_events(3, child_id=as_admin.child_b.id, action="test.for_b")
    page = client.get(f"/admin/audit?child={as_admin.child_b.id}").text
    expected = seqs_where(AuditEvent.child_id == as_admin.child_b.id)
    assert len(expected) >= 3 and shown_seqs(page) == expected
    assert f'value="{as_admin.child_b.id}"' in page


def test_the_log_filters_by_user_and_keeps_the_filter_across_pages(client, as_admin):
    add_events(55, actor=as_admin.sup_a)
    add_events(2, actor=as_admin.cw_a)
    page = client.get(f"/admin/audit?user={as_admin.sup_a.id}").text
    expected = seqs_where(AuditEvent.actor_id == as_admin.sup_a.id)
    assert shown_seqs(page) == expected[:EVENTS_PER_PAGE]
    assert f'<option value="{as_admin.sup_a.id}" selected>' in page
    assert f'href="/admin/audit?page=2&amp;user={as_admin.sup_a.id}"' in page
    second = client.get(f"/admin/audit?page=2&user={as_admin.sup_a.id}").text
    assert shown_seqs(second) == expected[EVENTS_PER_PAGE:]


def test_the_log_filters_by_the_agencys_dates(client, as_admin, clock):
    # 05:00 UTC on 1 March is still 28 February in Missouri (UTC-6).
    clock.set(datetime(2026, 3, 1, 5, 0, tzinfo=UTC))
    add_events(1, action="test.late_february")
    clock.set(datetime(2026, 3, 1, 18, 0, tzinfo=UTC))
    add_events(1, action="test.first_of_march")
    clock.set(datetime(2026, 3, 3, 18, 0, tzinfo=UTC))
    add_events(1, action="test.third_of_march")
    seq_of = {e.action: e.seq for e in chain()}

    march_1 = client.get("/admin/audit?from=2026-03-01&to=2026-03-01").text
    assert shown_seqs(march_1) == [seq_of["test.first_of_march"]]
    from_march = client.get("/admin/audit?from=2026-03-01").text
    assert seq_of["test.late_february"] not in shown_seqs(from_march)
    assert seq_of["test.third_of_march"] in shown_seqs(from_march)
    to_feb = client.get("/admin/audit?to=2026-02-28").text
    assert seq_of["test.late_february"] in shown_seqs(to_feb)
    assert seq_of["test.first_of_march"] not in shown_seqs(to_feb)


def test_unreadable_filters_are_ignored(client, as_admin):
    page = client.get("/admin/audit?child=abc&user=&from=yesterday&page=-3")
    assert page.status_code == 200
    assert shown_seqs(page.text) == seqs_where()[:EVENTS_PER_PAGE]


def test_details_are_shown_as_text_never_as_html(client, as_admin):
    with db.writing() as s:
        record_event(s, None, "test.markup", "thing", 1,
                     changes={"note": "<script>alert(1)</script><b>bold</b>"})
    page = client.get("/admin/audit").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>bold" not in page


def test_administrators_see_the_nav_link(client, as_admin):
    assert 'href="/admin/audit">Audit log</a>' in client.get("/admin/users").text


@pytest.mark.parametrize("who", ["cw_a", "sup_a", "oncall", "auditor"])
def test_others_get_404(client, world, login, who):
    login(getattr(world, who))
    page = client.get("/admin/audit")
    assert page.status_code == 404
    assert "#1 ·" not in page.text


def test_anonymous_users_are_sent_to_log_in(client, app):
    response = client.get("/admin/audit")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
