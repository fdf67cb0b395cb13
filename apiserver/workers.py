"""Serving from several processes on one port.

One Python process saturates one core well below what the dashboard's hot
endpoints need under load (measured: about 380 requests/s with 50 clients
while projectord writes 2,000 messages/s), so ``[apiserver] workers`` forks
that many copies of the app, each accepting from its own socket on the one
port (:func:`listening_sockets`).

State that must be the same in every worker is made before the fork: the
session key (a cookie signed by one worker is read by another) and the login
throttle, which lives in a manager process so that failures counted by one
worker lock the user out of all of them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.managers import BaseManager
from typing import Any

import structlog

from projectord.parent_death import die_with_parent

from .auth.throttle import LoginThrottle

BACKLOG = 1024
log = structlog.get_logger("apiserver")


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` TCP sockets listening on ``host:port``, one per worker.

    With more than one they share the port through SO_REUSEPORT, so the kernel
    spreads new connections evenly. One socket shared by all workers did not:
    under load the first worker to wake took most of the long-lived client
    connections and answered them four times slower than the other. A plain
    bind is tried first so that an address already in use, even by another
    apiserver, is still an error.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    with probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        if count == 1:
            return [_listen(probe.dup())]
        port = probe.getsockname()[1]  # port 0: the one the kernel picked
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            _listen(sock)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _listen(sock: socket.socket) -> socket.socket:
    # Accepted connections inherit TCP_NODELAY: small JSON answers go out at once.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


class _ThrottleManager(BaseManager):
    pass


_ThrottleManager.register("LoginThrottle", LoginThrottle)


def shared_throttle(clock: Callable[[], float]) -> tuple[Any, Callable[[], None]]:
    """A LoginThrottle living in a manager process, and the function stopping it.

    ``clock`` must be picklable and mean the same in every process
    (``time.monotonic`` does: it is the system's monotonic clock).
    """
    manager = _ThrottleManager(ctx=multiprocessing.get_context("fork"))
    manager.start(initializer=die_with_parent)
    return manager.LoginThrottle(clock), manager.shutdown  # type: ignore[attr-defined]


def run_workers(
    serve_ones: list[Callable[[], int]], started: Callable[[], None] | None = None
) -> int:
    """Fork a process for each of ``serve_ones`` and wait for them.

    ``started`` is called once every worker is forked (a thread started
    there is not copied into a worker).

    SIGINT and SIGTERM are passed on, and each worker stops gracefully. If a
    worker dies on its own, the others are stopped as well and the result is
    1, so the service manager restarts the whole server rather than leaving
    it short of workers. Returns 0 after a requested stop.
    """
    ctx = multiprocessing.get_context("fork")
    children = [
        ctx.Process(target=_child, args=(serve_one, os.getpid()), name=f"apiserver-worker-{i + 1}")
        for i, serve_one in enumerate(serve_ones)
    ]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive() and child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for child in children:
            child.start()
        if started is not None:
            started()
        failed = False
        running = list(children)
        while running:
            wait([c.sentinel for c in running])
            for child in [c for c in running if not c.is_alive()]:
                running.remove(child)
                if not stopping:
                    log.error("worker_died", worker=child.name, exitcode=child.exitcode)
                    failed = True
                    stop(signal.SIGTERM, None)
        return 1 if failed else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _child(serve_one: Callable[[], int], parent: int) -> None:
    # The parent's handlers were inherited by the fork; the worker installs its own.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the request took effect
        raise SystemExit(1)
    raise SystemExit(serve_one())
