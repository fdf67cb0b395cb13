"""The cleanup tick with a real nats-server and a real SQLite file.

The watchdog is driven through ``Housekeeping`` with a clock the test moves;
the daemon-level tests run projectord with housekeeping on and the real clock.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from harness import query, wait_checkpoint, wait_until
from sqlalchemy import insert
from wire import body, exec_result

from projectord.broker_resources import ensure_resources
from projectord.config import SCHEMA
from projectord.database import Writer, create_writer_engine
from projectord.housekeeping import Housekeeping
from projectord.migrations import upgrade_to_head
from projectord.schema import agents, execution_results, executions, host_perf_samples
from projectord.timestamps import format_db

DEFAULTS = {k.name: k.default for k in SCHEMA["housekeeping"]}


@pytest.fixture
async def writer(db_path):
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    w = Writer(engine)
    yield w
    w.close()


def _seed(writer: Writer, table, rows: list[dict]):
    def write(conn):
        conn.execute(insert(table), rows)

    return writer.transaction(write)


def _agent(pc_id: str, heartbeat: datetime) -> dict:
    stamp = format_db(heartbeat)
    return {"pc_id": pc_id, "last_heartbeat": stamp, "updated_at": stamp}


async def _set_heartbeat(writer: Writer, pc_id: str, when: datetime) -> None:
    def write(conn):
        stmt = agents.update().where(agents.c.pc_id == pc_id)
        conn.execute(stmt, {"last_heartbeat": format_db(when)})

    await writer.transaction(write)


async def _last_obs(js, pc_id: str) -> dict:
    msg = await js.get_last_msg("OBS_EVENTS", f"obs.{pc_id}")
    return json.loads(msg.data)


# --------------------------------------------------------------------------- watchdog


async def test_watchdog_publishes_offline_then_online_through_jetstream(js, writer):
    await ensure_resources(js)
    start = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    clock = [start + timedelta(minutes=10)]
    hk = Housekeeping(
        writer, js, DEFAULTS, asyncio.Event(), lambda: True, start, clock=lambda: clock[0]
    )
    last = start + timedelta(minutes=5)
    await _seed(
        writer,
        agents,
        [
            _agent("pc-lost", last),
            _agent("pc-alive", clock[0] - timedelta(seconds=30)),
            _agent("pc-before-start", start - timedelta(days=3)),
        ],
    )

    report = await hk.tick()
    assert report.events_published == 1 and report.failed == []
    offline = await _last_obs(js, "pc-lost")
    assert offline["kind"] == "agent_offline"
    assert offline["at"] == format_db(last)[:-6] + "Z"
    assert offline["event_record_id"] == f"agent_offline:{int(last.timestamp() * 1000)}"
    info = await js.stream_info("OBS_EVENTS")
    assert info.state.messages == 1  # nothing for the alive PC or the one seen before start

    # Still down at the next sweep (pc-alive keeps heartbeating): nothing new.
    clock[0] += timedelta(minutes=5)
    await _set_heartbeat(writer, "pc-alive", clock[0] - timedelta(seconds=30))
    assert (await hk.tick()).events_published == 0

    # Back: one agent_online keyed by the outage's last heartbeat.
    back = clock[0] - timedelta(seconds=10)
    await _set_heartbeat(writer, "pc-lost", back)
    assert (await hk.tick()).events_published == 1
    online = await _last_obs(js, "pc-lost")
    assert online["kind"] == "agent_online"
    assert online["at"] == format_db(back)[:-6] + "Z"
    assert online["event_record_id"] == offline["event_record_id"].replace("offline", "online")
    assert online["payload"] == {"last_heartbeat": offline["at"], "threshold_secs": 120}


async def test_a_failed_publish_is_retried_at_the_next_sweep(js, writer):
    await ensure_resources(js)
    start = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    now = start + timedelta(minutes=10)
    hk = Housekeeping(writer, js, DEFAULTS, asyncio.Event(), lambda: True, start, clock=lambda: now)
    await _seed(writer, agents, [_agent("pc1", start + timedelta(minutes=1))])

    await js.delete_stream("OBS_EVENTS")  # publishes now fail: no stream takes obs.>
    report = await hk.tick()
    assert report.events_published == 0 and hk.watchdog.outages == {}

    await ensure_resources(js)
    assert (await hk.tick()).events_published == 1
    assert (await _last_obs(js, "pc1"))["kind"] == "agent_offline"


# --------------------------------------------------------------------------- the daemon


async def test_projectord_runs_retention_expiry_reaping_and_prune(
    js, nats_server, db_path, projectord_factory
):
    now = datetime.now(UTC)
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    writer = Writer(engine)
    old = [
        {"pc_id": f"pc{i}", "at": format_db(now - timedelta(days=31, minutes=i))} for i in range(30)
    ]
    young = [{"pc_id": "pc0", "at": format_db(now - timedelta(days=1))}]
    await _seed(writer, host_perf_samples, old + young)
    await _seed(
        writer,
        executions,
        [
            {
                "exec_id": exec_id,
                "job_id": "inv-hw",
                "version": "1.0.0",
                "initiated_by": "scheduler",
                "initiated_at": format_db(now - age),
                "target_count": 1,
                "status": "pending",
            }
            for exec_id, age in (("stale", timedelta(hours=2)), ("fresh", timedelta(minutes=5)))
        ],
    )
    stamp = format_db(now - timedelta(hours=1))
    await _seed(
        writer,
        execution_results,
        [
            {
                "result_id": "orphan",
                "request_id": "req-o",
                "exec_id": "stale",
                "pc_id": "pc1",
                "started_at": stamp,
                "recorded_at": stamp,
                "expires_at": format_db(now - timedelta(minutes=1)),
            }
        ],
    )
    await _seed(
        writer,
        agents,
        [_agent("dead", now - timedelta(days=40)), _agent("quiet", now - timedelta(days=20))],
    )
    writer.close()
    await ensure_resources(js)
    kv = await js.key_value("server_settings")
    await kv.put("settings", b'{"agent_prune_days": 30}')

    await projectord_factory(housekeeping={"interval_s": 1, "delete_batch_rows": 100})

    def remaining() -> tuple:
        return (
            query(db_path, "SELECT COUNT(*) FROM host_perf_samples")[0][0],
            query(db_path, "SELECT exec_id, status FROM executions ORDER BY exec_id"),
            query(db_path, "SELECT reaped, exit_code FROM execution_results"),
            query(db_path, "SELECT pc_id FROM agents ORDER BY pc_id"),
        )

    # One tick runs the steps in order: wait for the last one's effect too.
    await wait_until(lambda: remaining()[2] == [(1, -1)] and remaining()[3] == [("quiet",)], 20)
    hosts, execs, reaped, left = remaining()
    assert hosts == 1
    # "stale" was pending, then its only run was reaped: one failure completes it.
    # Whichever ran first (expiry or reaping), the counter bump decides the status.
    assert dict(execs)["fresh"] == "pending"
    assert query(db_path, "SELECT failure_count FROM executions WHERE exec_id = 'stale'") == [(1,)]
    assert left == [("quiet",)]


async def test_reaping_waits_until_the_results_in_the_stream_are_applied(
    js, nats_server, db_path, projectord_factory
):
    """A run whose result waits behind a backlog is not reaped (and counted failed) first."""
    now = datetime.now(UTC)
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    writer = Writer(engine)
    await _seed(
        writer,
        executions,
        [
            {
                "exec_id": "e1",
                "job_id": "inv-hw",
                "version": "1.0.0",
                "initiated_by": "scheduler",
                "initiated_at": format_db(now - timedelta(hours=1)),
                "target_count": 1,
                "status": "running",
            }
        ],
    )
    stamp = format_db(now - timedelta(minutes=30))
    await _seed(
        writer,
        execution_results,
        [
            {
                "result_id": "late",
                "request_id": "req-late",
                "exec_id": "e1",
                "pc_id": "pc-late",
                "started_at": stamp,
                "recorded_at": stamp,
                "expires_at": format_db(now - timedelta(minutes=1)),
            }
        ],
    )
    writer.close()
    await ensure_resources(js)
    for i in range(1500):
        await js.publish_async(f"results.backlog-{i}", body(exec_result(f"b{i}", pc_id=f"pc{i}")))
    ack = await js.publish(
        "results.req-late",
        body(exec_result("late", request_id="req-late", pc_id="pc-late", exec_id="e1")),
    )

    # Small batches: the backlog takes many commits, the tick runs at once.
    await projectord_factory(batch_size=25, housekeeping={"interval_s": 1})
    await wait_checkpoint(db_path, "results", ack.seq)
    await asyncio.sleep(1.5)  # a tick with the projectors caught up
    assert query(
        db_path, "SELECT reaped, exit_code FROM execution_results WHERE result_id = 'late'"
    ) == [(0, 0)]
    assert query(db_path, "SELECT success_count, failure_count, status FROM executions") == [
        (1, 0, "completed")
    ]
