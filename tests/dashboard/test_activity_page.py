"""The Activity page in a real browser: command results with every filter of the API,
the running count, cursor paging, and rows that open the result.

Besides the stack's own runs, ``run_seed`` adds a month of older executions, runs in
flight and edge cases; rows are compared with the database.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from page_parts import card, settle
from playwright.sync_api import Locator, Page, expect
from run_seed import SEARCH_TOKEN, Seed, seed_runs

from projectord.timestamps import format_db

ORDER = " ORDER BY started_at DESC, result_id DESC"


@pytest.fixture(scope="module")
def seed(live) -> Seed:
    return seed_runs(live)


def results_card(page: Page) -> Locator:
    return card(page, "Results")


def id_links(page: Page) -> Locator:
    return results_card(page).locator("tbody tr td:first-child a")


def ago(**delta: float) -> str:
    return format_db(datetime.now(UTC) - timedelta(**delta))


def ids(live, where: str, params: tuple = (), limit: int = 50) -> list[str]:
    rows = live.query(
        f"SELECT result_id FROM execution_results WHERE {where}{ORDER} LIMIT {limit}", params
    )
    return [r for (r,) in rows]


def short(result_ids: list[str]) -> list[str]:
    return [r[:8] for r in result_ids]


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_the_default_view_lists_the_last_days_runs_and_counts_those_in_flight(
    page: Page, live, seed
):
    page.goto("/activity")
    newest = ids(live, "started_at >= ?", (ago(hours=24),))
    assert 40 < len(newest) <= 50
    expect(id_links(page)).to_have_text(short(newest))
    first = id_links(page).first
    expect(first).to_have_attribute("href", f"/activity/{newest[0]}")
    expect(first).to_have_attribute("title", newest[0])

    [(pc, job, version)] = live.query(
        "SELECT pc_id, job_id, version FROM execution_results WHERE result_id = ?", (newest[0],)
    )
    row = results_card(page).locator("tbody tr").first
    expect(row.get_by_role("link", name=pc, exact=True)).to_have_attribute("href", f"/agents/{pc}")
    expect(row.locator("td").nth(3)).to_have_text(f"{job} {version}")

    # The status buttons: "All" pressed, and Running counts the runs still in flight.
    [(running,)] = live.query(
        "SELECT COUNT(*) FROM execution_results WHERE finished_at IS NULL AND started_at >= ?",
        (ago(hours=24),),
    )
    assert running == 2  # the execution under way
    status = results_card(page).get_by_role("group", name="Status")
    expect(status.get_by_role("button", name="All")).to_have_attribute("aria-pressed", "true")
    expect(status.get_by_role("button", name=re.compile("^Running"))).to_have_text(
        f"Running{running}"
    )
    expect(results_card(page).locator("tbody .chip", has_text="running")).to_have_count(running)
    expect(page.get_by_label("Started")).to_have_value("24h")


def test_status_pc_and_time_range_filters_live_in_the_url(page: Page, live, seed):
    # The Dashboard's failure link lands here with the Failed button pressed.
    page.goto("/activity?status=failure")
    status = results_card(page).get_by_role("group", name="Status")
    expect(status.get_by_role("button", name="Failed")).to_have_attribute("aria-pressed", "true")
    failed = ids(
        live, "exit_code IS NOT NULL AND exit_code <> 0 AND started_at >= ?", (ago(hours=24),)
    )
    assert failed
    expect(id_links(page)).to_have_text(short(failed))
    expect(results_card(page).locator("tbody tr td:nth-child(2) .chip")).to_have_count(len(failed))
    for chip in results_card(page).locator("tbody tr td:nth-child(2) .chip").all():
        expect(chip).to_have_text(re.compile(r"^(failed · exit -?\d+|skipped|timed out)$"))

    # A PC pattern: every row is that PC's.
    pc = seed.run("big-failure").pc_id
    page.get_by_label("PC").fill(f"^{pc}$")
    page.get_by_label("PC").press("Enter")
    expect(page).to_have_url(re.compile(r"pc_id="))
    assert query_of(page)["pc_id"] == [f"^{pc}$"]
    assert query_of(page)["status"] == ["failure"]
    on_pc = ids(
        live,
        "pc_id = ? AND exit_code IS NOT NULL AND exit_code <> 0 AND started_at >= ?",
        (pc, ago(hours=24)),
    )
    expect(id_links(page)).to_have_text(short(on_pc))
    settle(page)
    page.reload()
    expect(id_links(page)).to_have_text(short(on_pc))
    expect(page.get_by_label("PC")).to_have_value(f"^{pc}$")

    # Running, then all time: the stuck run of a day ago joins the two under way.
    settle(page)
    page.goto("/activity")
    status.get_by_role("button", name=re.compile("^Running")).click()
    expect(page).to_have_url(re.compile(r"/activity\?status=running$"))
    expect(id_links(page)).to_have_text(
        short(ids(live, "finished_at IS NULL AND started_at >= ?", (ago(hours=24),)))
    )
    page.get_by_label("Started").select_option("all")
    expect(page).to_have_url(re.compile(r"since=all"))
    stuck = ids(live, "finished_at IS NULL")
    assert len(stuck) == 3
    expect(id_links(page)).to_have_text(short(stuck))
    expect(status.get_by_role("button", name=re.compile("^Running"))).to_have_text("Running3")
    expect(results_card(page).locator(".activity-note")).to_have_text(
        "Runs of all time, newest first."
    )
    page.go_back()
    expect(page).to_have_url(re.compile(r"/activity\?status=running$"))
    expect(id_links(page)).to_have_count(2)


def test_pages_follow_the_cursor_and_back_returns(page: Page, live, seed):
    page.goto("/activity?since=7d")
    since = ago(days=7)
    first = ids(live, "started_at >= ?", (since,))
    second = ids(live, "started_at >= ?", (since,), limit=100)[50:]
    assert len(first) == 50 and second
    expect(id_links(page)).to_have_text(short(first))
    pager = results_card(page).get_by_role("navigation", name="Pages")
    expect(pager.get_by_role("button", name="Newest")).to_be_disabled()
    pager.get_by_role("button", name="Older").click()
    expect(page).to_have_url(re.compile(r"since=7d&cursor=|cursor=.*since=7d"))
    expect(id_links(page)).to_have_text(short(second))
    settle(page)
    page.reload()
    expect(id_links(page)).to_have_text(short(second))
    page.go_back()
    expect(id_links(page)).to_have_text(short(first))
    page.go_forward()
    expect(id_links(page)).to_have_text(short(second))
    pager.get_by_role("button", name="Newest").click()
    expect(page).to_have_url(re.compile(r"/activity\?since=7d$"))
    expect(id_links(page)).to_have_text(short(first))

    # A bigger page holds both.
    page.get_by_label("Rows").select_option("200")
    expect(page).to_have_url(re.compile(r"limit=200"))
    expect(id_links(page)).to_have_count(len(ids(live, "started_at >= ?", (since,), limit=200)))


def test_an_output_search_marks_the_match(page: Page, live, seed):
    page.goto("/activity?since=all")
    page.get_by_label("Stdout").fill(SEARCH_TOKEN)
    page.get_by_label("Stdout").press("Enter")
    expect(page).to_have_url(re.compile(rf"stdout={SEARCH_TOKEN}"))
    found = ids(live, "stdout LIKE ?", (f"%{SEARCH_TOKEN}%",))
    assert len(found) >= 6
    expect(id_links(page)).to_have_text(short(found))
    expect(results_card(page).locator("tbody mark")).to_have_text([SEARCH_TOKEN] * len(found))

    # A job pattern that matches nothing says so.
    page.get_by_label("Job").fill("^no-such-job$")
    page.get_by_label("Job").press("Enter")
    expect(results_card(page).locator(".table-empty")).to_have_text(
        "No results match these filters."
    )
    page.get_by_role("button", name="Clear").click()
    expect(page).to_have_url(re.compile(r"/activity$"))


def test_an_execution_link_shows_all_its_results_and_a_row_opens_the_result(page: Page, live, seed):
    edge = seed.executions["edge-cases"]
    page.goto("/activity")
    row = (
        results_card(page)
        .locator("tbody tr")
        .filter(has=page.get_by_role("link", name=seed.run("no-output").result_id[:8]))
    )
    row.get_by_role("link", name=edge.exec_id[:8]).click()
    expect(page).to_have_url(re.compile(rf"/activity\?exec_id={edge.exec_id}$"))
    # An execution's results are shown whole, however old: the range defaults to all.
    expect(page.get_by_label("Started")).to_have_value("all")
    expect(page.get_by_label("Execution")).to_have_value(edge.exec_id)
    expect(id_links(page)).to_have_text(short(ids(live, "exec_id = ?", (edge.exec_id,))))

    # The whole row opens the result (not only its id link).
    big = seed.run("big-failure")
    results_card(page).locator("tbody tr").filter(has_text=big.result_id[:8]).locator("td").nth(
        6
    ).click()
    expect(page).to_have_url(re.compile(rf"/activity/{big.result_id}$"))
    expect(page.get_by_role("heading", name=f"Result {big.result_id[:8]}")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/activity\?exec_id={edge.exec_id}$"))


def test_activity_screenshots_and_phone_width(page: Page, live, seed, screenshot):
    page.goto("/activity")
    expect(id_links(page)).not_to_have_count(0)
    screenshot("activity")
    page.set_viewport_size({"width": 390, "height": 844})
    settle(page)
    page.goto("/activity?status=failure")
    expect(id_links(page)).not_to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_links_from_the_agent_and_jobs_pages_land_on_their_runs(page: Page, live, seed):
    # Agent detail links with the PC id escaped and anchored: only that PC's runs.
    pc = seed.run("big-failure").pc_id
    page.goto(f"/agents/{pc}")
    page.get_by_role("link", name="All runs on this PC").click()
    expect(page).to_have_url(re.compile(r"/activity\?pc_id="))
    assert query_of(page)["pc_id"] == [f"^{pc}$"]
    expect(page.get_by_label("PC")).to_have_value(f"^{pc}$")
    on_pc = ids(live, "pc_id = ? AND started_at >= ?", (pc, ago(hours=24)))
    assert on_pc
    expect(id_links(page)).to_have_text(short(on_pc))
    expect(results_card(page).locator("tbody tr td:nth-child(3)")).to_have_text([pc] * len(on_pc))

    # The Jobs page links a job's run count with the job id, anchored: the API's filter
    # is a pattern, and "x" alone would also match a job "x-full".
    settle(page)
    page.goto("/jobs")
    page.locator('a[href="/activity?job_id=%5Einventory-hw%24"]').first.click()
    expect(page).to_have_url(re.compile(r"/activity\?job_id=%5Einventory-hw%24$"))
    of_job = ids(live, "job_id = ? AND started_at >= ?", ("inventory-hw", ago(hours=24)))
    assert of_job
    expect(id_links(page)).to_have_text(short(of_job))
