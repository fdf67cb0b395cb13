"""Database faults (DESIGN.md decision 3): a locked database and a message SQLite refuses.

Locked: transient, retried with backoff, never acked until committed.
Refused (a real trigger raising an error for one row): the batch is split until
the culprit stands alone; it becomes a reject and its batch-mates are applied.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3

import structlog
from harness import (
    InProcessProjectord,
    checkpoint,
    query,
    settings_for,
    wait_checkpoint,
    wait_until,
)
from wire import audit_event, body, exec_result, heartbeat, host_perf, obs_event

from projectord.broker_resources import ensure_resources
from projectord.database import create_writer_engine
from projectord.migrations import upgrade_to_head

_probe = itertools.count()


async def start_projectord(nats_server, db_path, busy_timeout_ms=None, **options):
    settings = settings_for(nats_server, db_path, **options)
    if busy_timeout_ms is not None:
        settings.values["database"]["busy_timeout_ms"] = busy_timeout_ms
    return await InProcessProjectord(settings).start()


def migrate(db_path):
    """Create the schema the way projectord does at start, without starting it."""
    engine = create_writer_engine(db_path)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()


def execute(db_path, *statements):
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        for sql in statements:
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def count(db_path, sql, params=()):
    return query(db_path, sql, params)[0][0]


async def consumer(js, stream, durable):
    return await js.consumer_info(stream, durable)


async def publish_obs(js, pc_id, record_id):
    msg = obs_event(pc_id, "logon", "winlog:Security", record_id)
    return (await js.publish(f"obs.{pc_id}", body(msg))).seq


async def core_ready(nc, db_path, subject, table):
    async def landed():
        pc = f"warm-{next(_probe)}"
        make = heartbeat if subject == "heartbeat" else host_perf
        await nc.publish(f"{subject}.{pc}", body(make(pc, at=-1000)))
        await nc.flush()
        return count(db_path, f"SELECT COUNT(*) FROM {table} WHERE pc_id LIKE 'warm-%'") > 0

    await wait_until(landed)


# --- a locked database ----------------------------------------------------------------


async def test_locked_database_is_retried_and_nothing_is_acked_meanwhile(
    nats_server, nc, js, db_path
):
    # A short busy timeout makes every write attempt fail fast with "database is
    # locked", so the retry-with-backoff path runs for the whole lock.
    p = await start_projectord(
        nats_server,
        db_path,
        busy_timeout_ms=50,
        retry_max_backoff_s=0.2,
        flush_interval_ms=100,
        fetch_wait_ms=200,
    )
    try:
        await core_ready(nc, db_path, "heartbeat", "agents")
        base = await publish_obs(js, "pc0", "base")
        await wait_checkpoint(db_path, "obs_events", base)
        locker = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            with structlog.testing.capture_logs() as logs:
                obs = [await publish_obs(js, f"pc{i}", f"id-{i}") for i in range(1, 11)]
                audit = [
                    (await js.publish("audit.op.x", body(audit_event(payload={"i": i})))).seq
                    for i in range(5)
                ]
                await nc.publish("heartbeat.pc-locked", body(heartbeat("pc-locked", at=5)))

                async def fetched_not_acked():
                    info = await consumer(js, "OBS_EVENTS", "backend_obs_events_projector")
                    # Fetched, held, not acked (the prefetch may hold more than one batch).
                    return info.num_ack_pending > 0

                await wait_until(fetched_not_acked)
                await wait_until(
                    lambda: any(e["event"] == "db_transient_error" for e in logs), timeout=10
                )
                for _ in range(3):  # the lock is held about 3 s in all
                    info = await consumer(js, "OBS_EVENTS", "backend_obs_events_projector")
                    assert info.ack_floor.stream_seq == base, "acked while the database was locked"
                    assert info.num_ack_pending > 0
                    info = await consumer(js, "AUDIT", "backend_audit_projector")
                    assert info.ack_floor.stream_seq == 0
                    assert count(db_path, "SELECT COUNT(*) FROM obs_events") == 1
                    assert checkpoint(db_path, "obs_events") == base
                    await asyncio.sleep(1)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        transient = [e for e in logs if e["event"] == "db_transient_error"]
        assert transient and all("locked" in e["error"] for e in transient)

        await wait_checkpoint(db_path, "obs_events", obs[-1])
        await wait_checkpoint(db_path, "audit", audit[-1])
        await wait_until(
            lambda: count(db_path, "SELECT COUNT(*) FROM agents WHERE pc_id = 'pc-locked'")
        )
        assert query(db_path, "SELECT event_record_id FROM obs_events ORDER BY id") == [
            ("base",),
            *[(f"id-{i}",) for i in range(1, 11)],
        ]
        assert query(db_path, "SELECT stream_seq FROM audit_log ORDER BY id") == [
            (s,) for s in audit
        ]
        assert count(db_path, "SELECT COUNT(*) FROM projector_rejects") == 0

        async def all_acked():
            o = await consumer(js, "OBS_EVENTS", "backend_obs_events_projector")
            a = await consumer(js, "AUDIT", "backend_audit_projector")
            return (o.ack_floor.stream_seq, a.ack_floor.stream_seq, o.num_ack_pending) == (
                obs[-1],
                audit[-1],
                0,
            )

        await wait_until(all_acked)
    finally:
        await p.stop()


# --- a message the database refuses ------------------------------------------------------


POISON_TRIGGERS = [
    """CREATE TRIGGER poison_obs BEFORE INSERT ON obs_events WHEN NEW.pc_id = 'poison'
       BEGIN SELECT RAISE(ABORT, 'poisoned row'); END""",
    """CREATE TRIGGER poison_results BEFORE INSERT ON execution_results
       WHEN NEW.pc_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned result'); END""",
    """CREATE TRIGGER poison_perf BEFORE INSERT ON host_perf_samples
       WHEN NEW.pc_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned sample'); END""",
]


async def test_refused_message_is_isolated_and_its_batch_mates_applied(
    nats_server, nc, js, db_path
):
    migrate(db_path)
    execute(
        db_path,
        *POISON_TRIGGERS,
        "INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at,"
        " target_count) VALUES ('e1', 'inv-hw', '1.0.0', 'scheduler',"
        " '2026-05-20T11:59:00.000000+00:00', 20)",
    )
    await ensure_resources(js)
    # Everything is in the streams before projectord starts, so it arrives as whole batches.
    seqs = []
    for i in range(10):
        pc = "poison" if i == 4 else f"pc{i}"
        seqs.append(await publish_obs(js, pc, f"id-{i}"))
    results = []
    for i in range(8):
        pc = "poison" if i == 6 else f"pc{i}"
        msg = exec_result(f"r{i}", pc_id=pc, exec_id="e1", exit_code=0 if i % 2 else 1)
        results.append((await js.publish("results.req-1", body(msg))).seq)

    with structlog.testing.capture_logs() as logs:
        p = await start_projectord(nats_server, db_path, batch_size=100)
        try:
            await wait_checkpoint(db_path, "obs_events", seqs[-1])
            await wait_checkpoint(db_path, "results", results[-1])
            # ... and keeps going afterwards.
            after = [await publish_obs(js, "poison", "later"), await publish_obs(js, "pc-x", "x")]
            await wait_checkpoint(db_path, "obs_events", after[-1])

            # The core path isolates a refused sample the same way.
            await core_ready(nc, db_path, "host_perf", "host_perf_samples")
            for pc in ("perf-a", "poison", "perf-b"):
                await nc.publish(f"host_perf.{pc}", body(host_perf(pc, at=0, cpu_pct=1.0)))
            await wait_until(
                lambda: count(
                    db_path, "SELECT COUNT(*) FROM projector_rejects WHERE stream IS NULL"
                )
            )
            await wait_until(
                lambda: (
                    count(
                        db_path,
                        "SELECT COUNT(*) FROM host_perf_samples WHERE pc_id LIKE 'perf-_'",
                    )
                    == 2
                )
            )
            obs_info = await consumer(js, "OBS_EVENTS", "backend_obs_events_projector")
            res_info = await consumer(js, "RESULTS", "backend_results_projector")
        finally:
            await p.stop()

    assert [r[0] for r in query(db_path, "SELECT event_record_id FROM obs_events ORDER BY id")] == [
        f"id-{i}" for i in range(10) if i != 4
    ] + ["x"]
    rejects = query(
        db_path,
        "SELECT projector, stream, stream_seq, subject, error FROM projector_rejects ORDER BY id",
    )
    by_projector = {}
    for projector, stream, seq, subject, error in rejects:
        by_projector.setdefault(projector, []).append((stream, seq, subject, error))
    assert [r[:3] for r in by_projector["obs_events"]] == [
        ("OBS_EVENTS", seqs[4], "obs.poison"),
        ("OBS_EVENTS", after[0], "obs.poison"),
    ]
    assert all("poisoned row" in r[3] for r in by_projector["obs_events"])
    assert [r[:3] for r in by_projector["results"]] == [("RESULTS", results[6], "results.req-1")]
    assert "poisoned result" in by_projector["results"][0][3]
    assert [r[:3] for r in by_projector["host_perf"]] == [(None, None, "host_perf.poison")]
    assert "poisoned sample" in by_projector["host_perf"][0][3]
    assert set(by_projector) == {"obs_events", "results", "host_perf"}

    # Batch-mates of the refused result were applied once, counters bumped once each.
    assert sorted(r[0] for r in query(db_path, "SELECT result_id FROM execution_results")) == [
        f"r{i}" for i in range(8) if i != 6
    ]
    # r0..r7 without r6: exit 1 for even i (0, 2, 4), exit 0 for odd i (1, 3, 5, 7).
    assert query(db_path, "SELECT success_count, failure_count, status FROM executions") == [
        (4, 3, "running")
    ]
    assert obs_info.num_ack_pending == 0 and obs_info.ack_floor.stream_seq == after[-1]
    assert res_info.num_ack_pending == 0 and res_info.ack_floor.stream_seq == results[-1]
    events = [e["event"] for e in logs]
    assert "db_batch_failed_splitting" in events, "the refused message shared a batch"
    assert events.count("db_poison_message") == 4
