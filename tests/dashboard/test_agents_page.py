"""The Agents page in a real browser: the server-paged table, its filters, status chips,
sorting and paging, all in the URL, checked against the database the API reads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from page_parts import settle
from playwright.sync_api import Page, expect

ONLINE_WINDOW = timedelta(minutes=2)


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def table(page: Page):
    return page.locator("section.agents-card")


def pc_cells(page: Page) -> list[str]:
    return table(page).locator("tbody tr td:first-child").all_inner_texts()


def status_counts(live) -> tuple[int, int]:
    since = (datetime.now(UTC) - ONLINE_WINDOW).isoformat(timespec="microseconds")
    [(known, online)] = live.query(
        "SELECT COUNT(*), SUM(last_heartbeat >= ?) FROM agents", (since,)
    )
    return known, online


def chip(page: Page, name: str):
    return page.get_by_role("group", name="Status").get_by_role("button", name=re.compile(name))


def test_the_table_shows_every_agent_with_the_counts_of_the_database(page: Page, live):
    page.goto("/agents")
    settle(page)
    known, online = status_counts(live)
    assert known == live.agents
    expect(table(page).locator("tbody tr")).to_have_count(known)
    assert sorted(pc_cells(page)) == [pc for (pc,) in live.query("SELECT pc_id FROM agents")]

    expect(chip(page, "^All")).to_have_attribute("aria-pressed", "true")
    expect(chip(page, "^All").locator(".toggle-count")).to_have_text(str(known))
    expect(chip(page, "^Online").locator(".toggle-count")).to_have_text(str(online))
    expect(chip(page, "^Offline").locator(".toggle-count")).to_have_text(str(known - online))
    expect(table(page).locator(".pager-range")).to_have_text(f"1–{known} of {known}")

    # The newest row is the one updated last (the API's default order).
    pc, hostname, version, os_family, user = live.query(
        "SELECT pc_id, hostname, agent_version, os_family, last_logon_user FROM agents"
        " WHERE pc_id = ?",
        (pc_cells(page)[0],),
    )[0]
    first = table(page).locator("tbody tr").first
    cells = first.locator("td")
    expect(cells.nth(1)).to_have_text(hostname)
    expect(cells.nth(2)).to_have_text("online")
    expect(cells.nth(3)).to_have_text(os_family)
    expect(cells.nth(4)).to_have_text(version)
    expect(cells.nth(6)).to_have_text(user)
    expect(first.get_by_role("link", name=pc)).to_have_attribute("href", f"/agents/{pc}")
    headers = table(page).locator("thead th")
    expect(headers.first).to_have_attribute("scope", "col")
    expect(table(page).locator("th[aria-sort=descending]")).to_have_text(re.compile("Updated"))


def test_status_chips_filter_and_back_returns(page: Page, live):
    page.goto("/agents")
    settle(page)
    known, online = status_counts(live)
    chip(page, "^Online").click()
    expect(page).to_have_url(re.compile(r"/agents\?status=online$"))
    expect(chip(page, "^Online")).to_have_attribute("aria-pressed", "true")
    expect(table(page).locator("tbody tr")).to_have_count(online)
    expect(table(page).locator(".pager-range")).to_have_text(f"1–{online} of {online}")

    chip(page, "^Offline").click()
    expect(page).to_have_url(re.compile(r"/agents\?status=offline$"))
    settle(page)
    offline = known - online
    if offline:
        expect(table(page).locator("tbody tr")).to_have_count(offline)
    else:
        expect(table(page).locator(".table-empty")).to_have_text("No agents match these filters.")
    expect(chip(page, "^All").locator(".toggle-count")).to_have_text(str(known))

    page.go_back()
    expect(page).to_have_url(re.compile(r"/agents\?status=online$"))
    expect(chip(page, "^Online")).to_have_attribute("aria-pressed", "true")
    page.go_back()
    expect(page).to_have_url(live.url("/agents"))
    expect(chip(page, "^All")).to_have_attribute("aria-pressed", "true")


def test_filters_go_to_the_url_and_narrow_the_rows(page: Page, live):
    page.goto("/agents?sort=pc_id")
    settle(page)
    page.get_by_label("PC or host name").fill("sim-0000[1-5]")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"q=sim-0000%5B1-5%5D"))
    expect(table(page).locator("tbody tr")).to_have_count(5)
    assert pc_cells(page) == [f"sim-{n:05d}" for n in range(1, 6)]
    # The chips count what the filter matches.
    expect(chip(page, "^Matching").locator(".toggle-count")).to_have_text("5")

    page.reload()
    expect(page.get_by_label("PC or host name")).to_have_value("sim-0000[1-5]")
    expect(table(page).locator("tbody tr")).to_have_count(5)

    # Host names match too, and the user filter combines with it.
    [(user,)] = live.query("SELECT last_logon_user FROM agents WHERE pc_id = 'sim-00003'")
    page.get_by_label("PC or host name").fill("^SIM-000")
    page.get_by_label("Last logon user").fill(f"^{user}$")
    page.get_by_label("Last logon user").press("Enter")
    expected = [
        pc
        for (pc,) in live.query(
            "SELECT pc_id FROM agents WHERE hostname LIKE 'SIM-000%' AND last_logon_user = ?"
            " ORDER BY pc_id",
            (user,),
        )
    ]
    expect(table(page).locator("tbody tr")).to_have_count(len(expected))
    assert pc_cells(page) == expected
    assert query_of(page)["user"] == [f"^{user}$"]

    # The version field suggests the versions the fleet runs.
    [(version,)] = live.query("SELECT DISTINCT agent_version FROM agents")
    options = page.locator("datalist#agent-versions option")
    expect(options).to_have_count(1)
    expect(options).to_have_attribute("value", version)
    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Agent version").fill("^9\\.")
    page.get_by_label("Agent version").press("Enter")
    expect(table(page).locator(".table-empty")).to_have_text("No agents match these filters.")
    expect(chip(page, "^Matching").locator(".toggle-count")).to_have_text("0")

    page.get_by_role("button", name="Clear").click()
    expect(page).to_have_url(re.compile(r"/agents\?sort=pc_id$"))
    expect(table(page).locator("tbody tr")).to_have_count(live.agents)


def test_a_bad_pattern_shows_the_api_error_in_the_card(page: Page, page_watch):
    page_watch.allow(400, "/api/agents?")
    page.goto("/agents?q=(")
    alert = table(page).get_by_role("alert")
    expect(alert).to_contain_text("q")
    expect(table(page).get_by_role("button", name="Retry")).to_be_visible()


def test_sorting_and_paging_live_in_the_url(page: Page, live):
    ids = [pc for (pc,) in live.query("SELECT pc_id FROM agents ORDER BY pc_id")]
    page.goto("/agents?limit=25")
    settle(page)
    expect(page.get_by_label("Rows")).to_have_value("25")
    page.get_by_role("button", name="PC", exact=True).click()
    expect(page).to_have_url(re.compile(r"limit=25&sort=pc_id&dir=asc"))
    expect(table(page).locator("th[aria-sort=ascending]")).to_have_text(re.compile("PC"))
    expect(table(page).locator("tbody tr")).to_have_count(25)
    assert pc_cells(page) == ids[:25]

    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"offset=25"))
    expect(table(page).locator(".pager-range")).to_have_text(f"26–{len(ids)} of {len(ids)}")
    expect(table(page).locator("tbody tr")).to_have_count(len(ids) - 25)
    assert pc_cells(page) == ids[25:]
    expect(page.get_by_role("button", name="Next")).to_be_disabled()

    page.reload()
    expect(table(page).locator("tbody tr")).to_have_count(len(ids) - 25)
    assert pc_cells(page) == ids[25:]

    page.go_back()
    expect(page).to_have_url(re.compile(r"limit=25&sort=pc_id&dir=asc$"))
    expect(table(page).locator("tbody tr").first.locator("td").first).to_have_text(ids[0])

    # Descending: a second click on the sorted header flips it.
    page.get_by_role("button", name="PC", exact=True).click()
    expect(page).to_have_url(re.compile(r"dir=desc"))
    expect(table(page).locator("tbody tr").first.locator("td").first).to_have_text(ids[-1])

    # Sorted by host name (the API's order: its column, then pc_id).
    page.get_by_role("button", name="Host name").click()
    expect(page).to_have_url(re.compile(r"sort=hostname&dir=asc"))
    by_host = [
        pc for (pc,) in live.query("SELECT pc_id FROM agents ORDER BY hostname, pc_id LIMIT 25")
    ]
    expect(table(page).locator("tbody tr").first.locator("td").first).to_have_text(by_host[0])
    assert pc_cells(page) == by_host

    page.get_by_label("Rows").select_option("100")
    expect(page).to_have_url(re.compile(r"limit=100"))
    expect(table(page).locator("tbody tr")).to_have_count(len(ids))
    assert "offset" not in query_of(page)


def test_a_row_opens_the_agent_and_back_returns(page: Page, live):
    page.goto("/agents?sort=pc_id&dir=asc")
    settle(page)
    [(pc,)] = live.query("SELECT pc_id FROM agents ORDER BY pc_id LIMIT 1 OFFSET 2")
    row = table(page).locator("tbody tr").nth(2)
    row.locator("td").nth(3).click()  # not the link: the whole row opens the agent
    expect(page).to_have_url(live.url(f"/agents/{pc}"))
    expect(page.get_by_role("heading", level=1)).to_have_text(pc)
    settle(page)  # leaving a loading page would abort its requests
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(pc)
    settle(page)
    page.go_back()
    expect(page).to_have_url(live.url("/agents?sort=pc_id&dir=asc"))
    table(page).get_by_role("link", name=pc).click()
    expect(page).to_have_url(live.url(f"/agents/{pc}"))
    settle(page)


def test_agents_screenshots_and_phone_width(page: Page, screenshot):
    page.goto("/agents")
    settle(page)
    expect(table(page).locator("tbody tr").first).to_be_visible()
    screenshot("agents")
    page.set_viewport_size({"width": 390, "height": 844})
    settle(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The table scrolls inside its card instead of widening the page.
    wrap = table(page).locator(".table-wrap")
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
    expect(page.get_by_role("button", name="Menu")).to_be_visible()
