"""``breakglass serve`` turns Slack on from the environment and mounts it on its app."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp

from bot.app import SIMULATED_SEED, Runtime, seed_people
from bot.config import load_settings
from tests.integration.slack.fake_slack import FakeSlack
from tests.integration.slack.support import INCIDENT, SECRET, TOKEN, SlackSender


async def test_slack_is_enabled_by_its_two_secrets(tmp_path: Path) -> None:
    fake = FakeSlack(TOKEN, {INCIDENT})
    await fake.start()
    people = seed_people()
    env = {
        "BREAKGLASS_HOME": str(tmp_path),
        "BREAKGLASS_SLACK_BOT_TOKEN": TOKEN,
        "BREAKGLASS_SLACK_SIGNING_SECRET": SECRET,
        "BREAKGLASS_SLACK_API_URL": fake.api_url,
        "BREAKGLASS_SLACK_INCIDENT_CHANNELS": INCIDENT,
        "BREAKGLASS_SLACK_APPROVERS": f"UBOB={people['bob']},UCAROL={people['carol']}",
        "BREAKGLASS_TENANT_ID": SIMULATED_SEED["tenantId"],
    }
    runtime = Runtime(replace(load_settings(env), port=0))
    try:
        url = await runtime.start()
        async with aiohttp.ClientSession() as session:
            sender = SlackSender(session, f"{url}/slack/events")
            forged = SlackSender(session, f"{url}/slack/events", secret="not-the-secret")
            assert (await forged.command("UBOB", "help")).status == 401
            answer = await sender.command("UBOB", "help")
            assert answer.status == 200
        assert [c for c in runtime.chats if c.platform == "slack"]
    finally:
        await runtime.stop()
        await fake.stop()
