"""The console page in real headless Chromium: example ids per template, a hint (and no
Request) when a role id is typed as a CA policy id or the minutes are not what the service
accepts, and updates that keep the card, its scroll position and the reader's text selection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from bot.app import SIMULATED_SEED, Runtime
from bot.clock import FileClock
from bot.config import load_settings
from tests.support.browser import WAIT_MS, chromium, require_chromium


@pytest.fixture
async def page(runtime: Runtime) -> AsyncIterator[tuple[Page, Runtime]]:
    async with chromium() as browser:
        tab = await browser.new_page(viewport={"width": 390, "height": 844})
        await tab.goto(runtime.internal_url)
        await expect(tab.locator("#resource")).not_to_have_value("", timeout=WAIT_MS)
        yield tab, runtime


async def requested(tab: Page) -> Locator:
    """Send the form as it is; the new job's card once it waits for approval."""
    await tab.click("#send")
    card = tab.locator("#jobs article").first
    await expect(card).to_have_attribute("data-state", "pending_approval", timeout=WAIT_MS)
    return card


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
    card = await requested(tab)
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


async def test_the_minutes_offered_are_what_the_service_accepts(tmp_path: Path) -> None:
    # A black-box run: the page offered up to 60 minutes whatever the policy, so a request
    # above the configured maximum was refused only after it was sent.
    require_chromium()
    settings = load_settings({"BREAKGLASS_HOME": str(tmp_path)})
    runtime = Runtime(replace(settings, port=0, max_minutes=30))
    await runtime.start()
    try:
        async with chromium() as browser:
            tab = await browser.new_page()
            await tab.goto(runtime.internal_url)
            await expect(tab.locator("#minutes")).to_have_attribute("max", "30", timeout=WAIT_MS)
            await expect(tab.locator("#minutes")).to_have_attribute("min", "5")  # PIM's
            await expect(tab.locator("#send")).to_be_enabled()
            await tab.fill("#minutes", "45")
            await expect(tab.locator("#hint")).to_have_text("minutes: entra-role allows 5 to 30")
            await expect(tab.locator("#send")).to_be_disabled()
            await tab.fill("#minutes", "3")
            await expect(tab.locator("#send")).to_be_disabled()
            await tab.select_option("#template", "ca-exclusion")  # no 5-minute floor
            await expect(tab.locator("#minutes")).to_have_attribute("min", "1")
            await expect(tab.locator("#send")).to_be_enabled()
            await tab.fill("#minutes", "30")
            await tab.click("#send")
            await expect(tab.locator("#msg")).to_have_text("ok", timeout=WAIT_MS)
        assert len(await runtime.service.store.list_jobs()) == 1
    finally:
        await runtime.stop()


async def test_a_job_killed_while_pending_says_nothing_was_written(
    page: tuple[Page, Runtime],
) -> None:
    # It said "rollback verified: nothing to roll back", as if a rollback had been checked.
    tab, runtime = page
    card = await requested(tab)
    await tab.select_option("#as", "console:dave")
    await card.get_by_role("button", name="Kill", exact=True).click()
    await expect(card).to_have_attribute("data-state", "killed", timeout=WAIT_MS)
    ended = card.locator(".p-ended")
    await expect(ended).to_contain_text("nothing was written; no rollback needed")
    await expect(ended).not_to_contain_text("rollback verified")
    (stored,) = await runtime.service.store.list_jobs()
    job = await runtime.service.load(stored.job_id)
    assert (job.state, job.rollback_verified, job.write_sent) == ("killed", None, False)
