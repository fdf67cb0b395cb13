"""Waits and locators shared by the browser tests."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect


def settle(page: Page) -> None:
    """Wait until no card is loading and the network is idle.

    Needed before a reload, a navigation or the end of a test: leaving a page that
    is still loading aborts its requests, which the page watch reports. A locator
    wait, not wait_for_function: the page's CSP forbids the eval that polls it.
    """
    page.wait_for_load_state("networkidle")  # the page module and its first requests
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    page.wait_for_load_state("networkidle")


def card(page: Page, title: str | re.Pattern[str]) -> Locator:
    """The card whose heading is ``title`` (the whole heading, or a pattern in it)."""
    return page.locator("section.card").filter(
        has=page.get_by_role("heading", name=title, exact=True)
    )
