"""The Jobs page in a real browser against the live stack: the catalog from KV, what
uses each job, its runs of the last day, and the scripts.

The catalog seed adds two jobs (a multi-line PowerShell script and a script object) and
schedules that use them to the shared stack's one job.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from catalog_seed import INVALID, publish_catalog
from page_parts import card, settle
from playwright.sync_api import Locator, Page, expect


@pytest.fixture(scope="module")
def catalog(live) -> dict[str, dict]:
    """Every job in KV by id, once the seed is mirrored."""
    publish_catalog(live)
    return {
        key: json.loads(value)
        for key, value in live.query(
            "SELECT key, value FROM kv_entries WHERE bucket = 'jobs' ORDER BY key"
        )
    }


def row(page: Page, job_id: str) -> Locator:
    return (
        card(page, "Job catalog")
        .locator("tbody tr")
        .filter(has=page.get_by_role("link", name=job_id, exact=True))
    )


def cells(page: Page, job_id: str) -> list[str]:
    return [t.strip() for t in row(page, job_id).locator("td").all_inner_texts()]


def test_the_catalog_matches_kv_and_the_runs(page: Page, live, catalog):
    page.goto("/jobs")
    table = card(page, "Job catalog")
    ids = sorted(catalog)
    assert ids == ["agent-health", "disk-cleanup", "inventory-hw"]
    expect(table.locator("tbody tr td:first-child a")).to_have_text(ids)
    for job_id, job in catalog.items():
        shown = cells(page, job_id)
        assert shown[1:5] == [
            job["version"],
            job["execute"]["shell"],
            job["execute"]["timeout"],
            job["execute"].get("run_as", "system"),
        ], job_id

    # Used by: the valid schedules in KV naming the job (the seed's invalid one is not).
    users: dict[str, list[str]] = {}
    invalid = {INVALID["id"]}
    for key, value in live.query(
        "SELECT key, value FROM kv_entries WHERE bucket = 'schedules' ORDER BY key"
    ):
        if key not in invalid:
            users.setdefault(json.loads(value)["job_id"], []).append(key)
    for job_id in ids:
        links = row(page, job_id).locator("td").nth(8).get_by_role("link")
        expect(links).to_have_text(users.get(job_id, []))
    expect(row(page, "inventory-hw").get_by_role("link", name="nightly-cleanup")).to_have_attribute(
        "href", "/schedules/nightly-cleanup"
    )

    # Runs, 24 h: finished results of the job in the last day.
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat(timespec="microseconds")
    [(runs,)] = live.query(
        "SELECT COUNT(*) FROM execution_results WHERE job_id = 'inventory-hw' AND finished_at >= ?",
        (since,),
    )
    assert runs >= live.agents
    runs_cell = row(page, "inventory-hw").locator("td").nth(6)
    expect(runs_cell).to_have_text(str(runs))
    expect(runs_cell.get_by_role("link")).to_have_attribute(
        "href", "/activity?job_id=%5Einventory-hw%24"
    )
    expect(row(page, "disk-cleanup").locator("td").nth(6)).to_have_text("0")

    # Now: executions of the job running or pending.
    live_counts = dict(
        live.query(
            "SELECT status, COUNT(*) FROM executions WHERE job_id = 'inventory-hw'"
            " AND status IN ('running', 'pending') GROUP BY status"
        )
    )
    now_cell = row(page, "inventory-hw").locator("td").nth(5)
    if live_counts:
        for status, n in live_counts.items():
            expect(now_cell).to_contain_text(f"{n} {status}")
    else:
        expect(now_cell).to_have_text("idle")


def test_scripts_open_from_the_url_and_show_the_stored_body(page: Page, live, catalog):
    page.goto("/jobs?job=disk-cleanup")
    block = page.locator('details[data-job="disk-cleanup"]')
    expect(block).to_have_attribute("open", "")
    script = catalog["disk-cleanup"]["execute"]["script"]
    expect(block.get_by_label("Script of disk-cleanup")).to_have_text(script)
    lines = len(script.splitlines())
    expect(block.locator("summary")).to_have_text(
        f"disk-cleanup v1.0.3 · powershell · {lines} lines"
    )
    expect(page.locator('details[data-job="inventory-hw"]')).not_to_have_attribute("open", "")
    expect(
        row(page, "disk-cleanup").get_by_role("link", name="disk-cleanup", exact=True)
    ).to_have_attribute("aria-current", "true")
    settle(page)
    page.reload()
    expect(block).to_have_attribute("open", "")

    other = page.locator('details[data-job="agent-health"]')
    other.locator("summary").click()
    expect(other).to_contain_text("agent-health-2.1.0.cmd")
    expect(other).to_contain_text("its body is not mirrored here")
    # A refresh keeps what the user opened.
    page.get_by_role("button", name="Refresh").click()
    settle(page)
    expect(other).to_have_attribute("open", "")

    # From a schedule, the job link lands on the job's script.
    page.goto("/schedules/nightly-cleanup")
    page.locator(".page-sub").get_by_role("link", name="inventory-hw").click()
    expect(page).to_have_url(live.url("/jobs?job=inventory-hw"))
    expect(page.locator('details[data-job="inventory-hw"] pre')).to_have_text(
        catalog["inventory-hw"]["execute"]["script"]
    )

    page.goto("/jobs?job=no-such-job")
    expect(page.get_by_role("note")).to_have_text('No job "no-such-job" in the catalog.')


def test_search_and_shell_filters_live_in_the_url(page: Page, live, catalog):
    page.goto("/jobs")
    table = card(page, "Job catalog")
    first_links = table.locator("tbody tr td:first-child a")
    expect(first_links).to_have_count(len(catalog))
    page.get_by_label("Shell").select_option("cmd")
    expect(page).to_have_url(live.url("/jobs?shell=cmd"))
    cmd = sorted(k for k, j in catalog.items() if j["execute"]["shell"] == "cmd")
    expect(first_links).to_have_text(cmd)
    expect(page.locator("details.script-block")).to_have_count(len(cmd))
    page.get_by_label("Shell").select_option("")
    page.get_by_label("Search").fill("TEMP")
    page.get_by_label("Search").press("Enter")
    expect(page).to_have_url(re.compile(r"/jobs\?q=TEMP$"))
    expect(first_links).to_have_text(["disk-cleanup"])  # its description mentions TEMP
    settle(page)
    page.reload()
    expect(first_links).to_have_text(["disk-cleanup"])
    page.go_back()
    expect(first_links).to_have_count(len(catalog))


def test_jobs_screenshots_and_phone_width(page: Page, catalog, screenshot):
    page.goto("/jobs?job=disk-cleanup")
    expect(page.locator('details[data-job="disk-cleanup"] pre')).to_be_visible()
    # The page scrolls to the chosen script; shoot the whole page from the top.
    page.wait_for_function("window.scrollY > 0")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot("jobs")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
