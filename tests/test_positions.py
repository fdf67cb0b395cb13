"""Durable positions vs. database checkpoints (DESIGN.md decision 1, seed 000: #389).

Every test runs projectord for real, changes the database or the broker behind
its back the way an operator or an accident would, restarts it and checks what
the projection holds afterwards.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import structlog
from harness import checkpoint, query, wait_checkpoint, wait_until
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from wire import audit_event, body, event_started, exec_result, obs_event

from projectord.broker_resources import ensure_resources

PROJECTORS = {
    "results": ("RESULTS", "backend_results_projector"),
    "events": ("EVENTS", "backend_events_projector"),
    "audit": ("AUDIT", "backend_audit_projector"),
    "obs_events": ("OBS_EVENTS", "backend_obs_events_projector"),
}


def db_files(db_path: Path) -> list[Path]:
    return [Path(f"{db_path}{suffix}") for suffix in ("", "-wal", "-shm")]


def wipe_db(db_path: Path) -> None:
    for f in db_files(db_path):
        f.unlink(missing_ok=True)
    assert not any(f.exists() for f in db_files(db_path))


def backup_db(db_path: Path, dest: Path) -> None:
    """An online backup through SQLite's backup API, as a backup job would take it."""
    src = sqlite3.connect(db_path, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def restore_db(backup: Path, db_path: Path) -> None:
    wipe_db(db_path)
    shutil.copyfile(backup, db_path)


# Columns the events projector owns; which projector creates a row on replay is
# a race between two streams (see test_replayed_rows_match_the_live_projection).
EVENT_OWNED = ("recorded_at", "version", "expires_at")
RESULT_COLUMNS = (
    "result_id, request_id, exec_id, pc_id, exit_code, stdout, stderr, started_at,"
    " finished_at, job_id, reaped, parent_result_id, skipped"
)


def snapshot(db_path: Path, results_columns: str = RESULT_COLUMNS) -> dict[str, list[tuple]]:
    """Every projected row, without surrogate ids, in a stable order."""
    return {
        "execution_results": query(
            db_path, f"SELECT {results_columns} FROM execution_results ORDER BY result_id"
        ),
        "audit_log": query(
            db_path,
            "SELECT actor, action, target, payload, occurred_at, stream_seq FROM audit_log"
            " ORDER BY stream_seq",
        ),
        "obs_events": query(
            db_path,
            "SELECT pc_id, at, kind, source, event_record_id, payload FROM obs_events"
            " ORDER BY at, source, event_record_id",
        ),
    }


def rows_by_id(db_path: Path) -> dict[str, dict]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return {r["result_id"]: dict(r) for r in conn.execute("SELECT * FROM execution_results")}
    finally:
        conn.close()


def insert_execution(db_path, exec_id, target_count):
    conn = sqlite3.connect(db_path, timeout=30)
    conn.execute(
        "INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at,"
        " target_count) VALUES (?, 'inv-hw', '1.0.0', 'scheduler',"
        " '2026-05-20T11:59:00.000000+00:00', ?)",
        (exec_id, target_count),
    )
    conn.commit()
    conn.close()


async def publish_mix(js, tag: str, n: int = 3) -> dict[str, int]:
    """Traffic on every consumed stream; returns the last stream sequence per projector."""
    last: dict[str, int] = {}
    for i in range(n):
        pc = f"{tag}-pc{i}"
        rid = f"{tag}-r{i}"
        ack = await js.publish(
            f"events.started.e1.{pc}", body(event_started(rid, exec_id="e1", pc_id=pc))
        )
        last["events"] = ack.seq
        ack = await js.publish(
            f"results.req-{tag}",
            body(exec_result(rid, request_id=f"req-{tag}", pc_id=pc, exec_id="e1", exit_code=i)),
        )
        last["results"] = ack.seq
        ack = await js.publish(
            "audit.operator.exec", body(audit_event(payload={"tag": tag, "i": i}))
        )
        last["audit"] = ack.seq
        # No record id: a re-applied message would show up as a duplicate row.
        ack = await js.publish(
            f"obs.{pc}", body(obs_event(pc, "boot", "agent:startup", None, at=i))
        )
        last["obs_events"] = ack.seq
    return last


async def wait_all(db_path, last: dict[str, int]) -> None:
    for projector, seq in last.items():
        await wait_checkpoint(db_path, projector, seq)


async def durable_info(js, projector):
    stream, durable = PROJECTORS[projector]
    return await js.consumer_info(stream, durable)


# --- #389: wiped database, surviving durables ------------------------------------------


async def test_wiped_db_rederives_everything_the_streams_hold(projectord_factory, js, db_path):
    p = await projectord_factory()
    last = await publish_mix(js, "a")
    await wait_all(db_path, last)
    before = snapshot(db_path)
    assert len(before["execution_results"]) == 3 and len(before["obs_events"]) == 3
    await p.stop()
    # The durables survive on the broker, parked at the end of their streams.
    for projector, seq in last.items():
        assert (await durable_info(js, projector)).ack_floor.stream_seq == seq
    wipe_db(db_path)
    await projectord_factory()
    await wait_all(db_path, last)
    after = snapshot(db_path)
    # Everything re-derived (for the columns the started event owns, see the next test).
    assert after == before
    for projector, seq in last.items():
        assert checkpoint(db_path, projector) == seq


async def test_wiped_db_while_broker_keeps_growing(projectord_factory, js, db_path):
    p = await projectord_factory()
    first = await publish_mix(js, "a")
    await wait_all(db_path, first)
    await p.stop()
    wipe_db(db_path)
    last = await publish_mix(js, "b")  # arrives while projectord is down
    await projectord_factory()
    await wait_all(db_path, last)
    snap = snapshot(db_path)
    assert len(snap["execution_results"]) == 6
    assert len(snap["audit_log"]) == 6 and len(snap["obs_events"]) == 6
    assert [r[5] for r in snap["audit_log"]] == sorted({r[5] for r in snap["audit_log"]})


async def test_replayed_rows_match_the_live_projection(projectord_factory, js, db_path):
    """Replay must rebuild the rows live traffic built, whichever stream replays first.

    Live, every started event here is projected before its result: the rows get
    ``version``, ``expires_at`` and ``recorded_at`` = the started event's publish
    time (projection-semantics.md 1, 5 and 12). On replay the two projectors run
    independently; a long EVENTS backlog lets the results projector get there first.
    """
    await ensure_resources(js)
    kv = await js.key_value("jobs")
    await kv.put(
        "inv-hw",
        body(
            {
                "id": "inv-hw",
                "version": "1.0.0",
                "execute": {"shell": "sh", "script": "true", "timeout": "10m"},
            }
        ),
    )
    p = await projectord_factory(batch_size=20)
    for i in range(200):  # other runs: a backlog in EVENTS only
        await js.publish(
            "events.started.e0.pcx", body(event_started(f"other-{i:03}", exec_id="e0", pc_id="pcx"))
        )
    for i in range(20):
        seq = (
            await js.publish(
                f"events.started.e1.pc{i}", body(event_started(f"r{i:02}", pc_id=f"pc{i}"))
            )
        ).seq
    await wait_checkpoint(db_path, "events", seq)
    for i in range(20):
        last = (
            await js.publish(
                "results.req-1", body(exec_result(f"r{i:02}", pc_id=f"pc{i}", exec_id="e1"))
            )
        ).seq
    await wait_checkpoint(db_path, "results", last)
    live = rows_by_id(db_path)
    assert all(r["version"] == "1.0.0" and r["expires_at"] for r in live.values())
    await p.stop()

    wipe_db(db_path)
    await projectord_factory(batch_size=20)
    await wait_checkpoint(db_path, "events", seq)
    await wait_checkpoint(db_path, "results", last)
    replayed = rows_by_id(db_path)
    assert replayed.keys() == live.keys()
    differing = {
        rid: {c: (live[rid][c], row[c]) for c in row if row[c] != live[rid][c]}
        for rid, row in replayed.items()
        if row != live[rid]
    }
    # A started event published before the row's first message must still shape it.
    assert differing == {}, (
        f"{len(differing)} of {len(live)} rows whose result replayed before their started event"
        " lost version/expires_at and took the result's publish time as recorded_at, e.g."
        f" {dict(list(differing.items())[:2])}"
    )


# --- restored older backup ---------------------------------------------------------------


async def test_restored_older_backup_rederives_exactly_the_missing_tail(
    projectord_factory, js, db_path, tmp_path
):
    p = await projectord_factory()
    insert_execution(db_path, "e1", target_count=10)
    first = await publish_mix(js, "a", n=3)  # exit codes 0, 1, 2: one success, two failures
    await wait_all(db_path, first)
    backup = tmp_path / "backup.db"
    backup_db(db_path, backup)  # online, while projectord runs
    second = await publish_mix(js, "b", n=3)
    # A redelivered result of the first part must not count again either.
    dup = await js.publish(
        "results.req-a", body(exec_result("a-r0", request_id="req-a", pc_id="a-pc0", exec_id="e1"))
    )
    second["results"] = dup.seq
    await wait_all(db_path, second)
    fresh = snapshot(db_path)
    fresh_counters = query(db_path, "SELECT success_count, failure_count, status FROM executions")
    assert fresh_counters == [(2, 4, "running")]
    await p.stop()

    restore_db(backup, db_path)
    assert checkpoint(db_path, "results") == first["results"]
    await projectord_factory()
    await wait_all(db_path, second)
    assert snapshot(db_path) == fresh, "the tail is re-derived, nothing duplicated"
    assert (
        query(db_path, "SELECT success_count, failure_count, status FROM executions")
        == fresh_counters
    )
    assert query(db_path, "SELECT COUNT(*), COUNT(DISTINCT stream_seq) FROM audit_log") == [(6, 6)]
    # Each durable was recreated to deliver from the backup's checkpoint + 1.
    for projector, seq in first.items():
        cfg = (await durable_info(js, projector)).config
        assert cfg.deliver_policy == DeliverPolicy.BY_START_SEQUENCE, projector
        assert cfg.opt_start_seq == seq + 1, projector


async def test_durable_behind_the_checkpoint_is_kept_and_redelivery_is_skipped(
    projectord_factory, js, db_path
):
    p = await projectord_factory()
    last = await publish_mix(js, "a")
    await wait_all(db_path, last)
    before = snapshot(db_path, "*")
    await p.stop()
    # Acks lost (crash between commit and ack): the durable delivers everything again.
    stream, durable = PROJECTORS["obs_events"]
    await js.delete_consumer(stream, durable)
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject="obs.>",
        ),
    )
    await projectord_factory()
    info = None

    async def redelivered_and_acked():
        nonlocal info
        info = await durable_info(js, "obs_events")
        return info.ack_floor.stream_seq == last["obs_events"] and info.num_ack_pending == 0

    await wait_until(redelivered_and_acked)
    assert info.delivered.stream_seq == last["obs_events"]
    assert snapshot(db_path, "*") == before, (
        "messages at or below the checkpoint are not re-applied"
    )


# --- aged-out gap --------------------------------------------------------------------------


async def test_aged_out_gap_is_logged_and_recorded(projectord_factory, js, db_path):
    p = await projectord_factory()
    seqs = [
        (await js.publish("audit.op.x", body(audit_event(payload={"i": i})))).seq for i in range(3)
    ]
    await wait_checkpoint(db_path, "audit", seqs[-1])
    await p.stop()
    missed = [
        (await js.publish("audit.op.x", body(audit_event(payload={"i": i})))).seq
        for i in range(3, 8)
    ]
    # The retention limit removes the oldest messages before projectord is back.
    await js.purge_stream("AUDIT", keep=2)
    state = (await js.stream_info("AUDIT")).state
    assert state.first_seq == missed[-2] > seqs[-1] + 1

    with structlog.testing.capture_logs() as logs:
        await projectord_factory()
        await wait_checkpoint(db_path, "audit", missed[-1])
    assert query(db_path, "SELECT stream_seq FROM audit_log ORDER BY stream_seq") == [
        (s,) for s in [*seqs, *missed[-2:]]
    ]
    gaps = query(db_path, "SELECT projector, stream, from_seq, to_seq, missing FROM projector_gaps")
    assert gaps == [("audit", "AUDIT", seqs[-1] + 1, missed[-3], 3)]
    gap_logs = [e for e in logs if e["event"] == "projection_gap"]
    assert len(gap_logs) == 1
    assert gap_logs[0]["log_level"] == "error"
    assert (gap_logs[0]["from_seq"], gap_logs[0]["to_seq"], gap_logs[0]["missing"]) == (
        seqs[-1] + 1,
        missed[-3],
        3,
    )
    # The other projectors had nothing missing.
    assert {g[0] for g in gaps} == {"audit"}


async def test_gap_on_a_wiped_db_is_recorded_from_the_first_sequence(
    projectord_factory, js, db_path
):
    await ensure_resources(js)
    for i in range(6):
        last = (await js.publish("obs.pc1", body(obs_event("pc1", event_record_id=str(i))))).seq
    await js.purge_stream("OBS_EVENTS", keep=2)
    await projectord_factory()
    await wait_checkpoint(db_path, "obs_events", last)
    assert [r[0] for r in query(db_path, "SELECT event_record_id FROM obs_events ORDER BY 1")] == [
        "4",
        "5",
    ]
    assert query(db_path, "SELECT projector, from_seq, to_seq, missing FROM projector_gaps") == [
        ("obs_events", 1, 4, 4)
    ]


# --- stream recreated --------------------------------------------------------------------


async def test_recreated_stream_is_detected_and_replayed(projectord_factory, js, db_path):
    p = await projectord_factory()
    old_audit = [
        (await js.publish("audit.op.old", body(audit_event(payload={"old": i})))).seq
        for i in range(5)
    ]
    for i in range(5):
        old_obs = (
            await js.publish("obs.pc1", body(obs_event("pc1", event_record_id=f"old-{i}")))
        ).seq
    await wait_checkpoint(db_path, "audit", old_audit[-1])
    await wait_checkpoint(db_path, "obs_events", old_obs)
    await p.stop()

    await js.delete_stream("AUDIT")
    await js.delete_stream("OBS_EVENTS")
    await ensure_resources(js)
    # AUDIT gets more messages than the old checkpoint: only its new creation time
    # tells the sequences apart. OBS_EVENTS gets fewer: its last_seq is below it.
    new_audit = [
        (await js.publish("audit.op.new", body(audit_event(payload={"new": i})))).seq
        for i in range(7)
    ]
    assert new_audit == list(range(1, 8))
    for i in range(2):
        new_obs = (
            await js.publish("obs.pc1", body(obs_event("pc1", event_record_id=f"new-{i}")))
        ).seq
    assert new_obs == 2

    await projectord_factory()
    await wait_until(
        lambda: (
            query(db_path, "SELECT COUNT(*) FROM audit_log WHERE payload LIKE '%new%'") == [(7,)]
        )
    )
    await wait_until(
        lambda: (
            query(db_path, "SELECT COUNT(*) FROM obs_events WHERE event_record_id LIKE 'new-%'")
            == [(2,)]
        )
    )
    assert checkpoint(db_path, "audit") == 7 and checkpoint(db_path, "obs_events") == 2
    rows = query(db_path, "SELECT payload, stream_seq FROM audit_log ORDER BY id")
    assert len(rows) == 12
    assert [r[1] for r in rows[5:]] == list(range(1, 8))
    assert all('"new"' in r[0] for r in rows[5:])
    # Old rows keep their content; their sequences belonged to the dead stream.
    assert all('"old"' in r[0] and r[1] is None for r in rows[:5])
    assert query(db_path, "SELECT COUNT(*) FROM obs_events") == [(7,)]
    assert query(db_path, "SELECT COUNT(*) FROM projector_gaps") == [(0,)]


async def test_stream_recreated_while_running_is_replayed(projectord_factory, js, db_path):
    await projectord_factory(fetch_wait_ms=200)
    for i in range(5):
        seq = (await js.publish("audit.op.old", body(audit_event(payload={"old": i})))).seq
    await wait_checkpoint(db_path, "audit", seq)
    await js.delete_stream("AUDIT")
    await ensure_resources(js)  # e.g. an operator or a second deployment recreates it
    new = [
        (await js.publish("audit.op.new", body(audit_event(payload={"new": i})))).seq
        for i in range(7)
    ]
    assert new == list(range(1, 8))
    await wait_until(
        lambda: (
            query(db_path, "SELECT COUNT(*) FROM audit_log WHERE payload LIKE '%new%'") == [(7,)]
        )
    )
    rows = query(db_path, "SELECT payload, stream_seq FROM audit_log ORDER BY id")
    assert [r[1] for r in rows] == [None] * 5 + new
    assert all('"new"' in r[0] for r in rows[5:])
    assert checkpoint(db_path, "audit") == 7


# --- durables changed under a running projectord -----------------------------------------


async def test_durable_deleted_while_running_is_recreated_without_loss(
    projectord_factory, js, db_path
):
    await projectord_factory(fetch_wait_ms=200)
    last = await publish_mix(js, "a")
    await wait_all(db_path, last)
    for projector in ("results", "obs_events"):
        stream, durable = PROJECTORS[projector]
        await js.delete_consumer(stream, durable)
    more = await publish_mix(js, "b")
    await wait_all(db_path, more)
    snap = snapshot(db_path)
    assert len(snap["execution_results"]) == 6 and len(snap["obs_events"]) == 6
    for projector in ("results", "obs_events"):
        info = await durable_info(js, projector)
        assert info.config.opt_start_seq == last[projector] + 1, projector
        assert info.ack_floor.stream_seq == more[projector]


PREEXISTING = {
    # "The original" on an old version: deliver-all, no filter, part of the stream consumed.
    "unfiltered_partly_consumed": (dict(deliver_policy=DeliverPolicy.ALL), 3),
    # Created by hand with deliver-new after the messages were published.
    "deliver_new": (dict(deliver_policy=DeliverPolicy.NEW, filter_subject="obs.>"), 0),
    # Ack policy none: nothing would ever be redelivered after a crash.
    "ack_none": (
        dict(
            deliver_policy=DeliverPolicy.ALL,
            filter_subject="obs.>",
            ack_policy=AckPolicy.NONE,
        ),
        0,
    ),
}


@pytest.mark.parametrize("variant", PREEXISTING)
async def test_preexisting_durable_with_other_config_is_replaced(
    projectord_factory, js, db_path, variant
):
    await ensure_resources(js)
    seqs = [
        (await js.publish(f"obs.pc{i}", body(obs_event(f"pc{i}", event_record_id=str(i))))).seq
        for i in range(5)
    ]
    stream, durable = PROJECTORS["obs_events"]
    config, consume = PREEXISTING[variant]
    config = {"ack_policy": AckPolicy.EXPLICIT, **config}
    await js.add_consumer(stream, ConsumerConfig(durable_name=durable, **config))
    if consume:
        sub = await js.pull_subscribe_bind(durable=durable, stream=stream)
        for msg in await sub.fetch(consume, timeout=5):
            await msg.ack_sync()
        await sub.unsubscribe()
        assert (await durable_info(js, "obs_events")).ack_floor.stream_seq == seqs[consume - 1]

    await projectord_factory()
    await wait_checkpoint(db_path, "obs_events", seqs[-1])
    assert [r[0] for r in query(db_path, "SELECT event_record_id FROM obs_events ORDER BY 1")] == [
        str(i) for i in range(5)
    ]
    info = await durable_info(js, "obs_events")
    assert info.config.filter_subject == "obs.>"
    assert info.config.ack_policy == AckPolicy.EXPLICIT
    # Still consuming through the replaced durable.
    later = (await js.publish("obs.pc9", body(obs_event("pc9", event_record_id="9")))).seq
    await wait_checkpoint(db_path, "obs_events", later)
    assert query(db_path, "SELECT COUNT(*) FROM obs_events") == [(6,)]
