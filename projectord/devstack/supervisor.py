"""Bring the dev stack up in order, report progress, watch it, stop it in order.

Order matters both ways. Up: the broker, then projectord (it creates the streams
and buckets and migrates the database), the sample jobs, apiserver, and last the
simulated fleet. Down: the fleet first so nothing new arrives, apiserver, then
projectord, which commits and acks its last batch while the broker is still
there, and the broker last.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import nats
from nats.js.errors import BucketNotFoundError

from ..broker_resources import ensure_resources
from ..logconfig import configure_logging
from ..timestamps import format_db, utc_now
from .children import Child, spawn
from .embedded_broker import EmbeddedBrokerError, start_broker
from .progress import Progress
from .samples import publish_samples
from .stack_config import ensure_config

STEP_TIMEOUT_S = 60.0
STOP_TIMEOUTS_S = {"simulator": 5.0, "apiserver": 10.0, "projectord": 20.0, "nats-server": 10.0}
STATUS_EVERY_S = 60.0


class StackError(Exception):
    """A component did not come up; the message says which and where its log is."""


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path
    nats_port: int
    nats_url: str | None  # an existing broker instead of the embedded one
    http_port: int
    agents: int  # 0: no simulated fleet
    samples: bool
    db: Path | None


def _python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


class Stack:
    """The running components, in start order."""

    def __init__(self, options: DevOptions, progress: Progress, stop: threading.Event) -> None:
        self.options = options
        self.progress = progress
        self.stop_requested = stop
        self.children: list[Child] = []
        self.logs = options.state_dir / "logs"

    # -- start ---------------------------------------------------------------------

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = spawn(name, argv, self.logs / f"{name}.log", env)
        self.children.append(child)
        return child

    def wait(self, what: str, ready: Callable[[], str | None], child: Child | None) -> str:
        """Poll ``ready`` (None = not yet, else a detail) until it answers."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            if self.stop_requested.is_set():
                raise KeyboardInterrupt
            if child is not None and child.exited() is not None:
                raise StackError(
                    f"{child.name} exited with status {child.exited()} while {what}; "
                    f"last lines of {child.log_path}:\n{child.log_tail()}"
                )
            detail = ready()
            if detail is not None:
                return detail
            if time.monotonic() > deadline:
                where = f"; see {child.log_path}" if child else ""
                raise StackError(f"timed out after {STEP_TIMEOUT_S:.0f} s {what}{where}")
            time.sleep(0.25)

    # -- stop ----------------------------------------------------------------------

    def failed_child(self) -> Child | None:
        return next((c for c in self.children if c.exited() is not None), None)

    def stop_all(self) -> int:
        """Stop the children newest first; projectord's exit status (0 if it never ran)."""
        status = 0
        for child in reversed(self.children):
            code = child.stop(STOP_TIMEOUTS_S.get(child.name, 10.0))
            if child.name == "projectord":
                status = code
        return status


def _read_db(db: Path, sql: str, params: tuple[object, ...] = ()) -> int | None:
    """One number from the database, read-only; None until the table exists."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(sql, params).fetchone()[0] or 0
    except sqlite3.Error:
        return None


def _online(db: Path) -> int:
    since = format_db(utc_now() - timedelta(seconds=60))
    sql = "SELECT COUNT(*) FROM agents WHERE last_heartbeat >= ?"
    return _read_db(db, sql, (since,)) or 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


async def _buckets_ready(url: str) -> bool:
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        for bucket in ("jobs", "schedules"):
            await js.key_value(bucket)
        return True
    except BucketNotFoundError:
        return False
    finally:
        await nc.close()


async def _publish_samples(url: str) -> tuple[int, int]:
    nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        await ensure_resources(js)  # the buckets; projectord's own call is then a no-op
        return await publish_samples(js)
    finally:
        await nc.close()


def bring_up(stack: Stack) -> dict[str, str]:
    """Start every component; the facts to print in the banner."""
    o, p = stack.options, stack.progress
    env = {**os.environ}
    env.pop("KANADE_CONFIG", None)

    if o.nats_url is None:
        p.begin("nats-server (JetStream)")
        broker = start_broker(o.state_dir, o.nats_port)
        stack.children.append(broker)
        url = f"nats://127.0.0.1:{o.nats_port}"
        p.done(url)
        broker_note = f"{url} (embedded, store in {o.state_dir / 'jetstream'})"
    else:
        url = o.nats_url
        broker_note = f"{url} (existing)"
    env["KANADE_NATS_URL"] = url

    db = o.db or Path(env.get("KANADE_DB") or o.state_dir / "backend.db")
    config, login = ensure_config(o.state_dir, db)
    common = ["--config", str(config), *(["--db", str(o.db)] if o.db else [])]

    if o.samples:
        # Before projectord starts, so its first broker snapshot already sees them all.
        p.begin("sample jobs and schedules")
        jobs, schedules = asyncio.run(_publish_samples(url))
        p.done(f"{jobs} jobs and {schedules} schedules added (existing ones kept)")

    p.begin("projectord")
    projectord = stack.add("projectord", _python("projectord", "run", *common), env)

    def projectord_ready() -> str | None:
        if _read_db(db, "SELECT COUNT(*) FROM alembic_version") is None:
            p.update("migrating the database")
            return None
        try:
            ready = asyncio.run(_buckets_ready(url))
        except (OSError, nats.errors.Error) as exc:
            p.update(f"waiting for the broker: {exc}")
            return None
        return f"database {db}" if ready else None

    p.done(stack.wait("starting projectord", projectord_ready, projectord))

    p.begin("apiserver")
    bind = f"127.0.0.1:{o.http_port}"
    apiserver = stack.add("apiserver", _python("apiserver", *common, "--bind", bind), env)
    base = f"http://{bind}"
    p.done(
        stack.wait(
            "starting apiserver", lambda: base if _http_ok(base + "/health") else None, apiserver
        )
    )

    if o.agents:
        p.begin(f"simulated fleet ({o.agents} PCs)")
        sim_args = ["simulate", "--agents", str(o.agents), "--announce", *common]
        simulator = stack.add("simulator", _python("projectord", *sim_args), env)

        def fleet_online() -> str | None:
            online = _online(db)
            p.update(f"agents online {online}/{o.agents}")
            return f"{online} agents online" if online >= o.agents else None

        p.done(stack.wait("bringing the fleet online", fleet_online, simulator))

    password = login.password or f"(not stored; see accounts in {config})"
    return {
        "dashboard": f"{base}/",
        "login": f"{login.username} / {password}",
        "broker": broker_note,
        "database": str(db),
        "config": str(config),
        "logs": f"{stack.logs}/",
    }


def _status_line(db: Path) -> str:
    hour_ago = format_db(utc_now() - timedelta(hours=1))
    recent = "FROM execution_results WHERE recorded_at >= ?"
    runs = _read_db(db, f"SELECT COUNT(*) {recent}", (hour_ago,)) or 0
    failed = _read_db(db, f"SELECT COUNT(*) {recent} AND exit_code != 0", (hour_ago,)) or 0
    clock = time.strftime("%H:%M:%S")
    online = _online(db)
    return f"{clock}  agents online {online}, runs in the last hour {runs} ({failed} failed)"


def run_dev(options: DevOptions) -> int:
    """Run the stack until Ctrl-C or SIGTERM; 0 after a clean stop, 1 on a failure."""
    options.state_dir.mkdir(parents=True, exist_ok=True)
    # The components log to their files; here only the progress lines belong on screen.
    configure_logging("console", "warning")
    progress = Progress()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(options, progress, stop)
    progress.say(f"kanade dev stack, state in {options.state_dir}/")
    try:
        facts = bring_up(stack)
    except KeyboardInterrupt:
        progress.say("\ninterrupted; stopping")
        stack.stop_all()
        return 0
    except (StackError, EmbeddedBrokerError, OSError, nats.errors.Error) as exc:
        progress.fail(str(exc))
        stack.stop_all()
        return 1

    progress.say()
    progress.say("kanade is running")
    for name, value in facts.items():
        progress.say(f"  {name:<10} {value}")
    progress.say("Press Ctrl-C to stop.\n")
    db = Path(facts["database"])
    next_status = time.monotonic() + STATUS_EVERY_S
    while not stop.wait(0.5):
        failed = stack.failed_child()
        if failed is not None:
            progress.say(
                f"{failed.name} exited with status {failed.exited()}; "
                f"last lines of {failed.log_path}:\n{failed.log_tail()}"
            )
            stack.stop_all()
            return 1
        if time.monotonic() >= next_status:
            progress.say(_status_line(db))
            next_status += STATUS_EVERY_S
    progress.say("stopping: simulator, apiserver, projectord, broker")
    status = stack.stop_all()
    progress.say("stopped" if status == 0 else f"stopped; projectord exited with {status}")
    return 0 if status == 0 else 1
