"""apiserver as a real process with several workers on one port."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
from api_harness import migrated
from harness import apiserver_cmd, free_port, wait_http_ok

from apiserver.auth.passwords import hash_password

PASSWORD = "correct horse battery"


def write_config(tmp_path: Path, port: int, workers: int) -> Path:
    config = tmp_path / "kanade.toml"
    config.write_text(
        f'[database]\npath = "{tmp_path / "backend.db"}"\n'
        f'[apiserver]\nbind = "127.0.0.1:{port}"\nworkers = {workers}\n'
        f'[apiserver.accounts.ada]\npassword_hash = "{hash_password(PASSWORD)}"\n'
        'role = "viewer"\n'
    )
    return config


def start(config: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        apiserver_cmd("--config", str(config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "KANADE_CONFIG": "", "KANADE_API_SESSION_SECRET": ""},
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", proc)
    except (AssertionError, TimeoutError):
        proc.kill()
        raise AssertionError(proc.communicate()[0]) from None
    return proc


def fresh_connection(port: int) -> httpx.Client:
    # No keep-alive: every request is a new connection, which the kernel may
    # hand to either worker.
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", limits=limits)


@pytest.fixture
def two_workers(tmp_path):
    yield from serving(tmp_path, workers=2)


@pytest.fixture(params=[1, 2], ids=["1 worker", "2 workers"])
def any_workers(tmp_path, request):
    yield from serving(tmp_path, workers=request.param)


def serving(tmp_path: Path, workers: int):
    migrated(tmp_path / "backend.db").dispose()
    port = free_port()
    proc = start(write_config(tmp_path, port, workers), port)
    children = psutil.Process(proc.pid).children()
    yield proc, port
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=20)
    psutil.wait_procs(children, timeout=10)


def test_workers_die_with_a_killed_parent(two_workers):
    proc, _ = two_workers
    children = psutil.Process(proc.pid).children()
    proc.kill()
    proc.wait()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [c.cmdline() for c in alive]


def test_two_workers_share_sessions_and_serve_on_one_port(two_workers):
    proc, port = two_workers
    children = psutil.Process(proc.pid).children()
    # Two workers and the manager process that holds the shared login throttle.
    assert len(children) == 3, [w.cmdline() for w in children]
    before = {w.pid: sum(w.cpu_times()[:2]) for w in children}
    with fresh_connection(port) as c:
        login = c.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
        assert login.status_code == 200
        # The key was made before the fork: a cookie signed by one worker is
        # read by the other.
        answers = [c.get("/api/auth/me") for _ in range(300)]
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["username"] for a in answers} == {"ada"}
    # Both workers answered some of the 300 connections.
    busy = [w for w in children if sum(w.cpu_times()[:2]) - before[w.pid] >= 0.02]
    assert len(busy) == 2, {w.pid: sum(w.cpu_times()[:2]) - before[w.pid] for w in children}


def test_failed_logins_are_counted_across_workers(two_workers):
    _, port = two_workers
    with fresh_connection(port) as c:
        codes = [
            c.post("/api/auth/login", json={"username": "ada", "password": "wrong"}).status_code
            for _ in range(5)
        ]
        locked = c.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert codes == [401] * 5
    # Each worker alone saw only some of the five failures.
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 800


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_worker_cleanly(any_workers, sig):
    proc, _ = any_workers
    children = psutil.Process(proc.pid).children()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "apiserver_stop" in out
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive


def test_a_dead_worker_stops_the_server_with_failure(two_workers):
    proc, _ = two_workers
    worker = psutil.Process(proc.pid).children()[-1]
    worker.kill()
    out, _ = proc.communicate(timeout=20)
    # Non-zero, so systemd's Restart=on-failure brings the whole server back.
    assert proc.returncode == 1, out
    assert "worker_died" in out


def test_a_port_in_use_is_an_error_even_for_a_second_apiserver(two_workers, tmp_path):
    _, port = two_workers
    second = tmp_path / "second"
    second.mkdir()
    config = write_config(second, port, workers=2)
    run = subprocess.run(
        apiserver_cmd("--config", str(config)),
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "KANADE_CONFIG": ""},
    )
    assert run.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in run.stderr
