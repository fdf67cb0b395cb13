"""projectord's life as a process: graceful stop, one writer, broker restarts, migrate.

Every test runs projectord as a real child process (signals, exit codes and
the writer lock only mean something across processes) against a real
nats-server and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import nats.errors
import psutil
import pytest
from harness import (
    PROJECTION_ONLY,
    NatsServer,
    checkpoint,
    projectord_cmd,
    query,
    spawn_projectord,
    wait_checkpoint,
    wait_until,
)
from wire import audit_event, body, db_ts, exec_result, heartbeat, obs_event

REPO = Path(__file__).resolve().parent.parent
STREAM_OF = {"results": "RESULTS", "events": "EVENTS", "audit": "AUDIT", "obs_events": "OBS_EVENTS"}
DURABLES = {
    "RESULTS": "backend_results_projector",
    "EVENTS": "backend_events_projector",
    "AUDIT": "backend_audit_projector",
    "OBS_EVENTS": "backend_obs_events_projector",
}


class Projectord:
    """One projectord child process with its own log (stdout + stderr, JSON lines)."""

    def __init__(self, server: NatsServer, db_path: Path, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self.offset = log_path.stat().st_size if log_path.exists() else 0
        self.proc = spawn_projectord(server, db_path, *args, log_path=log_path)

    def log(self) -> str:
        with open(self.log_path, "rb") as fh:
            fh.seek(self.offset)
            return fh.read().decode(errors="replace")

    def events(self) -> list[str]:
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line).get("event"))
            except ValueError:
                continue
        return out

    def running(self) -> bool:
        """Every projector started (signal handlers are installed by then)."""
        assert self.proc.poll() is None, f"projectord exited early:\n{self.log()[-3000:]}"
        return "projectord_running" in self.events()

    async def started(self) -> Projectord:
        await wait_until(self.running, timeout=30)
        return self

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM; the exit status, which must come within ``timeout`` seconds."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"projectord did not exit within {timeout}s of SIGTERM") from None

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def processes():
    """Child processes started by a test; any left running are killed at teardown."""
    started: list[Projectord] = []
    yield started
    for p in started:
        p.ensure_dead()


def checkpoints(db_path: Path) -> dict[str, int]:
    return {name: checkpoint(db_path, name) for name in STREAM_OF}


async def publish_many(js: Any, items: list[tuple[str, bytes]], batch: int = 200) -> list[int]:
    """Publish with bounded concurrency; the stream sequence of every message, in order."""
    seqs: list[int] = []
    for i in range(0, len(items), batch):
        acks = await asyncio.gather(
            *(js.publish(subject, data, timeout=10) for subject, data in items[i : i + batch])
        )
        seqs += [a.seq for a in acks]
    return seqs


def result_load(prefix: str, n: int) -> list[tuple[str, bytes]]:
    return [
        (
            f"results.{prefix}-req-{i}",
            body(
                exec_result(
                    f"{prefix}-{i:06d}",
                    request_id=f"{prefix}-req-{i}",
                    pc_id=f"PC-{i % 500:04d}",
                    exit_code=i % 3,
                    stdout=f"out {i}\n",
                )
            ),
        )
        for i in range(n)
    ]


def audit_load(n: int) -> list[tuple[str, bytes]]:
    return [
        (
            "audit.operator.exec",
            body(audit_event(payload={"n": i, "exec_id": f"x-{i}"}, occurred=i * 0.001)),
        )
        for i in range(n)
    ]


def result_rows(db_path: Path) -> list[tuple[str, int, str]]:
    return query(db_path, "SELECT result_id, exit_code, stdout FROM execution_results")


async def drained(db_path: Path, last_result: int, last_audit: int, timeout: float) -> None:
    """Wait until the RESULTS and AUDIT projectors have committed up to these sequences."""
    await wait_until(
        lambda: (
            checkpoint(db_path, "results") >= last_result
            and checkpoint(db_path, "audit") >= last_audit
        ),
        timeout=timeout,
    )


def audit_seqs_in_db(db_path: Path) -> list[int]:
    return sorted(r[0] for r in query(db_path, "SELECT stream_seq FROM audit_log"))


def expected_results(items: list[tuple[str, bytes]]) -> list[tuple[str, int, str]]:
    out = []
    for _subject, data in items:
        b = json.loads(data)
        out.append((b["result_id"], b["exit_code"], b["stdout"]))
    return sorted(out)


async def slow_projectord(
    server: NatsServer, db_path: Path, tmp_path: Path, processes: list[Projectord]
) -> Projectord:
    """A started projectord with batches of 10, so a drain lasts long enough to interrupt."""
    config = tmp_path / "slow.toml"
    config.write_text("[projectord]\nbatch_size = 10\n" + PROJECTION_ONLY)
    p = Projectord(server, db_path, tmp_path / "projectord.log", "--config", str(config))
    processes.append(p)
    return await p.started()


async def durables_exist(js: Any) -> bool:
    try:
        for stream, durable in DURABLES.items():
            await js.consumer_info(stream, durable)
    except Exception:
        return False
    return True


# --------------------------------------------------------------------------- SIGTERM


async def test_sigterm_mid_load_exits_0_flushes_heartbeats_and_loses_nothing(
    nats_server, nc, js, db_path, tmp_path, processes
):
    # Heartbeats are flushed every 60 s here, so only the stop can write them;
    # small batches keep the drain slow enough for the stop to land mid-load.
    config = tmp_path / "projectord.toml"
    config.write_text(
        "[projectord]\nflush_interval_ms = 60000\nflush_max = 100000\nbatch_size = 10\n"
        + PROJECTION_ONLY
    )
    log = tmp_path / "projectord.log"
    args = ("--config", str(config))

    # First start creates the streams and durables; the load then waits in the streams.
    first = Projectord(nats_server, db_path, log, *args)
    processes.append(first)
    await first.started()
    assert first.terminate() == 0

    results = result_load("sig", 15_000)
    audits = audit_load(5_000)
    result_seqs = await publish_many(js, results)
    audit_seqs = await publish_many(js, audits)

    second = Projectord(nats_server, db_path, log, *args)
    processes.append(second)
    await second.started()
    await wait_until(lambda: checkpoint(db_path, "results") > 1_000, timeout=30)

    # Heartbeats (core NATS) just before the stop, then a marker on an idle
    # stream: once the marker is committed, the heartbeats, which travelled
    # before it on the same connection, are in projectord's buffer.
    pcs = [f"HB-{i:03d}" for i in range(200)]
    for i, pc in enumerate(pcs):
        await nc.publish(f"heartbeat.{pc}", body(heartbeat(pc, at=i, hostname=f"host-{i}")))
    await nc.flush()
    marker = await js.publish("obs.HB-000", body(obs_event("HB-000", event_record_id="marker")))
    await wait_checkpoint(db_path, "obs_events", marker.seq)
    assert query(db_path, "SELECT COUNT(*) FROM agents") == [(0,)]

    assert second.terminate(timeout=10) == 0
    at_stop = checkpoints(db_path)
    assert at_stop["results"] < result_seqs[-1] or at_stop["audit"] < audit_seqs[-1], (
        f"the stop must come mid-load, got {at_stop}"
    )
    assert "projectors_stopped" in second.events()
    # The core-NATS buffer was flushed on the way out.
    assert sorted(query(db_path, "SELECT pc_id, last_heartbeat, hostname FROM agents")) == [
        (pc, db_ts(i), f"host-{i}") for i, pc in enumerate(pcs)
    ]

    third = Projectord(nats_server, db_path, log, *args)
    processes.append(third)
    await third.started()
    await drained(db_path, result_seqs[-1], audit_seqs[-1], timeout=60)
    assert third.terminate() == 0

    # Nothing lost, nothing duplicated.
    assert sorted(result_rows(db_path)) == expected_results(results)
    assert audit_seqs_in_db(db_path) == sorted(audit_seqs)
    payloads = [json.loads(p)["n"] for (p,) in query(db_path, "SELECT payload FROM audit_log")]
    assert sorted(payloads) == list(range(len(audits)))
    assert query(db_path, "SELECT COUNT(*) FROM obs_events") == [(1,)]
    assert query(db_path, "SELECT COUNT(*) FROM projector_rejects") == [(0,)]


# --------------------------------------------------------------------------- one writer


async def test_second_projectord_on_the_same_db_refuses_to_start(
    nats_server, js, db_path, tmp_path, processes
):
    first = Projectord(nats_server, db_path, tmp_path / "first.log")
    processes.append(first)
    await first.started()

    env = {**os.environ, "KANADE_NATS_URL": nats_server.url, "KANADE_DB": str(db_path)}
    env.pop("KANADE_CONFIG", None)
    second = subprocess.run(
        projectord_cmd("run"), env=env, capture_output=True, timeout=60, check=False
    )
    stderr = second.stderr.decode()
    assert second.returncode == 1, stderr
    assert "another projectord" in stderr and str(db_path) in stderr, stderr

    # The first one is untouched and still projecting.
    assert first.proc.poll() is None
    ack = await js.publish("results.req-1", body(exec_result("after-second")))
    await wait_checkpoint(db_path, "results", ack.seq)
    assert query(db_path, "SELECT result_id FROM execution_results") == [("after-second",)]
    assert first.terminate() == 0


# --------------------------------------------------------------------------- broker restart


async def test_broker_restart_mid_load_reconnects_without_loss(
    nats_server, nc, js, db_path, tmp_path, processes
):
    p = await slow_projectord(nats_server, db_path, tmp_path, processes)
    pid = p.proc.pid

    before = result_load("pre", 15_000)
    audits_before = audit_load(3_000)
    seqs_before = await publish_many(js, before)
    audit_seqs = await publish_many(js, audits_before)
    await wait_until(lambda: checkpoint(db_path, "results") > 1_000, timeout=30)

    # Same port, same store directory: a broker upgrade or crash-restart.
    await asyncio.to_thread(nats_server.restart)
    at_restart = checkpoint(db_path, "results")

    async def broker_back() -> bool:
        if not nc.is_connected:
            return False
        try:
            await js.stream_info("RESULTS")
            return True
        except (nats.errors.Error, TimeoutError):
            return False

    await wait_until(broker_back, timeout=30, interval=0.2)
    after = result_load("post", 5_000)
    seqs_after = await publish_many(js, after)
    audit_seqs += await publish_many(js, audit_load(1_000))

    await drained(db_path, seqs_after[-1], audit_seqs[-1], timeout=60)
    assert at_restart < seqs_before[-1], "the broker must restart mid-load"
    assert p.proc.poll() is None and p.proc.pid == pid, "the same process carries on"
    # projectord's own connection is idle while its pull helper drains, so it may
    # reconnect only after the drain is over.
    await wait_until(lambda: "nats_reconnected" in p.events(), timeout=30)

    assert sorted(result_rows(db_path)) == expected_results(before + after)
    assert audit_seqs_in_db(db_path) == sorted(audit_seqs)
    assert query(db_path, "SELECT COUNT(*) FROM projector_rejects") == [(0,)]
    assert p.terminate() == 0


# --------------------------------------------------------------------------- pull helper


def pull_helpers(p: Projectord) -> list[psutil.Process]:
    """projectord's pull helper processes (one while it consumes)."""
    return [
        child
        for child in psutil.Process(p.proc.pid).children()
        if "projectord.pull_helper" in " ".join(child.cmdline())
    ]


async def test_a_killed_pull_helper_is_replaced_and_nothing_is_lost(
    nats_server, js, db_path, tmp_path, processes
):
    p = await slow_projectord(nats_server, db_path, tmp_path, processes)
    (first,) = pull_helpers(p)

    results = result_load("ph", 15_000)
    result_seqs = await publish_many(js, results)
    audit_seqs = await publish_many(js, audit_load(3_000))
    await wait_until(lambda: checkpoint(db_path, "results") > 1_000, timeout=30)
    first.kill()
    at_kill = checkpoint(db_path, "results")

    await drained(db_path, result_seqs[-1], audit_seqs[-1], timeout=90)
    assert at_kill < result_seqs[-1], "the helper must die mid-load"
    assert p.proc.poll() is None, "projectord itself carries on"
    (second,) = pull_helpers(p)
    assert second.pid != first.pid
    assert "pull_helper_exited" in p.events()
    assert p.events().count("pull_helper_started") == 2

    assert sorted(result_rows(db_path)) == expected_results(results)
    assert audit_seqs_in_db(db_path) == sorted(audit_seqs)
    assert query(db_path, "SELECT COUNT(*) FROM projector_rejects") == [(0,)]
    assert p.terminate() == 0


async def test_a_service_stop_signals_the_helper_too_and_the_last_acks_still_go_out(
    nats_server, js, db_path, tmp_path, processes
):
    # systemd stops a unit by signalling every process in it: the helper must
    # outlive the signal long enough to carry projectord's last acks.
    p = await slow_projectord(nats_server, db_path, tmp_path, processes)
    (helper,) = pull_helpers(p)
    seqs = await publish_many(js, result_load("stop", 10_000))
    await wait_until(lambda: checkpoint(db_path, "results") > 1_000, timeout=30)

    helper.send_signal(signal.SIGTERM)
    helper.send_signal(signal.SIGINT)
    assert p.terminate() == 0
    helper.wait(10)
    at_stop = checkpoint(db_path, "results")
    assert at_stop < seqs[-1], "the stop must come mid-load"
    info = await js.consumer_info("RESULTS", DURABLES["RESULTS"])
    # Every committed message was acked, and nothing beyond the checkpoint.
    assert info.ack_floor.stream_seq == at_stop
    assert info.num_ack_pending == 0


async def test_the_pull_helper_dies_with_a_killed_projectord(
    nats_server, db_path, tmp_path, processes
):
    p = Projectord(nats_server, db_path, tmp_path / "projectord.log")
    processes.append(p)
    await p.started()
    (helper,) = pull_helpers(p)
    p.proc.kill()
    p.proc.wait(10)
    helper.wait(10)  # psutil.TimeoutExpired if it outlived projectord
    assert not helper.is_running()


async def test_starts_while_broker_is_down_and_connects_when_it_comes_up(
    db_path, tmp_path, processes
):
    server = NatsServer(tmp_path / "late-jetstream")  # a port, but nothing listening yet
    p = Projectord(server, db_path, tmp_path / "projectord.log")
    processes.append(p)
    client = None
    try:
        # It gets as far as the broker, fails to connect, and keeps trying.
        await wait_until(
            lambda: (
                p.proc.poll() is None
                and "schema_ready" in p.events()
                and p.events().count("nats_error") >= 2
            ),
            timeout=30,
        )
        assert p.proc.poll() is None
        assert "projectord_running" not in p.events()

        server.start()
        await p.started()
        client = await nats.connect(server.url)
        js = client.jetstream()
        await wait_until(lambda: durables_exist(js), timeout=30)
        ack = await js.publish("results.req-1", body(exec_result("late-broker")))
        await wait_checkpoint(db_path, "results", ack.seq)
        assert query(db_path, "SELECT result_id FROM execution_results") == [("late-broker",)]
        assert p.terminate() == 0
    finally:
        if client is not None:
            await client.close()
        p.ensure_dead()
        server.stop()


# --------------------------------------------------------------------------- migrate


def test_migrate_creates_the_schema_at_alembic_head(tmp_path):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(REPO / "alembic"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head

    db = tmp_path / "fresh" / "backend.db"
    # No broker: migrate must not need one.
    env = {**os.environ, "KANADE_NATS_URL": "nats://127.0.0.1:9", "KANADE_DB": ""}
    env.pop("KANADE_CONFIG", None)
    for _ in range(2):  # the second run finds the schema at head and changes nothing
        out = subprocess.run(
            projectord_cmd("migrate", "--db", str(db)),
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr.decode()
        assert query(db, "SELECT version_num FROM alembic_version") == [(head,)]

    def columns(table: str) -> set[str]:
        return {r[1] for r in query(db, f"PRAGMA table_info({table})")}

    spec = {  # projection-semantics.md section 12, plus our bookkeeping tables
        "agents": {
            "pc_id", "hostname", "last_heartbeat", "agent_version", "os_family",
            "updated_at", "agent_cpu_pct", "agent_rss_bytes", "agent_disk_read_bytes",
            "agent_disk_written_bytes", "quarantined_versions", "last_logon_user",
            "last_logon_display_name", "command_keys", "enforcing", "command_protocols",
        },
        "execution_results": {
            "result_id", "request_id", "exec_id", "pc_id", "exit_code", "stdout", "stderr",
            "started_at", "finished_at", "recorded_at", "job_id", "version", "reaped",
            "expires_at", "parent_result_id", "skipped",
        },
        "executions": {
            "exec_id", "job_id", "version", "initiated_by", "initiated_at", "target_count",
            "success_count", "failure_count", "status", "schedule_id",
        },
        "audit_log": {
            "id", "actor", "action", "target", "payload", "occurred_at", "stream_seq"
        },
        "obs_events": {
            "id", "pc_id", "at", "kind", "source", "event_record_id", "payload"
        },
        "host_perf_samples": {"pc_id", "at", "cpu_pct", "mem_used_bytes"},
        "process_perf_samples": {"pc_id", "at", "pid", "name", "cpu_pct", "rss_bytes"},
        "projector_checkpoints": {"projector", "stream", "durable", "last_seq"},
        "projector_rejects": {"projector", "stream", "stream_seq", "subject", "error", "payload"},
    }  # fmt: skip
    for table, wanted in spec.items():
        assert wanted <= columns(table), (table, wanted - columns(table))

    # The dedup keys the projectors rely on are real constraints.
    conn = sqlite3.connect(db)
    try:
        insert_audit = (
            "INSERT INTO audit_log (actor, action, payload, occurred_at, stream_seq)"
            " VALUES ('a', 'b', '{}', '2026-05-20T12:00:00.000000+00:00', ?)"
        )
        conn.execute(insert_audit, (7,))
        conn.execute(insert_audit, (None,))
        conn.execute(insert_audit, (None,))  # NULL sequences never collide
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(insert_audit, (7,))
        insert_obs = (
            "INSERT INTO obs_events (pc_id, at, kind, source, event_record_id)"
            " VALUES ('pc1', '2026-05-20T12:00:00.000000+00:00', 'logon', 'winlog:Security', ?)"
        )
        conn.execute(insert_obs, ("1",))
        conn.execute(insert_obs, (None,))
        conn.execute(insert_obs, (None,))
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(insert_obs, ("1",))
    finally:
        conn.close()
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
