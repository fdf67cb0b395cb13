"""The Agent detail page in a real browser: state, perf charts over a range kept in the
URL, processes, runs and the event timeline, checked against the database.

The shared stack has no process samples (agents send them only in investigation mode)
and its events touch only the session and activity lanes. This module publishes, for
one PC, a week of host perf, an hour of process snapshots and a day of power and sleep
events, through the broker and the real projectors.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from page_parts import card, settle
from playwright.sync_api import Page, expect

from projectord.simulator.fleet import SimAgent, make_fleet

RECORD_PREFIX = "agent-detail-"
# name -> (pid, typical CPU %): far enough apart that the busiest five never change.
PROCESSES = {
    "chrome.exe": (4120, 34.0),
    "Teams.exe": (6632, 21.0),
    "MsMpEng.exe": (3304, 12.0),
    "explorer.exe": (5280, 6.5),
    "svchost.exe": (1164, 3.5),
    "OneDrive.exe": (7720, 1.8),
    "dwm.exe": (1010, 1.1),
    "System": (4, 0.6),
}
# (hours before now, kind) on the power and sleep lanes, which the simulator never uses.
EVENTS = [
    (30.0, "boot"),
    (12.0, "sleep"),
    (11.0, "resume"),
    (8.0, "unexpected_shutdown"),
    (7.9, "boot"),
    (3.0, "shutdown"),
    (2.5, "boot"),
    (2.4, "logon"),
    (0.5, "active"),
]
SOURCES = {"logon": "winlog:Security", "active": "agent:activity"}


@dataclass
class Seeded:
    pc: str
    snapshot_at: str  # stored text of the newest process snapshot
    events: int


def _run(coro: Any) -> Any:
    # Playwright's sync API keeps an event loop on the test thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _wire(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _host_perf(agent: SimAgent, at: datetime, n: int) -> dict[str, Any]:
    wave = (math.sin(n / 9) + 1) / 2  # a slow wave, so the charts have a shape
    total = agent.mem_total  # the hardware the simulator reports for this PC too
    return {
        "pc_id": agent.pc_id,
        "at": _wire(at),
        "cpu_pct": round(8 + 30 * wave, 2),
        "cpu_count": agent.cpu_count,
        "mem_used_bytes": int(total * (0.45 + 0.25 * wave)),
        "mem_total_bytes": total,
        "swap_used_bytes": int(2**30 * wave),
        "swap_total_bytes": 4 * 2**30,
        "disk_read_bytes_per_sec": round(150_000 + 400_000 * wave, 1),
        "disk_written_bytes_per_sec": round(90_000 + 250_000 * (1 - wave), 1),
        "net_rx_bytes_per_sec": round(40_000 + 120_000 * wave, 1),
        "net_tx_bytes_per_sec": round(15_000 + 30_000 * wave, 1),
    }


def _processes(pc: str, at: datetime, n: int) -> dict[str, Any]:
    rows = []
    for i, (name, (pid, cpu)) in enumerate(PROCESSES.items()):
        rows.append(
            {
                "pid": pid,
                "name": name,
                "cpu_pct": round(cpu * (1 + 0.15 * math.sin(n / 5 + i)), 2),
                "rss_bytes": (900 - 100 * i) * 2**20,
                "disk_read_bytes_per_sec": float(20_000 * (8 - i)),
                "disk_written_bytes_per_sec": float(9_000 * (8 - i)),
            }
        )
    rows.sort(key=lambda r: -r["cpu_pct"])
    return {"pc_id": pc, "at": _wire(at), "processes": rows}


async def _publish(url: str, agent: SimAgent, now: datetime) -> int:
    pc = agent.pc_id
    nc = await nats.connect(url)
    try:
        # A week every 20 minutes, the last two hours every minute (core NATS).
        at, n = now - timedelta(days=7), 0
        while at < now:
            await nc.publish(f"host_perf.{pc}", json.dumps(_host_perf(agent, at, n)).encode())
            step = timedelta(minutes=1 if now - at <= timedelta(hours=2) else 20)
            at, n = at + step, n + 1
        for minute in range(60, 0, -1):
            at = now - timedelta(minutes=minute)
            body = _processes(pc, at, minute)
            await nc.publish(f"process_perf.{pc}", json.dumps(body).encode())
        await nc.flush()
        js = nc.jetstream()
        for i, (hours, kind) in enumerate(EVENTS):
            body = {
                "pc_id": pc,
                "at": _wire(now - timedelta(hours=hours)),
                "kind": kind,
                "source": SOURCES.get(kind, "winlog:System"),
                "event_record_id": f"{RECORD_PREFIX}{i}",
                "payload": {"logon_type": 2, "user": "detail.user"} if kind == "logon" else None,
            }
            await js.publish(f"obs.{pc}", json.dumps(body).encode())
    finally:
        await nc.close()
    return len(EVENTS)


def _wait(what: str, done) -> None:
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, f"not projected in time: {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def seeded(live) -> Seeded:
    pcs = [pc for (pc,) in live.query("SELECT pc_id FROM agents ORDER BY pc_id")]
    pc = pcs[-3]  # away from the first PCs the Events page seeds
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    agent = next(a for a in make_fleet(live.agents) if a.pc_id == pc)
    events = _run(_publish(live.nats_url, agent, now))

    def count(sql: str, *args: Any) -> int:
        return live.query(sql, (pc, *args))[0][0]

    _wait(
        "process snapshots",
        lambda: count("SELECT COUNT(DISTINCT at) FROM process_perf_samples WHERE pc_id = ?") == 60,
    )
    _wait(
        "host perf",
        lambda: count("SELECT COUNT(*) FROM host_perf_samples WHERE pc_id = ?") >= 7 * 72 + 100,
    )
    _wait(
        "events",
        lambda: (
            count(
                "SELECT COUNT(*) FROM obs_events WHERE pc_id = ? AND event_record_id LIKE ?",
                f"{RECORD_PREFIX}%",
            )
            == events
        ),
    )
    [(snapshot_at,)] = live.query("SELECT MAX(at) FROM process_perf_samples WHERE pc_id = ?", (pc,))
    return Seeded(pc, snapshot_at, events)


def db_text(at: datetime) -> str:
    """The database's timestamp text (UTC, six fraction digits)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def fact(page: Page, term: str):
    dt = page.locator("dt", has_text=re.compile(f"^{re.escape(term)}$"))
    return page.locator(".fact").filter(has=dt).locator("dd")


def range_button(page: Page, label: str):
    return page.get_by_role("group", name="Time range").get_by_role("button", name=label)


def test_the_header_shows_the_agent_row_of_the_database(page: Page, live, seeded: Seeded):
    page.goto(f"/agents/{seeded.pc}")
    settle(page)
    expect(page).to_have_title(f"{seeded.pc} · Agents · kanade")
    expect(page.get_by_role("heading", level=1)).to_have_text(seeded.pc)
    [(hostname, os_family, version, user, display)] = live.query(
        "SELECT hostname, os_family, agent_version, last_logon_user, last_logon_display_name"
        " FROM agents WHERE pc_id = ?",
        (seeded.pc,),
    )
    expect(page.locator(".detail-status")).to_have_text("online")
    expect(page.locator(".detail-sub")).to_have_text(f"{hostname} · {os_family} · agent {version}")
    expect(fact(page, "Host name")).to_have_text(hostname)
    expect(fact(page, "OS")).to_have_text(os_family)
    expect(fact(page, "Agent version")).to_have_text(version)
    expect(fact(page, "Last logon")).to_have_text(f"{user} ({display})")
    expect(fact(page, "Quarantined versions")).to_have_text("none")
    expect(fact(page, "Command keys")).to_have_text("none")  # the simulator reports []
    expect(fact(page, "Last heartbeat")).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
    )
    expect(page.locator(".nav-link[aria-current=page]")).to_have_text("Agents")
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Agents").click()
    expect(page).to_have_url(live.url("/agents"))


def test_the_range_lives_in_the_url_and_the_charts_follow_it(page: Page, live, seeded: Seeded):
    page.goto(f"/agents/{seeded.pc}")
    settle(page)
    expect(range_button(page, "1 h")).to_have_attribute("aria-pressed", "true")
    perf = card(page, "Host performance, last hour")
    expect(perf.locator(".perf-panel h3")).to_have_text(
        [re.compile(f"^{t}") for t in ("CPU", "Memory", "Disk", "Network")]
    )
    expect(perf.locator("canvas")).to_have_count(4)
    box = perf.locator("canvas").first.bounding_box()
    assert box and box["width"] > 400 and box["height"] > 100
    # A finished minute of the chart is that minute's average in the database.
    point = page.evaluate(
        """async (pc) => {
          const r = await fetch(`/api/agents/${pc}/perf?step=60s`);
          const points = (await r.json()).points;
          return points[points.length - 2];
        }""",
        seeded.pc,
    )
    start = datetime.fromisoformat(point["at"])
    [(cpu,)] = live.query(
        "SELECT AVG(cpu_pct) FROM host_perf_samples WHERE pc_id = ? AND at >= ? AND at < ?",
        (seeded.pc, db_text(start), db_text(start + timedelta(minutes=1))),
    )
    assert cpu is not None and abs(point["cpu_pct"] - cpu) < 1e-6
    expect(perf.locator(".perf-panel h3").first).to_contain_text(re.compile(r"cpu \d+\.\d %"))

    range_button(page, "24 h").click()
    expect(page).to_have_url(live.url(f"/agents/{seeded.pc}?range=24h"))
    expect(range_button(page, "24 h")).to_have_attribute("aria-pressed", "true")
    expect(card(page, "Host performance, last 24 hours").locator("canvas")).to_have_count(4)
    expect(card(page, "Timeline, last 24 hours")).to_be_visible()
    page.reload()
    expect(range_button(page, "24 h")).to_have_attribute("aria-pressed", "true")
    range_button(page, "7 d").click()
    expect(page).to_have_url(live.url(f"/agents/{seeded.pc}?range=7d"))
    expect(card(page, "Host performance, last 7 days").locator("canvas")).to_have_count(4)
    page.go_back()
    expect(page).to_have_url(live.url(f"/agents/{seeded.pc}?range=24h"))
    expect(range_button(page, "24 h")).to_have_attribute("aria-pressed", "true")
    range_button(page, "1 h").click()  # the default leaves the URL clean
    expect(page).to_have_url(live.url(f"/agents/{seeded.pc}"))
    settle(page)


def test_processes_are_the_newest_snapshot_and_the_timeline_names_the_busiest(
    page: Page, live, seeded: Seeded
):
    page.goto(f"/agents/{seeded.pc}")
    rows = live.query(
        "SELECT name, pid, cpu_pct FROM process_perf_samples WHERE pc_id = ? AND at = ?"
        " ORDER BY cpu_pct DESC, pid",
        (seeded.pc, seeded.snapshot_at),
    )
    table = card(page, "Top processes").locator("tbody tr")
    expect(table).to_have_count(len(rows))
    expect(table.locator("td:first-child")).to_have_text([name for name, _, _ in rows])
    expect(table.first.locator("td").nth(1)).to_have_text(str(rows[0][1]))
    expect(table.first.locator("td").nth(2)).to_have_text(f"{rows[0][2]:.1f} %")

    chart = card(page, "Process CPU, last hour")
    expect(chart.locator("canvas")).to_have_count(1)
    busiest = list(PROCESSES)[:5]
    expect(chart.locator(".u-legend .u-series:not(:first-child) .u-label")).to_have_text(
        [*busiest, "other"]
    )


def test_recent_runs_are_this_pcs_results_and_link_to_activity(page: Page, live, seeded: Seeded):
    page.goto(f"/agents/{seeded.pc}")
    results = live.query(
        "SELECT result_id, job_id FROM execution_results WHERE pc_id = ?"
        " ORDER BY started_at DESC, result_id DESC LIMIT 8",
        (seeded.pc,),
    )
    assert results
    rows = card(page, "Recent runs").locator("tbody tr")
    expect(rows).to_have_count(len(results))
    link = rows.first.get_by_role("link")
    expect(link).to_have_attribute("href", f"/activity/{results[0][0]}")
    expect(rows.first.locator("td").nth(1)).to_have_text(results[0][1])
    all_runs = card(page, "Recent runs").get_by_role("link", name="All runs on this PC")
    expect(all_runs).to_have_attribute("href", re.compile(r"^/activity\?pc_id="))
    link.click()
    expect(page).to_have_url(live.url(f"/activity/{results[0][0]}"))
    settle(page)


def lane_states(page: Page, lane: str) -> list[str]:
    track = page.locator(f".sl-lane[data-lane={lane}] .sl-band")
    return track.evaluate_all("els => els.map(e => e.dataset.state)")


def test_the_timeline_shows_the_lanes_from_the_events_and_seeds(page: Page, live, seeded: Seeded):
    page.goto(f"/agents/{seeded.pc}?range=24h")
    settle(page)
    timeline = card(page, "Timeline, last 24 hours")
    expect(timeline.locator(".sl-row")).to_have_count(1)
    # Boot 30 h ago seeds "on"; then a crash, a boot, a shutdown and the last boot.
    assert lane_states(page, "power") == ["on", "crashed", "on", "off", "on"]
    assert lane_states(page, "sleep") == ["unknown", "asleep", "awake"]
    crashed = timeline.locator(".sl-lane[data-lane=power] .sl-band[data-state=crashed]")
    expect(crashed).to_have_attribute("aria-label", re.compile(r"^Power: Crashed"))

    range_button(page, "1 h").click()
    expect(card(page, "Timeline, last hour").locator(".sl-band").first).to_be_visible()
    settle(page)
    assert lane_states(page, "power") == ["on"]  # from the boot 2.5 h ago
    assert lane_states(page, "sleep") == ["awake"]

    # The latest events: this PC's, newest first, as the database has them.
    rows = card(page, "Latest events").locator("tbody tr")
    since = db_text(datetime.now(UTC) - timedelta(hours=1, minutes=1))
    known = {
        (kind, source)
        for kind, source in live.query(
            "SELECT kind, source FROM obs_events WHERE pc_id = ? AND at >= ?", (seeded.pc, since)
        )
    }
    assert ("active", "agent:activity") in known
    count = rows.count()
    assert 1 <= count <= 8
    for i in range(count):
        cells = rows.nth(i).locator("td")
        assert (cells.nth(1).inner_text(), cells.nth(2).inner_text()) in known
    link = card(page, "Latest events").get_by_role("link", name="All events of this PC")
    expect(link).to_have_attribute("href", f"/events?pc={seeded.pc}&range=1h")


def test_an_unknown_pc_says_not_found(page: Page, live, page_watch):
    page_watch.allow(404, "/api/agents/NO-SUCH-PC")
    page.goto("/agents/NO-SUCH-PC?range=24h")
    expect(page.get_by_role("heading", name="Agent not found")).to_be_visible()
    expect(page.locator(".not-found")).to_contain_text("NO-SUCH-PC")
    expect(page.locator("section.card")).to_have_count(1)  # no empty cards around it
    page.reload()
    expect(page.get_by_role("heading", name="Agent not found")).to_be_visible()
    page.get_by_role("link", name="Back to Agents").click()
    expect(page).to_have_url(live.url("/agents"))
    settle(page)


def test_agent_detail_screenshots_and_phone_width(page: Page, seeded: Seeded, screenshot):
    page.goto(f"/agents/{seeded.pc}")
    settle(page)
    expect(card(page, "Top processes").locator("tbody tr").first).to_be_visible()
    screenshot("agent-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    settle(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(range_button(page, "7 d")).to_be_visible()
