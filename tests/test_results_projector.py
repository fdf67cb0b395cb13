"""RESULTS -> execution_results / executions, against a real broker and SQLite file."""

from __future__ import annotations

import sqlite3

from harness import checkpoint, query, wait_checkpoint
from wire import body, db_ts, event_started, exec_result

from projectord.projectors.results import legacy_result_id


def insert_execution(db_path, exec_id="e1", target_count=2, status="pending"):
    """Executions rows come from dispatch (a later issue); tests create them directly."""
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO executions (exec_id, job_id, version, initiated_by, initiated_at,"
        " target_count, status) VALUES (?, 'inv-hw', '1.0.0', 'scheduler',"
        " '2026-05-20T11:59:00.000000+00:00', ?, ?)",
        (exec_id, target_count, status),
    )
    conn.commit()
    conn.close()


def result_row(db_path, result_id):
    rows = query(
        db_path,
        "SELECT exit_code, stdout, stderr, finished_at, reaped, skipped, exec_id, job_id,"
        " version, started_at, recorded_at FROM execution_results WHERE result_id = ?",
        [result_id],
    )
    return rows[0] if rows else None


async def test_result_inserts_finished_row_and_bumps_counters(projectord, js, db_path):
    insert_execution(db_path, target_count=2)
    ack1 = await js.publish("results.req-1", body(exec_result("r1", exec_id="e1", exit_code=0)))
    ack2 = await js.publish(
        "results.req-1", body(exec_result("r2", pc_id="pc2", exec_id="e1", exit_code=3))
    )
    await wait_checkpoint(db_path, "results", ack2.seq)
    row = result_row(db_path, "r1")
    assert row[0] == 0 and row[1] == "ok\n" and row[3] == db_ts(5)
    assert row[6] == "e1" and row[7] == "inv-hw" and row[8] is None
    # recorded_at is the JetStream publish time, in the fixed storage format.
    assert len(row[10]) == len("2026-05-20T12:00:00.000000+00:00") and row[10].endswith("+00:00")
    assert ack1.seq < ack2.seq
    assert query(db_path, "SELECT success_count, failure_count, status FROM executions") == [
        (1, 1, "completed")
    ]


async def test_redelivered_result_is_not_counted_twice(projectord, js, db_path):
    insert_execution(db_path, target_count=5)
    msg = body(exec_result("r1", exec_id="e1"))
    await js.publish("results.req-1", msg)
    ack = await js.publish("results.req-1", msg)  # agent re-sends after a reconnect
    await wait_checkpoint(db_path, "results", ack.seq)
    assert query(db_path, "SELECT success_count, failure_count, status FROM executions") == [
        (1, 0, "running")
    ]
    assert query(db_path, "SELECT COUNT(*) FROM execution_results") == [(1,)]


async def test_started_then_result_finishes_the_inflight_row(projectord, js, db_path):
    insert_execution(db_path, target_count=1)
    a = await js.publish("events.started.e1.pc1", body(event_started("r1", exec_id="e1")))
    await wait_checkpoint(db_path, "events", a.seq)
    assert result_row(db_path, "r1")[0] is None  # in flight
    assert query(db_path, "SELECT status FROM executions") == [("running",)]
    b = await js.publish("results.req-1", body(exec_result("r1", exec_id="e1", exit_code=0)))
    await wait_checkpoint(db_path, "results", b.seq)
    row = result_row(db_path, "r1")
    assert row[0] == 0 and row[8] == "1.0.0"  # version from the started event stays
    assert query(db_path, "SELECT success_count, status FROM executions") == [(1, "completed")]


async def test_result_before_started_is_not_overwritten(projectord, js, db_path):
    b = await js.publish("results.req-1", body(exec_result("r1", exec_id="e1", exit_code=1)))
    await wait_checkpoint(db_path, "results", b.seq)
    a = await js.publish("events.started.e1.pc1", body(event_started("r1", exec_id="e1")))
    await wait_checkpoint(db_path, "events", a.seq)
    row = result_row(db_path, "r1")
    assert row[0] == 1 and row[3] == db_ts(5), "the started event must not clobber the result"
    assert row[8] is None, "version stays NULL when the result came first"


async def test_reaped_row_is_overwritten_without_second_bump(projectord, js, db_path):
    insert_execution(db_path, target_count=2, status="running")
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO execution_results (result_id, request_id, exec_id, pc_id, exit_code,"
        " stdout, stderr, started_at, finished_at, recorded_at, reaped) VALUES"
        " ('r1', 'req-1', 'e1', 'pc1', -1, '', '[backend: reaped]', ?, ?, ?, 1)",
        (db_ts(0), db_ts(3600), db_ts(0)),
    )
    conn.execute("UPDATE executions SET failure_count = 1")  # the reaper counted it
    conn.commit()
    conn.close()
    ack = await js.publish("results.req-1", body(exec_result("r1", exec_id="e1", exit_code=0)))
    await wait_checkpoint(db_path, "results", ack.seq)
    row = result_row(db_path, "r1")
    assert (row[0], row[4], row[2]) == (0, 0, "")
    assert query(db_path, "SELECT success_count, failure_count FROM executions") == [(0, 1)]


async def test_skipped_flag_and_legacy_result_id(projectord, js, db_path):
    await js.publish(
        "results.req-9",
        body(exec_result(None, request_id="req-9", pc_id="PC-07", exit_code=125, skipped=True)),
    )
    ack = await js.publish("results.req-9", body(exec_result("r-flagless", exit_code=124)))
    await wait_checkpoint(db_path, "results", ack.seq)
    legacy = legacy_result_id("req-9", "PC-07")
    assert result_row(db_path, legacy)[5] == 1
    assert result_row(db_path, "r-flagless")[5] == 0, "only skipped: true marks a skip"


def test_legacy_result_id_matches_the_original():
    # uuid5(NAMESPACE_OID, "kanade-issue-19/legacy-result-id:req:pc"), computed independently.
    import uuid

    expected = uuid.uuid5(
        uuid.UUID("6ba7b812-9dad-11d1-80b4-00c04fd430c8"),
        "kanade-issue-19/legacy-result-id:req-1:PC-01",
    )
    assert legacy_result_id("req-1", "PC-01") == str(expected)


async def test_overflow_output_is_read_from_the_object_store(projectord, js, db_path):
    big = "x" * (300 * 1024)
    store = await js.object_store("result_output")
    await store.put("req-5/stdout", big.encode())
    ack = await js.publish(
        "results.req-5",
        body(exec_result("r5", request_id="req-5", stdout="", stdout_object="req-5/stdout")),
    )
    missing = await js.publish(
        "results.req-6",
        body(exec_result("r6", request_id="req-6", stdout="", stderr_object="req-6/stderr")),
    )
    await wait_checkpoint(db_path, "results", max(ack.seq, missing.seq))
    assert result_row(db_path, "r5")[1] == big
    # A missing blob keeps the inline value and never holds the ack back.
    assert result_row(db_path, "r6")[2] == ""


async def test_contract_violations_are_recorded_and_acked(projectord, js, db_path):
    good1 = await js.publish("results.a", body(exec_result("g1")))
    bad = [
        b"\xff\xfe not utf8",
        b"[1, 2]",
        body({k: v for k, v in exec_result("b1").items() if k != "exit_code"}),
        body({**exec_result("b2"), "exit_code": "0"}),
        body({**exec_result("b3"), "finished_at": "2026-05-20T12:00:00"}),
        body({**exec_result("b4"), "exit_code": 2**40}),
    ]
    for payload in bad:
        await js.publish("results.bad", payload)
    good2 = await js.publish("results.b", body(exec_result("g2")))
    await wait_checkpoint(db_path, "results", good2.seq)
    assert {r[0] for r in query(db_path, "SELECT result_id FROM execution_results")} == {
        "g1",
        "g2",
    }
    rejects = query(
        db_path, "SELECT stream_seq, error, payload FROM projector_rejects ORDER BY stream_seq"
    )
    assert [r[0] for r in rejects] == list(range(good1.seq + 1, good2.seq))
    errors = [r[1] for r in rejects]
    assert "not UTF-8" in errors[0] or "not JSON" in errors[0]
    assert "JSON object" in errors[1]
    assert "field 'exit_code': required but missing" in errors[2]
    assert "field 'exit_code': expected an integer, got str" in errors[3]
    assert "field 'finished_at'" in errors[4] and "offset" in errors[4]
    assert "out of range" in errors[5]
    assert rejects[0][2] == bad[0]
    info = await js.consumer_info("RESULTS", "backend_results_projector")
    assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == good2.seq
    assert checkpoint(db_path, "results") == good2.seq


async def test_result_overwrites_the_inflight_rows_request_and_fills_its_job(
    projectord, js, db_path
):
    # Three in-flight rows: same ids as the result (the usual case), another
    # request_id, and no job_id. Their results follow, with a duplicate among
    # them (in the same batch when they arrive together, else in the next).
    conn = sqlite3.connect(db_path)
    for rid, req, job in (
        ("same", "req-1", "inv-hw"),
        ("other", "req-old", "inv-hw"),
        ("nojob", "req-1", None),
    ):
        conn.execute(
            "INSERT INTO execution_results (result_id, request_id, pc_id, started_at,"
            " recorded_at, job_id) VALUES (?, ?, 'pc1', ?, ?, ?)",
            (rid, req, db_ts(0), db_ts(0), job),
        )
    conn.commit()
    conn.close()
    last = None
    for rid, exit_code in (("same", 0), ("other", 1), ("same", 7), ("nojob", 2)):
        last = await js.publish(
            "results.req-1", body(exec_result(rid, request_id="req-1", exit_code=exit_code))
        )
    await wait_checkpoint(db_path, "results", last.seq)
    rows = query(
        db_path,
        "SELECT result_id, request_id, job_id, exit_code FROM execution_results ORDER BY result_id",
    )
    assert rows == [
        ("nojob", "req-1", "inv-hw", 2),
        ("other", "req-1", "inv-hw", 1),
        ("same", "req-1", "inv-hw", 0),  # the duplicate (exit 7) met a finished row
    ]
