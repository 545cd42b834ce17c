"""Crash safety in a loop (issue 8, reliability 2): every write the server acknowledged is
present exactly once after at least twenty SIGKILLs during writes, no write is stored twice,
SQLite's integrity check passes after every kill, and the audit chain verifies. The loop itself is
in tests/crash_loop.py, which bench/crash_bench.py runs longer.
"""
from __future__ import annotations

from crash_loop import ITERATIONS, crash_loop


def test_every_acknowledged_write_survives_twenty_kills(tmp_path, empty_db_url):
    report = crash_loop(tmp_path, empty_db_url)
    print(f"\n{empty_db_url.split(':')[0]}: {report.kills} kills, {len(report.acknowledged)} "
          f"acknowledged, {report.resent} resent after a kill, restart median "
          f"{report.restart_median:.2f} s")
    assert report.kills >= ITERATIONS
    assert not report.problems, report.problems[:5]
    assert report.resent > 0, "no kill ever cut off a write: the test interrupted nothing"
    assert len(report.acknowledged) > report.kills, "the phones hardly wrote between the kills"
    assert not report.lost, f"{len(report.lost)} acknowledged writes are missing"
    assert not report.doubled, f"{len(report.doubled)} writes were stored twice"
    assert set(report.integrity) <= {"ok"}, report.integrity  # SQLite only
    assert report.audit_ok, report.audit
