"""A whole job through the console page in real headless Chromium, at desktop and phone width:
request, self-approval refused, two approvals, countdown, Kill, rolling back, killed, bundle.

Every wait is on something the page shows (Playwright's ``expect``), bounded by a hang guard;
screenshots of each step go to ``tests/artifacts/browser/<width>/``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from adapters.graph.simulated.faults import Fault
from bot.app import Runtime, seed_people
from bot.clock import FileClock
from engine.verify import Trust, verify_bundle
from tests.support.browser import ARTIFACTS, WAIT_MS, chromium

SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
ROLE_REMOVAL = "roleAssignmentScheduleRequests"


class Steps:
    def __init__(self, page: Page, folder: Path) -> None:
        self.page, self.folder, self.shots = page, folder, 0

    async def shot(self, name: str) -> None:
        self.shots += 1
        await self.page.screenshot(
            path=self.folder / f"{self.shots:02d}-{name}.png", full_page=True
        )

    def card(self) -> Locator:
        return self.page.locator("#jobs article").first

    async def as_(self, who: str) -> None:
        await self.page.select_option("#as", f"console:{who}")

    async def press(self, who: str, label: str) -> None:
        await self.as_(who)
        await self.card().get_by_role("button", name=label, exact=True).click()

    async def state(self, state: str) -> None:
        await expect(self.card()).to_have_attribute("data-state", state, timeout=WAIT_MS)


async def fits_the_width(page: Page, width: int) -> None:
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"page is {scroll}px wide at a {width}px viewport"


def graph_faults(runtime: Runtime) -> object:
    simulator = runtime._parts.simulator  # the embedded default's in-process tenant
    assert simulator is not None
    return simulator.core.faults


@pytest.mark.parametrize("size", SIZES)
async def test_a_whole_job_in_the_console(runtime: Runtime, size: str) -> None:
    width, height = SIZES[size]
    folder = ARTIFACTS / size
    folder.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": width, "height": height})
        steps = Steps(page, folder)
        await page.goto(runtime.internal_url)
        await expect(page.locator("#resource")).not_to_have_value("", timeout=WAIT_MS)
        await steps.shot("empty")

        await steps.as_("alice")
        await page.click("#send")
        await steps.state("pending_approval")
        await steps.shot("requested")

        await steps.press("alice", "Approve")
        await expect(page.locator("#msg")).to_contain_text("SELF_APPROVAL", timeout=WAIT_MS)
        await expect(steps.card().locator(".p-refused")).to_contain_text("SELF_APPROVAL")
        await steps.shot("self-approval-refused")

        await steps.press("bob", "Approve")
        await expect(steps.card().locator(".p-meta")).to_contain_text("Bob", timeout=WAIT_MS)
        await steps.press("carol", "Approve")
        await steps.state("active")
        await expect(steps.card().locator(".countdown")).to_contain_text("left", timeout=WAIT_MS)
        bob_id = seed_people()["bob"]
        bob = steps.card().locator(f'.p-meta .person[title="{bob_id}"]')
        await expect(bob).to_have_text("Bob Example")  # a name, its id on hover
        kill = steps.card().get_by_role("button", name="Kill now", exact=True)
        await expect(kill).to_be_in_viewport()
        await fits_the_width(page, width)
        await steps.shot("active-countdown")

        # Graph refuses the removal for now, so the rollback is seen in progress.
        faults = graph_faults(runtime)
        faults.add(Fault("unavailable", method="POST", path=ROLE_REMOVAL, times=10_000))
        await steps.press("dave", "Kill now")
        await steps.state("rolling_back")
        await steps.shot("rolling-back")
        faults.clear()
        assert isinstance(runtime.clock, FileClock)
        runtime.clock.advance(timedelta(minutes=5))  # the strict tenant allows the removal now

        await steps.state("killed")
        history = steps.card().locator(".history")
        await expect(history).to_have_text("pending approval → active → rolling back → killed")
        link = steps.card().locator("a.bundle")
        await expect(link).to_be_visible(timeout=WAIT_MS)
        await expect(steps.card().locator(".p-ended")).to_contain_text("rollback verified: true")
        await fits_the_width(page, width)
        await steps.shot("killed-bundle")

        bundle = await (
            await page.request.get(runtime.internal_url + await link.get_attribute("href"))
        ).json()
        trust = await (await page.request.get(runtime.internal_url + "/console/api/trust")).json()
        report = verify_bundle(bundle, Trust.from_json(trust))
        assert report.valid, report.reason_codes
