"""The Result page in a real browser: status, exit code, timings, the execution (and the
schedule that fired it) and the full stdout and stderr, for the seeded edge cases (an
output sent through the object store, no output at all, a skip, a run in flight, an
ad-hoc run and a finalize hook) and a run of the stack's scheduled fire.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from page_parts import card, settle
from playwright.sync_api import Locator, Page, expect
from run_seed import Seed, seed_runs


@pytest.fixture(scope="module")
def seed(live) -> Seed:
    return seed_runs(live)


def fact(page: Page, term: str) -> Locator:
    return (
        page.locator(".result-card .fact")
        .filter(has=page.locator("dt", has_text=re.compile(f"^{term}$")))
        .locator("dd")
    )


def stored(live, result_id: str) -> dict:
    cols = "pc_id, job_id, version, exit_code, stdout, stderr, exec_id, request_id"
    [row] = live.query(f"SELECT {cols} FROM execution_results WHERE result_id = ?", (result_id,))
    return dict(zip([c.strip() for c in cols.split(",")], row, strict=True))


def test_a_large_failed_output_is_shown_whole_with_its_context(page: Page, live, seed):
    big = seed.run("big-failure")
    row = stored(live, big.result_id)
    # The agent sent stdout through the object store; the projector inlined it.
    assert row["stdout"] == big.stdout and len(row["stdout"].encode()) > 256 * 1024
    page.goto(f"/activity/{big.result_id}")
    expect(page).to_have_title(f"Result {big.result_id[:8]} · Activity · kanade")
    expect(page.get_by_role("heading", name=f"Result {big.result_id[:8]}")).to_be_visible()
    expect(page.locator(".detail-status .chip")).to_have_text("failed · exit 1")
    expect(page.locator(".detail-sub")).to_contain_text(f"inventory-hw 1.2.0 on {row['pc_id']}")
    expect(fact(page, "Exit code")).to_have_text("1")
    expect(fact(page, "PC").get_by_role("link")).to_have_attribute(
        "href", f"/agents/{row['pc_id']}"
    )
    expect(fact(page, "Job").get_by_role("link")).to_have_attribute(
        "href", "/jobs?job=inventory-hw"
    )
    expect(fact(page, "Version")).to_have_text(row["version"])
    expect(fact(page, "Duration")).to_have_text("2 min 14 s")
    expect(fact(page, "Result id")).to_have_text(big.result_id)
    expect(fact(page, "Request id")).to_have_text(row["request_id"])
    expect(fact(page, "Execution").get_by_role("link")).to_have_attribute(
        "href", f"/activity?exec_id={row['exec_id']}"
    )

    # Finalize hooks: the hook run links to its result.
    hook = seed.run("finalize")
    hooks = page.locator(".result-card tbody tr")
    expect(hooks).to_have_count(1)
    expect(hooks.get_by_role("link")).to_have_attribute("href", f"/activity/{hook.result_id}")
    expect(hooks.locator(".chip")).to_have_text("ok")

    # Stdout: the first 200,000 characters, then all on request; the bytes are exact.
    stdout = card(page, "Stdout")
    pre = stdout.locator("pre")
    lines = row["stdout"].count("\n")
    expect(stdout.locator(".output-size")).to_contain_text(f"{lines:,} lines")
    expect(stdout.locator(".output-cut")).to_contain_text(
        f"Showing the first 200,000 of {len(row['stdout']):,} characters."
    )
    assert pre.text_content() == row["stdout"][:200_000]
    stdout.get_by_role("button", name="Show all").click()
    expect(stdout.locator(".output-cut")).to_have_count(0)
    assert stdout.locator("pre").text_content() == row["stdout"]
    box = stdout.locator("pre").bounding_box()
    assert box and box["height"] <= 570  # it scrolls inside its block

    with page.expect_download() as download:
        stdout.get_by_role("link", name="Download stdout").click()
    assert download.value.suggested_filename == f"{big.result_id}-stdout.txt"
    assert open(download.value.path(), encoding="utf-8", newline="").read() == row["stdout"]

    stdout.get_by_label("Wrap lines").check()
    expect(stdout.locator("pre")).to_have_class(re.compile("output-wrap"))

    stderr = card(page, "Stderr")
    assert stderr.locator("pre").text_content() == row["stderr"]
    expect(stderr.locator(".output-size")).to_contain_text("3 lines")

    # The execution it belongs to: progress from the executions row.
    edge = seed.executions["edge-cases"]
    [(ok, failed, targets, status)] = live.query(
        "SELECT success_count, failure_count, target_count, status FROM executions"
        " WHERE exec_id = ?",
        (edge.exec_id,),
    )
    execution = card(page, "Execution")
    expect(execution.locator(".chip").first).to_have_text(status)
    expect(execution.locator(".cov-bar")).to_have_attribute(
        "aria-label", f"Progress: {ok} ok, {failed} failed, 0 running, 0 pending of {targets} PCs"
    )
    expect(execution.get_by_role("link", name="All 3 results of this execution")).to_have_attribute(
        "href", f"/activity?exec_id={edge.exec_id}"
    )
    expect(execution.get_by_role("link", name="Executions of inventory-hw")).to_have_attribute(
        "href", "/executions?job_id=inventory-hw"
    )
    # Recorded by no schedule: the schedules running the job are named instead.
    expect(execution).to_contain_text("not found among the fires of")
    expect(execution.get_by_role("link", name="inventory-daily")).to_be_visible()

    settle(page)
    page.reload()
    expect(page.locator(".detail-status .chip")).to_have_text("failed · exit 1")
    expect(card(page, "Stdout").locator(".output-cut")).to_be_visible()


def test_a_run_of_the_scheduled_fire_names_its_schedule(page: Page, live, seed):
    [(result_id, exec_id)] = live.query(
        "SELECT result_id, exec_id FROM execution_results WHERE exec_id ="
        " (SELECT exec_id FROM schedule_fires WHERE schedule_id = 'inventory-daily'"
        "  AND outcome = 'fired') ORDER BY result_id LIMIT 1"
    )
    page.goto(f"/activity/{result_id}")
    execution = card(page, "Execution")
    expect(execution.get_by_role("link", name="inventory-daily")).to_have_attribute(
        "href", "/schedules/inventory-daily"
    )
    expect(execution).to_contain_text("fire due")
    expect(execution.locator(".chip").first).to_have_text("completed")
    row = stored(live, result_id)
    stdout = card(page, "Stdout").locator("pre")
    assert stdout.text_content() == row["stdout"]
    expect(fact(page, "Execution")).to_have_text(exec_id)


def test_no_output_a_skip_and_a_run_in_flight(page: Page, live, seed):
    page.goto(f"/activity/{seed.run('no-output').result_id}")
    expect(page.locator(".detail-status .chip")).to_have_text("ok")
    expect(card(page, "Stdout").locator(".output-empty")).to_have_text("No stdout.")
    expect(card(page, "Stderr").locator(".output-empty")).to_have_text("No stderr.")
    expect(card(page, "Stdout").locator("pre")).to_have_count(0)

    settle(page)
    page.goto(f"/activity/{seed.run('skipped').result_id}")
    expect(page.locator(".detail-status .chip")).to_have_text("skipped")
    expect(fact(page, "Status")).to_contain_text("past its deadline")
    expect(page.locator(".detail-status .chip")).to_have_attribute(
        "title", "exit 125: past its deadline"
    )
    assert card(page, "Stderr").locator("pre").text_content() == seed.run("skipped").stderr

    settle(page)
    running = seed.run("under-way-0")
    page.goto(f"/activity/{running.result_id}")
    expect(page.locator(".detail-status .chip")).to_have_text("running")
    expect(fact(page, "Exit code")).to_have_text("none yet")
    expect(fact(page, "Finished")).to_have_text("still running")
    # The run started about 12 minutes before the seed; the session has aged it since.
    minutes = int((datetime.now(UTC) - running.started_at).total_seconds() // 60)
    expect(fact(page, "Duration")).to_have_text(
        re.compile(rf"^({minutes}|{minutes + 1}) min \d+ s so far$")
    )
    expect(card(page, "Stdout").locator(".output-empty")).to_have_text(
        "Still running: the output arrives with the result."
    )
    execution = card(page, "Execution")
    expect(execution.locator(".chip").first).to_have_text("running")
    expect(execution.locator(".cov-bar")).to_have_attribute(
        "aria-label", "Progress: 0 ok, 0 failed, 2 running, 1 pending of 3 PCs"
    )
    expect(execution).to_contain_text("not recorded (no schedule runs this job now)")


def test_an_ad_hoc_run_and_a_finalize_hook_link_their_parent(page: Page, live, seed):
    page.goto(f"/activity/{seed.run('ad-hoc').result_id}")
    expect(fact(page, "Execution")).to_have_text("none (ad-hoc run)")
    expect(card(page, "Execution")).to_contain_text("An ad-hoc run: not part of an execution.")

    settle(page)
    big = seed.run("big-failure")
    page.goto(f"/activity/{seed.run('finalize').result_id}")
    parent = fact(page, "Finalize hook of").get_by_role("link")
    expect(parent).to_have_attribute("href", f"/activity/{big.result_id}")
    parent.click()
    expect(page).to_have_url(re.compile(rf"/activity/{big.result_id}$"))
    expect(page.locator(".detail-status .chip")).to_have_text("failed · exit 1")
    settle(page)
    page.locator(".breadcrumb").get_by_role("link", name="Activity").click()
    expect(page).to_have_url(re.compile(r"/activity$"))


def test_an_unknown_result_says_not_found(page: Page, live, page_watch):
    page_watch.allow(404, "/api/results/")
    page.goto("/activity/no-such-result")
    expect(page.get_by_role("heading", name="Result not found")).to_be_visible()
    expect(page.locator(".not-found code")).to_have_text("no-such-result")
    expect(page).to_have_title("Result not found · kanade")
    page.reload()
    expect(page.get_by_role("heading", name="Result not found")).to_be_visible()
    page.get_by_role("link", name="Back to Activity").click()
    expect(page).to_have_url(re.compile(r"/activity$"))


def test_result_screenshots_and_phone_width(page: Page, live, seed, screenshot):
    page.goto(f"/activity/{seed.run('big-failure').result_id}")
    expect(card(page, "Stdout").locator("pre")).to_be_visible()
    screenshot("result-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(card(page, "Stdout").locator("pre")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
