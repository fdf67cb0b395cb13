"""EVENTS ``events.started.>`` -> in-flight execution_results rows (projection-semantics.md 5).

Real broker, real SQLite file. The first four tests carry the intent of the
original's unit tests (seed 004); the rest cover what the seed revision lacked:
``recorded_at``, the reaper deadline ``expires_at`` from KV ``jobs``, the
promotion of executions, ad-hoc runs and contract violations.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from harness import checkpoint, query, wait_checkpoint
from wire import body, db_ts, event_started, exec_result, manifest

from projectord.broker_resources import ensure_resources

STORAGE_FMT = "%Y-%m-%dT%H:%M:%S.%f+00:00"

COLUMNS = (
    "result_id, request_id, exec_id, pc_id, exit_code, stdout, stderr, started_at,"
    " finished_at, recorded_at, job_id, version, reaped, expires_at, parent_result_id, skipped"
)


def row_of(db_path, result_id):
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute(
            f"SELECT {COLUMNS} FROM execution_results WHERE result_id = ?", (result_id,)
        ).fetchone()
        return dict(found) if found else None
    finally:
        conn.close()


def parse_db(text):
    return datetime.strptime(text, STORAGE_FMT).replace(tzinfo=UTC)


def fmt_db(value):
    return value.astimezone(UTC).strftime(STORAGE_FMT)


async def publish_time(js, stream, seq):
    """The broker's publish time of one stored message, in storage format."""
    msg = await js.get_msg(stream, seq)
    return fmt_db(msg.time)


def insert_execution(db_path, exec_id, status="pending", target_count=3):
    conn = sqlite3.connect(db_path, timeout=30)
    conn.execute(
        "INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at,"
        " target_count, status) VALUES (?, 'inv-hw', '1.0.0', 'scheduler', ?, ?, ?)",
        (exec_id, db_ts(-60), target_count, status),
    )
    conn.commit()
    conn.close()


async def put_job(js, job_id, timeout):
    kv = await js.key_value("jobs")
    await kv.put(job_id, json.dumps(manifest(job_id, timeout=timeout)).encode())


async def started(js, result_id, **fields):
    exec_id = fields.get("exec_id", "e1") or "adhoc"
    pc_id = fields.get("pc_id", "pc1")
    ack = await js.publish(
        f"events.started.{exec_id}.{pc_id}", body(event_started(result_id, **fields))
    )
    return ack.seq


# --- the seed's four behaviours -------------------------------------------------


async def test_started_event_creates_an_inflight_row(projectord, js, db_path):
    seq = await started(js, "r1", exec_id="e1", pc_id="pc1", request_id="req-1", version="2.3.4")
    await wait_checkpoint(db_path, "events", seq)
    row = row_of(db_path, "r1")
    assert row is not None
    assert row["exit_code"] is None, "in-flight rows have no exit_code yet"
    assert row["finished_at"] is None, "in-flight rows have no finished_at yet"
    assert (row["stdout"], row["stderr"], row["reaped"], row["skipped"]) == ("", "", 0, 0)
    assert (row["request_id"], row["exec_id"], row["pc_id"]) == ("req-1", "e1", "pc1")
    assert (row["job_id"], row["version"]) == ("inv-hw", "2.3.4")
    assert row["started_at"] == db_ts(0), "nanoseconds truncated, stored as UTC +00:00"
    assert row["recorded_at"] == await publish_time(js, "EVENTS", seq)
    assert row["parent_result_id"] is None


async def test_redelivered_started_event_is_idempotent(projectord, js, db_path):
    first = await started(js, "r1", started=0, version="1.0.0")
    await wait_checkpoint(db_path, "events", first)
    before = row_of(db_path, "r1")
    # The agent re-sends after a reconnect, and a stray copy carries other values.
    await started(js, "r1", started=0, version="1.0.0")
    last = await started(js, "r1", started=30, version="9.9.9", request_id="req-other")
    await wait_checkpoint(db_path, "events", last)
    assert query(db_path, "SELECT COUNT(*) FROM execution_results") == [(1,)]
    assert row_of(db_path, "r1") == before, "an existing in-flight row is never touched"


async def test_started_event_after_the_result_does_not_overwrite(projectord, js, db_path):
    res = await js.publish(
        "results.req-1", body(exec_result("r1", exec_id="e1", exit_code=7, stdout="done"))
    )
    await wait_checkpoint(db_path, "results", res.seq)
    finished = row_of(db_path, "r1")
    assert finished["finished_at"] == db_ts(5)
    # A reaped placeholder is an existing row too: the started event must leave it alone.
    conn = sqlite3.connect(db_path, timeout=30)
    conn.execute(
        "INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, exit_code,"
        " stdout, stderr, started_at, finished_at, recorded_at, reaped) VALUES"
        " ('r2', 'req-1', 'e1', 'pc2', -1, '', '[backend: reaped]', ?, ?, ?, 1)",
        (db_ts(0), db_ts(3600), db_ts(0)),
    )
    conn.commit()
    conn.close()
    reaped = row_of(db_path, "r2")
    await put_job(js, "inv-hw", "10m")  # would give an expires_at if the row were rewritten
    await started(js, "r1", exec_id="e1", pc_id="pc1")
    seq = await started(js, "r2", exec_id="e1", pc_id="pc2")
    await wait_checkpoint(db_path, "events", seq)
    assert query(db_path, "SELECT COUNT(*) FROM execution_results") == [(2,)]
    after = row_of(db_path, "r1")
    assert after == finished, "events.started must not clobber a finished row"
    assert after["exit_code"] == 7 and after["finished_at"] is not None
    assert after["version"] is None and after["expires_at"] is None
    assert row_of(db_path, "r2") == reaped


async def test_broadcast_fan_out_creates_one_row_per_pc(projectord, js, db_path):
    pcs = ["pc1", "pc2", "pc3"]
    for n, pc in enumerate(pcs):
        seq = await started(js, f"r{n}", exec_id="e1", pc_id=pc, request_id="req-bcast")
    await wait_checkpoint(db_path, "events", seq)
    rows = query(
        db_path,
        "SELECT result_id, pc_id, request_id FROM execution_results WHERE exec_id = 'e1'"
        " ORDER BY pc_id",
    )
    assert rows == [
        ("r0", "pc1", "req-bcast"),
        ("r1", "pc2", "req-bcast"),
        ("r2", "pc3", "req-bcast"),
    ]


# --- expires_at: recorded_at + timeout + max(120 s, timeout / 2), capped ----------


async def test_expires_at_follows_the_manifest_timeout(js, projectord_factory, db_path):
    # Jobs present before projectord starts (the watch's initial values) ...
    await ensure_resources(js)
    await put_job(js, "job-10m", "10m")
    await put_job(js, "job-1h", "1h")
    await put_job(js, "job-30s", "30s")
    await put_job(js, "job-combo", "1h 30m")
    await projectord_factory()
    # ... and one created after it started: found through the watch or a direct read.
    await put_job(js, "job-late", "2h")
    cases = {
        "job-10m": timedelta(minutes=15),
        "job-1h": timedelta(hours=1, minutes=30),
        "job-30s": timedelta(seconds=30 + 120),  # the 120 s floor of the grace
        "job-combo": timedelta(minutes=90 + 45),
        "job-late": timedelta(hours=3),
    }
    seqs = {}
    for n, job in enumerate(cases):
        seqs[job] = await started(js, f"r{n}", pc_id=f"pc{n}", manifest_id=job)
    await wait_checkpoint(db_path, "events", max(seqs.values()))
    for n, (job, span) in enumerate(cases.items()):
        row = row_of(db_path, f"r{n}")
        assert row["recorded_at"] == await publish_time(js, "EVENTS", seqs[job])
        assert row["expires_at"] == fmt_db(parse_db(row["recorded_at"]) + span), job


async def test_expires_at_is_null_without_a_usable_manifest(js, projectord, db_path):
    kv = await js.key_value("jobs")
    await put_job(js, "job-bare", "600")  # a bare number is not a humantime duration
    await kv.put("job-garbage", b"{not json")
    await kv.put("job-no-timeout", json.dumps({"id": "job-no-timeout", "version": "1"}).encode())
    jobs = ["no-such-job", "job-bare", "job-garbage", "job-no-timeout"]
    for n, job in enumerate(jobs):
        seq = await started(js, f"r{n}", pc_id=f"pc{n}", manifest_id=job)
    await wait_checkpoint(db_path, "events", seq)
    rows = query(db_path, "SELECT job_id, expires_at, exit_code FROM execution_results")
    assert sorted(rows) == sorted((job, None, None) for job in jobs)


async def test_expires_at_span_is_capped_at_365_days(js, projectord, db_path):
    await put_job(js, "job-huge", "300d")  # 300 d + 150 d grace would be 450 d
    await put_job(js, "job-just-under", "240d")  # 240 d + 120 d = 360 d, under the cap
    a = await started(js, "r-huge", manifest_id="job-huge")
    b = await started(js, "r-under", pc_id="pc2", manifest_id="job-just-under")
    await wait_checkpoint(db_path, "events", max(a, b))
    huge = row_of(db_path, "r-huge")
    under = row_of(db_path, "r-under")
    assert huge["expires_at"] == fmt_db(parse_db(huge["recorded_at"]) + timedelta(days=365))
    assert under["expires_at"] == fmt_db(parse_db(under["recorded_at"]) + timedelta(days=360))


# --- executions promotion, ad-hoc runs, contract violations ----------------------


async def test_started_event_promotes_only_pending_executions(projectord, js, db_path):
    for exec_id, status in [
        ("e-pending", "pending"),
        ("e-running", "running"),
        ("e-completed", "completed"),
        ("e-expired", "expired"),
        ("e-untouched", "pending"),
    ]:
        insert_execution(db_path, exec_id, status)
    for n, exec_id in enumerate(["e-pending", "e-running", "e-completed", "e-expired"]):
        seq = await started(js, f"r{n}", exec_id=exec_id, pc_id=f"pc{n}")
    # A second PC of the pending execution changes nothing further.
    seq = await started(js, "r-second", exec_id="e-pending", pc_id="pc9")
    await wait_checkpoint(db_path, "events", seq)
    assert dict(query(db_path, "SELECT exec_id, status FROM executions")) == {
        "e-pending": "running",
        "e-running": "running",
        "e-completed": "completed",
        "e-expired": "expired",
        "e-untouched": "pending",
    }
    assert query(db_path, "SELECT SUM(success_count), SUM(failure_count) FROM executions") == [
        (0, 0)
    ], "a started event never bumps counters"


async def test_started_event_without_execution_row_still_lands(projectord, js, db_path):
    seq = await started(js, "r1", exec_id="e-unknown")
    await wait_checkpoint(db_path, "events", seq)
    assert row_of(db_path, "r1")["exec_id"] == "e-unknown"
    assert query(db_path, "SELECT COUNT(*) FROM executions") == [(0,)]


async def test_adhoc_exec_id_is_stored_as_null(projectord, js, db_path):
    # An execution whose id is the empty string must not be promoted by an ad-hoc run.
    conn = sqlite3.connect(db_path, timeout=30)
    conn.execute(
        "INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at,"
        " target_count) VALUES ('', 'inv-hw', '1.0.0', 'operator', ?, 1)",
        (db_ts(-60),),
    )
    conn.commit()
    conn.close()
    seq = await started(js, "r-adhoc", exec_id="")
    await wait_checkpoint(db_path, "events", seq)
    row = row_of(db_path, "r-adhoc")
    assert row is not None and row["exec_id"] is None
    assert query(db_path, "SELECT COUNT(*) FROM execution_results WHERE exec_id = ''") == [(0,)]
    assert query(db_path, "SELECT status FROM executions") == [("pending",)]


async def test_contract_violations_are_recorded_and_acked(projectord, js, db_path):
    good1 = await started(js, "g1")
    no_result_id = {k: v for k, v in event_started("x").items() if k != "result_id"}
    bad = [
        body(no_result_id),
        body({**event_started("b2"), "started_at": "2026-05-20T12:00:00"}),  # no offset
        body({**event_started("b3"), "started_at": "yesterday"}),
        body({**event_started("b4"), "result_id": ""}),
        body({**event_started("b5"), "exec_id": None}),
        body({k: v for k, v in event_started("b6").items() if k != "version"}),
        b"not json at all",
    ]
    for payload in bad:
        await js.publish("events.started.e1.pc1", payload)
    good2 = await started(js, "g2", pc_id="pc2")
    await wait_checkpoint(db_path, "events", good2)
    assert sorted(r[0] for r in query(db_path, "SELECT result_id FROM execution_results")) == [
        "g1",
        "g2",
    ]
    rejects = query(
        db_path,
        "SELECT projector, stream, stream_seq, subject, error, payload FROM projector_rejects"
        " ORDER BY stream_seq",
    )
    assert [r[2] for r in rejects] == list(range(good1 + 1, good2))
    assert {(r[0], r[1], r[3]) for r in rejects} == {("events", "EVENTS", "events.started.e1.pc1")}
    errors = [r[4] for r in rejects]
    assert "field 'result_id': required but missing" in errors[0]
    assert "field 'started_at'" in errors[1] and "offset" in errors[1]
    assert "field 'started_at'" in errors[2]
    assert "field 'result_id'" in errors[3] and "empty" in errors[3]
    assert "field 'exec_id'" in errors[4]
    assert "field 'version': required but missing" in errors[5]
    assert "not JSON" in errors[6]
    assert [r[5] for r in rejects] == bad, "the raw payload is kept"
    info = await js.consumer_info("EVENTS", "backend_events_projector")
    assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == good2
    assert checkpoint(db_path, "events") == good2


async def test_other_events_subjects_are_not_projected(projectord, js, db_path):
    await js.publish("events.notifications.acked.pc1.S-1-5-21.n1", body({"notification_id": "n1"}))
    seq = await started(js, "r1")
    await wait_checkpoint(db_path, "events", seq)
    assert query(db_path, "SELECT result_id FROM execution_results") == [("r1",)]
    assert query(db_path, "SELECT COUNT(*) FROM projector_rejects") == [(0,)]
