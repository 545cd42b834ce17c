"""Fifty phones at once (issue 8, reliability 1): under gunicorn with four workers, 2,000 steps and
contacts posted through the real forms (and a share through the sync API) are each stored exactly
once, no user ever sees "database is locked" or a server error, and the audit chain verifies.

Caseworkers, supervisors and an on-call worker with break-the-glass grants share a handful of open
episodes, so writes contend on the same episode and on different ones. Some writes are sent twice
with the same UUID, as a phone does when an answer is lost: after the first answer, or while the
first try is still in flight.
"""
from __future__ import annotations

import random
import threading
import time
import uuid

from live import (Phone, Server, Write, break_glass, children_with_status, form_errors,
                  init_instance, logged_errors, open_episodes, report_missing, run_cli,
                  server_environment, server_error, sqlite_integrity, stored_counts)

CLIENTS = 50
WRITES = 2000
WORKERS = 4
EXTRA_EPISODES = 10
USERS = ("caseworker", "caseworker2", "supervisor", "supervisor2", "oncall")
SYNC_PER_CLIENT = 4  # each phone's last writes go through its offline outbox instead
RETRY_EVERY = 6  # of every six form posts, one is resent after it is answered, one while in flight
PAGE_EVERY = 4  # a user reloads the form (a new CSRF token, the time defaults) every few writes


def plan_writes(rng: random.Random, client: int, episodes: list[int], count: int) -> list[Write]:
    return [Write(rng.choice(("step_entry", "search_contact")), rng.choice(episodes),
                  str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"Person {client}-{n}")
            for n in range(count)]


def run_phone(phone: Phone, writes: list[Write], start: threading.Barrier, problems: list) -> None:
    start.wait()
    try:
        _use(phone, writes, problems)
    except Exception as failure:  # noqa: BLE001 - a page that failed to load is a finding too
        problems.append(f"{phone.address}: {failure!r}")
    phone.close()


def _use(phone: Phone, writes: list[Write], problems: list) -> None:
    """One user's session: the form page, then its posts, as a browser sends them."""
    def check(what: str, answer: tuple[int, dict, bytes], expected: int) -> None:
        status, _headers, body = answer
        failure = server_error(status, body)
        if failure or status != expected:
            problems.append(f"{what}: {status} {failure or ''} {form_errors(body) or body[:200]!r}")

    page, shown = b"", ""
    by_form, by_sync = writes[:-SYNC_PER_CLIENT], writes[-SYNC_PER_CLIENT:]
    batch = [w.sync_op() for w in by_sync]  # built once: a replay is the same batch, byte for byte
    for n, write in enumerate(by_form):
        if write.form_path != shown or n % PAGE_EVERY == 0:
            page, shown = phone.get_page(write.form_path), write.form_path
        fields = write.form_fields(page)
        check(f"{write.kind} {write.uuid}", phone.post_form(write.form_path, fields), 303)
        if n % RETRY_EVERY == 0:  # the answer was lost: the same submission again
            check(f"{write.kind} {write.uuid} resent", phone.post_form(write.form_path, fields), 303)
        elif n % RETRY_EVERY == 3:  # a retry that overtakes the first try, still in flight
            twin, answers = phone.twin(), []
            racer = threading.Thread(target=lambda: answers.append(
                twin.post_form(write.form_path, fields)))
            racer.start()
            check(f"{write.kind} {write.uuid} raced", phone.post_form(write.form_path, fields), 303)
            racer.join()
            twin.close()
            check(f"{write.kind} {write.uuid} racer", answers[0], 303)
    for attempt in range(2):  # the outbox sends, then (answer lost) sends the same batch again
        answer = phone.sync(batch)
        check(f"sync try {attempt + 1}", answer, 200)
        expected = "applied" if attempt == 0 else "duplicate"
        if answer[0] == 200 and answer[2].count(f'"{expected}"'.encode()) < len(by_sync):
            problems.append(f"sync try {attempt + 1}: not all {expected}: {answer[2][:300]!r}")


def more_missing(server: Server, passwords: dict, database_url: str) -> None:
    """Report EXTRA_EPISODES more children missing, through the wizard, so that 2,000 writes land
    on a believable caseload (about 130 records per episode, not 400)."""
    phones = {}
    for child, worker in children_with_status(database_url, "in_placement")[:EXTRA_EPISODES]:
        if worker not in phones:
            phones[worker] = Phone(server.address)
            phones[worker].log_in(worker, passwords[worker])
        report_missing(phones[worker], child)
    for phone in phones.values():
        phone.close()


def test_fifty_clients_under_four_workers_store_every_write_exactly_once(tmp_path, empty_db_url):
    instance = tmp_path / "instance"
    instance.mkdir()
    env = server_environment(instance, empty_db_url)
    passwords = init_instance(env)
    server = Server(env, workers=WORKERS)
    server.start()
    more_missing(server, passwords, empty_db_url)
    episodes = open_episodes(empty_db_url)
    mine = {user: [e for e, _child, worker in episodes if worker == user or user not in
                   ("caseworker", "caseworker2")] for user in USERS}
    assert all(mine.values()) and len(episodes) >= 10, mine
    rng = random.Random(8)
    per_client = WRITES // CLIENTS
    problems: list[str] = []
    plans: list[list[Write]] = []
    try:
        phones = []
        for client in range(CLIENTS):
            user = USERS[client % len(USERS)]
            phone = Phone(server.address)
            phone.log_in(user, passwords[user])
            if client == USERS.index("oncall"):
                for _episode, child, _worker in episodes:
                    break_glass(phone, child)
            phones.append(phone)
            plans.append(plan_writes(rng, client, mine[user], per_client))
        start = threading.Barrier(CLIENTS + 1)
        threads = [threading.Thread(target=run_phone, args=(phone, plan, start, problems))
                   for phone, plan in zip(phones, plans)]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.monotonic()
        for thread in threads:
            thread.join(timeout=600)
        elapsed = time.monotonic() - began
        assert not any(thread.is_alive() for thread in threads), "a phone is still waiting"
    finally:
        server.stop()

    writes = [w for plan in plans for w in plan]
    assert len(writes) == WRITES
    print(f"\n{empty_db_url.split(':')[0]}: {WRITES} writes from {CLIENTS} clients in "
          f"{elapsed:.1f} s ({WRITES / elapsed:.0f} writes/s)")
    assert not problems, (f"{len(problems)} failed answers, e.g. {problems[:5]}; the server "
                          f"logged {logged_errors(env)}")
    counts = stored_counts(empty_db_url, writes)
    assert len(counts) == WRITES, f"{WRITES - len(counts)} acknowledged writes are missing"
    assert set(counts.values()) == {1}, "a write was stored more than once"
    audit = run_cli(env, "verify-audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert sqlite_integrity(empty_db_url) in ("ok", "")
