"""SIGKILL during a sync batch (issue 5): whatever moment the server dies, the phone's replay ends
with every op stored exactly once.

The server is real (gunicorn, two workers) and is killed with its workers by SIGKILL at spread-out
moments while it applies a 300-op batch: before the batch commits, while it commits, or after, when
only the answer is lost. Each time it restarts, and the phone sends the same batch again, as its
outbox would. The database is then read directly.
"""
from __future__ import annotations

import threading
import time
import urllib.error
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, func, select

from fieldapp.models import ClientOp, SearchContact
from live import Browserless, Server, init_instance, server_environment

BATCH_OPS = 300
KILL_AFTER_SECONDS = (0.05, 0.15, 0.3, 0.5, 0.8, 1.2)


def contact_ops(episode_id: int, count: int) -> list[dict]:
    now = datetime.now(UTC)
    return [{"uuid": str(uuid.uuid4()), "kind": "search_contact", "episode_id": episode_id,
             "recorded_at": (now - timedelta(seconds=count - i)).isoformat(),
             "fields": {"purpose": "search", "person": f"Neighbour {i}", "relationship": "other",
                        "method": "in_person", "contacted_at": (now - timedelta(hours=1)).isoformat(),
                        "reached": "attempt", "learned": ""}}
            for i in range(count)]


def _send_and_record(phone: Browserless, batch: dict, outcome: dict) -> None:
    try:
        outcome["status"], outcome["body"] = phone.post_json("/api/v1/sync", batch, timeout=30)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as lost:
        outcome["lost"] = repr(lost)


def test_a_server_killed_mid_batch_stores_every_op_exactly_once_after_the_replay(
        tmp_path, empty_db_url):
    """``empty_db_url``: an empty database of each kind; `fieldapp init` migrates it."""
    instance = tmp_path / "instance"
    instance.mkdir()
    env = server_environment(instance, empty_db_url)
    passwords = init_instance(env)
    server = Server(env)
    server.start()
    try:
        phone = Browserless(server.url)
        phone.log_in("caseworker", passwords["caseworker"])
        episode_id = int(phone.get_json("/api/v1/offline")["pages"][0].split("/")[2])
        ops = contact_ops(episode_id, BATCH_OPS)
        batch = {"device_id": str(uuid.uuid4()), "held": len(ops), "ops": ops}

        answered_before_the_kill = 0
        for delay in KILL_AFTER_SECONDS:
            outcome: dict = {}
            sender = threading.Thread(target=_send_and_record, args=(phone, batch, outcome))
            sender.start()
            time.sleep(delay)
            server.kill()
            sender.join(timeout=30)
            answered_before_the_kill += "status" in outcome
            server.start()  # the same cookie still holds: the session survives a restart

        batch["device_time"] = datetime.now(UTC).isoformat()
        status, body = phone.post_json("/api/v1/sync", batch)
        assert status == 200
        refused = [r for r in body["results"] if r["status"] not in ("applied", "duplicate")]
        assert not refused, refused[:3]
    finally:
        server.stop()

    assert answered_before_the_kill < len(KILL_AFTER_SECONDS), \
        "every batch finished before its kill: the test never interrupted a write"
    engine = create_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            uuids = [op["uuid"] for op in ops]
            stored = conn.execute(select(SearchContact.client_uuid, func.count())
                                  .where(SearchContact.client_uuid.in_(uuids))
                                  .group_by(SearchContact.client_uuid)).all()
            assert len(stored) == BATCH_OPS and {n for _uuid, n in stored} == {1}
            claimed = conn.scalar(select(func.count()).select_from(ClientOp)
                                  .where(ClientOp.uuid.in_(uuids)))
            assert claimed == BATCH_OPS
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        engine.dispose()
