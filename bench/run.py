"""Run every benchmark, print every figure, and write them into docs/performance.md.

    python bench/run.py [--only web,pdf] [--no-write]        (what `make bench` runs)

Each bench is a script of its own that prints ``name: value unit`` lines; this runner shows
their output as it comes, keeps those lines, and replaces the generated "Latest figures"
section of docs/performance.md (between its two markers) with them, the machine and the date.
The hand-written sections around it are left as they are.

BENCH_SCALE (default 1, the full national scale the issue asks for) sizes the compliance bench,
the longest with the crash loop: BENCH_SCALE=0.1 shortens a run by several minutes.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PERFORMANCE_DOC = BENCH_DIR.parent / "docs" / "performance.md"
BEGIN = "<!-- latest figures: written by bench/run.py, do not edit by hand -->"
END = "<!-- end of latest figures -->"
FIGURE = re.compile(r"^([a-z][a-z0-9_.]*): (.+)$")  # names may hold a dot: target_…_1.0_s


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    args: tuple[str, ...] = ()


def benches(scale: str) -> list[Bench]:
    return [
        Bench("pdf", "pdf_bench.py"),
        Bench("sync", "sync_bench.py"),
        Bench("packet", "packet_bench.py"),
        Bench("compliance", "compliance_bench.py", ("--scale", scale)),
        Bench("web", "web_bench.py", ("--profile",)),  # the profiles go to stderr
        Bench("crash", "crash_bench.py"),
    ]


def run(bench: Bench) -> tuple[list[str], int, float]:
    """The bench's figure lines, its exit status and how long it took; its output is shown as
    it runs."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(BENCH_DIR / bench.script), *bench.args],
                               cwd=BENCH_DIR.parent, stdout=subprocess.PIPE, text=True, bufsize=1)
    lines = []
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if FIGURE.match(line.rstrip("\n")):
            lines.append(line.rstrip("\n"))
    return lines, process.wait(), time.monotonic() - started


def _first(path: str, key: str, default: str = "unknown") -> str:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":" if ":" in line else "=")
            if name.strip() == key:
                return value.strip().strip('"')
    except OSError:
        pass
    return default


def machine() -> str:
    cpu = _first("/proc/cpuinfo", "model name")
    kib = _first("/proc/meminfo", "MemTotal", "0 kB").split()[0]
    system = _first("/etc/os-release", "PRETTY_NAME", platform.system())
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, {int(kib) / 1024 / 1024:.0f} GB RAM, {system}, "
            f"Linux {platform.release()}, Python {platform.python_version()}; "
            f"load average at the start {load}")


BLOCK = re.compile(r"^### (\w+)\n(.*?)(?=^### |\Z)", re.S | re.M)


def block(name: str, figures: list[str], started: datetime, about: str, scale: str) -> str:
    """One bench's figures, with when and where they were measured."""
    scale_note = ("" if name != "compliance" or float(scale) == 1
                  else f" At BENCH_SCALE={scale}, not full size.")
    return "\n".join([f"### {name}", "", f"Measured {started:%d %B %Y, %H:%M} UTC on: {about}."
                      + scale_note, "", "```", *figures, "```", ""])


def section(blocks: dict[str, str]) -> str:
    return "\n".join([
        BEGIN,
        "## Latest figures",
        "",
        "Each line is `name: value unit` as the benches print it; what each means and its target are",
        "in the sections below. `make bench BENCH_ONLY=…` rewrites only the benches it runs.",
        "",
        *(blocks[name] for name in blocks),
        END,
    ])


def current_blocks(doc: Path) -> dict[str, str]:
    """The blocks already in the doc, by bench name, so that a partial run keeps the others."""
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return {}
    inside = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return {m.group(1): m.group(0).rstrip("\n") + "\n" for m in BLOCK.finditer(inside)}


def write_figures(doc: Path, text: str) -> None:
    """Replace the section between the markers, or put it before the first section."""
    current = doc.read_text(encoding="utf-8")
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        updated = head + text + rest.split(END, 1)[1]
    else:
        at = current.find("\n## ")
        at = len(current) if at < 0 else at + 1
        updated = current[:at] + text + "\n\n" + current[at:]
    doc.write_text(updated, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated bench names (pdf, sync, packet, "
                                       "compliance, web, crash)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the doc alone")
    args = parser.parse_args(argv)
    scale = os.environ.get("BENCH_SCALE", "1")
    chosen = set(args.only.split(",")) if args.only else None
    started, about = datetime.now(UTC), machine()
    print(f"bench_machine: {about}", flush=True)
    order = [bench.name for bench in benches(scale)]
    blocks = {name: text for name, text in current_blocks(PERFORMANCE_DOC).items() if name in order}
    figures, failed = [], []
    for bench in benches(scale):
        if chosen is not None and bench.name not in chosen:
            continue
        lines, status, seconds = run(bench)
        lines.append(f"bench_{bench.name}_took: {seconds:.0f} s")
        if status != 0:
            failed.append(bench.name)
            lines.append(f"bench_{bench.name}: FAILED (exit status {status})")
        figures += lines
        blocks[bench.name] = block(bench.name, lines, started, about, scale)
    for line in figures:
        print(line)
    if not args.no_write:
        write_figures(PERFORMANCE_DOC, section({n: blocks[n] for n in order if n in blocks}))
        print(f"bench_report: written to {PERFORMANCE_DOC.relative_to(BENCH_DIR.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
