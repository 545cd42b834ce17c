"""Benchmark: the compliance measures over a national caseload, on SQLite and PostgreSQL.

Run with ``make bench`` (never part of the tests). For each database it migrates a fresh
database with ``fieldapp.migrate.upgrade`` and loads synthetic records with bulk Core inserts
(``executemany`` on SQLite, ``COPY`` on PostgreSQL): at full size 500,000 children, 100,000
episodes with T0 in 2025 and 2,000,000 checklist entries, with their steps, placements, status
history, visitation plans, interventions, search contacts and one summary row per episode. The
summary rows are computed here, in bulk, under the same evidence rule as ``summaries.refresh``;
``--verify N`` recomputes N of them with ``summaries.summary_values`` on the first database
measured, and stops if any differs.

The data grows in blocks (each 0.5% of full size, drawn from its own seeded random source), and
the full compliance summary (``compliance_summary``: totals, by month, S1) for 2025 is timed
when the load reaches 10%, 30% and 100%, per episode and per child (``--per-child``). One line
per figure, ``name: value unit``; a digest of every figure at each size shows whether the two
databases agree.

    python bench/compliance_bench.py [--scale 1.0] [--runs 3] [--verify 300]
                                     [--postgres URL | --no-postgres] [--no-sqlite]

Targets: under 2 s at full size on both databases, growing no worse than linearly.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import create_engine, text

from common import DEFAULT_POSTGRES, bench_app, postgres_database, sqlite_bench_app
from fieldapp import clock, db
from fieldapp.clock import FixedClock
from fieldapp.compliance.query import Population
from fieldapp.compliance.summary import compliance_summary
from fieldapp.db import Base, UTCDateTime
from fieldapp.deadlines import deadline_for
from fieldapp.models.summaries import MEASURED_STEPS
from fieldapp.policy import in_force_at, install_packaged, policy_of
from fieldapp.risk import add_months
from fieldapp.summaries import FIRST_MONTH, SERVICE_MONTHS, month_index, months_later
from fieldapp.vocabulary import CONGREGATE_SETTINGS, PLACEMENT_SETTINGS

FULL_BLOCKS = 200  # blocks at full size (scale 1.0)
CHILDREN_PER_BLOCK = 2_500  # 500,000 children at full size
EPISODES_PER_BLOCK = 500  # 100,000 episodes
ENTRIES_PER_BLOCK = 10_000  # 2,000,000 checklist entries
REPEATERS = 60  # children per block who go missing twice (a prior episode at the second T0)
FRACTIONS = (0.1, 0.3, 1.0)
TEAMS = 50
TARGET_SECONDS = 2.0
NOW = datetime(2026, 1, 20, 18, tzinfo=UTC)  # a little after the measured year
PERIOD = Population(date(2025, 1, 1), date(2025, 12, 31))
SEED = 6

# How the entries on a step go, with weights: the mix the audit found in real case files.
DILIGENT = (("on_time", 62), ("late", 18), ("attempted", 5), ("attempted_then_done", 4),
            ("corrected", 3), ("none", 8))
NEGLECTED = (("none", 86), ("attempted", 10), ("late", 4))


class Generator:
    """Builds the rows of one block at a time; ids run on across blocks, so the blocks of a
    database fit together, and each block has its own seeded source so sizes are comparable."""

    def __init__(self, zone, policy_id: int, policy, team_ids: list[int], worker_ids: list[int]):
        self.zone, self.policy_id, self.policy = zone, policy_id, policy
        self.team_of_worker = dict(zip(worker_ids, team_ids))
        self.worker_ids = worker_ids
        self.step_specs = [s for s in policy.steps if s.raised_by_event is None]
        self.next_id = {"status_changes": 1, "episode_steps": 1, "step_entries": 1,
                        "search_contacts": 1, "placements": 1, "visitation_plans": 1,
                        "interventions": 1}
        self.year_start = datetime(2025, 1, 1, tzinfo=zone).astimezone(UTC)
        self.year_seconds = int((datetime(2026, 1, 1, tzinfo=zone).astimezone(UTC)
                                 - self.year_start).total_seconds())

    def _id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def _day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def block(self, number: int) -> dict[str, list[dict]]:
        rng = random.Random(f"{SEED}-{number}")
        rows: dict[str, list[dict]] = {name: [] for name in (
            "children", "placements", "status_changes", "visitation_plans", "interventions",
            "episodes", "episode_steps", "step_entries", "search_contacts", "episode_summaries")}
        first_child = number * CHILDREN_PER_BLOCK + 1
        first_episode = number * EPISODES_PER_BLOCK + 1
        missing_children = EPISODES_PER_BLOCK - REPEATERS
        child_facts = {}
        for n in range(CHILDREN_PER_BLOCK):
            child_id = first_child + n
            worker = self.worker_ids[child_id % len(self.worker_ids)]
            setting = rng.choice(list(PLACEMENT_SETTINGS))
            started = date(2023, 1, 1) + timedelta(days=rng.randint(0, 700))
            rows["children"].append({
                "id": child_id, "case_id": f"NAT-{child_id:07d}", "first_name": "Synthetic",
                "last_name": f"Child {child_id}", "date_of_birth": date(2008, 1, 1)
                + timedelta(days=rng.randint(0, 3650)), "sex": rng.choice("FM"),
                "county": f"County {child_id % 115}", "caseworker_id": worker,
                "status": "in_placement", "status_since": _midnight(started, self.zone),
                "created_at": NOW})
            rows["placements"].append({
                "id": self._id("placements"), "child_id": child_id, "setting": setting,
                "provider_name": f"Provider {rng.randint(1, 4000)}", "started_on": started,
                "created_at": NOW})
            rows["status_changes"].append(self._status(child_id, "in_placement",
                                                       _midnight(started, self.zone)))
            plan, intervention = None, None
            if n < missing_children:  # the children who go missing get the prevention records
                if rng.random() < 0.55:
                    plan = date(2024, 1, 1) + timedelta(days=rng.randint(0, 500))
                    rows["visitation_plans"].append({
                        "id": self._id("visitation_plans"), "child_id": child_id,
                        "frequency": rng.choice(["weekly", "monthly"]), "with_whom": "Parent",
                        "adopted_on": plan, "recorded_by_id": worker, "recorded_at": NOW})
                if rng.random() < 0.35:
                    intervention = date(2024, 9, 1) + timedelta(days=rng.randint(0, 480))
                    rows["interventions"].append({
                        "id": self._id("interventions"), "child_id": child_id,
                        "kind": "conversation", "done_on": intervention, "note": "",
                        "recorded_by_id": worker, "recorded_at": NOW})
            child_facts[child_id] = (worker, setting, plan, intervention)
        for n in range(EPISODES_PER_BLOCK):
            episode_id = first_episode + n
            repeat = n >= missing_children
            child_id = first_child + (n - missing_children if repeat else n)
            if repeat:  # the second absence, after the first one ended
                earlier = rows["episodes"][n - missing_children]
                t0 = earlier["ended_at"] + timedelta(days=rng.randint(3, 90),
                                                     minutes=rng.randint(0, 1439))
            else:
                # A repeater's first absence falls in the first half, so the second fits the year.
                span = self.year_seconds // 2 if n < REPEATERS else self.year_seconds
                t0 = self.year_start + timedelta(seconds=rng.randrange(span))
            self._episode(rows, rng, episode_id, child_id, t0, child_facts[child_id],
                          prior=repeat, must_end=n < REPEATERS)
        self._pad_entries(rows, rng)
        return rows

    def _status(self, child_id: int, status: str, since: datetime) -> dict:
        return {"id": self._id("status_changes"), "child_id": child_id, "status": status,
                "since": since, "note": "", "recorded_at": since}

    def _episode(self, rows, rng, episode_id, child_id, t0, facts, prior: bool, must_end: bool):
        worker, setting, plan, intervention = facts
        r = rng.random()
        t1 = t2 = ended_at = end_reason = None
        if r < 0.80 or must_end:
            t1 = t0 + timedelta(hours=rng.randint(2, 24 * 30))
            t2 = t1 + timedelta(minutes=rng.randint(30, 48 * 60))
            ended_at, end_reason = t2, "returned_to_care"
        elif r < 0.85:
            ended_at, end_reason = t0 + timedelta(days=rng.randint(5, 60)), "released_from_custody"
        if ended_at is not None and ended_at > NOW - timedelta(hours=1):
            t1 = t2 = ended_at = end_reason = None  # would end after "now": still missing
        rows["episodes"].append({
            "id": episode_id, "child_id": child_id, "policy_version_id": self.policy_id,
            "discovered_at": t0, "discovered_by_role": "placement_provider",
            "discovered_by_name": "Staff on duty", "how_missing": "ran_away",
            "last_seen_place": "", "located_at": t1, "located_where": "in_state" if t1 else None,
            "returned_at": t2, "end_reason": end_reason, "ended_at": ended_at,
            "opened_by_id": worker, "created_at": t0})
        rows["status_changes"].append(self._status(child_id, "whereabouts_unknown", t0))
        if t1 is not None:
            rows["status_changes"].append(self._status(child_id, "located_pending_return", t1))
            rows["status_changes"].append(self._status(child_id, "in_placement", t2))
        elif end_reason == "released_from_custody":
            rows["status_changes"].append(self._status(child_id, "released_from_custody", ended_at))
        child = rows["children"][child_id - rows["children"][0]["id"]]
        last = rows["status_changes"][-1]
        child["status"], child["status_since"] = last["status"], last["since"]

        neglected = rng.random() < 0.46  # nobody took the reports on: the audit's 46%
        clocks = {"T0": t0, "T1": t1, "T2": t2}
        steps: dict[str, dict] = {}
        summary_steps: dict[str, tuple] = {}
        for position, spec in enumerate(self.policy.steps):
            if spec.raised_by_event is not None or (spec.checklist == "return" and t1 is None):
                continue
            if spec.anchor_kind == "clock":
                anchor = clocks[spec.anchor_target]
            else:  # anchored on another step: its first evidenced done_at
                anchor = steps.get(spec.anchor_target, {}).get("first_done")
            due = deadline_for(spec, anchor, self.policy, self.zone) if anchor else None
            step = {"id": self._id("episode_steps"), "episode_id": episode_id,
                    "step_key": spec.key, "checklist": spec.checklist, "position": position,
                    "raised_at": t0 if spec.checklist == "missing" else t1, "due_at": due}
            rows["episode_steps"].append(step)
            entries = [] if spec.contact_log else self._entries(
                rng, spec, step["id"], anchor or t0, due, neglected and spec.key.startswith("report"))
            rows["step_entries"].extend(entries)
            current = _current(entries)
            na_ok = "not_applicable" in spec.outcomes
            counts = ("done", "not_applicable") if na_ok else ("done",)
            if current and current[-1]["outcome"] in counts:
                times, attempted = [e["done_at"] for e in current if e["outcome"] in counts], False
            else:
                times, attempted = [], any(e["outcome"] == "attempted" for e in current)
            done = [e["done_at"] for e in current if e["outcome"] == "done"]
            steps[spec.key] = {"first_done": min(done) if done else None}
            summary_steps[spec.key] = (times, attempted, due)

        contacts = self._contacts(rows, rng, episode_id, worker, t0, t1 or ended_at)
        summary_steps["search_contacts"] = (contacts, False, summary_steps["search_contacts"][2])
        self._summary(rows, episode_id, child_id, worker, t0, t1, t2, ended_at, end_reason,
                      summary_steps, contacts, prior, setting, plan, intervention)

    def _entries(self, rng, spec, step_id: int, anchor: datetime, due, neglected: bool) -> list:
        mix = NEGLECTED if neglected else DILIGENT
        kind = rng.choices([k for k, _ in mix], [w for _, w in mix])[0]
        if kind == "none":
            return []
        allowed = (due - anchor) if due else timedelta(hours=24)
        on_time = anchor + allowed * rng.uniform(0.1, 0.95)
        late = (due or anchor + allowed) + timedelta(minutes=rng.randint(1, 6 * 24 * 60))
        plan = {"on_time": [("done", on_time)], "late": [("done", late)],
                "attempted": [("attempted", on_time)],
                "attempted_then_done": [("attempted", on_time), ("done", late)],
                "corrected": [("done", late), ("done", on_time)]}[kind]
        if "not_applicable" in spec.outcomes and kind == "on_time" and rng.random() < 0.2:
            plan = [("not_applicable", on_time)]
        entries, received = [], None
        for number, (outcome, done_at) in enumerate(plan):
            if done_at > NOW:
                break
            # Received in the order recorded: a correction always arrives after what it corrects.
            later = done_at + timedelta(minutes=5)
            received = min(NOW, later if received is None else max(later, received + timedelta(minutes=30)))
            entry_id = self._id("step_entries")
            entry = {"id": entry_id, "episode_step_id": step_id, "outcome": outcome,
                     "done_at": done_at, "recorded_at": received, "received_at": received,
                     "recorded_by_id": None, "evidence": "{}", "reason": "",
                     "client_uuid": _uuid(0x8000, entry_id),
                     "supersedes_id": None, "clock_skew": False, "imported": False}
            if kind == "corrected" and entries:  # the second corrects the first's time
                entry["supersedes_id"] = entries[-1]["id"]
            entries.append(entry)
        return entries

    def _pad_entries(self, rows, rng) -> None:
        """Top the block up to its share of entries with monthly follow-ups (done), which no
        measure reads, so the entry count is the one asked for without changing the figures."""
        follow = [s for s in rows["episode_steps"] if s["step_key"] == "follow_up_le_ncmec"]
        starts = {e["id"]: e["discovered_at"] for e in rows["episodes"]}
        done = {}
        number = 0
        while len(rows["step_entries"]) < ENTRIES_PER_BLOCK and follow:
            step = follow[number % len(follow)]
            count = done.get(step["id"], 0) + 1
            done[step["id"]] = count
            at = min(NOW - timedelta(minutes=count),
                     starts[step["episode_id"]] + timedelta(days=30 * count, hours=rng.randint(0, 9)))
            entry_id = self._id("step_entries")
            rows["step_entries"].append({
                "id": entry_id, "episode_step_id": step["id"], "outcome": "done",
                "done_at": at, "recorded_at": at, "received_at": at, "recorded_by_id": None,
                "evidence": "{}", "reason": "", "client_uuid": _uuid(0x9000, entry_id),
                "supersedes_id": None, "clock_skew": False, "imported": False})
            number += 1

    def _contacts(self, rows, rng, episode_id, worker, t0, until) -> list[datetime]:
        end = until or NOW
        times = []
        for _ in range(rng.choice((0, 0, 1, 2, 3, 4))):
            at = t0 + (end - t0) * rng.random()
            times.append(at)
            contact_id = self._id("search_contacts")
            rows["search_contacts"].append({
                "id": contact_id, "episode_id": episode_id, "purpose": "search",
                "person": "A friend", "relationship_to_child": "friend", "method": "phone",
                "contacted_at": at, "reached": rng.random() < 0.5, "learned": "",
                "recorded_by_id": worker, "recorded_at": at, "received_at": at,
                "client_uuid": _uuid(0xA000, contact_id),
                "clock_skew": False})
        return sorted(times)

    def _summary(self, rows, episode_id, child_id, worker, t0, t1, t2, ended_at, end_reason,
                 steps, contacts, prior, setting, plan, intervention) -> None:
        """The row ``summaries.summary_values`` would write, from what this block generated."""
        missing_until = t1 or ended_at
        first_month_ends = months_later(t0, FIRST_MONTH)
        service_ends = months_later(t2, SERVICE_MONTHS) if t2 else None
        windows = {"search_contacts": (t0, first_month_ends),
                   "supportive_services": (t2, service_ends) if t2 else None}
        day = self._day(t0)
        owed_from = month_index(day) + 1
        months_until = month_index(self._day(missing_until)) if missing_until else None
        covered = {month_index(self._day(t)) for t in contacts}
        no_caring_adult = plan is None or plan > day
        acf = {"acf_prior_episode": prior, "acf_many_placements": False,
               "acf_congregate": setting in CONGREGATE_SETTINGS,
               "acf_no_caring_adult": no_caring_adult}
        row = {"episode_id": episode_id, "child_id": child_id,
               "team_id": self.team_of_worker[worker], "t0": t0,
               "t0_month": day.strftime("%Y-%m"), "t1": t1, "t2": t2, "ended_at": ended_at,
               "end_reason": end_reason, "missing_until": missing_until,
               "missing_seconds": int((missing_until - t0).total_seconds()) if missing_until else None,
               "first_month_ends": first_month_ends, "service_window_ends": service_ends,
               "months_owed_from": owed_from, "months_until": months_until,
               "months_covered": len({m for m in covered if m >= owed_from
                                      and (months_until is None or m <= months_until)}),
               **acf, "acf_factors": sum(acf.values()), "mo_factors": 0,
               "intervention_before_t0": intervention is not None
               and add_months(day, -6) <= intervention <= day,
               "visitation_plan_at_t0": not no_caring_adult, "refreshed_at": NOW}
        for key in MEASURED_STEPS:
            times, attempted, due = steps.get(key, ([], False, None))
            if key in windows:
                span = windows[key]
                times = [t for t in times if span and span[0] <= t < span[1]]
            first = min(times) if times else None
            row[f"{key}_at"] = first
            row[f"{key}_on_time"] = first is not None and due is not None and first <= due
            row[f"{key}_attempted"] = attempted
        rows["episode_summaries"].append(row)


def _uuid(kind: int, number: int) -> str:
    """A well-formed, unique client UUID for a generated row (``kind`` tells the tables apart)."""
    return f"00000000-0000-4000-{kind:04x}-{number:012x}"


def _current(entries: list[dict]) -> list[dict]:
    superseded = {e["supersedes_id"] for e in entries if e["supersedes_id"]}
    return [e for e in entries if e["id"] not in superseded]


def _midnight(day: date, zone) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)


# --- loading --------------------------------------------------------------------------------

LOAD_ORDER = ("children", "placements", "status_changes", "visitation_plans", "interventions",
              "episodes", "episode_steps", "step_entries", "search_contacts", "episode_summaries")


def write_block(conn, rows: dict[str, list[dict]]) -> int:
    """Insert a block's rows: COPY on PostgreSQL, one executemany per table on SQLite."""
    written = 0
    for name in LOAD_ORDER:
        batch = rows[name]
        if not batch:
            continue
        table = Base.metadata.tables[name]
        if conn.dialect.name == "postgresql":
            columns = list(batch[0])
            cursor = conn.connection.dbapi_connection.cursor()
            quoted = ", ".join(f'"{c}"' for c in columns)
            with cursor.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row([row[c] for c in columns])
        else:
            # The columns' own bind processors (dates, booleans; instants by _sqlite_time, the
            # same text faster) and then the driver's executemany: the stored text is exactly
            # what the app writes, without SQLAlchemy's per-row statement work.
            columns = list(batch[0])
            process = [_sqlite_time if isinstance(table.c[c].type, UTCDateTime)
                       else table.c[c].type._cached_bind_processor(conn.dialect) for c in columns]
            pairs = list(zip(columns, process))
            values = [tuple(p(row[c]) if p else row[c] for c, p in pairs) for row in batch]
            quoted = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            conn.exec_driver_sql(f"INSERT INTO {name} ({quoted}) VALUES ({marks})", values)
        written += len(batch)
    return written


def _sqlite_time(value: datetime | None) -> str | None:
    """UTCDateTime's text on SQLite (naive UTC, microseconds always written), which SQL
    compares as text: ``check_sqlite_time`` holds it to SQLAlchemy's own processor."""
    if value is None:
        return None
    v = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (v.year, v.month, v.day, v.hour, v.minute,
                                                   v.second, v.microsecond)


def check_sqlite_time(dialect) -> None:
    process = UTCDateTime()._cached_bind_processor(dialect)
    for value in (NOW, NOW + timedelta(microseconds=1234), datetime(2025, 3, 9, 8, tzinfo=UTC)):
        assert process(value) == _sqlite_time(value), (process(value), _sqlite_time(value))


def set_up(app) -> Generator:
    """The policies, the teams and one caseworker per team, through the app's own code."""
    from fieldapp.accounts import create_user, get_or_create_team
    with app.app_context(), db.writing() as s:
        install_packaged(s)
        version = in_force_at(s, datetime(2025, 1, 1, 12, tzinfo=UTC))
        team_ids, worker_ids = [], []
        for n in range(TEAMS):
            team = get_or_create_team(s, f"Team {n + 1:02d}")
            worker = create_user(s, username=f"worker{n + 1:02d}", display_name=f"Worker {n + 1}",
                                 role="caseworker", password_hash="!bench, no login", team=team)
            s.flush()
            team_ids.append(team.id)
            worker_ids.append(worker.id)
        return Generator(clock.agency_zone(), version.id, policy_of(version), team_ids, worker_ids)


def verify(app, sample: int) -> int:
    """Recompute ``sample`` summary rows with the app's own ``summary_values``; return mismatches."""
    from fieldapp.models import Episode
    from fieldapp.models.summaries import episode_summaries
    from fieldapp.summaries import summary_values
    from sqlalchemy import select
    bad = 0
    with app.app_context():
        s = db.session()
        ids = s.scalars(select(Episode.id).order_by(Episode.id)).all()
        for episode_id in random.Random(SEED).sample(ids, min(sample, len(ids))):
            stored = dict(s.execute(select(episode_summaries).where(
                episode_summaries.c.episode_id == episode_id)).mappings().one())
            fresh = summary_values(s, s.get(Episode, episode_id))
            differ = [k for k in fresh if k != "refreshed_at" and fresh[k] != stored[k]]
            if differ:
                bad += 1
                if bad <= 3:
                    print(f"compliance_bench: episode {episode_id} differs in {differ}",
                          file=sys.stderr)
        s.close()
    return bad


def time_summary(app, per_child: bool, runs: int) -> tuple[float, dict]:
    pop = Population(PERIOD.start, PERIOD.end, per_child=per_child)
    times, result = [], {}
    with app.app_context():
        s = db.session()
        compliance_summary(s, pop, now=NOW)  # warm-up: the statement cache and the page cache
        for _ in range(runs):
            started = time.perf_counter()
            result = compliance_summary(s, pop, now=NOW)
            times.append(time.perf_counter() - started)
        s.close()
    return statistics.median(times), result


def measure(name: str, app, blocks: int, runs: int, verify_sample: int) -> dict:
    url = app.config["DATABASE_URL"]
    generator = set_up(app)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        check_sqlite_time(engine.dialect)
    checkpoints = sorted({max(1, round(blocks * f)) for f in FRACTIONS})
    labels: dict[int, str] = {}
    for fraction in FRACTIONS:  # a small --scale can round two sizes to one: keep the first name
        labels.setdefault(max(1, round(blocks * fraction)), f"{round(fraction * 100)}pct")
    done, rows_written, load_seconds, figures = 0, 0, 0.0, {}
    for checkpoint in checkpoints:
        with click.progressbar(range(done, checkpoint), file=sys.stderr,
                               label=f"{name}: generating to {labels[checkpoint]}") as bar:
            for number in bar:
                started = time.perf_counter()
                with app.app_context():  # the agency's zone, for months_later
                    rows = generator.block(number)
                with engine.begin() as conn:
                    rows_written += write_block(conn, rows)
                load_seconds += time.perf_counter() - started
        done = checkpoint
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))  # what autovacuum does after a large load
        if verify_sample and checkpoint == checkpoints[0]:
            bad = verify(app, verify_sample)
            print(f"compliance_{name}_verified_summary_rows: {verify_sample - bad} of {verify_sample}")
            if bad:
                raise SystemExit("compliance_bench: bulk summary rows differ from summaries.refresh")
        label = labels[checkpoint]
        seconds, result = time_summary(app, False, runs)
        per_child, per_child_result = time_summary(app, True, runs)
        figures[label] = (seconds, per_child)
        episodes = result["M1"]["denominator"]
        print(f"compliance_{name}_{label}: {seconds:.2f} s ({episodes} episodes, "
              f"{done * CHILDREN_PER_BLOCK} children, median of {runs})")
        print(f"compliance_{name}_per_child_{label}: {per_child:.2f} s "
              f"({per_child_result['M1']['denominator']} children)")
        print(f"compliance_{name}_{label}_m3_percent: {result['M3']['percent']} %")
        # Every figure of both populations, hashed: equal digests mean the two databases agree.
        digest = hashlib.sha256(json.dumps([result, per_child_result], sort_keys=True,
                                           default=str).encode()).hexdigest()[:16]
        print(f"compliance_{name}_{label}_digest: {digest} sha256")
    print(f"import_{name}_rows_per_second: {rows_written / load_seconds:.0f} rows/s "
          f"({rows_written} rows in {load_seconds:.1f} s, generation included)")
    first, last = figures[labels[checkpoints[0]]], figures[labels[checkpoints[-1]]]
    size_ratio = checkpoints[-1] / checkpoints[0]
    for index, variant in ((0, ""), (1, "per_child_")):
        growth = last[index] / first[index] if first[index] else float("inf")
        print(f"compliance_{name}_{variant}growth_{labels[checkpoints[0]][:-3]}_to_100pct: "
              f"{growth:.1f} x "
              f"(size x {size_ratio:.0f})")
    met = last[0] < TARGET_SECONDS and last[0] / first[0] <= size_ratio * 1.1
    print(f"target_compliance_{name}_under_{TARGET_SECONDS:g}_s_and_linear: "
          f"{'met' if met else 'NOT met'}")
    with app.app_context():
        app.extensions["fieldapp.engine"].dispose()
    engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the national size to build (1.0: 100,000 episodes)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--verify", type=int, default=300,
                        help="summary rows to recompute with summaries.summary_values (0: none)")
    parser.add_argument("--postgres", default=os.environ.get("FIELDAPP_BENCH_POSTGRES_URL",
                                                             DEFAULT_POSTGRES))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args(argv)
    blocks = max(1, round(FULL_BLOCKS * args.scale))
    print(f"compliance_bench: python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, up to {blocks * EPISODES_PER_BLOCK} episodes, "
          f"{blocks * CHILDREN_PER_BLOCK} children, about {blocks * ENTRIES_PER_BLOCK} entries")
    if not args.no_sqlite:
        app, folder = sqlite_bench_app("compliance-bench", FixedClock(NOW))
        try:
            measure("sqlite", app, blocks, args.runs, args.verify)
        finally:
            for path in folder.glob("bench.sqlite3*"):  # about 1.2 GB at full size
                path.unlink()
    if args.no_postgres:
        return 0
    with postgres_database(args.postgres, "compliance_bench") as url:
        if url is not None:
            app = bench_app(url, FixedClock(NOW), Path(tempfile.mkdtemp(prefix="fieldapp-bench-")))
            measure("postgresql", app, blocks, args.runs, args.verify if args.no_sqlite else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
