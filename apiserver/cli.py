"""``apiserver [serve] [--config PATH] [--db PATH] [--bind HOST:PORT]``,
``apiserver hash-password`` and ``apiserver new-token``.

Exit status: 0 after a clean stop, 1 when serving fails, 2 for a bad command
line or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import os
import secrets
import signal
import socket
import sys
import time
from functools import partial
from typing import Any

import structlog

from projectord.config import ConfigError
from projectord.logconfig import configure_logging

from .auth.identity import token_sha256
from .auth.passwords import hash_password
from .config import ApiSettings, load_api_settings, parse_bind
from .metrics_export import MetricsExport
from .workers import listening_sockets, run_workers, shared_throttle

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apiserver",
        description="Serve the read-only kanade API and dashboard from the projection database.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{serve,hash-password,new-token}")
    serve = sub.add_parser("serve", help="serve the API (the default)")
    for p in (parser, serve):
        # SUPPRESS on the subcommand, so `apiserver --db X serve` keeps X.
        default = None if p is parser else argparse.SUPPRESS
        p.add_argument("--config", metavar="PATH", default=default, help="TOML config file")
        p.add_argument("--db", metavar="PATH", default=default, help="database file")
        p.add_argument("--bind", metavar="HOST:PORT", default=default, help="listen address")
    sub.add_parser(
        "hash-password",
        help="read a password (twice, or once from a pipe) and print its argon2id hash",
    )
    sub.add_parser("new-token", help="print a new service token and the line for the config")
    return parser


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def hash_password_command() -> int:
    """Print an argon2id hash for ``[apiserver.accounts.NAME] password_hash``."""
    try:
        password = _read_password()
        print(hash_password(password))
    except ValueError as exc:
        print(f"apiserver hash-password: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def new_token_command() -> int:
    """Print a random service token and the config lines that accept it."""
    token = secrets.token_urlsafe(32)
    print(f"token (give it to the client; it is not stored): {token}")
    print("config:")
    print("[apiserver.tokens.NAME]")
    print(f'sha256 = "{token_sha256(token)}"')
    print('role = "viewer"')
    return EXIT_OK


async def serve(settings: ApiSettings, sock: socket.socket, throttle: Any = None) -> None:
    """Serve on ``sock`` until SIGINT or SIGTERM, then finish in-flight requests."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from .app import create_app

    app = create_app(settings, throttle=throttle)
    config = Config()
    # hypercorn closes the socket it is given on stop; it gets its own
    # descriptor so that closing ours afterwards does not fail.
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.accesslog = None
    config.loglevel = "WARNING"  # our own start line says where we listen
    config.graceful_timeout = 5.0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # What is alive now (modules, the app, table metadata) lives as long as the
    # worker: frozen, the collector stops walking it. Unfrozen, every full
    # collection walked it and its pauses set the API benchmark's p99 (100-105
    # ms against 55-61 ms frozen, tests/bench/bench_api.py).
    gc.collect()
    gc.freeze()
    try:
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    finally:
        app.state.db.close()


def serve_forever(settings: ApiSettings) -> int:
    """Bind, then serve from ``[apiserver] workers`` processes until stopped.

    With ``metrics_bind``, this process also serves the workers' summed metrics
    there. Raises OSError when the API address cannot be bound.
    """
    # Before the app (and so prometheus_client) is imported: see metrics_export.
    metrics = (
        MetricsExport.prepare(settings.api["metrics_bind"])
        if settings.api["metrics_bind"]
        else None
    )
    try:
        return _bind_and_serve(settings, metrics)
    finally:
        if metrics is not None:
            metrics.close()


def _bind_and_serve(settings: ApiSettings, metrics: MetricsExport | None) -> int:
    from .app import describe_settings

    log = structlog.get_logger("apiserver")
    if not settings.api["session_secret"]:
        # Made before any fork, so every worker signs and reads with the same key.
        settings = settings.replace("apiserver", session_secret=secrets.token_urlsafe(32))
    sockets = listening_sockets(*parse_bind(settings.api["bind"]), settings.api["workers"])
    log.info("apiserver_start", **describe_settings(settings))
    # The listener is a thread, so it starts after the last fork.
    serve_metrics = metrics.serve if metrics is not None else None
    try:
        if len(sockets) == 1:
            if serve_metrics is not None:
                serve_metrics()
            return _serve_worker(settings, sockets[0], None)
        throttle, stop_throttle = shared_throttle(time.monotonic)
        try:
            workers = [partial(_serve_worker, settings, s, throttle) for s in sockets]
            return run_workers(workers, started=serve_metrics)
        finally:
            stop_throttle()
    finally:
        for sock in sockets:
            sock.close()
        log.info("apiserver_stop")


def _serve_worker(settings: ApiSettings, sock: socket.socket, throttle: Any) -> int:
    asyncio.run(serve(settings, sock, throttle))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hash-password":
        return hash_password_command()
    if args.command == "new-token":
        return new_token_command()
    try:
        settings = load_api_settings(args.config)
        changes = {"bind": args.bind} if getattr(args, "bind", None) else {}
        if changes:
            settings = settings.replace("apiserver", **changes)
        if getattr(args, "db", None):
            settings = settings.replace("database", path=args.db)
    except ConfigError as exc:
        print(f"apiserver: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log_options = settings.section("log")
    configure_logging(log_options["format"], log_options["level"])
    if not settings.api["session_secret"] and not settings.api["auth_disabled"]:
        structlog.get_logger("apiserver").warning(
            "session_secret_unset",
            detail="sessions are signed with a random key; a restart logs every user out",
        )
    try:
        return serve_forever(settings)
    except OSError as exc:
        print(f"apiserver: cannot serve on {settings.api['bind']}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
