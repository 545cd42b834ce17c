"""Benchmark: what a phone downloads for a wizard step, how long the server takes to answer, how
many steps a second it serves under load, and how much memory a worker holds.

Run with ``make bench`` (never part of the tests). It sets up an instance as an operator does
(``fieldapp init``: migrations and the demo data, on SQLite), serves it with gunicorn pinned to
CPU 0 (``taskset``), logs in as the demo caseworker and measures, over real HTTP on localhost:

- page weight: a wizard step page asked for with ``Accept-Encoding: gzip`` and every stylesheet
  and script it links, summed as the bytes of the bodies on the wire (compressed where the
  server compressed them; headers reported apart); and the partial htmx swaps in for one step;
- server time, one client: p50 and p95 of the step page GET and of the htmx record-step POST,
  timed from just before the request is written to the last byte of the answer read;
- throughput: ``wrk`` on CPU 1 with 20 connections, for the step page (with the session cookie)
  and for ``/healthz``, the app's cheapest request, in the same run; wrk's p50 and p99 latency;
- memory: the peak RSS (VmHWM) of each gunicorn worker after the load.

    python bench/web_bench.py [--runs 300] [--posts 100] [--seconds 10] [--workers 2] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import gzip
import http.client
import io
import json
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from live import free_port, gunicorn_command, init_instance, server_environment  # noqa: E402

TARGET_FIRST_LOAD_KB = 40
TARGET_SWAP_KB = 4
TARGET_PAGE_P95_MS = 10
TARGET_POST_P95_MS = 15
TARGET_THROUGHPUT_RATIO = 0.35
TARGET_RSS_MB = 150
CONNECTIONS = 20
SERVER_CPU, LOAD_CPU = "0", "1"
STEP_LINK = re.compile(r'href="(/episodes/(\d+)/steps/([a-z_]+))"')
ASSET_LINK = re.compile(r'<link rel="stylesheet" href="([^"]+)"|<script src="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Client:
    """One HTTP client on localhost that keeps the session cookie, reconnecting whenever the
    server closes the connection (gunicorn's sync workers close after each answer)."""

    def __init__(self, address: str):
        host, port = address.split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[http.client.HTTPResponse, bytes, float]:
        """The response, its body exactly as sent (not decompressed) and the seconds it took."""
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response, data, seconds

    def log_in(self, username: str, password: str) -> None:
        _response, page, _ = self.request("GET", "/login")
        token = CSRF_FIELD.search(page.decode()).group(1)
        form = urlencode({"csrf_token": token, "username": username, "password": password})
        response, _, _ = self.request("POST", "/login", form.encode(),
                                      {"Content-Type": "application/x-www-form-urlencoded"})
        if response.status not in (302, 303):
            raise RuntimeError(f"login as {username} answered {response.status}")

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


def header_bytes(response: http.client.HTTPResponse) -> int:
    """The status line and headers as sent, near enough (HTTP/1.1 framing)."""
    return len(f"HTTP/1.1 {response.status} {response.reason}\r\n".encode()) + len(
        response.msg.as_bytes().replace(b"\n", b"\r\n"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figure(name: str, value: str, unit: str, note: str = "") -> None:
    print(f"{name}: {value}" + (f" {unit}" if unit else "") + (f" ({note})" if note else ""),
          flush=True)


def verdict(name: str, met: bool) -> None:
    figure(f"target_{name}", "met" if met else "NOT met", "")


# --- the instance and the server -----------------------------------------------------------

def start_server(env: dict[str, str], address: str, workers: int) -> subprocess.Popen:
    log = open(Path(env["FIELDAPP_INSTANCE_PATH"]) / "gunicorn.log", "ab")
    with log:
        process = subprocess.Popen(["taskset", "-c", SERVER_CPU, *gunicorn_command(address, workers)],
                                   env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                   start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            Client(address).request("GET", "/healthz")
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {process.returncode}")
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer within 30 s")


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(entry.name))
    return pids


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


# --- what is measured ------------------------------------------------------------------------

def open_steps(client: Client) -> list[list[str]]:
    """The step addresses of each of the caseworker's open episodes (the pages a phone keeps)."""
    _response, body, _ = client.request("GET", "/api/v1/offline")
    episodes = []
    for page in json.loads(body)["pages"]:
        if re.fullmatch(r"/episodes/\d+", page):
            _response, html, _ = client.request("GET", page)
            steps = list(dict.fromkeys(m.group(1) for m in STEP_LINK.finditer(html.decode())))
            if steps:
                episodes.append(steps)
    if not episodes:
        raise RuntimeError("the demo caseworker has no open episode with steps")
    return episodes


def page_weight(client: Client, step: str) -> None:
    gzip_ok = {"Accept-Encoding": "gzip, deflate, br"}
    response, html, _ = client.request("GET", step, headers=gzip_ok)
    assert response.status == 200, (step, response.status)
    assert response.getheader("Content-Encoding") == "gzip", "the page came uncompressed"
    text = gzip.decompress(html).decode()
    bodies, headers = len(html), header_bytes(response)
    assets = [a or b for a, b in ASSET_LINK.findall(text)]
    for url in assets:
        asset, data, _ = client.request("GET", url, headers=gzip_ok)
        assert asset.status == 200, url
        bodies += len(data)
        headers += header_bytes(asset)
    figure("page_weight_wizard_first_load", f"{bodies / 1024:.1f}", "KB",
           f"bodies on the wire, the HTML page and {len(assets)} files; "
           f"{(bodies + headers) / 1024:.1f} KB with response headers")
    swap, data, _ = client.request("GET", step, headers={**gzip_ok, "HX-Request": "true"})
    assert swap.status == 200
    figure("page_weight_htmx_step_swap", f"{len(data) / 1024:.1f}", "KB",
           f"{swap.getheader('Content-Encoding') or 'plain'}; "
           f"{(len(data) + header_bytes(swap)) / 1024:.1f} KB with headers")
    verdict(f"first_load_at_most_{TARGET_FIRST_LOAD_KB}_kb", bodies <= TARGET_FIRST_LOAD_KB * 1024)
    verdict(f"step_swap_at_most_{TARGET_SWAP_KB}_kb", len(data) <= TARGET_SWAP_KB * 1024)


def record_form(token: str) -> dict:
    """An attempt that cannot be completed: a step takes any number of them."""
    done = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    return {"outcome": "attempted", "done_at": done, "reason": "Bench: no answer, will try again",
            "recorded_at": datetime.now(UTC).isoformat(), "client_uuid": str(uuid.uuid4()),
            "csrf_token": token}


def post_step(client: Client, step: str, token: str):
    headers = {"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true",
               "X-CSRFToken": token, "Accept-Encoding": "gzip"}
    return client.request("POST", step, urlencode(record_form(token)).encode(), headers)


def recordable_steps(client: Client, episodes: list[list[str]], token: str) -> list[str]:
    """The steps that take an attempt without more evidence (each tried once, untimed)."""
    found = [step for steps in episodes for step in steps
             if post_step(client, step, token)[0].status == 200]
    if not found:
        raise RuntimeError("no step accepted an attempt")
    return found


def one_client(name: str, times: list[float], target_ms: int) -> None:
    p50, p95 = percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000
    figure(f"server_time_{name}_p50", f"{p50:.1f}", "ms", f"{len(times)} requests, one client")
    figure(f"server_time_{name}_p95", f"{p95:.1f}", "ms")
    verdict(f"{name}_p95_at_most_{target_ms}_ms", p95 <= target_ms)


def page_time(client: Client, page: str, runs: int) -> None:
    for _ in range(10):  # warm-up: both workers have compiled the templates
        client.request("GET", page, headers={"Accept-Encoding": "gzip"})
    times = [client.request("GET", page, headers={"Accept-Encoding": "gzip"})[2] for _ in range(runs)]
    one_client("step_page", times, TARGET_PAGE_P95_MS)


def post_time(client: Client, steps: list[str], token: str, runs: int) -> None:
    """Attempts spread over every open episode's steps, as a caseworker's records would be, so
    that no step's history grows far beyond a real one's."""
    times = []
    for n in range(runs):
        response, _, seconds = post_step(client, steps[n % len(steps)], token)
        assert response.status == 200, response.status
        times.append(seconds)
    one_client("record_step_post", times, TARGET_POST_P95_MS)


WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: int, headers: dict[str, str]) -> tuple[float, dict[str, float], int]:
    """Requests/s, the p50 and p99 latency in ms, and the count of non-2xx answers."""
    command = ["taskset", "-c", LOAD_CPU, "wrk", "-t", "1", "-c", str(CONNECTIONS),
               "-d", f"{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    latency = {p: float(v) * UNIT_MS[u] for p, v, u in WRK_LATENCY.findall(output)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return float(WRK_RATE.search(output).group(1)), latency, int(bad.group(1)) if bad else 0


def throughput(base: str, page: str, cookie: str, seconds: int) -> None:
    headers = {"Cookie": cookie, "Accept-Encoding": "gzip"}
    results = {}
    for name, path, sent in (("step_page", page, headers), ("healthz", "/healthz", {})):
        wrk(base + path, 2, sent)  # warm-up: every worker has its templates and connections
        rate, latency, bad = wrk(base + path, seconds, sent)
        if bad:
            raise RuntimeError(f"{bad} of the {name} answers were errors or redirects")
        results[name] = rate
        figure(f"wrk_{name}_requests_per_second", f"{rate:.0f}", "req/s",
               f"{CONNECTIONS} connections, {seconds} s, server on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}")
        figure(f"wrk_{name}_latency_p50", f"{latency.get('50', float('nan')):.1f}", "ms")
        figure(f"wrk_{name}_latency_p99", f"{latency.get('99', float('nan')):.1f}", "ms")
    ratio = results["step_page"] / results["healthz"]
    figure("wrk_step_page_share_of_trivial", f"{ratio * 100:.0f}", "%")
    verdict(f"step_page_throughput_at_least_{TARGET_THROUGHPUT_RATIO * 100:.0f}pct_of_trivial",
            ratio >= TARGET_THROUGHPUT_RATIO)


def memory(master: int) -> None:
    peaks = [peak_rss_mb(pid) for pid in worker_pids(master)]
    figure("gunicorn_worker_peak_rss", f"{max(peaks):.0f}", "MB",
           f"VmHWM, the largest of {len(peaks)} workers after the load: "
           + ", ".join(f"{p:.0f}" for p in sorted(peaks)))
    verdict(f"worker_peak_rss_under_{TARGET_RSS_MB}_mb", max(peaks) < TARGET_RSS_MB)


def profiles(env: dict[str, str], page: str, steps: list[str], username: str, password: str,
             runs: int = 100) -> str:
    """cProfile's top functions, by their own time, for ``runs`` step pages and ``runs`` attempts
    recorded in this process, on the same instance, through Flask's test client."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("FIELDAPP_")})
    from fieldapp import create_app
    client = create_app().test_client()
    login = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": username, "password": password,
                                "csrf_token": CSRF_FIELD.search(login).group(1)})
    token = CSRF_FIELD.search(client.get(page).get_data(as_text=True)).group(1)
    requests = {
        "step_page": lambda n: client.get(page, headers={"Accept-Encoding": "gzip"}),
        "record_step_post": lambda n: client.post(
            steps[n % len(steps)], data=record_form(token),
            headers={"HX-Request": "true", "X-CSRFToken": token, "Accept-Encoding": "gzip"}),
    }
    out = io.StringIO()
    for name, send in requests.items():
        send(0)  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        for n in range(runs):
            assert send(n).status_code == 200, name
        profiler.disable()
        stats = pstats.Stats(profiler, stream=out)
        figure(f"profile_{name}_in_process", f"{stats.total_tt / runs * 1000:.1f}", "ms",
               f"mean of {runs} in-process under cProfile, which slows it")
        print(f"\n=== {name}: {runs} requests, top functions by own time ===", file=out)
        stats.sort_stats("tottime").print_stats(25)
        print(f"=== {name}: by cumulative time ===", file=out)
        stats.sort_stats("cumulative").print_stats(40)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="step page requests, one client")
    parser.add_argument("--posts", type=int, default=100, help="record-step requests, one client")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the step page and the POST in-process (to stderr)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("web_bench: wrk and taskset are needed (apt-get install wrk util-linux)", file=sys.stderr)
        return 1
    # This process (the one-client timings) and wrk, its child, stay off the server's core.
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    folder = Path(tempfile.mkdtemp(prefix="fieldapp-web-bench-"))
    env = server_environment(folder / "instance", f"sqlite:///{folder / 'bench.sqlite3'}")
    (folder / "instance").mkdir()
    passwords = init_instance(env)
    print(f"web_bench: python {platform.python_version()}, {os.cpu_count()} cores, gunicorn "
          f"{args.workers} sync workers on CPU {SERVER_CPU}, SQLite, the demo data", flush=True)
    address = f"127.0.0.1:{free_port()}"
    server = start_server(env, address, args.workers)
    try:
        client = Client(address)
        client.log_in("caseworker", passwords["caseworker"])
        episodes = open_steps(client)
        page = episodes[0][0]
        _response, html, _ = client.request("GET", page)
        token = CSRF_FIELD.search(html.decode()).group(1)
        # Reads first, on the demo data as it is; the writes come last, as they add entries.
        page_weight(client, page)
        page_time(client, page, args.runs)
        throughput(f"http://{address}", page, client.cookie_header(), args.seconds)
        memory(server.pid)
        posts = recordable_steps(client, episodes, token)
        post_time(client, posts, token, args.posts)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    if args.profile:
        print(profiles(env, page, posts, "caseworker", passwords["caseworker"]), file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
