"""Benchmark: sync throughput, 1,000 queued operations from one phone, on SQLite and PostgreSQL.

Run with ``make bench`` (never part of the tests). For each database it builds 50 open episodes
for one caseworker, then sends that worker's outbox as a phone would: 1,000 operations (per
episode, the law-enforcement and NCMEC report steps and 18 search contacts) in two batches of 500
(the API's limit), each through the whole ``POST /api/v1/sync`` request path (session, CSRF, JSON,
access checks, the savepoint per op, the exactly-once claim, the audit chain, the commit). Then it
sends the same outbox again, as a phone that lost the answers would, and every op must come back
``duplicate``.

    python bench/sync_bench.py [--runs 3] [--postgres URL | --no-postgres]

Anchor: ODK Central's published figure of about 41 submissions/s from 500 devices. Target: at
least 400 ops/s on the 2-core benchmark machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from werkzeug.security import generate_password_hash

from common import DEFAULT_POSTGRES, bench_app, child_in_placement, postgres_database
from fieldapp import db
from fieldapp.accounts import create_user, get_or_create_team
from fieldapp.clock import FixedClock
from fieldapp.episodes import open_episode
from fieldapp.models import Episode
from fieldapp.policy import install_packaged, policy_of
from pdf_bench import evidence_for

EPISODES = 50
CONTACTS_PER_EPISODE = 18
REPORT_STEPS = ("report_law_enforcement", "report_ncmec")
BATCH = 500
TARGET_OPS_PER_SECOND = 400
PASSWORD = "benchmark password, not a secret"
NOW = datetime(2026, 3, 2, 20, tzinfo=UTC)


def build_episodes(app) -> list[int]:
    """One caseworker with ``EPISODES`` children, each missing since an hour ago."""
    with app.app_context(), db.writing() as s:
        install_packaged(s)
        worker = create_user(s, username="bench.worker", display_name="Bench Worker",
                             role="caseworker", password_hash=generate_password_hash(PASSWORD),
                             team=get_or_create_team(s, "Bench team"))
        ids = []
        for n in range(EPISODES):
            child = child_in_placement(s, worker, NOW, n + 1)
            episode = open_episode(s, child, worker, status="whereabouts_unknown",
                                   discovered_at=NOW - timedelta(hours=1),
                                   discovered_by_role="placement_provider",
                                   discovered_by_name="House parent", how_missing="ran_away",
                                   last_seen_at=None, last_seen_place="", note="Bench: bed check")
            ids.append(episode.id)
        return ids


def outbox(app, episode_ids: list[int]) -> list[dict]:
    """The phone's queued operations, fresh UUIDs each time, as the page's script builds them."""
    with app.app_context():
        episode = db.session().get(Episode, episode_ids[0])
        policy = policy_of(episode.policy_version)
        version = episode.policy_version.key
    done_at = (NOW - timedelta(minutes=30)).isoformat()
    ops = []
    for episode_id in episode_ids:
        for key in REPORT_STEPS:
            evidence = evidence_for(policy.step(key), policy, NOW.date())
            ops.append({"uuid": str(uuid.uuid4()), "kind": "step_entry", "episode_id": episode_id,
                        "step_key": key, "policy_version": version,
                        "recorded_at": (NOW - timedelta(minutes=20)).isoformat(),
                        "fields": {"outcome": "done", "done_at": done_at, "evidence": evidence,
                                   "reason": ""}})
        for n in range(CONTACTS_PER_EPISODE):
            ops.append({"uuid": str(uuid.uuid4()), "kind": "search_contact",
                        "episode_id": episode_id, "policy_version": version,
                        "recorded_at": (NOW - timedelta(minutes=10)).isoformat(),
                        "fields": {"purpose": "search", "person": f"Neighbour {n}",
                                   "relationship": "other", "method": "in_person",
                                   "contacted_at": (NOW - timedelta(minutes=40)).isoformat(),
                                   "reached": "attempt", "learned": "Knocked; nobody home."}})
    return ops


def send(client, ops: list[dict], token: str) -> tuple[float, dict[str, int]]:
    """Seconds to send ``ops`` in batches, and the count of each answer."""
    counts: dict[str, int] = {}
    started = time.perf_counter()
    for first in range(0, len(ops), BATCH):
        chunk = ops[first:first + BATCH]
        response = client.post("/api/v1/sync", headers={"X-CSRFToken": token}, json={
            "device_id": "8f0e4a55-6a43-4a55-9b8e-000000000001", "device_time": NOW.isoformat(),
            "held": len(ops) - first, "ops": chunk})
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        for result in response.get_json()["results"]:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
    return time.perf_counter() - started, counts


def measure(name: str, url: str, runs: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fieldapp-sync-bench-"))
    app = bench_app(url, FixedClock(NOW), folder)
    episode_ids = build_episodes(app)
    client = app.test_client()
    client.post("/login", data={"username": "bench.worker", "password": PASSWORD,
                                "csrf_token": _login_token(client)})
    token = client.get("/api/v1/session").get_json()["csrf_token"]
    send(client, outbox(app, episode_ids)[:40], token)  # warm-up: templates, caches, the pool
    first_times, replay_times = [], []
    for _ in range(runs):
        ops = outbox(app, episode_ids)
        seconds, counts = send(client, ops, token)
        assert counts == {"applied": len(ops)}, counts
        first_times.append(seconds)
        seconds, counts = send(client, ops, token)
        assert counts == {"duplicate": len(ops)}, counts
        replay_times.append(seconds)
    app.extensions["fieldapp.engine"].dispose()
    total = EPISODES * (len(REPORT_STEPS) + CONTACTS_PER_EPISODE)
    first, replay = statistics.median(first_times), statistics.median(replay_times)
    print(f"sync_{name}_ops_per_second: {total / first:.0f} ops/s "
          f"({total} ops in {first:.2f} s, median of {runs})")
    print(f"sync_{name}_replay_ops_per_second: {total / replay:.0f} ops/s "
          f"(the same {total} again, all duplicate)")
    met = total / first >= TARGET_OPS_PER_SECOND
    print(f"target_sync_{name}_at_least_{TARGET_OPS_PER_SECOND}_ops_per_second: "
          f"{'met' if met else 'NOT met'}")


def _login_token(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    marker = 'name="csrf_token" type="hidden" value="'
    start = page.index(marker) + len(marker)
    return page[start:page.index('"', start)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("FIELDAPP_BENCH_POSTGRES_URL",
                                                             DEFAULT_POSTGRES))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    print(f"sync_bench: python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, {EPISODES} episodes, batches of {BATCH}")
    folder = Path(tempfile.mkdtemp(prefix="fieldapp-sync-bench-"))
    measure("sqlite", f"sqlite:///{folder / 'sync.sqlite3'}", args.runs)
    if not args.no_postgres:
        with postgres_database(args.postgres, "sync_bench") as url:
            if url is not None:
                measure("postgresql", url, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
