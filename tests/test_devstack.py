"""``projectord dev``: the whole stack on loopback, as the README's run command starts it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from harness import NatsServer, banner_facts, dev_stack_cmd, free_port, projectord_cmd

from apiserver.config import load_api_settings
from projectord.config import load_settings
from projectord.devstack.samples import SAMPLE_JOBS, SAMPLE_SCHEDULES
from projectord.devstack.stack_config import render_config
from projectord.scheduler.manifest import parse_manifest
from projectord.scheduler.schedule import parse_schedule

BANNER_TIMEOUT_S = 90


class DevStack:
    """A running ``projectord dev`` and everything it printed so far."""

    def __init__(self, state: Path, *args: str) -> None:
        self.nats_port, self.http_port = free_port(), free_port()
        cmd = dev_stack_cmd(state, self.nats_port, self.http_port, *args)
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_running(self) -> dict[str, str]:
        """The banner's facts (dashboard, login, broker, ...) once it is up."""
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while "Press Ctrl-C to stop." not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the dev stack did not come up:\n{self.output}")
            time.sleep(0.2)
        return banner_facts(self.output)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        status = self.proc.wait(60)
        self.reader.join(5)
        return status


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def logged_in(base: str, login: str) -> Iterator[httpx.Client]:
    username, password = login.split(" / ")
    with httpx.Client(base_url=base, timeout=10) as client:
        answer = client.post("/api/auth/login", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        yield client


def test_the_stack_comes_up_with_a_login_a_fleet_and_samples_and_stops_in_order(tmp_path):
    state = tmp_path / "state"
    stack = DevStack(state, "--agents", "12")
    facts = stack.wait_running()
    try:
        for step in ("nats-server", "projectord", "sample jobs", "apiserver", "simulated fleet"):
            assert re.search(rf"^  ok  {step}", stack.output, re.MULTILINE), stack.output
        assert "broker_resource" not in stack.output  # components log to files, not here
        assert facts["dashboard"] == f"http://127.0.0.1:{stack.http_port}/"
        assert facts["broker"].startswith(f"nats://127.0.0.1:{stack.nats_port} (embedded")
        assert facts["database"] == str(state / "backend.db")
        with logged_in(facts["dashboard"], facts["login"]) as api:
            agents = api.get("/api/agents", params={"limit": 50})
            assert agents.status_code == 200
            assert agents.headers["X-Online-Count"] == "12"
            jobs = api.get("/api/jobs").json()
            assert sorted(j["id"] for j in jobs) == sorted(j["id"] for j in SAMPLE_JOBS)
            schedules = api.get("/api/schedules").json()
            assert sorted(s["id"] for s in schedules) == sorted(s["id"] for s in SAMPLE_SCHEDULES)
            assert api.get("/").headers["content-type"].startswith("text/html")
            # The broker resources the rest of kanade makes are there: the fleet is healthy.
            health = api.get("/api/health/fleet")
            assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        # The login is generated: stored only as an argon2id hash in the config.
        password = facts["login"].split(" / ")[1]
        config = (state / "kanade.toml").read_text()
        assert password not in config and "$argon2id$" in config
        assert (state / "dashboard-login.json").stat().st_mode & 0o077 == 0
    finally:
        status = stack.stop()
    assert status == 0, stack.output
    assert stack.output.rstrip().endswith("stopped")
    assert not listening(stack.nats_port) and not listening(stack.http_port)
    for name in ("nats-server", "projectord", "apiserver", "simulator"):
        assert (state / "logs" / f"{name}.log").stat().st_size > 0

    # A second start keeps the login, the database and the operator's schedules.
    again = DevStack(state, "--agents", "0")
    facts2 = again.wait_running()
    try:
        assert facts2["login"] == facts["login"]
        assert "0 jobs and 0 schedules added" in again.output
        assert "simulated fleet" not in again.output
        with logged_in(facts2["dashboard"], facts2["login"]) as api:
            assert api.get("/api/agents", params={"limit": 50}).headers["X-Total-Count"] == "12"
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.output


def test_an_existing_broker_gets_no_fleet_and_no_sample_schedules(tmp_path):
    server = NatsServer(tmp_path / "js")
    server.start()
    try:
        stack = DevStack(tmp_path / "state", "--nats-url", server.url)
        facts = stack.wait_running()
        try:
            assert facts["broker"] == f"{server.url} (existing)"
            assert "sample jobs" not in stack.output and "simulated fleet" not in stack.output
            assert not listening(stack.nats_port)  # no embedded broker
            with logged_in(facts["dashboard"], facts["login"]) as api:
                assert api.get("/api/jobs").json() == []
                assert api.get("/api/schedules").json() == []
        finally:
            assert stack.stop() == 0, stack.output
    finally:
        server.stop()


def test_a_busy_broker_port_and_a_config_file_are_refused_with_a_reason(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["dev", "--state-dir", str(tmp_path), "--nats-port", str(port)]
        done = subprocess.run(projectord_cmd(*args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"port {port} is already in use" in done.stderr

    config = subprocess.run(
        projectord_cmd("--config", "x.toml", "dev"), capture_output=True, text=True, timeout=60
    )
    assert config.returncode == 2
    assert "--config is not used" in config.stderr

    for flag, value, needle in (
        ("--http-port", "70000", "expected a port 1-65535, got 70000"),
        ("--agents", "-3", "expected 0 or more, got -3"),
    ):
        bad = subprocess.run(
            projectord_cmd("dev", flag, value), capture_output=True, text=True, timeout=60
        )
        assert bad.returncode == 2 and needle in bad.stderr, bad.stderr


def test_every_sample_schedule_decodes_and_names_a_sample_job():
    jobs = {job["id"]: parse_manifest(job["id"], json.dumps(job)) for job in SAMPLE_JOBS}
    for raw in SAMPLE_SCHEDULES:
        schedule = parse_schedule(raw["id"], json.dumps(raw))
        assert schedule.job_id in jobs, raw["id"]
    # One of them fires at the next minute boundary, so the dashboard fills in a minute.
    assert any("per_pc" in s["when"] and s["target"] == {"all": True} for s in SAMPLE_SCHEDULES)


def test_the_generated_config_is_valid_for_both_processes(tmp_path):
    path = tmp_path / "kanade.toml"
    db = tmp_path / 'odd "name".db'
    path.write_text(render_config(db, "admin", "$argon2id$v=19$m=1,t=1,p=1$x$y", "s3cret"))
    api = load_api_settings(path, env={})
    assert api.db_path == db
    assert api.api["accounts"]["admin"]["role"] == "admin"
    assert load_settings(path, env={}).db_path == db
