"""KV mirrors and the stream/consumer snapshot, with a real broker and SQLite file."""

from __future__ import annotations

import sqlite3

from harness import query, wait_checkpoint, wait_until
from sqlalchemy import select
from wire import body, exec_result

from projectord.broker_resources import ensure_resources
from projectord.database import create_writer_engine
from projectord.kv_mirror import KvValue, reconcile
from projectord.migrations import upgrade_to_head
from projectord.schema import kv_entries, kv_mirror_status

T = "2026-11-22T12:00:00.000000+00:00"


def mirrored(db_path, bucket: str) -> dict[str, str]:
    rows = query(db_path, "SELECT key, value FROM kv_entries WHERE bucket = ?", [bucket])
    return dict(rows)


def test_reconcile_writes_changed_rows_and_deletes_absent_keys(tmp_path):
    engine = create_writer_engine(tmp_path / "backend.db")
    upgrade_to_head(engine)
    with engine.begin() as conn:
        first = {"a": KvValue("1", 1, T), "b": KvValue("2", 2, T), "c": KvValue("3", 3, T)}
        assert reconcile(conn, "jobs", first) == (3, 0)
        assert reconcile(conn, "schedules", {"a": KvValue("x", 4, T)}) == (1, 0)
        # Same revisions: nothing written. "b" gone, "c" changed.
        second = {"a": KvValue("1", 1, T), "c": KvValue("3b", 5, T)}
        assert reconcile(conn, "jobs", second) == (1, 1)
        rows = conn.execute(select(kv_entries.c.bucket, kv_entries.c.key, kv_entries.c.value)).all()
        assert sorted(rows) == [("jobs", "a", "1"), ("jobs", "c", "3b"), ("schedules", "a", "x")]
        status = dict(
            conn.execute(select(kv_mirror_status.c.bucket, kv_mirror_status.c.key_count)).all()
        )
        assert status == {"jobs": 2, "schedules": 1}
    engine.dispose()


async def test_buckets_are_mirrored_and_follow_puts_and_deletes(js, db_path, projectord_factory):
    await ensure_resources(js)
    schedules = await js.key_value("schedules")
    jobs = await js.key_value("jobs")
    fleet = await js.key_value("fleet_config")
    groups = await js.key_value("agent_groups")
    await schedules.put("nightly", b'{"id":"nightly","v":1}')
    await schedules.put("weekly", b'{"id":"weekly"}')
    await jobs.put("inv-hw", b'{"id":"inv-hw"}')
    await fleet.put("freeze", b'{"active":false}')
    await groups.put("pc1", b'{"groups":["ops"]}')
    await (await js.key_value("server_settings")).put("settings", b"{}")  # not mirrored

    await projectord_factory()
    await wait_until(lambda: len(mirrored(db_path, "schedules")) == 2)
    await wait_until(lambda: mirrored(db_path, "agent_groups") == {"pc1": '{"groups":["ops"]}'})
    assert mirrored(db_path, "jobs") == {"inv-hw": '{"id":"inv-hw"}'}
    assert mirrored(db_path, "fleet_config") == {"freeze": '{"active":false}'}
    assert mirrored(db_path, "server_settings") == {}

    await schedules.put("nightly", b'{"id":"nightly","v":2}')
    await schedules.delete("weekly")
    await jobs.purge("inv-hw")
    await wait_until(
        lambda: mirrored(db_path, "schedules") == {"nightly": '{"id":"nightly","v":2}'}
    )
    await wait_until(lambda: mirrored(db_path, "jobs") == {})
    status = query(
        db_path, "SELECT bucket, key_count, synced_at IS NOT NULL, error FROM kv_mirror_status"
    )
    assert sorted(status) == [
        ("agent_groups", 1, 1, None),
        ("agent_groups_derived", 0, 1, None),
        ("fleet_config", 1, 1, None),
        ("jobs", 0, 1, None),
        ("schedules", 1, 1, None),
    ]


async def test_a_delete_made_while_projectord_was_down_is_reconciled(
    js, db_path, projectord_factory
):
    await ensure_resources(js)
    schedules = await js.key_value("schedules")
    await schedules.put("nightly", b"{}")
    await schedules.put("weekly", b"{}")
    first = await projectord_factory()
    await wait_until(lambda: len(mirrored(db_path, "schedules")) == 2)
    assert await first.stop() == 0

    await schedules.delete("weekly")
    await projectord_factory()
    await wait_until(lambda: mirrored(db_path, "schedules") == {"nightly": "{}"})


async def test_a_row_the_live_watch_missed_goes_at_the_periodic_resync(
    js, db_path, projectord_factory
):
    await ensure_resources(js)
    await (await js.key_value("jobs")).put("real", b"{}")
    await projectord_factory(kv_resync_s=5)
    await wait_until(lambda: mirrored(db_path, "jobs") == {"real": "{}"})
    # A key the watch never reported as deleted (as after an ordered-consumer reset).
    conn = sqlite3.connect(db_path, timeout=30)
    with conn:
        conn.execute(
            "INSERT INTO kv_entries (bucket, key, value, revision, written_at)"
            " VALUES ('jobs', 'ghost', '{}', 999, ?)",
            (T,),
        )
    conn.close()
    assert mirrored(db_path, "jobs") == {"real": "{}", "ghost": "{}"}
    await wait_until(lambda: mirrored(db_path, "jobs") == {"real": "{}"}, timeout=15)


async def test_stream_and_consumer_snapshots(js, db_path, projectord_factory):
    await projectord_factory(status_interval_s=0.5)
    last = None
    for i in range(20):
        last = await js.publish(f"results.req-{i}", body(exec_result(f"r{i}", pc_id=f"pc{i}")))
    await wait_checkpoint(db_path, "results", last.seq)

    def snapshot() -> tuple:
        streams = query(db_path, "SELECT stream, messages, first_seq, last_seq FROM broker_streams")
        consumers = query(
            db_path,
            "SELECT durable, pending, ack_pending, ack_floor_seq, delivered_seq"
            " FROM broker_consumers WHERE stream = 'RESULTS'",
        )
        return dict((s[0], s[1:]) for s in streams), consumers

    await wait_until(
        lambda: snapshot()[1] == [("backend_results_projector", 0, 0, last.seq, last.seq)],
        timeout=15,
    )
    streams, _ = snapshot()
    assert streams["RESULTS"] == (20, 1, 20)
    assert set(streams) >= {"RESULTS", "EVENTS", "AUDIT", "OBS_EVENTS", "EXEC"}
    durables = {r[0] for r in query(db_path, "SELECT durable FROM broker_consumers")}
    assert len(durables) == 4  # one per JetStream projector
