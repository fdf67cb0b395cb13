"""Waits shared by the browser tests."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def settle(page: Page) -> None:
    """Wait until no card is loading and the network is idle.

    Needed before a reload, a navigation or the end of a test: leaving a page that
    is still loading aborts its requests, which the page watch reports. A locator
    wait, not wait_for_function: the page's CSP forbids the eval that polls it.
    """
    page.wait_for_load_state("networkidle")  # the page module and its first requests
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    page.wait_for_load_state("networkidle")
