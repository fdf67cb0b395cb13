"""The dashboard's live stack and a real browser, shared by every dashboard test.

One stack per test session, built from real parts: nats-server with JetStream,
projectord as a child process, ``projectord simulate`` answering Commands, and
apiserver as a child process with one account. The database is filled only
through the projectors: the simulator's heartbeats, host_perf and obs events; a
day of perf and event history published on the agents' subjects; a ``per_pc``
schedule fired once by the real scheduler and answered by every agent (results,
executions, audit); a calendar schedule that fires later (upcoming); a freeze.

Fixtures:

* ``live``: :class:`Live` (base URL, credentials, database path, ``query``, and the
  broker's ``nats_url`` for a test module that publishes more).
* ``browser``: the Debian chromium driven by Playwright (session).
* ``page``: a logged-in page at 1280x800; console errors, page errors, failed
  requests and HTTP errors are collected and must be none at teardown (allow
  expected ones with ``page_watch.allow(status, url_part)``).
* ``anon_page``: the same, not logged in.
* ``screenshot(name, target=page)``: full-page PNGs at 1280x800 and 390x844 in
  ``tests/dashboard/artifacts/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from harness import (
    NatsServer,
    apiserver_cmd,
    free_port,
    projectord_cmd,
    query,
    spawn_projectord,
    wait_http_ok,
)
from page_parts import settle
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

from apiserver.auth.passwords import hash_password
from projectord.broker_resources import ensure_resources
from projectord.database import Writer, create_writer_engine
from projectord.scheduler.tick import Scheduler
from projectord.simulator.fleet import host_perf, make_fleet, obs_event

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

AGENTS = 40
USERNAME, PASSWORD = "alice", "dashboard-test-password"
HISTORY = timedelta(hours=24)
HISTORY_STEP = timedelta(minutes=30)
# Event record numbers far above the simulator's own counter, so none collide.
HISTORY_RECORD_BASE = 10_000_000
STARTUP_S = 60  # upper bound for each wait; the whole stack is usually up in ~35 s

JOB = {
    "id": "inventory-hw",
    "version": "1.2.0",
    "execute": {"shell": "powershell", "script": "Get-CimInstance Win32_BIOS", "timeout": "5m"},
}
PER_PC = {
    "id": "inventory-daily",
    "when": {"per_pc": {"every": "1d"}},
    "job_id": "inventory-hw",
    "target": {"all": True},
    "jitter": "2s",
}
NIGHTLY = {
    "id": "nightly-cleanup",
    "when": {"calendar": {"at": "03:15"}},
    "job_id": "inventory-hw",
    "target": {"groups": ["office"]},
    "tz": "utc",
}
FREEZE = {"reason": "quarter-end change freeze", "until": "2099-01-01T00:00:00Z", "tz": "utc"}


@dataclass
class Live:
    """The running stack: where it is, who may log in, and its database."""

    base_url: str
    username: str
    password: str
    db_path: Path
    work: Path
    agents: int
    nats_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the projection (read-only connection), as the API does."""
        return query(self.db_path, sql, params)


def _run(coro: Any) -> Any:
    """Run a coroutine to completion on its own thread: Playwright's sync API keeps an
    event loop running on the test thread once the browser is up."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _wait(what: str, predicate: Callable[[], bool], timeout: float = STARTUP_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"live stack: {what} not reached within {timeout} s")
        time.sleep(0.2)


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        return query(db, sql)[0][0] or 0
    except Exception:  # noqa: BLE001 - tables appear once projectord has migrated
        return 0


async def _publish_setup(url: str) -> None:
    """Broker resources, the job and schedules, and a day of event history."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_resources(js)
        # What the rest of kanade creates in a full deployment; without them the fleet
        # health reads "degraded".
        for bucket in ("agents_state", "agent_config"):
            await js.create_key_value(bucket=bucket)
        await js.create_object_store("agent_releases")
        await (await js.key_value("jobs")).put(JOB["id"], json.dumps(JOB).encode())
        schedules = await js.key_value("schedules")
        for schedule in (PER_PC, NIGHTLY):
            await schedules.put(schedule["id"], json.dumps(schedule).encode())
        # Events of the same agents over the last day (JetStream keeps them until
        # projectord consumes them).
        now = datetime.now(UTC)
        record = HISTORY_RECORD_BASE
        for agent in make_fleet(AGENTS):
            for hours in (20, 9, 2):
                record += 1
                event_at = now - timedelta(hours=hours, minutes=agent.rng.randrange(60))
                await js.publish(f"obs.{agent.pc_id}", obs_event(agent, event_at, record))
        await nc.flush()
    finally:
        await nc.close()


async def _publish_perf_history(url: str) -> None:
    """A day of host_perf samples of the fleet, older than the simulator's own.

    Core NATS keeps nothing: call this once projectord is subscribed.
    """
    nc = await nats.connect(url)
    try:
        now = datetime.now(UTC)
        for agent in make_fleet(AGENTS):
            at = now - HISTORY
            while at < now - timedelta(minutes=5):
                await nc.publish(f"host_perf.{agent.pc_id}", host_perf(agent, at))
                at += HISTORY_STEP
        await nc.flush()
    finally:
        await nc.close()


async def _fire_per_pc(url: str, db: Path) -> None:
    """One tick of the real scheduler: the per_pc schedule goes to every alive agent."""
    nc = await nats.connect(url)
    writer = Writer(create_writer_engine(db))
    try:
        scheduler = Scheduler(nc.jetstream(), writer, {"catch_up_grace_s": 0}, asyncio.Event())
        await scheduler.tick(datetime.now(UTC))
        await scheduler.settle()
    finally:
        writer.close()
        await nc.close()


async def _put_freeze(url: str) -> None:
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value("fleet_config")
        await kv.put("freeze", json.dumps(FREEZE).encode())
    finally:
        await nc.close()


def _apiserver_config(work: Path, port: int) -> Path:
    config = work / "apiserver.toml"
    config.write_text(
        "[apiserver]\n"
        f'bind = "127.0.0.1:{port}"\n'
        'session_secret = "dashboard-tests-session-secret"\n'
        f"[apiserver.accounts.{USERNAME}]\n"
        f'password_hash = "{hash_password(PASSWORD)}"\n'
        'role = "viewer"\n'
    )
    return config


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    work = tmp_path_factory.mktemp("dashboard")
    db = work / "backend.db"
    server = NatsServer(work / "jetstream")
    server.start()
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    try:
        _run(_publish_setup(server.url))
        procs.append(spawn_projectord(server, db, log_path=work / "projectord.log"))
        env = {**os.environ, "KANADE_NATS_URL": server.url}
        env.pop("KANADE_CONFIG", None)
        sim_log = open(work / "simulator.log", "ab")  # noqa: SIM115 - closed at teardown
        logs.append(sim_log)
        simulate = projectord_cmd("simulate", "--agents", str(AGENTS), "--duration-scale", "0.5")
        procs.append(subprocess.Popen(simulate, env=env, stdout=sim_log, stderr=sim_log))

        port = free_port()
        api_log = open(work / "apiserver.log", "ab")  # noqa: SIM115 - closed at teardown
        logs.append(api_log)
        api_cmd = apiserver_cmd("--db", str(db), "--config", str(_apiserver_config(work, port)))
        procs.append(subprocess.Popen(api_cmd, env=env, stdout=api_log, stderr=api_log))
        base_url = f"http://127.0.0.1:{port}"
        wait_http_ok(base_url + "/health", procs[-1], timeout=STARTUP_S)
        _wait(
            "every agent heartbeating",
            lambda: _count(db, "SELECT COUNT(*) FROM agents") >= AGENTS,
        )
        _wait(
            "the schedules mirrored",
            lambda: _count(db, "SELECT COUNT(*) FROM kv_entries WHERE bucket = 'schedules'") >= 2,
        )
        _run(_publish_perf_history(server.url))
        _run(_fire_per_pc(server.url, db))
        _wait(
            "every agent's run finished",
            lambda: (
                _count(db, "SELECT COUNT(*) FROM execution_results WHERE finished_at IS NOT NULL")
                >= AGENTS
            ),
        )
        _wait("the fire audited", lambda: _count(db, "SELECT COUNT(*) FROM audit_log") >= 1)
        _run(_put_freeze(server.url))
        _wait(
            "the freeze mirrored",
            lambda: (
                _count(
                    db,
                    "SELECT COUNT(*) FROM kv_entries"
                    " WHERE bucket = 'fleet_config' AND key = 'freeze'",
                )
                == 1
            ),
        )
        history = AGENTS * 3
        _wait("event history", lambda: _count(db, "SELECT COUNT(*) FROM obs_events") >= history)
        _wait(
            "perf history",
            lambda: _count(db, "SELECT COUNT(*) FROM host_perf_samples") >= AGENTS * 40,
        )
        yield Live(base_url, USERNAME, PASSWORD, db, work, AGENTS, server.url)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for log in logs:
            log.close()
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageWatch:
    """Everything that went wrong in the pages it watches, minus what a test expects."""

    problems: list[str] = field(default_factory=list)
    allowed: list[tuple[int, str]] = field(default_factory=list)

    def allow(self, status: int, url_part: str) -> None:
        """Expect HTTP ``status`` answers (and their console lines) for URLs with url_part."""
        self.allowed.append((status, url_part))

    def _expected(self, status: int | None, url: str) -> bool:
        return any((status is None or status == s) and part in url for s, part in self.allowed)

    def attach(self, page: Page) -> Page:
        page.on("console", self._console)
        page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        return page

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        url = msg.location.get("url", "") if msg.location else ""
        # Chromium logs every HTTP error answer; those are judged in _response.
        if msg.text.startswith("Failed to load resource") and self._expected(None, url):
            return
        self.problems.append(f"console error: {msg.text} ({url})")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        # Leaving or reloading a document cancels its GETs still in flight (ERR_ABORTED);
        # the app itself never aborts a request, so this is the test moving on, not a
        # failure. Under CI load a card's request can start after a settle returned.
        if failure == "net::ERR_ABORTED" and request.method == "GET":
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and not self._expected(response.status, response.url):
            method = response.request.method
            self.problems.append(f"HTTP {response.status}: {method} {response.url}")

    def assert_clean(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


@pytest.fixture
def page_watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def anon_page(browser: Browser, live: Live, page_watch: PageWatch) -> Iterator[Page]:
    """A page with no session, watched like ``page``."""
    context = browser.new_context(viewport=DESKTOP, base_url=live.base_url)
    page = page_watch.attach(context.new_page())
    yield page
    _close(page, context)
    page_watch.assert_clean()


def _close(page: Page, context: Any) -> None:
    """Close after the page has settled: closing aborts requests still in flight."""
    try:
        settle(page)
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, live: Live, page_watch: PageWatch) -> Iterator[Page]:
    """A logged-in page at 1280x800 (base_url set: ``page.goto("/agents")`` works)."""
    context = browser.new_context(viewport=DESKTOP, base_url=live.base_url)
    answer = context.request.post(
        "/api/auth/login", data={"username": live.username, "password": live.password}
    )
    assert answer.ok, answer.text()
    page = page_watch.attach(context.new_page())
    yield page
    _close(page, context)
    page_watch.assert_clean()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., list[Path]]:
    """screenshot(name, target=None) -> the two PNG paths (desktop, phone)."""

    def take(name: str, target: Page | None = None) -> list[Path]:
        shot = target or request.getfixturevalue("page")
        ARTIFACTS.mkdir(exist_ok=True)
        paths = []
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            shot.set_viewport_size(size)
            settle(shot)
            shot.wait_for_timeout(150)  # let charts follow the new width
            path = ARTIFACTS / f"{name}-{label}.png"
            shot.screenshot(path=str(path), full_page=True)
            paths.append(path)
        shot.set_viewport_size(DESKTOP)
        return paths

    return take
