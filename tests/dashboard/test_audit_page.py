"""The Audit page in a real browser: the trail with actor, action, target and payload
patterns and a time span, cursor paging in the URL, and payloads that open in place.

Besides the stack's one scheduler fire, this module publishes three days of audit events
of every kind of actor through the broker and the real audit projector.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import nats
import pytest
from page_parts import card, settle
from playwright.sync_api import Locator, Page, expect
from run_seed import run_async, sid

from projectord.timestamps import format_db

ENTRIES = 72  # one an hour, back three days
ORDER = " ORDER BY occurred_at DESC, id DESC"


def _entry(n: int, at: datetime) -> dict[str, Any]:
    """The n-th seeded audit event: operators, rollouts, agents and scheduler fires."""
    kind = n % 6
    if kind == 0:
        job = ["inventory-hw", "software-audit", "disk-cleanup"][n % 3]
        body = {
            "actor": "operator",
            "action": "job_upsert",
            "target": job,
            "payload": {"version": f"1.{n}.0", "sub": "alice", "source": "cli"},
        }
    elif kind == 1:
        body = {
            "actor": "operator",
            "action": "schedule_upsert",
            "target": "inventory-daily",
            "payload": {"enabled": n % 4 != 1, "sub": "bob", "source": "spa"},
        }
    elif kind == 2:
        body = {
            "actor": "self-update",
            "action": "agent_rollout",
            "target": f"ring-{n % 3}",
            "payload": {"version": "0.44.1", "wave": n % 3, "pcs": 40, "started": True},
        }
    elif kind == 3:
        pc = f"sim-{1 + n % 40:05d}"
        body = {
            "actor": "agent",
            "action": "version_quarantined",
            "target": pc,
            "payload": {"pc_id": pc, "version": "0.44.0", "reason": "crashed 3 times in 10 min"},
        }
    elif kind == 4:
        body = {
            "actor": "operator",
            "action": "freeze_set",
            "target": None,
            "payload": {"reason": "quarter-end change freeze", "until": "2099-01-01T00:00:00Z"},
        }
    else:
        body = {
            "actor": "scheduler",
            "action": "exec",
            "target": "software-audit",
            "payload": {
                "exec_id": sid(f"exec:history-{n // 24:02d}"),
                "version": "3.0.1",
                "target_count": 3,
                "subjects": ["commands.pc.sim-00001", "commands.pc.sim-00002"],
                "wave_mode": False,
            },
        }
    body["occurred_at"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return body


async def _publish(url: str, bodies: list[dict[str, Any]]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for body in bodies:
            target = f".{body['target']}" if body["target"] else ""
            await js.publish(
                f"audit.{body['actor']}.{body['action']}{target}", json.dumps(body).encode()
            )
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def seeded(live) -> list[dict[str, Any]]:
    [(before,)] = live.query("SELECT COUNT(*) FROM audit_log")
    now = datetime.now(UTC)
    bodies = [_entry(n, now - timedelta(hours=n, minutes=17)) for n in range(ENTRIES)]
    run_async(_publish(live.nats_url, bodies))
    deadline = time.monotonic() + 60
    while live.query("SELECT COUNT(*) FROM audit_log")[0][0] < before + ENTRIES:
        assert time.monotonic() < deadline, "audit events not projected within 60 s"
        time.sleep(0.2)
    return bodies


def trail(page: Page) -> Locator:
    return card(page, "Audit trail")


def rows(page: Page) -> Locator:
    return trail(page).locator("tbody tr")


def when_cells(page: Page) -> Locator:
    return trail(page).locator("tbody tr td:first-child time")


def entries(live, where: str = "1", params: tuple = (), limit: int = 50) -> list[tuple]:
    return live.query(
        f"SELECT id, actor, action, target, occurred_at FROM audit_log WHERE {where}{ORDER}"
        f" LIMIT {limit}",
        params,
    )


def shown_times(found: list[tuple]) -> list[str]:
    """The When column as the page writes it: UTC to the second."""
    return [
        datetime.fromisoformat(at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") for *_, at in found
    ]


def ago(**delta: float) -> str:
    return format_db(datetime.now(UTC) - timedelta(**delta))


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_the_last_day_of_the_trail_matches_the_database(page: Page, live, seeded):
    page.goto("/audit")
    found = entries(live, "occurred_at >= ?", (ago(hours=24),))
    assert 24 <= len(found) <= 30
    expect(when_cells(page)).to_have_text(shown_times(found))
    expect(trail(page).locator("tbody tr td:nth-child(2)")).to_have_text([a for _, a, *_ in found])
    expect(trail(page).locator("tbody tr td:nth-child(3)")).to_have_text(
        [action for _, _, action, *_ in found]
    )
    expect(page.get_by_label("Occurred")).to_have_value("24h")
    # No more than one page: nothing older to page to.
    pager = trail(page).get_by_role("navigation", name="Pages")
    expect(pager.get_by_role("button", name="Older")).to_be_disabled()

    # Targets link to what they name.
    upsert = rows(page).filter(has_text="schedule_upsert").first
    expect(upsert.get_by_role("link", name="inventory-daily")).to_have_attribute(
        "href", "/schedules/inventory-daily"
    )
    job = rows(page).filter(has_text="job_upsert").first
    expect(job.locator("td").nth(3).get_by_role("link")).to_have_attribute(
        "href", re.compile(r"^/jobs\?job=")
    )


def test_filters_live_in_the_url(page: Page, live, seeded):
    page.goto("/audit")
    page.get_by_label("Actor").fill("^operator$")
    page.get_by_label("Occurred").select_option("all")
    expect(page).to_have_url(re.compile(r"since=all"))
    assert query_of(page) == {"actor": ["^operator$"], "since": ["all"]}
    operator = entries(live, "actor = 'operator'")
    expect(when_cells(page)).to_have_text(shown_times(operator))
    expect(trail(page).locator("tbody tr td:nth-child(2)")).to_have_text(
        ["operator"] * len(operator)
    )

    # Payload patterns search the stored JSON.
    page.get_by_label("Payload").fill('"source":\\s*"spa"')
    page.get_by_label("Payload").press("Enter")
    expect(page).to_have_url(re.compile(r"payload="))
    spa = entries(live, "actor = 'operator' AND payload LIKE '%\"spa\"%'")
    assert spa
    expect(when_cells(page)).to_have_text(shown_times(spa))
    settle(page)
    page.reload()
    expect(when_cells(page)).to_have_text(shown_times(spa))
    expect(page.get_by_label("Payload")).to_have_value('"source":\\s*"spa"')

    page.go_back()
    expect(when_cells(page)).to_have_text(shown_times(operator))

    page.get_by_label("Action").fill("^nothing-like-this$")
    page.get_by_label("Action").press("Enter")
    expect(trail(page).locator(".table-empty")).to_have_text("No entries match these filters.")
    page.get_by_role("button", name="Clear").click()
    expect(page).to_have_url(re.compile(r"/audit$"))


def test_pages_follow_the_cursor(page: Page, live, seeded):
    page.goto("/audit?since=all")
    every = entries(live, limit=200)
    assert len(every) > 50
    expect(when_cells(page)).to_have_text(shown_times(every[:50]))
    pager = trail(page).get_by_role("navigation", name="Pages")
    pager.get_by_role("button", name="Older").click()
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(when_cells(page)).to_have_text(shown_times(every[50:100]))
    settle(page)
    page.reload()
    expect(when_cells(page)).to_have_text(shown_times(every[50:100]))
    page.go_back()
    expect(when_cells(page)).to_have_text(shown_times(every[:50]))
    page.go_forward()
    pager.get_by_role("button", name="Newest").click()
    expect(page).to_have_url(re.compile(r"/audit\?since=all$"))


def test_a_payload_opens_in_place_and_links_the_execution(page: Page, live, seeded):
    page.goto("/audit?actor=%5Escheduler%24&since=all")
    [(payload,)] = live.query(
        "SELECT payload FROM audit_log WHERE actor = 'scheduler'" + ORDER + " LIMIT 1"
    )
    stored = json.loads(payload)
    first = rows(page).first
    details = first.locator("details")
    expect(details).not_to_have_attribute("open", "")
    first.locator("summary").click()
    expect(details).to_have_attribute("open", "")
    assert json.loads(first.locator("pre").text_content()) == stored
    expect(first.get_by_role("link", name="Results of this execution")).to_have_attribute(
        "href", f"/activity?exec_id={stored['exec_id']}"
    )
    # A refresh keeps it open.
    page.get_by_role("button", name="Refresh").click()
    settle(page)
    expect(rows(page).first.locator("details")).to_have_attribute("open", "")


def test_audit_screenshots_and_phone_width(page: Page, live, seeded, screenshot):
    page.goto("/audit")
    expect(rows(page)).not_to_have_count(0)
    rows(page).filter(has_text="agent_rollout").first.locator("summary").click()
    screenshot("audit")
    page.set_viewport_size({"width": 390, "height": 844})
    settle(page)
    page.reload()
    expect(rows(page)).not_to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
