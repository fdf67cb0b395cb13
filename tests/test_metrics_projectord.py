"""projectord's Prometheus metrics, scraped from a real process against a real broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from harness import free_port, projectord_cmd, query, spawn_projectord, wait_checkpoint, wait_until
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert
from wire import body, exec_result, manifest

from projectord.broker_resources import ensure_resources
from projectord.database import create_writer_engine
from projectord.migrations import upgrade_to_head
from projectord.projectors import JETSTREAM
from projectord.scheduler.reason_codes import reason_code
from projectord.schema import host_perf_samples

P = "kanade_projectord_"
GOOD_RESULTS = 5
STALE_SAMPLES = 3


class Scrape:
    """One scrape of the metrics endpoint, sample values by name and labels."""

    def __init__(self, port: int) -> None:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        self.values = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def get(self, name: str, **labels: str) -> float | None:
        return self.values.get((P + name, frozenset(labels.items())))


def seed_stale_samples(db_path: Path) -> None:
    """Host perf samples years old, which the first housekeeping tick deletes."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(host_perf_samples),
            [
                {"pc_id": "pc-gone", "at": f"2020-01-0{day}T00:00:00.000000+00:00"}
                for day in range(1, STALE_SAMPLES + 1)
            ],
        )
    engine.dispose()


async def put_schedules(js) -> None:
    """One schedule that fires at the first tick, one whose job does not exist."""
    await (await js.key_value("jobs")).put("inv-hw", body(manifest("inv-hw")))
    schedules = await js.key_value("schedules")
    for schedule_id, job_id in (("fires", "inv-hw"), ("skips", "ghost")):
        schedule = {
            "id": schedule_id,
            "when": {"per_target": "once"},
            "job_id": job_id,
            "target": {"pcs": ["pc-1"]},
        }
        await schedules.put(schedule_id, json.dumps(schedule).encode())


def write_config(tmp_path: Path, metrics_port: int, housekeeping: bool = True) -> Path:
    config = tmp_path / "metrics.toml"
    config.write_text(
        f'[projectord]\nmetrics_bind = "127.0.0.1:{metrics_port}"\nstatus_interval_s = 0.5\n'
        f"[housekeeping]\nenabled = {str(housekeeping).lower()}\n"
        f"[scheduler]\nenabled = {str(housekeeping).lower()}\n"
    )
    return config


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def listening(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def test_scraped_metrics_match_what_projectord_wrote(nats_server, js, db_path, tmp_path):
    seed_stale_samples(db_path)
    await ensure_resources(js)
    await put_schedules(js)
    port = free_port()
    config = write_config(tmp_path, port)
    log = tmp_path / "projectord.log"
    proc = spawn_projectord(nats_server, db_path, "--config", str(config), log_path=log)
    try:
        await wait_until(lambda: listening(port), 20)
        for i in range(GOOD_RESULTS):
            await js.publish("results.req-1", body(exec_result(f"r{i}")))
        last = await js.publish("results.req-1", b'{"result_id": "broken", not json')
        await wait_checkpoint(db_path, "results", last.seq)

        scrape = Scrape(port)
        assert scrape.get("messages_applied_total", projector="results") == GOOD_RESULTS
        assert scrape.get("messages_rejected_total", projector="results") == 1
        assert query(db_path, "SELECT COUNT(*) FROM projector_rejects") == [(1,)]
        batches = scrape.get("batch_messages_count", projector="results")
        assert batches >= 1
        assert scrape.get("batch_messages_sum", projector="results") == GOOD_RESULTS + 1
        assert scrape.get("commit_duration_seconds_count", projector="results") == batches
        assert scrape.get("commit_duration_seconds_sum", projector="results") > 0
        # Projectors with nothing to do yet show their series at zero.
        assert scrape.get("messages_applied_total", projector="heartbeat") == 0

        def gauges_match_the_database() -> bool:
            scrape = Scrape(port)
            checkpoints = dict(
                query(db_path, "SELECT projector, last_seq FROM projector_checkpoints")
            )
            consumers = {
                durable: (pending, ack_pending)
                for durable, pending, ack_pending in query(
                    db_path, "SELECT durable, pending, ack_pending FROM broker_consumers"
                )
            }
            return all(
                scrape.get("checkpoint_sequence", projector=p.name) == checkpoints.get(p.name, 0)
                and (
                    scrape.get("consumer_pending_messages", projector=p.name),
                    scrape.get("consumer_ack_pending_messages", projector=p.name),
                )
                == consumers.get(p.durable)
                for p in JETSTREAM
            )

        await wait_until(gauges_match_the_database, 20)
        assert Scrape(port).get("checkpoint_sequence", projector="results") == last.seq

        def decisions_match_the_database() -> bool:
            scrape = Scrape(port)
            rows = query(db_path, "SELECT outcome, reason, repeats FROM schedule_fires")
            fired = sum(n for outcome, _, n in rows if outcome == "fired")
            skipped = sum(n for outcome, reason, n in rows if reason == "job not registered: ghost")
            return (
                fired >= 1
                and skipped >= 1
                and scrape.get("schedule_decisions_total", outcome="fired", reason="none") == fired
                and scrape.get(
                    "schedule_decisions_total", outcome="skipped", reason="job_not_registered"
                )
                == skipped
            )

        await wait_until(decisions_match_the_database, 20)

        def stale_samples_deleted() -> bool:
            rows = Scrape(port).get(
                "housekeeping_rows_total", task="retention", table="host_perf_samples"
            )
            return rows == STALE_SAMPLES

        await wait_until(stale_samples_deleted, 20)
        assert query(db_path, "SELECT COUNT(*) FROM host_perf_samples") == [(0,)]
    finally:
        stop(proc)
    assert not listening(port)  # the port is released at exit


async def test_a_busy_metrics_port_is_a_warning_and_projection_goes_on(
    nats_server, js, db_path, tmp_path
):
    log = tmp_path / "projectord.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, port, housekeeping=False)
        proc = spawn_projectord(nats_server, db_path, "--config", str(config), log_path=log)
        try:
            await wait_until(lambda: "projectord_running" in log.read_text(), 20)
            ack = await js.publish("results.req-1", body(exec_result("r1")))
            await wait_checkpoint(db_path, "results", ack.seq)
        finally:
            stop(proc)
    warning = next(
        json.loads(line) for line in log.read_text().splitlines() if "metrics_unavailable" in line
    )
    assert warning["level"] == "warning" and warning["bind"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize("value", ["9464", "127.0.0.1:", "127.0.0.1:99999", "host:port"])
def test_a_bad_metrics_bind_is_a_config_error_naming_the_key(tmp_path, value):
    config = tmp_path / "bad.toml"
    config.write_text(f'[projectord]\nmetrics_bind = "{value}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANADE_")}
    proc = subprocess.run(
        projectord_cmd("run", "--config", str(config), "--db", str(tmp_path / "x.db")),
        capture_output=True,
        text=True,
        timeout=30,
        env={**env, "KANADE_NATS_URL": "nats://127.0.0.1:1"},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "config key 'projectord.metrics_bind'" in proc.stderr
    assert "HOST:PORT" in proc.stderr


@pytest.mark.parametrize(
    ("outcome", "reason", "code"),
    [
        ("fired", None, "none"),
        ("failed", "publish: timeout", "error"),
        ("skipped", "job not registered: inv-hw", "job_not_registered"),
        ("skipped", "job not registered: inv-hw is invalid (no execute)", "job_invalid"),
        ("skipped", "frozen (release week)", "frozen"),
        ("skipped", "outside window 09:00-17:00", "outside_window"),
        ("skipped", "skip date 2026-12-24", "skip_date"),
        ("skipped", "max_concurrent reached (3 in flight)", "max_concurrent"),
        ("skipped", "controller-tier job: no alive member of ops in the target", "controller_tier"),
        ("skipped", "missed while projectord was down", "missed"),
        ("skipped", "something new", "other"),
    ],
)
def test_decision_reasons_become_a_fixed_set_of_codes(outcome, reason, code):
    assert reason_code(outcome, reason) == code
