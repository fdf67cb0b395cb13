"""The JetStream page in a real browser: every resource the backend relies on, whether
projectord's broker snapshot saw it, and the snapshot's stream and consumer figures."""

from __future__ import annotations

import time

from page_parts import card, settle
from playwright.sync_api import Locator, Page, expect

from projectord.broker_status import PROBED_KV, PROBED_OBJECT_STORES, PROBED_STREAMS


def present(live, kind: str) -> set[str]:
    rows = live.query("SELECT name FROM broker_resources WHERE kind = ? AND present != 0", (kind,))
    return {name for (name,) in rows}


def check_existence(table: Locator, names: tuple[str, ...], seen: set[str]) -> None:
    rows = table.locator("tbody tr")
    expect(rows.locator("td:first-child")).to_have_text(list(names))
    for i, name in enumerate(names):
        row = rows.nth(i)
        if name in seen:
            expect(row.locator("td").nth(1)).to_have_text("present")
            expect(row).not_to_have_class("row-problem")
        else:
            expect(row.locator("td").nth(1)).to_have_text("missing")
            expect(row).to_have_class("row-problem")


def test_every_expected_resource_and_whether_it_exists(page: Page, live):
    page.goto("/jetstream")
    expect(page).to_have_title("JetStream · kanade")
    settle(page)
    streams, kv, stores = (
        present(live, "stream"),
        present(live, "kv"),
        present(live, "object_store"),
    )
    check_existence(card(page, "Streams"), PROBED_STREAMS, streams)
    check_existence(card(page, "KV buckets"), PROBED_KV, kv)
    check_existence(card(page, "Object stores"), PROBED_OBJECT_STORES, stores)

    missing = (
        [n for n in PROBED_STREAMS if n not in streams]
        + [n for n in PROBED_KV if n not in kv]
        + [n for n in PROBED_OBJECT_STORES if n not in stores]
    )
    total = len(PROBED_STREAMS) + len(PROBED_KV) + len(PROBED_OBJECT_STORES)
    summary = card(page, "Resources")
    if missing:
        expect(summary.locator(".summary .chip")).to_have_text(f"{len(missing)} of {total} missing")
        expect(summary.locator(".missing")).to_have_text("Missing: " + ", ".join(missing))
    else:
        expect(summary.locator(".summary .chip")).to_have_text(f"all {total} present")


def results_snapshot(live) -> tuple[int, int, int, int]:
    """RESULTS as the snapshot holds it, once the snapshot has caught up with the results
    projector (the stream is quiet after the stack's runs, so the figures then stand)."""
    sql = (
        "SELECT s.messages, s.first_seq, s.last_seq, s.consumers FROM broker_streams s"
        " JOIN projector_checkpoints c ON c.stream = s.stream"
        " WHERE s.stream = 'RESULTS' AND s.last_seq = c.last_seq"
    )
    deadline = time.monotonic() + 20
    while not (rows := live.query(sql)):
        assert time.monotonic() < deadline, "the RESULTS snapshot never caught up"
        time.sleep(0.5)
    return rows[0]


def test_stream_and_consumer_figures_come_from_the_snapshot(page: Page, live):
    messages, first_seq, last_seq, consumers = results_snapshot(live)
    page.goto("/jetstream")
    settle(page)
    row = (
        card(page, "Streams")
        .locator("tbody tr")
        .filter(has=page.get_by_text("RESULTS", exact=True))
    )
    cells = row.locator("td")
    expect(cells.nth(2)).to_have_text(f"{messages:,}")
    expect(cells.nth(4)).to_have_text(f"{first_seq:,}")
    expect(cells.nth(5)).to_have_text(f"{last_seq:,}")
    expect(cells.nth(6)).to_have_text(f"{consumers:,}")

    durables = live.query(
        "SELECT c.durable, c.stream FROM projector_checkpoints c ORDER BY c.projector"
    )
    consumers_table = card(page, "Consumers").locator("tbody tr")
    expect(consumers_table.locator("td:first-child")).to_have_text([d for d, _ in durables])
    observed = {d for (d,) in live.query("SELECT durable FROM broker_consumers")}
    for i, (durable, stream) in enumerate(durables):
        expect(consumers_table.nth(i).locator("td").nth(1)).to_have_text(stream)
        expect(consumers_table.nth(i).locator("td").nth(2)).to_have_text(
            "present" if durable in observed else "not observed"
        )

    mirrors = {b: k for b, k in live.query("SELECT bucket, key_count FROM kv_mirror_status")}
    buckets = card(page, "KV buckets").locator("tbody tr")
    for i, name in enumerate(PROBED_KV):
        mirrored = buckets.nth(i).locator("td").nth(2)
        if name in mirrors:
            expect(mirrored).to_have_text("yes")
            expect(buckets.nth(i).locator("td").nth(3)).to_have_text(f"{mirrors[name]:,}")
        else:
            expect(mirrored).to_have_text("not mirrored")


def test_jetstream_page_at_phone_width_and_screenshots(page: Page, screenshot):
    page.goto("/jetstream")
    settle(page)
    screenshot("jetstream")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/jetstream")
    settle(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
