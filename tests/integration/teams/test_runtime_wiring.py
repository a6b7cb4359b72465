"""``breakglass serve`` turns Teams on from its app id and mounts the bot's endpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp

from bot.app import Runtime, seed_people
from bot.config import load_settings


async def test_teams_is_enabled_by_its_app_id(tmp_path: Path) -> None:
    people = seed_people()
    env = {
        "BREAKGLASS_HOME": str(tmp_path),
        "BREAKGLASS_TEAMS_APP_ID": "00000000-0000-0000-0000-0000000000b0",
        "BREAKGLASS_TEAMS_APP_PASSWORD": "not-a-real-password",
        "BREAKGLASS_TEAMS_TENANT_ID": "00000000-0000-0000-0000-0000000000aa",
        "BREAKGLASS_TEAMS_APPROVERS": f"29:bob={people['bob']}",
    }
    runtime = Runtime(replace(load_settings(env), port=0))
    try:
        url = await runtime.start()
        async with aiohttp.ClientSession() as session:
            activity = {"type": "message", "text": "status", "serviceUrl": "http://127.0.0.1:9/"}
            async with session.post(f"{url}/api/messages", json=activity) as response:
                assert response.status == 401  # no token: nothing reaches the bot
        assert [c for c in runtime.chats if c.platform == "teams"]
        assert runtime.service.actor("teams:29:bob").principal == people["bob"]
    finally:
        await runtime.stop()
