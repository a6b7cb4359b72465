"""The console page in real headless Chromium: example ids per template, a hint (and no
Request) when a role id is typed as a CA policy id, and updates that keep the card, its
scroll position and the reader's text selection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from bot.app import SIMULATED_SEED, Runtime
from bot.clock import FileClock
from tests.support.browser import WAIT_MS, chromium


@pytest.fixture
async def page(runtime: Runtime) -> AsyncIterator[tuple[Page, Runtime]]:
    async with chromium() as browser:
        tab = await browser.new_page(viewport={"width": 390, "height": 844})
        await tab.goto(runtime.internal_url)
        await expect(tab.locator("#resource")).not_to_have_value("", timeout=WAIT_MS)
        yield tab, runtime


async def test_examples_per_template_and_a_role_id_is_no_policy_id(
    page: tuple[Page, Runtime],
) -> None:
    tab, _ = page
    role = SIMULATED_SEED["roles"][0]["id"]
    await expect(tab.locator("#resource")).to_have_value(role)
    await tab.select_option("#template", "ca-exclusion")
    await expect(tab.locator("#resource")).to_have_value(
        SIMULATED_SEED["conditionalAccessPolicies"][0]["id"]
    )
    await expect(tab.locator("#principal")).to_have_value(SIMULATED_SEED["groups"][0]["id"])
    await expect(tab.locator("#resource-label")).to_have_text("CA policy id")
    await expect(tab.locator("#send")).to_be_enabled()

    await tab.fill("#resource", role)
    await expect(tab.locator("#hint")).to_have_text("resource: that is a role id, not a policy id")
    await expect(tab.locator("#send")).to_be_disabled()


async def test_updates_keep_the_card_its_scroll_and_the_selection(
    page: tuple[Page, Runtime],
) -> None:
    tab, runtime = page
    await tab.click("#send")
    card = tab.locator("#jobs article").first
    await expect(card).to_have_attribute("data-state", "pending_approval", timeout=WAIT_MS)
    # Mark the card element and select its action text, then wait for later polls.
    await tab.evaluate(
        """() => {
        const card = document.querySelector('#jobs article');
        card.dataset.marker = 'kept';
        const range = document.createRange();
        range.selectNodeContents(card.querySelector('.p-action b'));
        getSelection().removeAllRanges(); getSelection().addRange(range);
        window.scrollTo(0, 200);
    }"""
    )
    countdown = card.locator(".countdown .left")
    first = await countdown.text_content()
    assert isinstance(runtime.clock, FileClock)
    runtime.clock.advance(timedelta(seconds=1))  # the service's clock moves only when told
    await expect(countdown).not_to_have_text(first or "", timeout=WAIT_MS)  # a poll redrew it
    await expect(card).to_have_attribute("data-marker", "kept")
    selected = await tab.evaluate("getSelection().toString()")
    assert "Global Administrator" in selected
    assert await tab.evaluate("window.scrollY") == 200
