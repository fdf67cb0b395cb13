"""Housekeeping steps against a real SQLite file, and the watchdog's pure policy."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from projectord.database import create_writer_engine
from projectord.housekeeping.expiry import REAPER_NOTE, expire_pending, reap_orphans
from projectord.housekeeping.retention import RETENTION, cutoffs, delete_oldest
from projectord.housekeeping.watchdog import OutageEvent, event_body, sweep
from projectord.migrations import upgrade_to_head
from projectord.projectors import results
from projectord.schema import execution_results, executions, host_perf_samples
from projectord.server_settings import SettingsError, controller_group, prune_days
from projectord.timestamps import format_db

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def at(**delta: float) -> str:
    """NOW minus ``delta`` in storage format."""
    return format_db(NOW - timedelta(**delta))


@pytest.fixture
def engine(tmp_path):
    engine = create_writer_engine(tmp_path / "backend.db")
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def _execution(exec_id: str, initiated: str, status: str = "pending", target: int = 1) -> dict:
    return {
        "exec_id": exec_id,
        "job_id": "inv-hw",
        "version": "1.0.0",
        "initiated_by": "scheduler",
        "initiated_at": initiated,
        "target_count": target,
        "status": status,
    }


def _run(result_id: str, **row: object) -> dict:
    base = {
        "result_id": result_id,
        "request_id": "req-1",
        "exec_id": "e1",
        "pc_id": f"pc-{result_id}",
        "started_at": at(hours=1),
        "recorded_at": at(hours=1),
        "stderr": "",
        "expires_at": None,
        "finished_at": None,
        "exit_code": None,
    }
    return {**base, **row}


# --------------------------------------------------------------------------- expiry


def test_pending_executions_expire_after_the_limit_running_ones_never(engine):
    with engine.begin() as conn:
        conn.execute(
            insert(executions),
            [
                _execution("old-pending", at(hours=1, seconds=1)),
                _execution("young-pending", at(minutes=59)),
                _execution("old-running", at(hours=5), status="running"),
            ],
        )
        assert expire_pending(conn, NOW, timedelta(hours=1)) == 1
        status = dict(conn.execute(select(executions.c.exec_id, executions.c.status)).all())
    assert status == {
        "old-pending": "expired",
        "young-pending": "pending",
        "old-running": "running",
    }


def test_reaper_closes_orphans_notes_them_and_counts_failures(engine):
    with engine.begin() as conn:
        conn.execute(insert(executions), [_execution("e1", at(hours=2), "running", target=3)])
        conn.execute(
            insert(execution_results),
            [
                _run("past-deadline", expires_at=at(seconds=1)),
                _run("before-deadline", expires_at=format_db(NOW + timedelta(minutes=5))),
                _run("no-deadline-old", started_at=at(hours=24, seconds=1), stderr="warn"),
                _run("no-deadline-young", started_at=at(hours=23)),
                _run("finished", finished_at=at(minutes=1), exit_code=0, expires_at=at(hours=1)),
                _run("adhoc", exec_id=None, expires_at=at(seconds=1)),
            ],
        )
        assert reap_orphans(conn, NOW, timedelta(hours=24)) == 3
        rows = {r.result_id: r for r in conn.execute(select(execution_results)).all()}
        execution = conn.execute(select(executions)).one()

    for rid in ("past-deadline", "no-deadline-old", "adhoc"):
        assert (rows[rid].exit_code, rows[rid].reaped, rows[rid].finished_at) == (
            -1,
            1,
            format_db(NOW),
        ), rid
    assert rows["past-deadline"].stderr == REAPER_NOTE
    assert rows["no-deadline-old"].stderr == "warn\n" + REAPER_NOTE
    for rid in ("before-deadline", "no-deadline-young"):
        assert rows[rid].finished_at is None and rows[rid].reaped == 0, rid
    assert rows["finished"].exit_code == 0 and rows["finished"].reaped == 0
    # Two of e1's three runs were reaped (the ad-hoc one has no execution).
    assert (execution.success_count, execution.failure_count) == (0, 2)
    assert execution.status == "running"


def test_a_late_result_overwrites_a_reaped_run_without_a_second_count(engine):
    with engine.begin() as conn:
        conn.execute(insert(executions), [_execution("e1", at(hours=2), "running", target=1)])
        conn.execute(insert(execution_results), [_run("r1", expires_at=at(seconds=1))])
        assert reap_orphans(conn, NOW, timedelta(hours=24)) == 1
        assert conn.execute(select(executions.c.status)).scalar_one() == "completed"
        late = {
            **_run("r1"),
            "exit_code": 0,
            "stdout": "done",
            "stderr": "",
            "finished_at": at(seconds=0),
            "job_id": "inv-hw",
            "parent_result_id": None,
            "skipped": 0,
        }
        results.apply(conn, [results.ResultRecord(seq=1, row=late)])
        row = conn.execute(select(execution_results)).one()
        execution = conn.execute(select(executions)).one()
    assert (row.exit_code, row.reaped, row.stdout, row.stderr) == (0, 0, "done", "")
    assert (execution.success_count, execution.failure_count) == (0, 1)


def test_reaping_twice_changes_nothing_the_second_time(engine):
    with engine.begin() as conn:
        conn.execute(insert(executions), [_execution("e1", at(hours=2), "running", target=5)])
        conn.execute(insert(execution_results), [_run("r1", expires_at=at(seconds=1))])
        assert reap_orphans(conn, NOW, timedelta(hours=24)) == 1
        assert reap_orphans(conn, NOW + timedelta(minutes=5), timedelta(hours=24)) == 0
        assert conn.execute(select(executions.c.failure_count)).scalar_one() == 1


# --------------------------------------------------------------------------- retention


def _perf(n: int, age: timedelta) -> list[dict]:
    return [
        {"pc_id": f"pc{i}", "at": format_db(NOW - age - timedelta(seconds=i))} for i in range(n)
    ]


def test_delete_oldest_takes_the_oldest_rows_first_and_at_most_limit(engine):
    with engine.begin() as conn:
        conn.execute(insert(host_perf_samples), _perf(250, timedelta(days=31)))
        conn.execute(insert(host_perf_samples), _perf(50, timedelta(days=1)))
    cutoff = at(days=30)
    with engine.begin() as conn:
        deleted = delete_oldest(conn, host_perf_samples, host_perf_samples.c.at, cutoff, 100)
        left = conn.execute(
            select(func.min(host_perf_samples.c.at), func.count()).where(
                host_perf_samples.c.at < cutoff
            )
        ).one()
    assert deleted == 100
    # The 100 oldest went: the oldest left is the 151st oldest of the old ones.
    assert left == (format_db(NOW - timedelta(days=31, seconds=149)), 150)
    with engine.begin() as conn:
        while delete_oldest(conn, host_perf_samples, host_perf_samples.c.at, cutoff, 100):
            pass
        assert conn.execute(select(func.count()).select_from(host_perf_samples)).scalar() == 50


def test_retention_cutoffs_follow_the_config_and_zero_keeps_for_ever():
    options = {rule.days_key: 10 for rule in RETENTION} | {"audit_days": 0}
    by_table = {rule.table.name: c for rule, c in cutoffs(options, NOW).items()}
    assert "audit_log" not in by_table
    assert by_table["host_perf_samples"] == at(days=10)
    assert set(by_table) == {r.table.name for r in RETENTION} - {"audit_log"}


# --------------------------------------------------------------------------- server settings


@pytest.mark.parametrize(
    ("raw", "days"),
    [
        (None, 0),
        (b"", 0),
        (b"{}", 0),
        (b'{"agent_prune_days": null}', 0),
        (b'{"agent_prune_days": 0}', 0),
        (b'{"agent_prune_days": 30, "controller_group": "ops", "new_field": 1}', 30),
        (b'{"agent_prune_days": 36500}', 36500),
    ],
)
def test_prune_days_from_server_settings(raw, days):
    assert prune_days(raw) == days


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[30]", "JSON object"),
        (b'{"agent_prune_days": "30"}', "agent_prune_days"),
        (b'{"agent_prune_days": -1}', "agent_prune_days"),
        (b'{"agent_prune_days": 36501}', "agent_prune_days"),
        (b'{"agent_prune_days": true}', "agent_prune_days"),
        (b'{"agent_prune_days": 7.5}', "agent_prune_days"),
    ],
)
def test_bad_server_settings_name_the_problem(raw, message):
    with pytest.raises(SettingsError, match=message):
        prune_days(raw)


# --------------------------------------------------------------------------- watchdog policy

START = NOW - timedelta(hours=1)
THRESHOLD = timedelta(minutes=2)


def _sweep(outages: dict[str, str], *heartbeats: tuple[str, str | None]) -> list[OutageEvent]:
    return sweep(outages, heartbeats, NOW, START, THRESHOLD)


def test_a_stale_agent_goes_offline_once_keyed_by_its_last_heartbeat():
    hb = at(minutes=2, seconds=1)
    assert _sweep({}, ("pc1", hb)) == [OutageEvent("agent_offline", "pc1", hb, hb)]
    assert _sweep({"pc1": hb}, ("pc1", hb)) == []


def test_exactly_at_the_threshold_is_still_online():
    assert _sweep({}, ("pc1", at(minutes=2))) == []


def test_agents_not_heard_of_since_start_are_ignored():
    assert _sweep({}, ("pc1", format_db(START - timedelta(seconds=1))), ("pc2", None)) == []


def test_a_fresh_heartbeat_ends_the_outage():
    key, fresh = at(minutes=30), at(seconds=5)
    assert _sweep({"pc1": key}, ("pc1", fresh)) == [OutageEvent("agent_online", "pc1", key, fresh)]


def test_recovered_and_lost_between_sweeps_gives_online_then_a_new_offline():
    key, later = at(minutes=30), at(minutes=10)
    assert _sweep({"pc1": key}, ("pc1", later)) == [
        OutageEvent("agent_online", "pc1", key, later),
        OutageEvent("agent_offline", "pc1", later, later),
    ]


def test_event_body_follows_the_wire_contract():
    key = "2026-11-22T11:50:00.123456+00:00"
    body = json.loads(event_body(OutageEvent("agent_offline", "pc1", key, key), THRESHOLD))
    millis = calendar.timegm((2026, 11, 22, 11, 50, 0)) * 1000 + 123
    assert body == {
        "pc_id": "pc1",
        "at": "2026-11-22T11:50:00.123456Z",
        "kind": "agent_offline",
        "source": "backend:heartbeat-watchdog",
        "event_record_id": f"agent_offline:{millis}",
        "payload": {"last_heartbeat": "2026-11-22T11:50:00.123456Z", "threshold_secs": 120},
    }


@pytest.mark.parametrize(
    ("raw", "group"),
    [
        (None, None),
        (b"{}", None),
        (b'{"controller_group": ""}', None),
        (b'{"controller_group": "ops"}', "ops"),
    ],
)
def test_controller_group_from_server_settings(raw, group):
    assert controller_group(raw) == group


def test_bad_controller_group_names_the_field():
    with pytest.raises(SettingsError, match="controller_group"):
        controller_group(b'{"controller_group": ["ops"]}')
