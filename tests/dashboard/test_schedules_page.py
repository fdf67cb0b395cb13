"""The Schedules page and a schedule's page in a real browser against the live stack.

Besides the shared stack's two schedules, the catalog seed adds a paused, an agent-run,
an ended and an invalid one. The real scheduler then ticks through the past month of
the ended schedule (the fleet freeze holds every fire), so its history has pages of
decisions, skipped for two different reasons.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, time, timedelta

import nats
import pytest
from catalog_seed import ENDED_ID, PAUSED, publish_catalog, run
from page_parts import card, settle
from playwright.sync_api import Locator, Page, expect

from projectord.database import Writer, create_writer_engine
from projectord.scheduler.tick import Scheduler

HISTORY_DAYS = 30
TICK_EVERY_DAYS = 2


async def _tick_through_the_past(url: str, db, first: datetime) -> None:
    """Scheduler ticks every other day from ``first``: each records the fire it missed
    the day before and then the day's fire, skipped because the fleet is frozen."""
    nc = await nats.connect(url)
    writer = Writer(create_writer_engine(db))
    try:
        scheduler = Scheduler(nc.jetstream(), writer, {"catch_up_grace_s": 0}, asyncio.Event())
        for day in range(0, HISTORY_DAYS - 1, TICK_EVERY_DAYS):
            await scheduler.tick(first + timedelta(days=day))
            await scheduler.settle()
    finally:
        writer.close()
        await nc.close()


@pytest.fixture(scope="module")
def history(live) -> int:
    """The ended schedule's recorded decisions (how many)."""
    publish_catalog(live)
    today = datetime.now(UTC).date()
    # 30 s after the fire instant: within the scheduler's one-tick allowance.
    first = datetime.combine(today - timedelta(days=HISTORY_DAYS), time(6, 0, 30), UTC)
    run(_tick_through_the_past(live.nats_url, live.db_path, first))
    [(count,)] = live.query(
        "SELECT COUNT(*) FROM schedule_fires WHERE schedule_id = ?", (ENDED_ID,)
    )
    assert count > 25
    return count


def column(table: Locator, n: int) -> Locator:
    return table.locator(f"tbody tr td:nth-child({n})")


def stored(live, bucket: str) -> dict[str, dict]:
    return {
        key: json.loads(value)
        for key, value in live.query(
            "SELECT key, value FROM kv_entries WHERE bucket = ? ORDER BY key", (bucket,)
        )
    }


def test_the_list_shows_every_valid_schedule_with_its_status_and_next_fire(
    page: Page, live, history
):
    schedules = stored(live, "schedules")
    invalid = {key for (key,) in live.query("SELECT key FROM scheduler_rejects")}
    valid = sorted(set(schedules) - invalid)
    assert "broken-schedule" in invalid and len(valid) == 5
    page.goto("/schedules")
    table = card(page, "All schedules")
    expect(column(table, 1)).to_have_text(valid)
    status = dict(zip(valid, column(table, 5).all_inner_texts(), strict=True))
    assert status == {
        "inventory-daily": "frozen",
        "legacy-report": "ended",
        "logon-health": "agent-run",
        "nightly-cleanup": "frozen",
        "weekly-disk-cleanup": "paused",
    }
    row = table.locator("tbody tr").filter(has_text="nightly-cleanup")
    expect(row.locator("td").nth(1)).to_contain_text("Daily at 03:15")
    expect(row.locator("td").nth(1)).to_contain_text("UTC")
    expect(row.locator("td").nth(3)).to_have_text("Group office")
    expect(row.locator("td").nth(5)).to_contain_text("03:15")
    expect(row.get_by_role("link", name="inventory-hw")).to_have_attribute(
        "href", "/jobs?job=inventory-hw"
    )
    reconcile = table.locator("tbody tr").filter(has_text="inventory-daily")
    expect(reconcile.locator("td").nth(5)).to_have_text("every minute (reconcile)")
    expect(table.locator(".summary")).to_contain_text("5 schedules:")
    expect(page.locator(".freeze-banner")).to_contain_text("quarter-end change freeze")

    upcoming = card(page, "Next fires").locator("tbody tr")
    expect(upcoming).to_have_count(10)
    expect(upcoming.first).to_contain_text("nightly-cleanup")

    [(key, error)] = live.query("SELECT key, error FROM scheduler_rejects WHERE kind = 'schedule'")
    refused = card(page, "Refused by the scheduler").locator("tbody tr")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text(key)
    expect(refused).to_contain_text(error)


def _latest_states(live, job_id: str) -> dict[str, int]:
    """Coverage as the DB says: each PC's latest finished run of the job, ok or failed."""
    rows = live.query(
        "SELECT exit_code FROM (SELECT exit_code, ROW_NUMBER() OVER (PARTITION BY pc_id"
        " ORDER BY finished_at DESC, result_id DESC) AS n FROM execution_results"
        " WHERE job_id = ? AND finished_at IS NOT NULL) WHERE n = 1",
        (job_id,),
    )
    ok = sum(1 for (code,) in rows if code == 0)
    return {"ok": ok, "fail": len(rows) - ok}


def test_coverage_loads_in_its_own_card_and_matches_the_runs(page: Page, live, history):
    page.goto("/schedules")
    coverage = card(page, "Coverage")
    row = coverage.locator("tbody tr").filter(has_text="inventory-daily")
    states = _latest_states(live, "inventory-hw")
    [(agents,)] = live.query("SELECT COUNT(*) FROM agents")
    expect(row.locator(".cov-counts")).to_contain_text(f"{states['ok']} ok")
    expect(row.locator(".cov-counts")).to_contain_text(f"{states['fail']} failed")
    expect(row.locator(".cov-counts")).to_contain_text(f"of {agents}")
    expect(row.locator(".cov-bar")).to_have_attribute(
        "aria-label", re.compile(rf"^Coverage: {states['ok']} ok, {states['fail']} failed")
    )
    ended = coverage.locator("tbody tr").filter(has_text=ENDED_ID)
    expect(ended.locator(".cov-counts")).to_contain_text("5 pending")


def test_search_and_status_filters_live_in_the_url(page: Page, live, history):
    page.goto("/schedules")
    table = card(page, "All schedules")
    expect(table.locator("tbody tr")).to_have_count(5)
    page.get_by_label("Status").select_option("paused")
    expect(page).to_have_url(live.url("/schedules?status=paused"))
    expect(column(table, 1)).to_have_text([PAUSED["id"]])
    page.get_by_label("Status").select_option("")
    page.get_by_label("Search").fill("cleanup")
    page.get_by_label("Search").press("Enter")
    expect(page).to_have_url(live.url("/schedules?q=cleanup"))
    expect(column(table, 1)).to_have_text(["nightly-cleanup", "weekly-disk-cleanup"])
    settle(page)
    page.reload()
    expect(column(table, 1)).to_have_text(["nightly-cleanup", "weekly-disk-cleanup"])
    page.go_back()
    expect(page).to_have_url(live.url("/schedules"))
    expect(table.locator("tbody tr")).to_have_count(5)
    # The status counts are links to the same filter.
    table.get_by_role("link", name="1 agent-run: show only these").click()
    expect(page).to_have_url(live.url("/schedules?status=agent"))
    expect(column(table, 1)).to_have_text(["logon-health"])
    table.get_by_role("link", name="logon-health").click()
    expect(page).to_have_url(live.url("/schedules/logon-health"))
    expect(page.get_by_role("heading", name="logon-health", level=1)).to_be_visible()


def test_fire_history_shows_skip_reasons_and_pages_by_cursor(page: Page, live, history):
    fires = live.query(
        "SELECT outcome, reason, repeats FROM schedule_fires WHERE schedule_id = ?"
        " ORDER BY due_at DESC, id DESC",
        (ENDED_ID,),
    )
    assert {reason for _, reason, _ in fires} == {
        "missed while projectord was down",
        "frozen (quarter-end change freeze)",
    }
    page.goto(f"/schedules/{ENDED_ID}")
    expect(page.locator(".page-head .chip")).to_have_text("ended")
    history_card = card(page, "Fire history")
    expect(column(history_card, 2)).to_have_text([o for o, _, _ in fires[:25]])
    expect(column(history_card, 3)).to_have_text([r for _, r, _ in fires[:25]])
    history_card.get_by_role("button", name="Older").click()
    expect(page).to_have_url(re.compile(r"[?&]cursor="))
    expect(column(history_card, 3)).to_have_text([r for _, r, _ in fires[25:]])
    expect(history_card.get_by_role("button", name="Older")).to_be_disabled()
    settle(page)
    page.reload()
    expect(column(history_card, 3)).to_have_text([r for _, r, _ in fires[25:]])
    history_card.get_by_role("button", name="Newest").click()
    expect(column(history_card, 3)).to_have_count(25)
    history_card.get_by_label("Rows").select_option("100")
    expect(page).to_have_url(re.compile(r"[?&]limit=100"))
    expect(column(history_card, 3)).to_have_count(len(fires))

    expect(card(page, "Next fires")).to_contain_text("no fire in the next")
    coverage = card(page, "Coverage")
    expect(coverage.locator("tbody tr")).to_have_count(5)
    expect(column(coverage, 2)).to_have_text(["pending"] * 5)


def test_a_fired_decision_links_its_runs_and_coverage_filters_by_state(page: Page, live, history):
    [(exec_id, targets)] = live.query(
        "SELECT exec_id, target_count FROM schedule_fires"
        " WHERE schedule_id = 'inventory-daily' AND outcome = 'fired'"
    )
    page.goto("/schedules/inventory-daily")
    fired = card(page, "Fire history").locator("tbody tr").filter(has_text="fired")
    expect(fired.locator("td").nth(3)).to_have_text(str(targets))
    expect(fired.get_by_role("link")).to_have_attribute("href", f"/activity?exec_id={exec_id}")

    coverage = card(page, "Coverage")
    states = _latest_states(live, "inventory-hw")
    [(agents,)] = live.query("SELECT COUNT(*) FROM agents")
    expect(coverage.locator("tbody tr")).to_have_count(min(agents, 20))
    expect(coverage.locator(".pager-range")).to_have_text(f"1–20 of {agents}")
    coverage.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"[?&]cov_offset=20"))
    expect(coverage.locator("tbody tr").first).to_contain_text("sim-00021")
    coverage.get_by_role("button", name=f"ok ({states['ok']})").click()
    expect(page).to_have_url(re.compile(r"[?&]cov=ok"))
    assert "cov_offset" not in page.url
    expect(coverage.locator("tbody tr")).to_have_count(min(states["ok"], 20))
    expect(coverage.locator("tbody tr .chip")).to_have_text(["ok"] * min(states["ok"], 20))
    expect(coverage.get_by_role("button", name=f"ok ({states['ok']})")).to_have_attribute(
        "aria-pressed", "true"
    )

    status = card(page, "Status")
    [(ok, fail)] = live.query(
        "SELECT SUM(exit_code = 0), SUM(exit_code <> 0) FROM execution_results"
        " WHERE job_id = 'inventory-hw' AND finished_at IS NOT NULL AND recorded_at >= ?",
        ((datetime.now(UTC) - timedelta(hours=24)).isoformat(timespec="microseconds"),),
    )
    expect(status).to_contain_text(f"{ok} ok")
    expect(status).to_contain_text(f"{fail} failed")
    expect(status.locator(".chip").first).to_have_text("frozen")


def test_the_definition_reads_as_words_and_as_stored(page: Page, live, history):
    page.goto(f"/schedules/{PAUSED['id']}")
    expect(page.locator(".page-head .chip")).to_have_text("paused")
    definition = card(page, "Definition")
    settle(page)  # all_inner_texts does not wait for the card
    facts = dict(
        zip(
            definition.locator("dt").all_inner_texts(),
            definition.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert facts["Trigger"] == "At 22:00 on sun"
    assert facts["Target"] == "Groups office, lab"
    assert facts["Window"] == "21:00-23:30"
    assert facts["Skip dates"] == "2026-12-25"
    assert facts["Retry"] == "up to 2 times, 10m apart"
    assert facts["Enabled"] == "no"
    definition.get_by_text("Stored JSON").click()
    shown = json.loads(definition.locator("pre").inner_text())
    assert shown == stored(live, "schedules")[PAUSED["id"]]
    expect(card(page, "Next fires")).to_contain_text("disabled: no fires until it is enabled")
    expect(card(page, "Fire history").locator("tbody")).to_contain_text(
        "The scheduler has recorded no decision yet."
    )


def test_invalid_and_unknown_schedules(page: Page, live, page_watch, history):
    [(error,)] = live.query("SELECT error FROM scheduler_rejects WHERE key = 'broken-schedule'")
    page.goto("/schedules/broken-schedule")
    expect(page.get_by_role("note")).to_contain_text(
        f"Stored but invalid: the scheduler does not run it ({error})."
    )
    expect(card(page, "Fire history")).to_be_visible()

    page_watch.allow(404, "/api/schedules/no-such-schedule/fires")
    page.goto("/schedules/no-such-schedule")
    expect(page.get_by_role("heading", name="Schedule not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text('No schedule "no-such-schedule"')
    expect(page.locator("section.card")).to_have_count(1)
    page.get_by_role("link", name="All schedules").click()
    expect(page).to_have_url(live.url("/schedules"))


def test_schedule_screenshots_and_phone_width(page: Page, history, screenshot):
    page.goto("/schedules")
    expect(card(page, "Coverage").locator("tbody tr")).to_have_count(5)
    screenshot("schedules")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/schedules/inventory-daily")
    expect(card(page, "Coverage").locator("tbody tr")).to_have_count(20)
    screenshot("schedule-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
