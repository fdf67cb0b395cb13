"""Soak: the whole stack with a large simulated fleet for minutes; lag, memory, DB size.

Run from the repository root (venv active)::

    python tests/bench/bench_soak.py [--agents 30000] [--minutes 10] [--warmup 2]

It starts the stack exactly as the README's run command does (``projectord dev``:
embedded nats-server, projectord with its scheduler and housekeeping, apiserver,
the simulator, the sample jobs and schedules, which send a Command to every PC in
the first minute), and polls the dashboard's endpoints with a few clients
logged in with the generated login. Every 5 s it samples:

* projector lag: for RESULTS, EVENTS and OBS_EVENTS the age of the oldest
  message not yet applied (0 when the checkpoint is at the stream's end); for
  heartbeats the age of the newest heartbeat in ``agents``;
* memory of projectord and apiserver: RSS, and its anonymous part (RssAnon), which
  is what a leak grows (apiserver maps the database file, and mapped file pages
  count in RSS but belong to the page cache);
* the database size (with its WAL).

Printed: lag max and p99 per projector, memory at the end of the warm-up and at
the end with the post-warm-up trend (least squares, MB per hour), DB size.
Memory PASSES when the anonymous memory of each process grows by less than 5 %
plus 5 MB after the warm-up. Informative: the exit status is 0 whenever it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import nats
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import banner_facts, dev_stack_cmd, free_port  # noqa: E402
from projector_lag import empty_lags, pctl, sample_lag  # noqa: E402

SAMPLE_EVERY_S = 5.0
DASHBOARD_PATHS = (
    "/api/health/fleet",
    "/api/agents?limit=50",
    "/api/results?limit=50",
    "/api/executions?limit=20",
    "/api/obs_events?limit=50",
    "/api/perf/fleet?metric=cpu&step=15m",
    "/api/projector/status",
    "/api/schedules/upcoming",
)
GROWTH_ALLOWED = (0.05, 5.0)  # fraction, MB


def memory_mb(proc: psutil.Process) -> tuple[float, float]:
    """(RSS, RssAnon) of a process and its children, in MB."""
    rss = anon = 0.0
    for p in (proc, *proc.children(recursive=True)):
        try:
            rss += p.memory_info().rss
            status = Path(f"/proc/{p.pid}/status").read_text()
            anon += int(re.search(r"RssAnon:\s+(\d+) kB", status).group(1)) * 1024
        except (psutil.NoSuchProcess, FileNotFoundError, AttributeError):
            continue
    return rss / 2**20, anon / 2**20


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 3600 * sum((t - mx) * (v - my) for t, v in points) / var if var else 0.0


def find_child(dev: psutil.Process, needle: str) -> psutil.Process:
    for child in dev.children(recursive=True):
        if needle in " ".join(child.cmdline()):
            return child
    raise LookupError(f"no {needle!r} under the dev stack")


def dashboard_clients(base: str, login: str, stop: threading.Event, counts: dict) -> None:
    """One logged-in client walking the dashboard's endpoints, one request a second."""
    username, password = login.split(" / ")
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post("/api/auth/login", json={"username": username, "password": password})
        i = 0
        while not stop.wait(1.0):
            answer = client.get(DASHBOARD_PATHS[i % len(DASHBOARD_PATHS)])
            key = "ok" if answer.status_code == 200 else str(answer.status_code)
            counts[key] = counts.get(key, 0) + 1
            i += 1


def start_stack(work: Path, agents: int) -> tuple[subprocess.Popen[str], dict[str, str], int]:
    nats_port, http_port = free_port(), free_port()
    cmd = dev_stack_cmd(work, nats_port, http_port, "--agents", str(agents))
    dev = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    assert dev.stderr is not None
    output = []
    for line in dev.stderr:
        output.append(line)
        print("  " + line.rstrip(), flush=True)
        if "Press Ctrl-C" in line:
            break
    else:
        raise RuntimeError("the dev stack stopped before it was up:\n" + "".join(output))
    # Keep draining its output so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in dev.stderr], daemon=True).start()
    facts = banner_facts("".join(output))
    return dev, facts, nats_port


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    dev = None
    try:
        print(f"starting the stack with {args.agents} agents ...", flush=True)
        dev, facts, nats_port = start_stack(work, args.agents)
        dev_ps = psutil.Process(dev.pid)
        projectord = find_child(dev_ps, "projectord run")
        apiserver = find_child(dev_ps, "-m apiserver")
        db = Path(facts["database"])
        ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        nc = await nats.connect(f"nats://127.0.0.1:{nats_port}")
        js = nc.jetstream()

        stop = threading.Event()
        counts: dict[str, int] = {}
        clients = [
            threading.Thread(
                target=dashboard_clients, args=(facts["dashboard"], facts["login"], stop, counts)
            )
            for _ in range(args.clients)
        ]
        for c in clients:
            c.start()

        lags = empty_lags()
        memory: dict[str, list[tuple[float, float, float]]] = {"projectord": [], "apiserver": []}
        start = time.monotonic()
        end = start + args.minutes * 60
        while time.monotonic() < end:
            elapsed = time.monotonic() - start
            await sample_lag(js, ro, lags)
            for name, proc in (("projectord", projectord), ("apiserver", apiserver)):
                memory[name].append((elapsed, *memory_mb(proc)))
            if int(elapsed) % 60 < SAMPLE_EVERY_S:
                rss = {k: v[-1][1] for k, v in memory.items()}
                print(
                    f"  {elapsed / 60:4.1f} min  lag results {lags['results'][-1]:.1f} s  "
                    f"RSS projectord {rss['projectord']:.0f} MB, apiserver {rss['apiserver']:.0f}"
                    " MB",
                    flush=True,
                )
            await asyncio.sleep(SAMPLE_EVERY_S)
        stop.set()
        for c in clients:
            c.join(35)
        runs = ro.execute(
            "SELECT COUNT(*), SUM(finished_at IS NOT NULL) FROM execution_results"
        ).fetchone()
        await nc.close()
        ro.close()
        size_mb = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20

        warm = args.warmup * 60
        print()
        print("=" * 78)
        print(
            f"command:  python tests/bench/bench_soak.py --agents {args.agents}"
            f" --minutes {args.minutes} --warmup {args.warmup} --clients {args.clients}"
        )
        print(f"host:     {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        print(
            f"fleet:    {args.agents} simulated agents; runs answered {runs[1] or 0}/{runs[0]}; "
            f"dashboard requests {counts}"
        )
        for name, values in lags.items():
            worst, p99 = max(values, default=0.0), pctl(values, 0.99)
            print(f"lag {name:11s} max {worst:6.2f} s   p99 {p99:6.2f} s")
        verdicts = []
        for name, points in memory.items():
            after = [p for p in points if p[0] >= warm]
            first, last = after[0], after[-1]
            growth = last[2] - first[2]
            allowed = first[2] * GROWTH_ALLOWED[0] + GROWTH_ALLOWED[1]
            ok = growth < allowed
            verdicts.append(ok)
            trend = slope_per_hour([(t, anon) for t, _, anon in after])
            print(
                f"{name:10s} RSS {points[0][1]:6.0f} (start) {first[1]:6.0f} (warm) "
                f"{last[1]:6.0f} (end) MB; anon {first[2]:6.0f} -> {last[2]:6.0f} MB "
                f"({growth:+.1f}, allowed < {allowed:.1f}; trend {trend:+.1f} MB/h)  "
                f"{'PASS' if ok else 'MISS'}"
            )
        print(f"DB size   {size_mb:.0f} MB (with WAL)")
        print(f"memory after warm-up: {'PASS' if all(verdicts) else 'MISS'}")
        print("=" * 78)
        return 0
    finally:
        if dev is not None and dev.poll() is None:
            dev.send_signal(signal.SIGINT)
            try:
                dev.wait(60)
            except subprocess.TimeoutExpired:
                dev.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=30000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2, help="minutes before memory counts")
    parser.add_argument("--clients", type=int, default=4, help="dashboard clients, 1 req/s each")
    parser.add_argument("--keep", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))
