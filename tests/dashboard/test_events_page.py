"""The Events page in a real browser: the swimlane timeline and the event table.

The shared stack's events are few kinds (logon, logoff, idle); this module publishes a
day of power, session, sleep and activity events for the first PCs, through the broker
and the real projector, so every lane has something to show. The page is visited with a
pinned window end, so the simulator's live events cannot move the rows under a test.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from page_parts import card, settle
from playwright.sync_api import Locator, Page, expect

SEEDED_PCS = 6
RECORD_PREFIX = "timeline-"
# (hours before the window end, kind): a working day, a nap, a crash. The first two
# are before a 24 h window, so the lanes start from seeds.
DAY = [
    (30.0, "boot"),
    (29.5, "logon"),
    (25.5, "logoff"),
    (25.0, "shutdown"),
    (23.0, "boot"),
    (22.98, "log_service_started"),
    (22.8, "logon"),
    (22.7, "active"),
    (21.0, "idle"),
    (20.5, "active"),
    (19.0, "sleep"),
    (17.0, "resume"),
    (16.9, "active"),
    (15.0, "idle"),
    (13.0, "logoff"),
    (12.5, "shutdown"),
    (10.0, "boot"),
    (9.8, "logon"),
    (9.7, "active"),
    (7.0, "idle"),
    (6.5, "active"),
    (5.0, "unexpected_shutdown"),
    (4.8, "boot"),
    (4.6, "logon"),
    (4.5, "active"),
    (2.0, "idle"),
    (1.5, "sleep"),
    (1.0, "resume"),
    (0.8, "active"),
]
SOURCES = {
    "logon": "winlog:Security",
    "logoff": "winlog:Security",
    "active": "agent:activity",
    "idle": "agent:activity",
}
LANES: dict[str, dict[str, str]] = {
    "power": {
        "boot": "on",
        "log_service_started": "on",
        "shutdown": "off",
        "log_service_stopped": "off",
        "unexpected_shutdown": "crashed",
    },
    "session": {"logon": "logged-on", "logoff": "logged-off"},
    "sleep": {"sleep": "asleep", "resume": "awake"},
    "active": {"active": "active", "idle": "idle"},
}


@dataclass
class Seeded:
    pcs: list[str]  # every agent, sorted
    end: datetime  # a pinned window end after every published event
    published: int

    @property
    def end_param(self) -> str:
        return self.end.strftime("%Y-%m-%dT%H:%M")


def _run(coro: Any) -> Any:
    # Playwright's sync API keeps an event loop on the test thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _publish(url: str, bodies: list[dict[str, Any]]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for body in bodies:
            await js.publish(f"obs.{body['pc_id']}", json.dumps(body).encode())
    finally:
        await nc.close()


def _wire(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def seeded(live) -> Seeded:
    pcs = [pc for (pc,) in live.query("SELECT pc_id FROM agents ORDER BY pc_id")]
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    bodies = []
    for i, pc in enumerate(pcs[:SEEDED_PCS]):
        shift = timedelta(minutes=17 * i)
        for n, (hours, kind) in enumerate(DAY):
            if i % 3 == 2 and kind in ("sleep", "resume"):
                continue  # some PCs never sleep
            payload = {"logon_type": 2, "user": f"user{i:03d}"} if kind == "logon" else None
            bodies.append(
                {
                    "pc_id": pc,
                    "at": _wire(end - timedelta(hours=hours) + shift),
                    "kind": kind,
                    "source": SOURCES.get(kind, "winlog:System"),
                    "event_record_id": f"{RECORD_PREFIX}{i}-{n}",
                    "payload": payload,
                }
            )
    _run(_publish(live.nats_url, bodies))
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while True:
        [(count,)] = live.query(
            "SELECT COUNT(*) FROM obs_events WHERE event_record_id LIKE ?", (f"{RECORD_PREFIX}%",)
        )
        if count == len(bodies):
            break
        assert datetime.now(UTC) < deadline, f"{count} of {len(bodies)} events projected"
        time.sleep(0.2)
    return Seeded(pcs, end, len(bodies))


def db_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def ms_iso(at: datetime) -> str:
    """What the browser's Date.toISOString() shows for an instant."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def expected_bands(live, pc: str, start: datetime, end: datetime) -> dict[str, list[tuple]]:
    """The lanes as the page must draw them: the seed's state from the window start,
    then a band at every event that changes the lane's state."""
    out = {}
    for lane, states in LANES.items():
        marks = ",".join("?" * len(states))
        seed = live.query(
            f"SELECT kind FROM obs_events WHERE pc_id = ? AND kind IN ({marks}) AND at < ?"
            " ORDER BY at DESC, id DESC LIMIT 1",
            (pc, *states, db_time(start)),
        )
        bands = [(states[seed[0][0]] if seed else "unknown", ms_iso(start))]
        events = live.query(
            f"SELECT at, kind FROM obs_events WHERE pc_id = ? AND kind IN ({marks})"
            " AND at >= ? AND at < ? ORDER BY at, id",
            (pc, *states, db_time(start), db_time(end)),
        )
        for at, kind in events:
            state, begins = states[kind], ms_iso(datetime.fromisoformat(at))
            if state == bands[-1][0]:
                continue
            if begins == bands[-1][1]:
                bands[-1] = (state, begins)  # the band before had no width
            else:
                bands.append((state, begins))
        out[lane] = bands
    return out


def shown_bands(page: Page, pc: str) -> dict[str, list[tuple]]:
    row = page.locator(f'.sl-row[data-row="{pc}"]')
    return {
        lane: [
            tuple(band)
            for band in row.locator(f'.sl-lane[data-lane="{lane}"] .sl-band').evaluate_all(
                "els => els.map(e => [e.dataset.state, e.dataset.start])"
            )
        ]
        for lane in LANES
    }


def window_text(start: datetime, end: datetime) -> str:
    a, b = start.strftime("%Y-%m-%d %H:%M"), end.strftime("%Y-%m-%d %H:%M")
    return f"{a} – {b[11:] if a[:10] == b[:10] else b} UTC"


def test_timeline_lanes_follow_the_events_and_seeds_in_the_database(
    page: Page, live, seeded: Seeded
):
    page.goto(f"/events?end={seeded.end_param}")
    timeline = card(page, "Timeline")
    rows = timeline.locator(".sl-row")
    expect(rows).to_have_count(20)
    assert rows.evaluate_all("els => els.map(e => e.dataset.row)") == seeded.pcs[:20]
    start = seeded.end - timedelta(hours=24)
    expect(timeline.locator(".window-span")).to_have_text(window_text(start, seeded.end))
    for pc in seeded.pcs[:SEEDED_PCS] + seeded.pcs[SEEDED_PCS : SEEDED_PCS + 2]:
        assert shown_bands(page, pc) == expected_bands(live, pc, start, seeded.end), pc

    # The first PC was shut down 25 h before the end: its power lane opens "off" (a seed).
    first = rows.first
    power = first.locator('.sl-lane[data-lane="power"] .sl-band').first
    expect(power).to_have_attribute("data-state", "off")
    expect(power).to_have_attribute(
        "aria-label", re.compile(r"^Power: Off, since shutdown \(winlog:System\) before the window")
    )
    crash = first.locator('.sl-band[data-state="crashed"]')
    expect(crash).to_have_count(1)
    expect(crash).to_have_attribute("title", re.compile(r"from unexpected_shutdown"))
    session = first.locator('.sl-lane[data-lane="session"] .sl-band[data-state="logged-on"]')
    expect(session.first).to_have_attribute("title", re.compile(r"^Session: Logged on \(user000\)"))
    expect(first.get_by_role("link", name=seeded.pcs[0])).to_have_attribute(
        "href", f"/agents/{seeded.pcs[0]}"
    )
    legend = timeline.locator(".sl-legend")
    for text in ("Power", "On", "Crashed", "Logged on", "Asleep", "Idle", "Unknown"):
        expect(legend).to_contain_text(text)


def _cells(table: Locator, column: int) -> Locator:
    return table.locator(f"tbody tr td:nth-child({column})")


def test_event_table_matches_the_database_and_pages_by_cursor(page: Page, live, seeded: Seeded):
    start = seeded.end - timedelta(hours=24)
    newest = live.query(
        "SELECT pc_id, kind, source FROM obs_events WHERE at >= ? AND at < ?"
        " ORDER BY at DESC, id DESC LIMIT 100",
        (db_time(start), db_time(seeded.end)),
    )
    assert len(newest) == 100
    page.goto(f"/events?end={seeded.end_param}")
    table = card(page, "Events")
    expect(_cells(table, 2)).to_have_text([pc for pc, _, _ in newest[:50]])
    expect(_cells(table, 3)).to_have_text([kind for _, kind, _ in newest[:50]])
    expect(_cells(table, 4)).to_have_text([source for _, _, source in newest[:50]])

    table.get_by_role("button", name="Older").click()
    expect(page).to_have_url(re.compile(r"[?&]cursor="))
    expect(_cells(table, 2)).to_have_text([pc for pc, _, _ in newest[50:]])
    expect(_cells(table, 3)).to_have_text([kind for _, kind, _ in newest[50:]])
    settle(page)
    page.reload()
    expect(_cells(table, 2)).to_have_text([pc for pc, _, _ in newest[50:]])
    table.get_by_role("button", name="Newest").click()
    expect(page).not_to_have_url(re.compile(r"cursor="))
    expect(_cells(table, 2)).to_have_text([pc for pc, _, _ in newest[:50]])

    [(total,)] = live.query(
        "SELECT COUNT(*) FROM obs_events WHERE at >= ? AND at < ?",
        (db_time(start), db_time(seeded.end)),
    )
    table.get_by_label("Rows").select_option("200")
    expect(page).to_have_url(re.compile(r"[?&]limit=200"))
    expect(table.locator("tbody tr")).to_have_count(min(total, 200))
    # Payloads show as compact JSON (the first logon on the page).
    payloads = live.query(
        "SELECT payload FROM obs_events WHERE at >= ? AND at < ? ORDER BY at DESC, id DESC",
        (db_time(start), db_time(seeded.end)),
    )[:200]
    first = next(i for i, (p,) in enumerate(payloads) if p and "logon_type" in p)
    shown = _cells(table, 6).nth(first)
    expect(shown).to_have_text(json.dumps(json.loads(payloads[first][0]), separators=(",", ":")))


def test_filters_narrow_the_table_and_the_timeline_and_live_in_the_url(
    page: Page, live, seeded: Seeded
):
    start, end = seeded.end - timedelta(hours=24), seeded.end
    page.goto(f"/events?end={seeded.end_param}")
    table, timeline = card(page, "Events"), card(page, "Timeline")
    expect(table.locator("tbody tr")).to_have_count(50)

    page.get_by_label("Kind", exact=True).select_option("sleep")
    expect(page).to_have_url(re.compile(r"[?&]kind=sleep"))
    sleeps = live.query(
        "SELECT pc_id FROM obs_events WHERE kind = 'sleep' AND at >= ? AND at < ?"
        " ORDER BY at DESC, id DESC",
        (db_time(start), db_time(end)),
    )
    assert 0 < len(sleeps) <= 50
    expect(_cells(table, 2)).to_have_text([pc for (pc,) in sleeps])
    expect(_cells(table, 3)).to_have_text(["sleep"] * len(sleeps))

    pc = seeded.pcs[1]
    page.get_by_label("PC", exact=True).fill(pc)
    page.get_by_label("PC", exact=True).press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]pc={pc}(&|$)"))
    assert "kind=sleep" in page.url
    mine = [p for (p,) in sleeps if p == pc]
    expect(_cells(table, 2)).to_have_text(mine)
    expect(timeline.locator(".sl-row")).to_have_count(1)
    expect(timeline.locator(".sl-row")).to_have_attribute("data-row", pc)
    # The lanes ignore the kind filter: every lane of the PC is drawn.
    assert shown_bands(page, pc) == expected_bands(live, pc, start, end)

    settle(page)
    page.reload()
    expect(page.get_by_label("PC", exact=True)).to_have_value(pc)
    expect(page.get_by_label("Kind", exact=True)).to_have_value("sleep")
    expect(_cells(table, 2)).to_have_text(mine)
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"[?&]pc="))
    expect(timeline.locator(".sl-row")).to_have_count(20)

    page.get_by_label("Source", exact=True).select_option("winlog:System")
    expect(page).to_have_url(re.compile(r"source=winlog%3ASystem"))
    system = live.query(
        "SELECT COUNT(*) FROM obs_events WHERE kind = 'sleep' AND source = 'winlog:System'"
        " AND at >= ? AND at < ?",
        (db_time(start), db_time(end)),
    )[0][0]
    expect(table.locator("tbody tr")).to_have_count(system)
    page.get_by_role("button", name="Clear").click()
    expect(page).to_have_url(live.url("/events"))


def test_the_window_moves_and_the_lanes_page_through_the_fleet(page: Page, live, seeded: Seeded):
    page.goto("/events")
    timeline = card(page, "Timeline")
    span = timeline.locator(".window-span")
    expect(span).to_contain_text("(now)")
    page.get_by_label("Window", exact=True).select_option("6h")
    expect(page).to_have_url(re.compile(r"[?&]range=6h"))
    expect(timeline.get_by_role("button", name="Later window")).to_be_disabled()

    timeline.get_by_role("button", name="Earlier window").click()
    expect(page).to_have_url(re.compile(r"[?&]end=\d{4}-\d\d-\d\dT\d\d%3A\d\d"))
    expect(span).not_to_contain_text("(now)")
    end = datetime.strptime(
        re.search(r"end=([^&]+)", page.url).group(1).replace("%3A", ":"), "%Y-%m-%dT%H:%M"
    ).replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - timedelta(hours=6) - end) < timedelta(minutes=2)
    expect(span).to_have_text(window_text(end - timedelta(hours=6), end))
    expect(page.get_by_label("Window ends (UTC)")).to_have_value(end.strftime("%Y-%m-%dT%H:%M"))
    timeline.get_by_role("button", name="Now").click()
    expect(page).not_to_have_url(re.compile(r"[?&]end="))
    expect(span).to_contain_text("(now)")

    # A window typed into the form.
    page.get_by_label("Window ends (UTC)").fill(seeded.end_param)
    page.get_by_role("button", name="Apply").click()
    expect(span).to_have_text(window_text(seeded.end - timedelta(hours=6), seeded.end))

    rows = timeline.locator(".sl-row")
    expect(timeline.locator(".pager-range")).to_have_text(f"1–20 of {len(seeded.pcs)}")
    timeline.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"[?&]lanes=20"))
    expect(rows.first).to_have_attribute("data-row", seeded.pcs[20])
    expect(timeline.locator(".pager-range")).to_have_text(f"21–40 of {len(seeded.pcs)}")
    timeline.get_by_label("PCs per page").select_option("10")
    expect(page).to_have_url(re.compile(r"[?&]lane_rows=10"))
    assert "lanes=" not in page.url
    expect(rows).to_have_count(10)
    expect(rows.first).to_have_attribute("data-row", seeded.pcs[0])


def test_events_screenshots_and_phone_width(page: Page, seeded: Seeded, screenshot):
    page.goto(f"/events?end={seeded.end_param}&lane_rows=10")
    expect(card(page, "Timeline").locator(".sl-row")).to_have_count(10)
    screenshot("events")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(card(page, "Events").locator("tbody tr")).to_have_count(50)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
