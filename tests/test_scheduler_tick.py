"""The scheduler tick against a real broker and SQLite file, with a clock the test moves."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from datetime import UTC, datetime, timedelta

import nats.js.errors
import pytest
from harness import query, spawn_projectord, wait_until
from sqlalchemy import insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from projectord.broker_resources import ensure_resources
from projectord.database import Writer, create_writer_engine
from projectord.kv_mirror import KvValue, reconcile
from projectord.migrations import upgrade_to_head
from projectord.scheduler.tick import Scheduler
from projectord.scheduler.waves import WaveSender
from projectord.schema import agents, execution_results
from projectord.timestamps import format_db

DAY1 = datetime(2026, 11, 23, tzinfo=UTC)
JOB = {
    "id": "inv-hw",
    "version": "1.0.0",
    "execute": {"shell": "powershell", "script": "Get-CimInstance Win32_BIOS", "timeout": "10m"},
}


def at(hour: int, minute: int, day: int = 0) -> datetime:
    """A tick a little after the minute, as the loop runs it."""
    return DAY1 + timedelta(days=day, hours=hour, minutes=minute, milliseconds=50)


def calendar(**fields) -> dict:
    return {
        "id": "nightly",
        "when": {"calendar": {"at": "09:00"}},
        "job_id": "inv-hw",
        "target": {"all": True},
        "tz": "utc",
        **fields,
    }


class Rig:
    """A migrated DB, the broker resources, the mirrored buckets and a scheduler."""

    def __init__(self, js, writer: Writer) -> None:
        self.js, self.writer = js, writer
        self.now = at(8, 0)
        self.options = {"catch_up_grace_s": 0}
        self.alive: set[str] = set()
        self.revision = 0  # KV revisions grow, as the broker's do
        self.scheduler = self.new_scheduler()

    def new_scheduler(self) -> Scheduler:
        return Scheduler(self.js, self.writer, self.options, asyncio.Event(), lambda: self.now)

    async def mirror(self, bucket: str, values: dict[str, object]) -> None:
        stamp = format_db(self.now)
        snapshot = {}
        for key, value in values.items():
            self.revision += 1
            snapshot[key] = KvValue(json.dumps(value), self.revision, stamp)
        await self.writer.transaction(reconcile, bucket, snapshot)

    async def job(self, **changes) -> None:
        await (await self.js.key_value("jobs")).put(
            "inv-hw", json.dumps({**JOB, **changes}).encode()
        )

    async def agents(self, *pcs: str) -> None:
        """Agents that keep heartbeating: refreshed before every tick."""
        self.alive.update(pcs)
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        hb = format_db(self.now - timedelta(seconds=30))

        def write(conn):
            rows = [{"pc_id": pc, "last_heartbeat": hb, "updated_at": hb} for pc in self.alive]
            stmt = sqlite_insert(agents).values(rows)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["pc_id"], set_={"last_heartbeat": hb, "updated_at": hb}
                )
            )

        if self.alive:
            await self.writer.transaction(write)

    async def tick(self, when: datetime, scheduler: Scheduler | None = None) -> None:
        self.now = when
        await self._heartbeat()
        s = scheduler or self.scheduler
        await s.tick(when)
        await s.settle()

    def fires(self) -> list[tuple]:
        return query(
            self.writer_db,
            "SELECT due_at, outcome, reason, exec_id IS NOT NULL FROM schedule_fires ORDER BY id",
        )


@pytest.fixture
async def rig(js, db_path):
    await ensure_resources(js)
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    writer = Writer(engine)
    r = Rig(js, writer)
    r.writer_db = db_path
    await r.mirror("fleet_config", {})  # mirrored, no freeze
    await r.job()
    yield r
    writer.close()


async def last_command(js, subject: str) -> dict:
    return json.loads((await js.get_last_msg("EXEC", subject)).data)


async def exec_messages(js) -> int:
    return (await js.stream_info("EXEC")).state.messages


# --------------------------------------------------------------------------- calendar


async def test_a_calendar_schedule_fires_at_its_time_once(rig, js, db_path):
    await rig.mirror("schedules", {"nightly": calendar(starting_deadline="30m")})
    await rig.agents("pc-1", "pc-2")
    await rig.tick(at(8, 59))  # first sight: registered, nothing due
    assert rig.fires() == [] and await exec_messages(js) == 0

    await rig.tick(at(9, 0))
    [(due, outcome, reason, has_exec)] = rig.fires()
    assert (due, outcome, reason, has_exec) == (
        format_db(DAY1 + timedelta(hours=9)),
        "fired",
        None,
        1,
    )
    cmd = await last_command(js, "commands.all")
    assert cmd["id"] == "inv-hw" and cmd["version"] == "1.0.0" and cmd["timeout_secs"] == 600
    assert cmd["deadline_at"] == "2026-11-23T09:30:00.000000Z"
    execs = query(
        db_path,
        "SELECT exec_id, job_id, initiated_by, target_count, status, schedule_id FROM executions",
    )
    assert execs == [(cmd["exec_id"], "inv-hw", "scheduler", 2, "pending", "nightly")]
    audit = json.loads((await js.get_last_msg("AUDIT", "audit.scheduler.exec.inv-hw")).data)
    assert audit["payload"]["exec_id"] == cmd["exec_id"]
    assert audit["payload"]["subjects"] == ["commands.all"]
    current = await (await js.key_value("script_current")).get("inv-hw")
    assert current.value == b"1.0.0"

    await rig.tick(at(9, 1))
    await rig.tick(at(9, 2))
    assert len(rig.fires()) == 1 and await exec_messages(js) == 1


async def test_a_fire_missed_while_down_is_caught_up_once_within_the_deadline(rig, js):
    await rig.mirror("schedules", {"nightly": calendar(starting_deadline="30m")})
    await rig.agents("pc-1")
    await rig.tick(at(8, 0))
    # projectord is down from 08:01 to 09:20; the 09:00 fire is still within 30 min.
    restarted = rig.new_scheduler()
    await rig.tick(at(9, 20), restarted)
    assert [f[1] for f in rig.fires()] == ["fired"]
    cmd = await last_command(js, "commands.all")
    assert cmd["deadline_at"] == "2026-11-23T09:30:00.000000Z"  # from the fire time
    # Another restart right after: never a second fire.
    await rig.tick(at(9, 21), rig.new_scheduler())
    assert [f[1] for f in rig.fires()] == ["fired"] and await exec_messages(js) == 1


async def test_a_fire_missed_beyond_the_deadline_is_recorded_not_sent(rig, js):
    await rig.mirror("schedules", {"nightly": calendar()})  # no starting_deadline
    await rig.agents("pc-1")
    await rig.tick(at(8, 0))
    await rig.tick(at(9, 5, day=2), rig.new_scheduler())  # down for two days
    # Three missed fires, one row: identical consecutive skips are counted, not repeated.
    rows = query(
        rig.writer_db, "SELECT due_at, last_due_at, repeats, outcome, reason FROM schedule_fires"
    )
    assert rows == [
        (
            format_db(DAY1 + timedelta(hours=9)),
            format_db(DAY1 + timedelta(days=2, hours=9)),
            3,
            "skipped",
            "missed while projectord was down",
        )
    ]
    assert await exec_messages(js) == 0


async def test_a_job_edited_between_ticks_is_used_at_the_next_fire(rig, js):
    await rig.mirror("schedules", {"nightly": calendar()})
    await rig.agents("pc-1")
    await rig.tick(at(8, 0))
    await rig.tick(at(9, 0))
    assert (await last_command(js, "commands.all"))["version"] == "1.0.0"
    await rig.job(version="1.1.0")
    await rig.agents("pc-2")
    await rig.tick(at(9, 0, day=1))
    assert (await last_command(js, "commands.all"))["version"] == "1.1.0"


async def test_freeze_fails_closed_and_records_why(rig, js):
    await rig.mirror("schedules", {"nightly": calendar()})
    await rig.mirror("fleet_config", {"freeze": {"reason": "release week"}})
    await rig.agents("pc-1")
    await rig.tick(at(8, 0))
    await rig.tick(at(9, 0))
    assert [f[1:3] for f in rig.fires()] == [("skipped", "frozen (release week)")]
    await rig.mirror("fleet_config", {"freeze": "not an object"})
    await rig.tick(at(9, 0, day=1))
    assert rig.fires()[-1][1:3] == ("skipped", "frozen (freeze value is not a JSON object)")
    assert await exec_messages(js) == 0


async def test_an_invalid_schedule_is_recorded_and_the_others_still_fire(rig, js, db_path):
    bad = calendar(id="broken", when={"calendar": {"at": "25:00"}})
    await rig.mirror("schedules", {"broken": bad, "nightly": calendar()})
    await rig.agents("pc-1")
    await rig.tick(at(8, 0))
    await rig.tick(at(9, 0))
    assert [f[1] for f in rig.fires()] == ["fired"]
    [(kind, key, error)] = query(db_path, "SELECT kind, key, error FROM scheduler_rejects")
    assert (kind, key) == ("schedule", "broken") and "when.calendar.at" in error
    # Fixed in KV: the reject goes.
    await rig.mirror("schedules", {"broken": calendar(id="broken"), "nightly": calendar()})
    await rig.tick(at(9, 1))
    assert query(db_path, "SELECT COUNT(*) FROM scheduler_rejects") == [(0,)]


async def test_a_missing_job_skips_with_the_reason(rig, js):
    await rig.mirror("schedules", {"nightly": calendar(job_id="nope")})
    await rig.tick(at(8, 0))
    await rig.tick(at(9, 0))
    assert [f[1:3] for f in rig.fires()] == [("skipped", "job not registered: nope")]


# --------------------------------------------------------------------------- reconcile


def per_pc(**fields) -> dict:
    return {
        "id": "baseline",
        "when": {"per_pc": {"every": "1d"}},
        "job_id": "inv-hw",
        "target": {"all": True},
        "tz": "utc",
        **fields,
    }


async def succeeded(rig: Rig, pc: str, finished: datetime) -> None:
    stamp = format_db(finished)

    def write(conn):
        conn.execute(
            insert(execution_results),
            [
                {
                    "result_id": f"r-{pc}-{stamp}",
                    "request_id": "q",
                    "pc_id": pc,
                    "exit_code": 0,
                    "job_id": "inv-hw",
                    "started_at": stamp,
                    "finished_at": stamp,
                    "recorded_at": stamp,
                }
            ],
        )

    await rig.writer.transaction(write)


async def test_per_pc_fires_at_pcs_without_a_recent_success_and_marks_them(rig, js):
    await rig.mirror("schedules", {"baseline": per_pc()})
    rig.now = at(9, 0)
    await rig.agents("pc-1", "pc-2", "pc-3")
    await succeeded(rig, "pc-1", rig.now - timedelta(hours=2))  # within the cooldown
    await succeeded(rig, "pc-2", rig.now - timedelta(days=1))  # exactly the cooldown ago

    await rig.tick(at(9, 0))
    assert [f[1] for f in rig.fires()] == ["fired"]
    sent = {s: await last_command(js, f"commands.pc.{s}") for s in ("pc-2", "pc-3")}
    assert sent["pc-2"]["exec_id"] == sent["pc-3"]["exec_id"]
    assert sent["pc-2"]["request_id"] != sent["pc-3"]["request_id"]
    with pytest.raises(nats.js.errors.NotFoundError):
        await last_command(js, "commands.pc.pc-1")

    # A minute later the marks suppress a re-dispatch; the decision is recorded.
    await rig.tick(at(9, 1))
    assert rig.fires()[-1][1:3] == ("skipped", "every eligible PC has a dispatch in flight")
    assert await exec_messages(js) == 2


async def test_per_pc_respects_max_concurrent(rig, js):
    await rig.mirror("schedules", {"baseline": per_pc(constraints={"max_concurrent": 2})})
    rig.now = at(9, 0)
    await rig.agents("pc-1", "pc-2", "pc-3")
    await rig.tick(at(9, 0))
    assert await exec_messages(js) == 2  # pc-1 and pc-2, in order


async def test_per_target_stops_once_any_pc_succeeded_even_offline(rig, js):
    await rig.mirror("schedules", {"baseline": per_pc(when={"per_target": "once"})})
    rig.now = at(9, 0)
    await rig.agents("pc-1")
    hb = format_db(rig.now - timedelta(days=3))  # went offline after succeeding

    def offline(conn):
        conn.execute(insert(agents), [{"pc_id": "pc-old", "last_heartbeat": hb, "updated_at": hb}])

    await rig.writer.transaction(offline)
    await succeeded(rig, "pc-old", rig.now - timedelta(days=3))
    await rig.tick(at(9, 0))
    assert rig.fires()[-1][1:3] == ("skipped", "target already succeeded")
    assert await exec_messages(js) == 0


# --------------------------------------------------------------------------- rollout waves


async def test_delayed_rollout_waves_survive_a_restart(rig, js, db_path):
    rollout = {"waves": [{"group": "canary", "delay": "0s"}, {"group": "office", "delay": "1h"}]}
    await rig.mirror("schedules", {"nightly": calendar(rollout=rollout)})
    await rig.agents("pc-1")
    await rig.tick(at(8, 0))
    await rig.tick(at(9, 0))
    first = await last_command(js, "commands.group.canary")
    assert query(db_path, "SELECT subject FROM pending_waves") == [("commands.group.office",)]

    # A new process (new sender) after the delay sends the persisted wave once.
    sender = WaveSender(js, rig.writer, asyncio.Event(), clock=lambda: at(10, 0))
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0
    second = await last_command(js, "commands.group.office")
    assert second["exec_id"] == first["exec_id"]
    assert query(db_path, "SELECT COUNT(*) FROM pending_waves") == [(0,)]


# --------------------------------------------------------------------------- in projectord


async def test_projectord_fires_a_schedule_from_kv(js, db_path, projectord_factory):
    await ensure_resources(js)
    await (await js.key_value("jobs")).put("inv-hw", json.dumps(JOB).encode())
    schedule = {
        "id": "once-on-pc1",
        "when": {"per_target": "once"},
        "job_id": "inv-hw",
        "target": {"pcs": ["pc-1"]},
    }
    await (await js.key_value("schedules")).put("once-on-pc1", json.dumps(schedule).encode())
    await projectord_factory(scheduler={"enabled": True})

    def decided() -> list:
        return query(db_path, "SELECT outcome, exec_id FROM schedule_fires")

    # The decision is recorded last, after the executions row.
    await wait_until(decided, timeout=20)
    [(outcome, exec_id)] = decided()
    assert outcome == "fired"
    cmd = await last_command(js, "commands.pc.pc-1")
    assert (cmd["id"], cmd["exec_id"]) == ("inv-hw", exec_id)
    assert query(db_path, "SELECT schedule_id FROM executions") == [("once-on-pc1",)]


async def test_a_failed_dispatch_is_recorded_and_leaves_the_pcs_armed(rig, js, db_path):
    # The job's script object is missing from the scripts store: dispatch fails.
    await rig.job(execute={"shell": "sh", "script_object": "inv-hw/9.9.9", "timeout": "1m"})
    await rig.mirror("schedules", {"baseline": per_pc()})
    rig.now = at(9, 0)
    await rig.agents("pc-1")
    await rig.tick(at(9, 0))
    await rig.tick(at(9, 1))
    rows = query(db_path, "SELECT outcome, reason, repeats FROM schedule_fires ORDER BY id")
    assert [r[0] for r in rows] == ["failed", "failed"]  # retried: no mark was written
    assert "inv-hw/9.9.9" in rows[0][1]
    assert await exec_messages(js) == 0
    assert query(db_path, "SELECT COUNT(*) FROM executions") == [(0,)]


async def test_marks_of_a_large_fleet_are_read_in_one_pass(rig, js):
    """After a restart, marks of many PCs are read with one watch over the prefix."""
    await rig.mirror("schedules", {"baseline": per_pc()})
    rig.now = at(9, 0)
    await rig.agents(*(f"pc-{i:03d}" for i in range(100)))
    await rig.tick(at(9, 0))
    assert await exec_messages(js) == 100
    marks = await js.key_value("scheduler_dispatch")
    assert len(await marks.keys()) == 100
    await rig.tick(at(9, 1), rig.new_scheduler())  # restarted: nothing cached
    assert rig.fires()[-1][1:3] == ("skipped", "every eligible PC has a dispatch in flight")
    assert await exec_messages(js) == 100


# --------------------------------------------------------------------------- controller tier


async def test_controller_jobs_run_only_on_alive_controller_members(rig, js, db_path):
    await rig.job(tier="controller")
    await rig.mirror("schedules", {"nightly": calendar()})
    await rig.mirror("agent_groups", {"pc-2": {"groups": ["ctl"]}, "pc-9": {"groups": ["ctl"]}})
    await rig.agents("pc-1", "pc-2", "pc-3")  # pc-9 is a controller but offline
    settings = await js.key_value("server_settings")

    await rig.tick(at(8, 0))
    await rig.tick(at(9, 0))  # no controller_group yet: refused
    assert rig.fires()[-1][1:3] == (
        "skipped",
        "controller-tier job: no controller_group in server settings",
    )

    await settings.put("settings", b'{"controller_group": "ctl"}')
    await rig.tick(at(9, 0, day=1))
    assert rig.fires()[-1][1] == "fired"
    assert (await last_command(js, "commands.pc.pc-2"))["id"] == "inv-hw"
    assert await exec_messages(js) == 1  # only pc-2: no commands.all
    assert query(db_path, "SELECT target_count FROM executions") == [(1,)]


async def test_controller_jobs_refuse_rollouts(rig, js):
    await rig.job(tier="controller")
    await (await js.key_value("server_settings")).put("s", b'{"controller_group": "ctl"}')
    rollout = {"waves": [{"group": "ctl", "delay": "0s"}]}
    await rig.mirror("schedules", {"nightly": calendar(rollout=rollout)})
    await rig.agents("pc-1")
    await rig.tick(at(8, 0))
    await rig.tick(at(9, 0))
    assert rig.fires()[-1][1:3] == ("skipped", "controller-tier job: rollouts are refused")
    assert await exec_messages(js) == 0


async def test_max_concurrent_counts_dispatched_pcs_that_have_not_started(rig, js):
    await rig.mirror("schedules", {"baseline": per_pc(constraints={"max_concurrent": 2})})
    rig.now = at(9, 0)
    await rig.agents("pc-1", "pc-2", "pc-3")
    await rig.tick(at(9, 0))  # pc-1 and pc-2 dispatched, still sleeping their jitter
    await rig.tick(at(9, 1))
    assert rig.fires()[-1][1:3] == ("skipped", "max_concurrent reached (2 in flight)")
    assert await exec_messages(js) == 2


async def test_two_projectords_on_one_database_fire_once(nats_server, js, db_path, tmp_path):
    """Only the holder of the database lock runs the scheduler: the second refuses to start."""
    await ensure_resources(js)
    await (await js.key_value("jobs")).put("inv-hw", json.dumps(JOB).encode())
    schedule = {
        "id": "s",
        "when": {"per_target": "once"},
        "job_id": "inv-hw",
        "target": {"pcs": ["pc-1"]},
    }
    await (await js.key_value("schedules")).put("s", json.dumps(schedule).encode())
    config = tmp_path / "with-scheduler.toml"
    config.write_text("[housekeeping]\nenabled = false\n")
    first = spawn_projectord(nats_server, db_path, "--config", str(config))

    def fired() -> bool:
        try:
            return bool(query(db_path, "SELECT outcome FROM schedule_fires"))
        except sqlite3.OperationalError:  # the schema is not there yet
            return False

    try:
        await wait_until(fired, 30)
        second = spawn_projectord(nats_server, db_path, "--config", str(config))
        assert second.wait(30) == 1
        assert query(db_path, "SELECT outcome FROM schedule_fires") == [("fired",)]
        assert query(db_path, "SELECT COUNT(*) FROM executions") == [(1,)]
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0


async def test_ticks_of_one_schedule_never_overlap(rig, js):
    await rig.mirror("schedules", {"nightly": calendar(starting_deadline="30m")})
    await rig.agents("pc-1")
    await rig.tick(at(8, 59))
    # Hold the 09:00 dispatch as a slow broker would, past the next minute's tick.
    release = asyncio.Event()
    dispatch = rig.scheduler.dispatcher.dispatch

    async def slow_dispatch(*args, **kwargs):
        await release.wait()
        return await dispatch(*args, **kwargs)

    rig.scheduler.dispatcher.dispatch = slow_dispatch
    rig.now = at(9, 0)
    await rig.scheduler.tick(rig.now)
    await asyncio.sleep(0.2)
    rig.now = at(9, 1)
    await rig.scheduler.tick(rig.now)  # the 09:00 tick is still sending
    release.set()
    await rig.scheduler.settle()
    outcomes = sorted((f[1], f[2]) for f in rig.fires())
    assert outcomes == [("fired", None), ("skipped", "previous tick still running")]
    assert await exec_messages(js) == 1


async def test_schedules_that_run_on_the_agent_are_not_fired(rig, js):
    await rig.mirror("schedules", {"nightly": calendar(runs_on="agent")})
    await rig.agents("pc-1")
    await rig.tick(at(8, 59))
    await rig.tick(at(9, 0))
    assert rig.fires() == [] and await exec_messages(js) == 0
