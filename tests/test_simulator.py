"""The fleet simulator: its agents' bodies, its run policy, and a fire end to end."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from harness import connect, query, wait_until

from projectord.broker_resources import ensure_resources
from projectord.database import Writer, create_writer_engine
from projectord.projectors import events, heartbeat, host_perf, obs_events, results
from projectord.projectors.contract import Delivery
from projectord.scheduler.tick import Scheduler
from projectord.simulator.fleet import heartbeat as heartbeat_body
from projectord.simulator.fleet import host_perf as host_perf_body
from projectord.simulator.fleet import make_fleet
from projectord.simulator.fleet import obs_event as obs_body
from projectord.simulator.runs import (
    Command,
    parse_command,
    plan_run,
    result_body,
    started_body,
)
from projectord.simulator.simulate import Simulator
from projectord.timestamps import format_wire

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CMD = Command("inv-hw", "1.0.0", "req-1", "exec-1", timedelta(minutes=10), timedelta(0), None)


def delivery(subject: str, body: bytes) -> Delivery:
    return Delivery(subject, body, 1, "2026-11-22T12:00:00.000000+00:00")


def test_the_fleet_is_reproducible_and_varied():
    a, b = make_fleet(200, seed=7), make_fleet(200, seed=7)
    assert [x.pc_id for x in a] == [x.pc_id for x in b]
    assert a[0].pc_id == "sim-00001" and a[-1].pc_id == "sim-00200"
    assert {x.os_family for x in a} == {"windows", "linux"}
    assert {g for x in a for g in x.groups} == {"office", "lab", "kiosk", "servers"}


def test_every_body_the_agents_send_is_accepted_by_our_projectors():
    """The simulator speaks the contract: each body decodes without a reject."""
    agent = make_fleet(1)[0]
    heartbeat.PROJECTOR.decode(delivery("heartbeat.sim-00001", heartbeat_body(agent, NOW)))
    host_perf.PROJECTOR.decode(delivery("host_perf.sim-00001", host_perf_body(agent, NOW)))
    obs_events.PROJECTOR.decode(delivery("obs.sim-00001", obs_body(agent, NOW, 1)))
    started = started_body(agent, CMD, "r-1", NOW)
    rec = events.PROJECTOR.decode(delivery("events.started.exec-1.sim-00001", started))
    assert rec.row["started_at"] == "2026-11-22T12:00:00.000000+00:00"
    res = result_body(agent, CMD, "r-1", NOW, NOW + timedelta(seconds=2), 0, "ok", "")
    rec = results.PROJECTOR.decode(delivery("results.req-1", res))
    assert (rec.row["result_id"], rec.row["exit_code"], rec.row["job_id"]) == ("r-1", 0, "inv-hw")
    # Timestamps carry nine fraction digits and a Z, as chrono writes them.
    assert json.loads(started)["started_at"] == "2026-11-22T12:00:00.000000789Z"


def test_a_command_past_its_deadline_is_reported_skipped_125():
    agent = make_fleet(1)[0]
    res = json.loads(result_body(agent, CMD, "r", NOW, NOW, 125, "", "", skipped=True))
    assert (res["exit_code"], res["skipped"]) == (125, True)


def test_run_plans_are_mostly_successes_and_never_overflow_a_broadcast():
    agents = make_fleet(2000)
    plans = [plan_run(a, CMD, 1.0, allow_overflow=False) for a in agents]
    ok = sum(p.exit_code == 0 for p in plans)
    assert 0.85 * len(plans) < ok < 0.95 * len(plans)
    assert max(len(p.stdout) for p in plans) <= 2000
    assert all(0.2 <= p.duration <= 2.0 for p in plans)


def test_parse_command_reads_what_the_scheduler_sends():
    body = {
        "id": "inv-hw",
        "version": "1.0.0",
        "request_id": "q",
        "exec_id": "e",
        "shell": "sh",
        "script": "true",
        "timeout_secs": 60,
        "jitter_secs": 5,
        "deadline_at": format_wire(NOW),
    }
    cmd = parse_command(json.dumps(body).encode())
    assert (cmd.exec_id, cmd.jitter, cmd.deadline_at) == ("e", timedelta(seconds=5), NOW)


async def test_a_calendar_fire_is_answered_by_simulated_agents(
    nats_server, js, db_path, projectord_factory
):
    """Scheduler fires, 20 simulated agents run it, the execution completes."""
    await ensure_resources(js)
    job = {
        "id": "inv-hw",
        "version": "1.0.0",
        "execute": {"shell": "powershell", "script": "Get-CimInstance Win32_BIOS", "timeout": "5m"},
    }
    await (await js.key_value("jobs")).put("inv-hw", json.dumps(job).encode())
    first_minute = datetime.now(UTC).replace(second=0, microsecond=0)
    fire_at = first_minute + timedelta(minutes=1)
    schedule = {
        "id": "inventory",
        "when": {"calendar": {"at": fire_at.strftime("%Y-%m-%d %H:%M")}},
        "job_id": "inv-hw",
        "target": {"all": True},
        "jitter": "2s",
        "starting_deadline": "10m",
        "tz": "utc",
    }
    await (await js.key_value("schedules")).put("inventory", json.dumps(schedule).encode())
    await projectord_factory()  # projectors and mirrors; the scheduler is driven below

    sim_nc = await connect(nats_server)
    stop = asyncio.Event()
    sim = Simulator(sim_nc, make_fleet(20), stop, heartbeat_s=1, duration_scale=2.0)
    sim_task = asyncio.create_task(sim.run())
    try:
        await wait_until(lambda: query(db_path, "SELECT COUNT(*) FROM agents")[0][0] == 20)
        await wait_until(
            lambda: (
                query(db_path, "SELECT COUNT(*) FROM kv_entries WHERE bucket = 'schedules'")
                == [(1,)]
            )
        )
        engine = create_writer_engine(db_path)
        writer = Writer(engine)
        clock = [first_minute]
        scheduler = Scheduler(
            js, writer, {"catch_up_grace_s": 0}, asyncio.Event(), lambda: clock[0]
        )
        await scheduler.tick(first_minute)  # registers the schedule
        await scheduler.settle()
        clock[0] = fire_at + timedelta(milliseconds=50)
        await scheduler.tick(clock[0])
        await scheduler.settle()
        writer.close()
        assert query(db_path, "SELECT outcome FROM schedule_fires") == [("fired",)]

        seen: list[str] = []

        def status() -> str:
            [(value, target)] = query(db_path, "SELECT status, target_count FROM executions")
            assert target == 20
            if not seen or seen[-1] != value:
                seen.append(value)
            return value

        await wait_until(lambda: status() == "completed", timeout=30)
        assert seen[-2:] == ["running", "completed"] and seen[0] in ("pending", "running")
        rows = query(
            db_path,
            "SELECT COUNT(*), SUM(exit_code = 0), COUNT(DISTINCT pc_id) FROM execution_results",
        )
        assert rows[0][0] == 20 and rows[0][2] == 20
        counts = query(db_path, "SELECT success_count + failure_count FROM executions")
        assert counts == [(20,)]
    finally:
        stop.set()
        await sim_task
        await sim_nc.close()
