"""Benchmark: the crash loop of tests/crash_loop.py (20 kills in the tests), run longer, on
SQLite and PostgreSQL.

Phones write through the forms and the sync API while the whole gunicorn process group is
SIGKILLed at seeded random moments and restarted, ``--iterations`` times (the test does 20). Then
every acknowledged write must be in the database exactly once, SQLite's integrity check must pass
after every kill, and the audit chain must verify.

    python bench/crash_bench.py [--iterations 100] [--seed 8] [--postgres URL | --no-postgres]

Prints one `name: value unit` line per figure. Target: 0 writes lost, 0 stored twice.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import DEFAULT_POSTGRES, postgres_database  # noqa: E402
from crash_loop import crash_loop  # noqa: E402


def measure(name: str, url: str, iterations: int, seed: int) -> bool:
    folder = Path(tempfile.mkdtemp(prefix=f"fieldapp-crash-bench-{name}-"))
    report = crash_loop(folder, url, iterations, seed)
    restarts = sorted(report.restart_seconds) or [0.0]
    figures = [
        ("kills", report.kills, "kills"),
        ("acknowledged_writes", len(report.acknowledged), "writes"),
        ("resent_after_a_kill", report.resent, "writes"),
        ("lost", len(report.lost), "writes"),
        ("stored_twice", len(report.doubled), "writes"),
        ("refused", len(report.problems), "writes"),
        ("restart_median", f"{report.restart_median:.2f}", "s"),
        ("restart_p95", f"{restarts[int(0.95 * (len(restarts) - 1))]:.2f}", "s"),
        ("audit_chain_intact", int(report.audit_ok), "bool"),
    ]
    if name == "sqlite":
        figures.append(("integrity_check_ok", sum(r == "ok" for r in report.integrity),
                        f"of {len(report.integrity)} checks"))
    for figure, value, unit in figures:
        print(f"crash_loop_{name}_{figure}: {value} {unit}")
    healthy = (not report.lost and not report.doubled and report.audit_ok
               and set(report.integrity) <= {"ok"})
    print(f"target_crash_loop_{name}_nothing_lost: {'met' if healthy else 'MISSED'}")
    if not report.audit_ok:
        print(f"crash_loop_{name}_audit: {report.audit}")
    return healthy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get("FIELDAPP_BENCH_POSTGRES_URL",
                                                             DEFAULT_POSTGRES))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    print(f"crash_bench: python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, {args.iterations} kills per database, seed {args.seed}")
    folder = Path(tempfile.mkdtemp(prefix="fieldapp-crash-bench-"))
    healthy = measure("sqlite", f"sqlite:///{folder / 'crash.sqlite3'}", args.iterations, args.seed)
    if not args.no_postgres:
        with postgres_database(args.postgres, "crash_bench") as url:
            if url is not None:
                healthy &= measure("postgresql", url, args.iterations, args.seed)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
