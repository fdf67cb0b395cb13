"""API benchmark: the dashboard's hot endpoints under load while projectord writes.

Run from the repository root (venv active)::

    python tests/bench/bench_api.py [--clients 50] [--seconds 30] [--scale 1.0]

Seeds a database (at scale 1: 30,000 agents, 1,000,000 execution_results,
1,000,000 obs_events, about 2,000,000 host_perf samples over the last 24 h and
their per-minute fleet rollup), then starts a real nats-server, projectord and
apiserver (hypercorn) as separate processes. A publisher sends 2,000 messages/s
(results and obs events, half each) that projectord writes into the same file,
while ``--clients`` concurrent connections (wrk when installed, else httpx in another
process) cycle through the hot
endpoints with a service token.

Printed per endpoint: requests, requests/s, p50 and p99 latency. Target: p99
under 100 ms for each. Informative only: the exit status is 0 whenever it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import (  # noqa: E402
    NatsServer,
    apiserver_cmd,
    free_port,
    projectord_cmd,
    spawn_projectord,
    wait_http_ok,
)

from apiserver.auth.identity import token_sha256  # noqa: E402
from projectord.schema import ROLLUP_METRICS  # noqa: E402
from projectord.timestamps import format_db, format_wire  # noqa: E402

TOKEN = "bench-token-" + "x" * 32
TARGET_P99_MS = 100.0
HOT = {
    "agents page": "/api/agents?limit=50&offset=0",
    "agents online": "/api/agents?limit=50&status=online",
    "results page": "/api/results?limit=50&since={since_24h}",
    "executions": "/api/executions?limit=50",
    "obs_events page": "/api/obs_events?limit=200",
    "fleet perf 24 h": "/api/perf/fleet?metric=cpu&from={since_24h}&step=15m",
    "agent perf 1 h": "/api/agents/{pc}/perf",
}


def pctl(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# ----------------------------------------------------------------------------- seeding


def seed(db: Path, scale: float, now: datetime) -> None:
    """Bulk rows through one plain connection (faster than the projectors by far)."""
    rnd = random.Random(7)
    n_agents = int(30_000 * scale)
    n_results = int(1_000_000 * scale)
    n_obs = int(1_000_000 * scale)
    pcs = [f"PC-{i:05d}" for i in range(n_agents)]
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")

    def t(seconds_ago: float) -> str:
        return format_db(now - timedelta(seconds=seconds_ago))

    with conn:
        conn.executemany(
            "INSERT INTO agents (pc_id, hostname, last_heartbeat, agent_version, os_family,"
            " updated_at, agent_cpu_pct, agent_rss_bytes, last_logon_user)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    pc,
                    f"host-{i}",
                    t(rnd.uniform(0, 90) if i % 10 else rnd.uniform(600, 86400)),
                    rnd.choice(("0.43.1", "0.43.0", "0.42.7")),
                    "windows" if i % 7 else "linux",
                    t(rnd.uniform(0, 300)),
                    rnd.uniform(0, 5),
                    rnd.randint(30, 90) * 2**20,
                    f"CORP\\user{i % 5000}",
                )
                for i, pc in enumerate(pcs)
            ),
        )
        n_exec = max(1, n_results // 1000)
        conn.executemany(
            "INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at,"
            " target_count, success_count, failure_count, status)"
            " VALUES (?, ?, '1.0.0', 'scheduler', ?, 1000, 990, 10, 'completed')",
            ((f"exec-{e}", f"job-{e % 20}", t(e * 30 * 86400 / n_exec)) for e in range(n_exec)),
        )
        conn.executemany(
            "INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, exit_code,"
            " stdout, stderr, started_at, finished_at, recorded_at, job_id, version)"
            " VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, '1.0.0')",
            (
                (
                    f"res-{r:07d}",
                    f"req-{r}",
                    f"exec-{r // 1000}",
                    pcs[r % n_agents],
                    0 if r % 50 else 1,
                    "ok " * 20,
                    t(age + 5),
                    t(age),
                    t(age),
                    f"job-{(r // 1000) % 20}",
                )
                for r in range(n_results)
                for age in [(n_results - r) * 30 * 86400 / n_results]
            ),
        )
        kinds = ("logon", "logoff", "boot", "shutdown", "sleep", "resume", "active", "idle")
        conn.executemany(
            "INSERT INTO obs_events (pc_id, at, kind, source, event_record_id, payload)"
            " VALUES (?, ?, ?, 'windows_event_log', ?, ?)",
            (
                (
                    pcs[o % n_agents],
                    t((n_obs - o) * 30 * 86400 / n_obs),
                    kinds[o % len(kinds)],
                    str(o),
                    '{"logon_type": 2}',
                )
                for o in range(n_obs)
            ),
        )
        # ~2,000,000 samples at scale 1: every PC every 20 minutes over 24 h.
        conn.executemany(
            "INSERT INTO host_perf_samples (pc_id, at, cpu_pct, cpu_count, mem_used_bytes,"
            " mem_total_bytes, disk_read_bytes_per_sec, disk_written_bytes_per_sec,"
            " net_rx_bytes_per_sec, net_tx_bytes_per_sec)"
            " VALUES (?, ?, ?, 8, ?, 17179869184, ?, ?, ?, ?)",
            (
                (
                    pc,
                    t(slot * 1200 + (i % 1200)),
                    rnd.uniform(0, 100),
                    rnd.randint(2, 15) * 2**30,
                    rnd.uniform(0, 1e6),
                    rnd.uniform(0, 1e6),
                    rnd.uniform(0, 1e5),
                    rnd.uniform(0, 1e5),
                )
                for slot in range(72)
                for i, pc in enumerate(pcs)
            ),
        )
        parts = ", ".join(
            f"SUM({m}), COUNT({m}), MAX({m})" for m in ROLLUP_METRICS
        )  # the rollup projectord keeps, derived once from the seeded samples
        columns = ", ".join(f"{m}_sum, {m}_count, {m}_max" for m in ROLLUP_METRICS)
        conn.execute(
            f"INSERT INTO host_perf_rollup (bucket_at, samples, {columns})"
            f" SELECT substr(at, 1, 16) || ':00.000000+00:00', COUNT(*), {parts}"
            " FROM host_perf_samples GROUP BY substr(at, 1, 16)"
        )
    conn.execute("ANALYZE")
    conn.close()


# ----------------------------------------------------------------------------- load


def client_process(base: str, paths: dict[str, str], clients: int, seconds: float, out) -> None:  # noqa: ANN001
    """Run ``clients`` concurrent request loops; send {name: [latency s]} to ``out``."""
    import httpx

    async def run() -> dict[str, list[float]]:
        timings: dict[str, list[float]] = {name: [] for name in paths}
        errors: dict[str, int] = {}
        names = list(paths)
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits, timeout=30
        ) as http:

            async def loop(k: int) -> None:
                i = k
                while time.monotonic() < deadline:
                    name = names[i % len(names)]
                    i += 1
                    start = time.perf_counter()
                    r = await http.get(paths[name])
                    elapsed = time.perf_counter() - start
                    if r.status_code != 200:
                        errors[f"{name} {r.status_code}"] = errors.get(name, 0) + 1
                    timings[name].append(elapsed)

            await asyncio.gather(*(loop(k) for k in range(clients)))
        timings["_errors"] = [float(v) for v in errors.values()]
        if errors:
            print("non-200 answers:", errors, flush=True)
        return timings

    out.put(asyncio.run(run()))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"wrk printed a latency this script cannot read: {text!r}")
    value, unit = found.groups()
    return float(value) * _UNITS[unit]


def wrk_load(base: str, paths: dict[str, str], clients: int, seconds: float) -> dict[str, tuple]:
    """One wrk per endpoint, all at once, ``clients`` connections shared out.

    wrk is a C load generator: it leaves the CPU to the servers, where a Python
    client would take most of a core on a 2-core machine.
    """
    names = list(paths)
    share = [clients // len(names) + (i < clients % len(names)) for i in range(len(names))]
    procs = {
        name: subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{n}",
                f"-d{seconds:.0f}s",
                "--latency",
                "--timeout",
                "10s",
                "-H",
                f"Authorization: Bearer {TOKEN}",
                base + paths[name],
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, n in zip(names, share, strict=True)
    }
    out = {}
    for name, proc in procs.items():
        text = proc.communicate()[0]
        requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        if bad:
            print(f"{name}: {bad.group(1)} non-2xx answers", flush=True)
        out[name] = (requests, p50, p99)
    return out


async def publish(url: str, rate: int, stop: asyncio.Event, counter: list[int]) -> None:
    """``rate`` messages/s: results and obs events, half each, as agents send them."""
    import nats

    nc = await nats.connect(url)
    seq = 0
    try:
        while not stop.is_set():
            tick = time.monotonic()
            now = datetime.now(UTC)
            for _ in range(rate // 10):
                seq += 1
                pc = f"PC-{seq % 30000:05d}"
                if seq % 2:
                    body = {
                        "result_id": f"live-{seq}",
                        "request_id": f"live-req-{seq}",
                        "pc_id": pc,
                        "exit_code": 0,
                        "stdout": "ok",
                        "stderr": "",
                        "started_at": format_wire(now - timedelta(seconds=2)),
                        "finished_at": format_wire(now),
                        "manifest_id": "job-1",
                    }
                    await nc.publish(f"results.{pc}", json.dumps(body).encode())
                else:
                    body = {
                        "pc_id": pc,
                        "at": format_wire(now),
                        "kind": "active",
                        "source": "agent",
                        "event_record_id": f"live-{seq}",
                        "payload": {},
                    }
                    await nc.publish(f"obs.{pc}", json.dumps(body).encode())
            counter[0] = seq
            await nc.flush()
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    finally:
        await nc.close()


def freshen(db: Path, now: datetime) -> None:
    """Bring a reused database's heartbeats back to the seed's mix: 90% online."""
    with sqlite3.connect(db) as conn:
        for pc_id, offset in conn.execute("SELECT pc_id, rowid FROM agents").fetchall():
            seconds = (offset * 7919) % 90 if offset % 10 else 600 + (offset * 7919) % 86000
            beat = format_db(now - timedelta(seconds=seconds))
            conn.execute("UPDATE agents SET last_heartbeat = ? WHERE pc_id = ?", (beat, pc_id))


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    db = args.db or work / "backend.db"
    now = datetime.now(UTC)
    started = time.monotonic()
    if not db.exists():
        subprocess.run(projectord_cmd("migrate", "--db", str(db)), check=True, capture_output=True)
        seed(db, args.scale, now)
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
    else:
        freshen(db, now)
    print(f"database {db}: {db.stat().st_size / 2**20:.0f} MB", flush=True)
    # Write the freshly seeded file (1.5 GB) back to disk before measuring, so the
    # servers do not share the disk and the CPU with that writeback.
    os.sync()
    server = NatsServer(work / "nats")
    server.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        config = work / "kanade.toml"
        port = free_port()
        config.write_text(
            "[scheduler]\nenabled = false\n[housekeeping]\nenabled = false\n"
            f'[apiserver]\nbind = "127.0.0.1:{port}"\nworkers = {args.workers}\n'
            f'[apiserver.tokens.bench]\nsha256 = "{token_sha256(TOKEN)}"\nrole = "viewer"\n'
        )
        procs.append(
            spawn_projectord(server, db, "--config", str(config), log_path=work / "pd.log")
        )
        with open(work / "api.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    apiserver_cmd("--config", str(config), "--db", str(db)),
                    stdout=log,
                    stderr=log,
                    env={**os.environ, "KANADE_CONFIG": ""},
                )
            )
        base = f"http://127.0.0.1:{port}"
        wait_http_ok(base + "/health", procs[-1])
        since = (now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
        paths = {k: v.format(since_24h=since, pc="PC-00042") for k, v in HOT.items()}
        stop = asyncio.Event()
        sent = [0]
        publisher = asyncio.create_task(publish(server.url, args.rate, stop, sent))
        await asyncio.sleep(3)  # projectord reaches its steady write rate
        use_wrk = shutil.which("wrk") is not None and not args.python_client
        if use_wrk:
            figures = await asyncio.to_thread(wrk_load, base, paths, args.clients, args.seconds)
        else:
            queue: multiprocessing.Queue = multiprocessing.Queue()
            loader = multiprocessing.Process(
                target=client_process, args=(base, paths, args.clients, args.seconds, queue)
            )
            loader.start()
            timings = await asyncio.to_thread(queue.get)
            loader.join()
            figures = {
                name: (len(v), pctl(v, 0.5) * 1000, pctl(v, 0.99) * 1000)
                for name, v in timings.items()
            }
        stop.set()
        await publisher
        written = sqlite3.connect(db).execute(
            "SELECT COUNT(*) FROM execution_results WHERE result_id LIKE 'live-%'"
        )
        live = written.fetchone()[0]
        print(
            f"\nload: {'wrk' if use_wrk else 'python httpx'}; "
            f"{args.clients} clients for {args.seconds:.0f} s; publisher sent {sent[0]} "
            f"messages ({sent[0] / (args.seconds + 3):.0f}/s), {live} live results projected\n"
        )
        print(f"{'endpoint':18} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}  target")
        for name in HOT:
            count, p50, p99 = figures[name]
            verdict = "PASS" if p99 < TARGET_P99_MS else "MISS"
            print(
                f"{name:18} {count:9d} {count / args.seconds:7.1f} "
                f"{p50:8.1f} {p99:8.1f}  {verdict} (p99 < {TARGET_P99_MS:.0f} ms)"
            )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=2000, help="messages/s written")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the data set")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--db", type=Path, help="a database seeded by an earlier run (kept with --keep) to reuse"
    )
    parser.add_argument("--workers", type=int, default=2, help="apiserver worker processes")
    parser.add_argument(
        "--python-client", action="store_true", help="load with httpx even when wrk is installed"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
