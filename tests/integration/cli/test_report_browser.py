"""The HTML report of a good and a tampered bundle, rendered in real headless Chromium: what a
reader sees first is the verdict, a failure shows what its codes mean, and the page asks
for nothing from any network. Skips cleanly without the browser support or Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.commands.html_report import render
from engine.verify import Trust, verify_bundle
from engine.verify.reasons import meaning
from tests.corpus.generate import HERE as CORPUS

browser_support = pytest.importorskip("tests.support.browser")

TRUST = Trust.from_json(json.loads((CORPUS / "trust.json").read_text()))


def page_file(tmp_path: Path, name: str) -> Path:
    bundle = json.loads((CORPUS / f"{name}.bundle.json").read_text())
    path = tmp_path / f"{name}.html"
    path.write_text(render(verify_bundle(bundle, TRUST), bundle), encoding="utf-8")
    return path


@pytest.mark.slow
async def test_good_and_tampered_reports_in_chromium(tmp_path: Path) -> None:
    good, bad = page_file(tmp_path, "good_agent"), page_file(tmp_path, "self_approval")
    async with browser_support.chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))

        await page.goto(good.as_uri())
        assert (await page.locator("h1").first.inner_text()).strip() == "VALID"
        first = await page.locator("section").first.get_attribute("id")
        assert first == "verdict"
        assert await page.locator("table.models tbody tr").count() == 2
        assert await page.locator("#rollback").is_visible()

        await page.goto(bad.as_uri())
        assert (await page.locator("h1").first.inner_text()).strip() == "INVALID"
        cells = await page.locator("table.reasons tbody td").all_inner_texts()
        assert "BREAKGLASS_SELF_APPROVAL" in cells
        assert meaning("BREAKGLASS_SELF_APPROVAL") in cells
        await page.close()
    assert requested
    assert all(url.startswith("file://") for url in requested), requested
