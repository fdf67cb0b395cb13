"""The Projector page in a real browser: checkpoints, snapshots, mirrors and rejects.

The shared stack has no rejects, so this module publishes contract-violating results to
the RESULTS stream (a body that is not UTF-8, text that is not JSON, and objects missing
the required ``pc_id``); the real results projector refuses and records each of them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from page_parts import card, settle
from playwright.sync_api import Page, expect

BINARY = b"\xff\xfe\x00binary \x80 garbage"
NOT_JSON = b"this is not json {"
MISSING_FIELD = 28  # objects without pc_id: with the two above, more than one page of 25
SUBJECT_PREFIX = "results.reject-test-"


@dataclass
class Seeded:
    projector: str
    ids: list[int]  # the seeded rejects' ids, newest first


async def _publish(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.publish(f"{SUBJECT_PREFIX}binary", BINARY)
        await js.publish(f"{SUBJECT_PREFIX}text", NOT_JSON)
        for i in range(MISSING_FIELD):
            body = {
                "request_id": f"reject-test-{i}",
                "exit_code": 0,
                "stdout": "",
                "stderr": "",
                "started_at": "2026-01-01T00:00:00Z",
                "finished_at": "2026-01-01T00:00:01Z",
            }
            await js.publish(f"{SUBJECT_PREFIX}{i}", json.dumps(body).encode())
    finally:
        await nc.close()


def _run(coro: Any) -> Any:
    # Playwright's sync API keeps an event loop on the test thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def seeded(live) -> Seeded:
    _run(_publish(live.nats_url))
    expected = MISSING_FIELD + 2
    sql = "SELECT id, projector FROM projector_rejects WHERE subject LIKE ? ORDER BY id DESC"
    deadline = time.monotonic() + 30
    while len(rows := live.query(sql, (SUBJECT_PREFIX + "%",))) < expected:
        assert time.monotonic() < deadline, f"only {len(rows)} of {expected} rejects recorded"
        time.sleep(0.2)
    [projector] = {p for _, p in rows}
    return Seeded(projector, [i for i, _ in rows])


def test_projectors_streams_and_mirrors_match_the_database(page: Page, live, seeded):
    page.goto("/projector")
    expect(page).to_have_title("Projector · kanade")
    settle(page)
    table = card(page, "Projectors")
    # Core-NATS projectors have no checkpoint: they are listed once they reject something.
    names = [
        n
        for (n,) in live.query(
            "SELECT projector FROM projector_checkpoints UNION SELECT projector"
            " FROM projector_rejects UNION SELECT projector FROM projector_gaps ORDER BY 1"
        )
    ]
    assert seeded.projector in names
    expect(table.locator("tbody tr td:first-child")).to_have_text(names)

    # The results stream is quiet once seeded: its checkpoint and rejects stand still.
    [(checkpoint, durable)] = live.query(
        "SELECT last_seq, durable FROM projector_checkpoints WHERE projector = ?",
        (seeded.projector,),
    )
    [(rejects,)] = live.query(
        "SELECT COUNT(*) FROM projector_rejects WHERE projector = ?", (seeded.projector,)
    )
    row = table.locator("tbody tr").filter(has=page.get_by_text(seeded.projector, exact=True))
    cells = row.locator("td")
    expect(cells.nth(1)).to_contain_text(durable)
    expect(cells.nth(2)).to_have_text(f"{checkpoint:,}")
    expect(cells.nth(7)).to_have_text(f"{rejects:,}")
    expect(cells.nth(7).get_by_role("link")).to_have_attribute(
        "href", f"/projector?projector={seeded.projector}"
    )

    streams = [s for (s,) in live.query("SELECT stream FROM broker_streams ORDER BY stream")]
    assert streams
    first_cells = card(page, "Streams").locator("tbody tr td:first-child")
    expect(first_cells).to_have_text(streams)

    buckets = live.query("SELECT bucket, key_count, error FROM kv_mirror_status ORDER BY bucket")
    mirrors = card(page, "KV mirrors").locator("tbody tr")
    expect(mirrors).to_have_count(len(buckets))
    for i, (bucket, _keys, error) in enumerate(buckets):
        expect(mirrors.nth(i).locator("td").first).to_have_text(bucket)
        expect(mirrors.nth(i)).to_contain_text("error" if error else "fresh")

    [(gaps,)] = live.query("SELECT COUNT(*) FROM projector_gaps")
    expect(card(page, "Gaps").locator(".summary")).to_have_text(
        "no gaps" if gaps == 0 else f"{gaps} gaps"
    )


def test_rejects_filter_page_and_open_with_their_payloads(page: Page, live, seeded):
    page.goto("/projector")
    rejects = card(page, "Rejects")
    [(total,)] = live.query("SELECT COUNT(*) FROM projector_rejects")
    newest = [i for (i,) in live.query("SELECT id FROM projector_rejects ORDER BY id DESC")]
    rows = rejects.locator("tbody tr")
    expect(rows).to_have_count(min(total, 25))
    expect(rows.first.locator("td").first).to_have_text(f"#{newest[0]}")

    page.get_by_label("Projector", exact=True).select_option(seeded.projector)
    expect(page).to_have_url(live.url(f"/projector?projector={seeded.projector}"))
    filtered = card(page, f"Rejects of {seeded.projector}")
    own = [
        i
        for (i,) in live.query(
            "SELECT id FROM projector_rejects WHERE projector = ? ORDER BY id DESC",
            (seeded.projector,),
        )
    ]
    assert len(own) > 25
    rows = filtered.locator("tbody tr")
    expect(rows.locator("td:first-child")).to_have_text([f"#{i}" for i in own[:25]])
    expect(rows.locator("td:nth-child(3)")).to_have_text([seeded.projector] * 25)

    filtered.get_by_role("button", name="Older").click()
    expect(page).to_have_url(re.compile(rf"projector={seeded.projector}&cursor=\w+"))
    expect(rows.locator("td:first-child")).to_have_text([f"#{i}" for i in own[25:50]])
    page.go_back()
    expect(rows.first.locator("td").first).to_have_text(f"#{own[0]}")
    settle(page)

    # The binary body: its error, its text with replacements and its exact bytes.
    [(binary_id, error)] = live.query(
        "SELECT id, error FROM projector_rejects WHERE subject = ?", (SUBJECT_PREFIX + "binary",)
    )
    settle(page)
    page.goto(f"/projector?reject={binary_id}")
    detail = card(page, f"Reject #{binary_id}")
    expect(detail.locator(".reject-error-text")).to_have_text(error)
    expect(detail.get_by_label("Payload base64")).to_have_text(base64.b64encode(BINARY).decode())
    expect(detail).to_contain_text(SUBJECT_PREFIX + "binary")
    settle(page)
    page.reload()
    expect(detail.get_by_label("Payload base64")).to_be_visible()
    settle(page)

    # Opening a text reject from the list keeps the filter in the URL.
    [(text_id,)] = live.query(
        "SELECT id FROM projector_rejects WHERE subject = ?", (SUBJECT_PREFIX + "text",)
    )
    settle(page)
    page.goto(f"/projector?projector={seeded.projector}")
    older = card(page, f"Rejects of {seeded.projector}")
    if text_id not in own[:25]:
        older.get_by_role("button", name="Older").click()
    older.get_by_role("link", name=f"#{text_id}", exact=True).click()
    expect(page).to_have_url(re.compile(rf"projector={seeded.projector}.*reject={text_id}"))
    text_detail = card(page, f"Reject #{text_id}")
    expect(text_detail.get_by_label("Payload text")).to_have_text(NOT_JSON.decode())
    expect(text_detail.get_by_label("Payload base64")).to_have_count(0)
    text_detail.get_by_role("button", name="Close").click()
    expect(page).not_to_have_url(re.compile("reject="))
    settle(page)


def test_projector_page_at_phone_width_and_screenshots(page: Page, live, seeded, screenshot):
    page.goto(f"/projector?reject={seeded.ids[0]}")
    settle(page)
    screenshot("projector")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/projector")
    settle(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_an_unknown_reject_says_so_and_the_list_stays(page: Page, live, seeded, page_watch):
    page_watch.allow(404, "/api/rejects/")
    [(top,)] = live.query("SELECT MAX(id) FROM projector_rejects")
    page.goto(f"/projector?reject={top + 1000}")
    detail = card(page, f"Reject #{top + 1000}")
    expect(detail.get_by_role("alert")).to_have_text(f"no reject with id {top + 1000}")
    expect(card(page, "Rejects").locator("tbody tr").first.locator("td").first).to_have_text(
        f"#{top}"
    )
    settle(page)
