"""AUDIT -> audit_log and OBS_EVENTS -> obs_events (projection-semantics.md 7.1, 7.2)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from harness import query, wait_checkpoint
from wire import audit_event, body, db_ts, obs_event


def wipe_db(db_path: Path) -> None:
    """Delete the database the way an operator would: the file and its WAL companions."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    assert not db_path.exists()


def forget_checkpoint(db_path: Path, projector: str) -> None:
    """Lose a projector's position while its rows stay (e.g. a hand-edited database)."""
    conn = sqlite3.connect(db_path, timeout=30)
    conn.execute("DELETE FROM projector_checkpoints WHERE projector = ?", (projector,))
    conn.commit()
    conn.close()


async def publish_audit(js, event, subject=None):
    subject = subject or f"audit.{event['actor']}.{event['action']}"
    return (await js.publish(subject, body(event))).seq


# --- audit ----------------------------------------------------------------------


async def test_audit_row_fields(projectord, js, db_path):
    payload = {"exec_id": "e-1", "subjects": ["commands.all"], "wave_mode": False, "n": 3}
    event = audit_event("scheduler", "exec", "inv-hw", payload)
    event["occurred_at"] = "2026-05-20T21:00:00.987654321+09:00"
    event["extra_key"] = "readers ignore unknown keys"
    a = await publish_audit(js, event, "audit.scheduler.exec.inv-hw")
    no_target = {**audit_event("operator", "freeze_set", None, {"reason": "ゴールデンウィーク"})}
    b = await publish_audit(js, no_target)
    scalar = audit_event("cli", "note", "x", "just a string")
    c = await publish_audit(js, scalar)
    await wait_checkpoint(db_path, "audit", c)
    rows = query(
        db_path,
        "SELECT actor, action, target, payload, occurred_at, stream_seq FROM audit_log"
        " ORDER BY stream_seq",
    )
    assert [r[5] for r in rows] == [a, b, c]
    actor, action, target, text, occurred_at, _ = rows[0]
    assert (actor, action, target) == ("scheduler", "exec", "inv-hw")
    assert isinstance(text, str) and json.loads(text) == payload
    assert occurred_at == "2026-05-20T12:00:00.987654+00:00", "offset converted to UTC"
    assert rows[1][2] is None
    assert json.loads(rows[1][3]) == {"reason": "ゴールデンウィーク"}
    assert rows[1][4] == db_ts(0)
    assert json.loads(rows[2][3]) == "just a string"


async def test_identical_audit_bodies_at_different_seqs_are_two_rows(projectord, js, db_path):
    event = audit_event("operator", "job_upsert", "inv-hw", {"version": "1.0.1"})
    a = await publish_audit(js, event)
    b = await publish_audit(js, event)
    await wait_checkpoint(db_path, "audit", b)
    rows = query(db_path, "SELECT stream_seq, actor, action, payload FROM audit_log ORDER BY id")
    assert [r[0] for r in rows] == [a, b]
    assert rows[0][1:] == rows[1][1:]


async def test_audit_replay_after_wiped_db_does_not_duplicate(projectord_factory, js, db_path):
    p = await projectord_factory()
    seqs = [await publish_audit(js, audit_event(payload={"i": i})) for i in range(4)]
    await wait_checkpoint(db_path, "audit", seqs[-1])
    await p.stop()
    wipe_db(db_path)
    await projectord_factory()
    await wait_checkpoint(db_path, "audit", seqs[-1])
    rows = query(db_path, "SELECT stream_seq, payload FROM audit_log ORDER BY stream_seq")
    assert rows == [(s, json.dumps({"i": i}, separators=(",", ":"))) for i, s in enumerate(seqs)]


async def test_audit_dedups_on_stream_seq_when_replayed_over_existing_rows(
    projectord_factory, js, db_path
):
    p = await projectord_factory()
    seqs = [await publish_audit(js, audit_event(payload={"i": i})) for i in range(3)]
    await wait_checkpoint(db_path, "audit", seqs[-1])
    await p.stop()
    # The rows stay but the position is lost: the whole stream is replayed over them.
    forget_checkpoint(db_path, "audit")
    p = await projectord_factory()
    later = await publish_audit(js, audit_event(payload={"i": 3}))
    await wait_checkpoint(db_path, "audit", later)
    rows = query(db_path, "SELECT stream_seq FROM audit_log ORDER BY stream_seq")
    assert rows == [(s,) for s in [*seqs, later]], "replayed sequences must not be inserted twice"


async def test_audit_contract_violations_are_recorded(projectord, js, db_path):
    good = await publish_audit(js, audit_event())
    no_payload = {k: v for k, v in audit_event().items() if k != "payload"}
    bad_time = {**audit_event(), "occurred_at": "2026-05-20 12:00:00"}
    await js.publish("audit.operator.exec", body(no_payload))
    await js.publish("audit.operator.exec", body(bad_time))
    last = await publish_audit(js, audit_event())
    await wait_checkpoint(db_path, "audit", last)
    assert [r[0] for r in query(db_path, "SELECT stream_seq FROM audit_log ORDER BY 1")] == [
        good,
        last,
    ]
    rejects = query(
        db_path,
        "SELECT stream, stream_seq, error FROM projector_rejects WHERE projector = 'audit'"
        " ORDER BY stream_seq",
    )
    assert [(r[0], r[1]) for r in rejects] == [("AUDIT", good + 1), ("AUDIT", good + 2)]
    assert "field 'payload'" in rejects[0][2]
    assert "field 'occurred_at'" in rejects[1][2]


# --- obs_events -------------------------------------------------------------------


async def publish_obs(js, event):
    return (await js.publish(f"obs.{event['pc_id']}", body(event))).seq


def obs_rows(db_path):
    return query(
        db_path,
        "SELECT pc_id, at, kind, source, event_record_id, payload FROM obs_events ORDER BY id",
    )


async def test_obs_events_dedup_on_pc_source_record_id(projectord, js, db_path):
    first = obs_event("pc1", "logon", "winlog:Security", "4624-1", {"logon_type": 2}, at=0)
    await publish_obs(js, first)
    # The agent re-sends after a reconnect, even with a changed body: first writer wins.
    await publish_obs(js, first)
    await publish_obs(js, {**first, "kind": "logoff", "payload": {"logon_type": 10}})
    await publish_obs(js, obs_event("pc1", "logon", "winlog:System", "4624-1", at=1))
    await publish_obs(js, obs_event("pc2", "logon", "winlog:Security", "4624-1", at=2))
    last = await publish_obs(js, obs_event("pc1", "logon", "winlog:Security", "4624-2", at=3))
    await wait_checkpoint(db_path, "obs_events", last)
    rows = obs_rows(db_path)
    assert [(r[0], r[3], r[4]) for r in rows] == [
        ("pc1", "winlog:Security", "4624-1"),
        ("pc1", "winlog:System", "4624-1"),
        ("pc2", "winlog:Security", "4624-1"),
        ("pc1", "winlog:Security", "4624-2"),
    ]
    assert rows[0][2] == "logon" and json.loads(rows[0][5]) == {"logon_type": 2}


async def test_obs_events_without_record_id_are_never_deduplicated(projectord, js, db_path):
    bare = obs_event("pc1", "boot", "agent:startup", None, at=0)
    assert "event_record_id" not in bare
    await publish_obs(js, bare)
    await publish_obs(js, bare)
    last = await publish_obs(js, {**bare, "event_record_id": None})
    await wait_checkpoint(db_path, "obs_events", last)
    rows = obs_rows(db_path)
    assert len(rows) == 3
    assert {r[4] for r in rows} == {None}
    assert {r[:4] for r in rows} == {("pc1", db_ts(0), "boot", "agent:startup")}


async def test_obs_events_unknown_kind_offset_time_and_payload(projectord, js, db_path):
    await publish_obs(
        js,
        {
            "pc_id": "pc7",
            "at": "2026-05-20T21:00:00+09:00",
            "kind": "usb_inserted",  # not in the known list: stored as-is
            "source": "winlog:Microsoft-Windows-DriverFrameworks",
            "event_record_id": "77",
            "payload": {"vendor": "ACME", "ids": [1, 2], "nested": {"ok": True}},
            "future_field": 1,
        },
    )
    await publish_obs(js, obs_event("pc7", "idle", "agent:idle", "78", payload=None))
    await publish_obs(js, obs_event("pc7", "diagnostic", "agent:diag", "79", payload=[1, "x"]))
    last = await publish_obs(js, obs_event("pc7", "active", "agent:idle", "80", payload=0))
    await wait_checkpoint(db_path, "obs_events", last)
    rows = obs_rows(db_path)
    assert rows[0][:5] == (
        "pc7",
        "2026-05-20T12:00:00.000000+00:00",
        "usb_inserted",
        "winlog:Microsoft-Windows-DriverFrameworks",
        "77",
    )
    assert isinstance(rows[0][5], str)
    assert json.loads(rows[0][5]) == {"vendor": "ACME", "ids": [1, 2], "nested": {"ok": True}}
    assert rows[1][5] is None, "an absent payload stays NULL"
    assert json.loads(rows[2][5]) == [1, "x"]
    assert rows[3][5] == "0"


async def test_obs_events_replay_over_existing_rows_does_not_duplicate(
    projectord_factory, js, db_path
):
    p = await projectord_factory()
    for i in range(3):
        last = await publish_obs(js, obs_event("pc1", "logon", "winlog:Security", str(i), at=i))
    await wait_checkpoint(db_path, "obs_events", last)
    await p.stop()
    forget_checkpoint(db_path, "obs_events")
    await projectord_factory()
    await wait_checkpoint(db_path, "obs_events", last)
    assert [r[4] for r in obs_rows(db_path)] == ["0", "1", "2"]


async def test_obs_contract_violations_are_recorded(projectord, js, db_path):
    await js.publish("obs.pc1", body({k: v for k, v in obs_event().items() if k != "kind"}))
    await js.publish("obs.pc1", body({**obs_event(), "at": 1716206400}))
    last = await publish_obs(js, obs_event("pc1", "logon", "winlog:Security", "ok"))
    await wait_checkpoint(db_path, "obs_events", last)
    assert [r[4] for r in obs_rows(db_path)] == ["ok"]
    errors = [
        r[0]
        for r in query(
            db_path,
            "SELECT error FROM projector_rejects WHERE stream = 'OBS_EVENTS' ORDER BY stream_seq",
        )
    ]
    assert len(errors) == 2
    assert "field 'kind'" in errors[0] and "field 'at'" in errors[1]
