"""The frame and the Dashboard page in a real browser against the live stack."""

from __future__ import annotations

import asyncio
import json
import re
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import nats
import pytest
from page_parts import card, settle
from playwright.sync_api import Page, expect


def log_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def db_time(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).isoformat(timespec="microseconds")


def _run(coro: Any) -> Any:
    # Playwright's sync API keeps an event loop on the test thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _publish_process_samples(url: str, pcs: list[str], now: datetime) -> None:
    nc = await nats.connect(url)
    try:
        # The last PC gets the newest sample, so it leads the investigations card.
        for i, pc in enumerate(pcs):
            at = (now + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
            body = {
                "pc_id": pc,
                "at": at,
                "processes": [
                    {"pid": 4242, "name": "scan.exe", "cpu_pct": 37.5, "rss_bytes": 2**28},
                    {"pid": 17, "name": "idle.exe", "cpu_pct": 0.5, "rss_bytes": 2**20},
                ],
            }
            await nc.publish(f"process_perf.{pc}", json.dumps(body).encode())
        await nc.flush()
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def investigated(live) -> list[str]:
    """Two PCs in investigation mode (a process sample each, through the real projector),
    newest first; away from the PCs other pages' tests seed."""
    pcs = [pc for (pc,) in live.query("SELECT pc_id FROM agents ORDER BY pc_id")][-7:-5]
    now = datetime.now(UTC).replace(microsecond=0)
    _run(_publish_process_samples(live.nats_url, pcs, now))
    placeholders = ",".join("?" * len(pcs))
    sql = f"SELECT COUNT(DISTINCT pc_id) FROM process_perf_samples WHERE pc_id IN ({placeholders})"
    deadline = time.monotonic() + 30
    while live.query(sql, tuple(pcs))[0][0] < len(pcs):
        assert time.monotonic() < deadline, "process samples not projected"
        time.sleep(0.2)
    return pcs[::-1]


def test_logging_in_through_the_form_shows_the_dashboard_with_the_real_counts(
    anon_page: Page, live, page_watch
):
    page_watch.allow(401, "/api/")  # before login, every API call is refused
    anon_page.goto("/")
    expect(anon_page).to_have_url(re.compile(r"/login\?next=%2F$"))
    log_in(anon_page, live.username, live.password)
    expect(anon_page).to_have_url(live.url("/"))
    expect(anon_page.locator(".topbar .user")).to_have_text(live.username)
    expect(anon_page).to_have_title("Dashboard · kanade")

    [(known, online)] = live.query(
        "SELECT COUNT(*), SUM(last_heartbeat >= ?) FROM agents", (db_time(timedelta(minutes=2)),)
    )
    assert known == live.agents
    agents = card(anon_page, "Agents")
    expect(agents.locator(".stat-ok .stat-value")).to_have_text(str(online))
    expect(agents.locator(".stat-bad .stat-value")).to_have_text(str(known - online))
    expect(agents.locator(".stat-muted .stat-value")).to_have_text(str(known))

    [(runs, failed)] = live.query(
        "SELECT COUNT(*), SUM(exit_code <> 0 AND finished_at IS NOT NULL)"
        " FROM execution_results WHERE recorded_at >= ?",
        (db_time(timedelta(hours=24)),),
    )
    health = card(anon_page, "Fleet health")
    expect(health.locator(".health-status")).to_have_text("ok")
    expect(health.get_by_text(f"{online} of {known}")).to_be_visible()
    expect(health.get_by_role("link", name=f"{failed} failed")).to_have_attribute(
        "href", "/activity?status=failure"
    )
    expect(health.locator("dd").nth(3)).to_contain_text(str(runs))

    newest = live.query(
        "SELECT result_id, pc_id FROM execution_results"
        " ORDER BY started_at DESC, result_id DESC LIMIT 8"
    )
    rows = card(anon_page, "Recent runs").locator("tbody tr")
    expect(rows).to_have_count(len(newest))
    first = rows.first.get_by_role("link").first
    expect(first).to_have_attribute("href", f"/activity/{newest[0][0]}")
    expect(rows.first).to_contain_text(newest[0][1])

    [(action, target)] = live.query(
        "SELECT action, target FROM audit_log ORDER BY occurred_at DESC, id DESC LIMIT 1"
    )
    audit = card(anon_page, "Recent audit").locator("tbody tr").first
    expect(audit).to_contain_text(action)
    expect(audit).to_contain_text(target)

    [(rejects,)] = live.query("SELECT COUNT(*) FROM projector_rejects")
    projectors = card(anon_page, "Projectors")
    expect(projectors.locator(".summary")).to_contain_text(
        "no rejects" if rejects == 0 else f"{rejects} rejects"
    )
    names = [name for (name,) in live.query("SELECT projector FROM projector_checkpoints")]
    for name in names:
        expect(projectors.locator("tbody")).to_contain_text(name)

    [(job_id, count)] = live.query(
        "SELECT job_id, COUNT(*) FROM execution_results WHERE finished_at >= ? GROUP BY job_id",
        (db_time(timedelta(hours=24)),),
    )
    durations = card(anon_page, "Run durations, 24 h").locator("tbody tr")
    expect(durations).to_have_count(1)
    expect(durations.first.locator("td").nth(0)).to_have_text(job_id)
    expect(durations.first.locator("td").nth(1)).to_have_text(str(count))


def test_freeze_upcoming_and_events_come_from_the_database(page: Page, live):
    page.goto("/dashboard")
    [(freeze,)] = live.query(
        "SELECT value FROM kv_entries WHERE bucket = 'fleet_config' AND key = 'freeze'"
    )
    reason = re.search(r'"reason": ?"([^"]+)"', freeze).group(1)
    banner = page.locator(".freeze-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Fleet frozen")
    expect(banner).to_contain_text(reason)

    upcoming = card(page, "Upcoming schedules").locator("tbody tr")
    expect(upcoming).to_have_count(8)
    expect(upcoming.first.get_by_role("link")).to_have_attribute(
        "href", "/schedules/nightly-cleanup"
    )
    expect(upcoming.first).to_contain_text("03:15")

    events = card(page, "Latest events").locator("tbody tr")
    expect(events).to_have_count(8)
    pcs = {pc for (pc,) in live.query("SELECT DISTINCT pc_id FROM obs_events")}
    first_pc = events.first.locator("td").nth(1).inner_text()
    assert first_pc in pcs


def test_fleet_charts_and_top_lists_render(page: Page, live):
    page.goto("/dashboard")
    for title in ("Fleet CPU, 24 h", "Fleet memory, 24 h"):
        canvas = card(page, title).locator("canvas")
        expect(canvas).to_have_count(1)
        box = canvas.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100
    # Buckets of 15 minutes over the day: the CPU chart has one point per bucket with data.
    points = page.evaluate(
        """async () => {
          const from = new Date(Date.now() - 86400000).toISOString();
          const r = await fetch(`/api/perf/fleet?metric=cpu&step=15m&from=${from}`);
          return (await r.json()).points.length;
        }"""
    )
    assert points > 24
    pcs = {pc for (pc,) in live.query("SELECT pc_id FROM agents")}
    for title in ("Top CPU now", "Top memory now"):
        rows = card(page, title).locator("tbody tr")
        expect(rows).to_have_count(5)
        assert set(rows.locator("td:first-child").all_inner_texts()) <= pcs


def test_agent_versions_match_the_database_and_link_to_the_agents(page: Page, live):
    page.goto("/dashboard")
    counts = live.query(
        "SELECT NULLIF(agent_version, '') AS v, COUNT(*) AS n FROM agents GROUP BY v"
        " ORDER BY n DESC, v IS NOT NULL, v"
    )
    assert counts
    rows = card(page, "Agent versions").locator("tbody tr")
    expect(rows.locator("td:first-child")).to_have_text([v or "unknown" for v, _ in counts])
    expect(rows.locator("td:nth-child(4)")).to_have_text([str(n) for _, n in counts])
    widest = counts[0][1]
    for i, (version, total) in enumerate(counts):
        bar = rows.nth(i).get_by_role("img")
        label = rf"^{re.escape(version or 'unknown')}: \d+ of {total} online$"
        expect(bar).to_have_attribute("aria-label", re.compile(label))
        style = rows.nth(i).locator(".version-bar-total").get_attribute("style") or ""
        width = re.search(r"width: ([\d.]+)%", style)
        assert width and float(width.group(1)) == pytest.approx(total / widest * 100)
        online = int(rows.nth(i).locator("td").nth(2).inner_text())
        assert 0 <= online <= total

    # The version links to the Agents page filtered on exactly that version.
    version = counts[0][0] or ""
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/agents\?version="))
    exact = "^" + re.sub(r"[.*+?^${}()|[\]\\]", r"\\\g<0>", version) + "$"
    assert page.evaluate("new URLSearchParams(location.search).get('version')") == exact
    [(matching,)] = live.query(
        "SELECT COUNT(*) FROM agents WHERE COALESCE(agent_version, '') = ?", (version,)
    )
    expect(page.locator(".agents-card tbody tr")).to_have_count(min(matching, 50))
    settle(page)


def test_pcs_under_investigation_come_from_the_process_samples(
    page: Page, live, investigated: list[str]
):
    page.goto("/dashboard")
    # Other tests may put more PCs in investigation mode; each row must be one of them.
    recent = {
        pc: at
        for pc, at in live.query(
            "SELECT pc_id, MAX(at) FROM process_perf_samples WHERE at >= ? GROUP BY pc_id",
            (db_time(timedelta(minutes=10)),),
        )
    }
    hosts = dict(live.query("SELECT pc_id, hostname FROM agents"))
    section = card(page, "PCs under investigation")
    rows = section.locator("tbody tr")
    expect(rows.first.locator("td").first).to_have_text(investigated[0])
    expect(rows.nth(1).locator("td").first).to_have_text(investigated[1])
    for pc_cell in rows.locator("td:first-child").all_inner_texts():
        assert pc_cell in recent
    for i, pc in enumerate(investigated):
        expect(rows.nth(i).locator("td").nth(1)).to_have_text(hosts[pc])
        expect(rows.nth(i).locator("time")).to_have_attribute(
            "datetime", re.compile(recent[pc][:19].replace("T", "[T ]"))
        )
    link = rows.first.get_by_role("link", name=investigated[0])
    expect(link).to_have_attribute("href", f"/agents/{investigated[0]}")
    link.click()
    expect(page).to_have_url(live.url(f"/agents/{investigated[0]}"))
    expect(page.get_by_role("heading", name=investigated[0], level=1)).to_be_visible()
    settle(page)
    page.reload()
    expect(page.get_by_role("heading", name=investigated[0], level=1)).to_be_visible()
    settle(page)


def test_a_wrong_password_shows_an_error_and_stays_on_the_login_page(
    anon_page: Page, live, page_watch
):
    page_watch.allow(401, "/api/auth/login")
    anon_page.goto("/login")
    log_in(anon_page, live.username, "not the password")
    expect(anon_page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    expect(anon_page).to_have_url(live.url("/login"))
    expect(anon_page.get_by_label("Password")).to_have_value("")


def test_too_many_failures_show_when_to_retry(anon_page: Page, live, page_watch):
    # A user of its own: the lock must not touch the account the other tests use.
    page_watch.allow(401, "/api/auth/login")
    page_watch.allow(429, "/api/auth/login")
    anon_page.goto("/login")
    alert = anon_page.get_by_role("alert")
    for _ in range(5):
        log_in(anon_page, "mallory", "guess")
        expect(alert).to_have_text("Wrong user name or password.")
    log_in(anon_page, "mallory", "guess")
    expect(alert).to_have_text(re.compile(r"^Too many failed sign-ins\. Try again in \d+ min\.$"))


def test_logging_out_returns_to_login_and_ends_the_session(page: Page, live, page_watch):
    page_watch.allow(401, "/api/")
    page.goto("/dashboard")
    expect(page.locator(".topbar .user")).to_have_text(live.username)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(live.url("/login"))
    expect(page.locator(".topbar")).to_be_hidden()
    settle(page)
    page.goto("/agents")
    expect(page).to_have_url(live.url("/login?next=%2Fagents"))


def test_a_deep_link_without_a_session_logs_in_and_lands_on_it(anon_page: Page, live, page_watch):
    page_watch.allow(401, "/api/")
    [(pc_id,)] = live.query("SELECT pc_id FROM agents ORDER BY pc_id LIMIT 1")
    deep = f"/agents/{pc_id}?range=24h"
    anon_page.goto(deep)
    expect(anon_page).to_have_url(live.url(f"/login?next={quote(deep, safe='')}"))
    log_in(anon_page, live.username, live.password)
    expect(anon_page).to_have_url(live.url(deep))
    expect(anon_page.locator(".nav-link[aria-current=page]")).to_have_text("Agents")


def test_reload_keeps_the_route_and_unknown_routes_say_not_found(page: Page, live):
    # Each page settles before the next navigation, which would abort what it still loads.
    page.goto("/activity?status=failure")
    expect(page.locator(".nav-link[aria-current=page]")).to_have_text("Activity")
    settle(page)
    page.reload()
    expect(page).to_have_url(live.url("/activity?status=failure"))
    expect(page.locator(".nav-link[aria-current=page]")).to_have_text("Activity")
    settle(page)

    page.goto("/results?status=success")
    expect(page).to_have_url(live.url("/activity?status=success"))
    settle(page)

    page.goto("/no/such/page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Go to the dashboard").click()
    expect(page).to_have_url(live.url("/dashboard"))
    page.go_back()
    expect(page).to_have_url(live.url("/no/such/page"))


def test_in_app_links_route_without_reloading(page: Page, live):
    page.goto("/dashboard")
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("link", name="Agents", exact=True).first.click()
    expect(page).to_have_url(live.url("/agents"))
    assert page.evaluate("window.__sameDocument") is True
    page.go_back()
    expect(page).to_have_url(live.url("/dashboard"))
    expect(card(page, "Fleet health")).to_be_visible()


def test_refresh_updates_the_time_in_the_header(page: Page):
    page.goto("/dashboard")
    updated = page.locator(".topbar .updated")
    expect(updated).to_have_text(re.compile(r"^updated \d\d:\d\d:\d\d$"))
    before = updated.inner_text()
    page.wait_for_timeout(1100)
    page.get_by_role("button", name="Refresh").click()
    expect(updated).not_to_have_text(before)


def png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        header = f.read(24)
    return struct.unpack(">II", header[16:24])


def test_dashboard_screenshots_and_the_phone_menu(page: Page, screenshot):
    page.goto("/dashboard")
    expect(card(page, "Recent runs").locator("tbody tr")).to_have_count(8)
    desktop, phone = screenshot("dashboard")
    assert png_size(desktop)[0] == 1280
    assert png_size(phone)[0] == 390

    page.set_viewport_size({"width": 390, "height": 844})
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    nav.get_by_role("link", name="Audit").click()
    expect(page).to_have_url(re.compile(r"/audit$"))
    expect(nav).to_be_hidden()
    settle(page)  # leaving the Audit page mid-load would abort its requests
    # Tables scroll inside their card: the page itself never scrolls sideways.
    page.goto("/dashboard")
    expect(card(page, "Recent runs").locator("tbody tr")).to_have_count(8)
    settle(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_login_page_screenshot(anon_page: Page, screenshot):
    anon_page.goto("/login")
    expect(anon_page.get_by_label("User name")).to_be_focused()
    desktop, phone = screenshot("login", anon_page)
    assert png_size(phone)[0] == 390
