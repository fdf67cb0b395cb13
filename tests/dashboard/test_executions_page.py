"""The Executions page in a real browser: each dispatch with its progress over the PCs it
targeted, filters and cursor paging in the URL, and rows that open the execution's
results in Activity. ``run_seed`` adds a month of executions, one under way, one nobody
answered and one stuck; rows are compared with the database.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from page_parts import card, settle
from playwright.sync_api import Locator, Page, expect
from run_seed import AUDIT_JOB, Seed, seed_runs

ORDER = " ORDER BY initiated_at DESC, exec_id DESC"


@pytest.fixture(scope="module")
def seed(live) -> Seed:
    return seed_runs(live)


def table(page: Page) -> Locator:
    return card(page, "Executions")


def id_links(page: Page) -> Locator:
    return table(page).locator("tbody tr td:first-child a")


def exec_ids(live, where: str = "1", params: tuple = (), limit: int = 50) -> list[str]:
    rows = live.query(f"SELECT exec_id FROM executions WHERE {where}{ORDER} LIMIT {limit}", params)
    return [e for (e,) in rows]


def short(ids: list[str]) -> list[str]:
    return [e[:8] for e in ids]


def row_of(page: Page, exec_id: str) -> Locator:
    return (
        table(page)
        .locator("tbody tr")
        .filter(has=page.get_by_role("link", name=exec_id[:8], exact=True))
    )


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def progress(live, exec_id: str) -> str:
    [(ok, failed, targets)] = live.query(
        "SELECT success_count, failure_count, target_count FROM executions WHERE exec_id = ?",
        (exec_id,),
    )
    [(running,)] = live.query(
        "SELECT COUNT(*) FROM execution_results WHERE exec_id = ? AND finished_at IS NULL",
        (exec_id,),
    )
    waiting = targets - ok - failed - running
    return (
        f"Progress: {ok} ok, {failed} failed, {running} running, {waiting} pending of {targets} PCs"
    )


def test_the_table_shows_every_execution_with_its_progress(page: Page, live, seed):
    page.goto("/executions")
    every = exec_ids(live)
    assert len(every) == 34  # the stack's fire and the seeded ones
    expect(id_links(page)).to_have_text(short(every))
    expect(id_links(page).first).to_have_attribute("href", f"/activity?exec_id={every[0]}")

    expected = {
        "unanswered": ("pending", "0 ok, 0 failed, 0 running, 5 pending of 5 PCs"),
        "under-way": ("running", "0 ok, 0 failed, 2 running, 1 pending of 3 PCs"),
        "history-00": ("running", "2 ok, 0 failed, 1 running, 0 pending of 3 PCs"),
        "edge-cases": ("completed", "1 ok, 2 failed, 0 running, 0 pending of 3 PCs"),
    }
    for name, (status, counts) in expected.items():
        exec_id = seed.executions[name].exec_id
        row = row_of(page, exec_id)
        expect(row.locator(".chip")).to_have_text(status)
        expect(row.locator(".cov-bar")).to_have_attribute("aria-label", f"Progress: {counts}")
        assert progress(live, exec_id) == f"Progress: {counts}"

    # The stack's fire: every agent answered.
    [(fired, job, version)] = live.query(
        "SELECT exec_id, job_id, version FROM executions WHERE exec_id ="
        " (SELECT exec_id FROM schedule_fires WHERE outcome = 'fired'"
        "  AND schedule_id = 'inventory-daily')"
    )
    row = row_of(page, fired)
    expect(row.locator(".chip")).to_have_text("completed")
    expect(row.locator(".cov-bar")).to_have_attribute("aria-label", progress(live, fired))
    expect(row.get_by_role("link", name=job)).to_have_attribute("href", f"/jobs?job={job}")
    expect(row.locator("td").nth(1)).to_have_text(f"{job}{version}")
    expect(row.locator("td").nth(2)).to_contain_text("by scheduler")


def test_status_and_job_filters_live_in_the_url(page: Page, live, seed):
    page.goto("/executions")
    page.get_by_label("Status").select_option("running")
    expect(page).to_have_url(re.compile(r"/executions\?(job_id=&)?status=running$"))
    running = exec_ids(live, "status = 'running'")
    assert len(running) == 2
    expect(id_links(page)).to_have_text(short(running))

    page.get_by_label("Job").fill("inventory-hw")
    page.get_by_label("Job").press("Enter")
    expect(page).to_have_url(re.compile(r"job_id=inventory-hw"))
    assert query_of(page) == {"job_id": ["inventory-hw"], "status": ["running"]}
    expect(table(page).locator(".table-empty")).to_have_text("No executions match these filters.")
    page.get_by_label("Status").select_option("completed")
    done = exec_ids(live, "status = 'completed' AND job_id = 'inventory-hw'")
    assert len(done) == 2
    expect(id_links(page)).to_have_text(short(done))
    settle(page)
    page.reload()
    expect(id_links(page)).to_have_text(short(done))
    expect(page.get_by_label("Job")).to_have_value("inventory-hw")
    expect(page.get_by_label("Status")).to_have_value("completed")
    page.go_back()
    expect(page.get_by_label("Status")).to_have_value("running")
    assert query_of(page) == {"job_id": ["inventory-hw"], "status": ["running"]}
    expect(table(page).locator(".table-empty")).to_be_visible()


def test_pages_follow_the_cursor(page: Page, live, seed):
    page.goto(f"/executions?job_id={AUDIT_JOB}")
    page.get_by_label("Rows").select_option("25")
    expect(page).to_have_url(re.compile(r"limit=25"))
    every = exec_ids(live, "job_id = ?", (AUDIT_JOB,), limit=100)
    assert len(every) == 32
    expect(id_links(page)).to_have_text(short(every[:25]))
    pager = table(page).get_by_role("navigation", name="Pages")
    pager.get_by_role("button", name="Older").click()
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(id_links(page)).to_have_text(short(every[25:]))
    expect(pager.get_by_role("button", name="Older")).to_be_disabled()
    settle(page)
    page.reload()
    expect(id_links(page)).to_have_text(short(every[25:]))
    page.go_back()
    expect(id_links(page)).to_have_text(short(every[:25]))
    expect(pager.get_by_role("button", name="Newest")).to_be_disabled()


def test_a_row_opens_the_executions_results_in_activity(page: Page, live, seed):
    history = seed.executions["history-05"]
    page.goto(f"/executions?job_id={AUDIT_JOB}")
    row_of(page, history.exec_id).locator("td").nth(3).click()
    expect(page).to_have_url(re.compile(rf"/activity\?exec_id={history.exec_id}$"))
    results = live.query(
        "SELECT result_id FROM execution_results WHERE exec_id = ?"
        " ORDER BY started_at DESC, result_id DESC",
        (history.exec_id,),
    )
    links = page.locator(".activity-card tbody tr td:first-child a")
    expect(links).to_have_text([r[:8] for (r,) in results])
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/executions\?job_id={AUDIT_JOB}$"))
    expect(row_of(page, history.exec_id)).to_be_visible()


def test_executions_screenshots_and_phone_width(page: Page, live, seed, screenshot):
    page.goto("/executions")
    expect(id_links(page)).not_to_have_count(0)
    screenshot("executions")
    page.set_viewport_size({"width": 390, "height": 844})
    settle(page)
    page.reload()
    expect(id_links(page)).not_to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
