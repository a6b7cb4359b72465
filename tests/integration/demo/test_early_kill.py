"""``breakglass demo --scenario early-kill`` on the strict tenant: a kill inside PIM's first
five minutes is contained at once (the principal's sessions revoked), the removal is announced
for when the tenant allows it and done then, and the bundle proves all of it and verifies."""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.demo_options import DemoOptions
from engine.catalog import REVOKE_SESSIONS
from tests.integration.demo.stepped import stepped_demo

REMOVE_ROLE = "breakglass.rollback.remove_role_assignment"


def receipts(bundle: dict[str, Any], tool: str) -> list[dict[str, Any]]:
    payloads = [r["payload"] for r in bundle["payload"]["tool_receipts"]]
    return [p for p in payloads if p["tool_name"] == tool]


@pytest.mark.slow
async def test_early_kill_contains_then_removes_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle_out = tmp_path / "out.bundle.json"
    options = DemoOptions(
        scenario="early-kill", json_output=True, home=tmp_path, bundle_out=bundle_out
    )
    result = await stepped_demo(options, tmp_path, monkeypatch).run()
    assert result.ok, result.to_json()
    assert (result.outcome, result.rollback_verified) == ("killed", True)
    assert result.contained == [REVOKE_SESSIONS]
    assert result.removal_not_before is not None
    assert result.still_privileged == []

    bundle = json.loads(bundle_out.read_text())
    assert result.bundle_valid
    not_before = datetime.fromisoformat(result.removal_not_before)
    revoked = receipts(bundle, REVOKE_SESSIONS)
    # Revoked twice, both needed: to contain while the removal waits, and at the window's
    # end after the removal (sessions may have been re-established in between).
    assert [r["result_status"] for r in revoked] == ["success", "success"]
    removals = receipts(bundle, REMOVE_ROLE)
    assert [r["result_status"] for r in removals][-1] == "success"
    # Contained before the tenant allowed the removal; removed only once it did.
    assert datetime.fromisoformat(revoked[0]["timestamp"]) < not_before
    assert datetime.fromisoformat(removals[-1]["timestamp"]) >= not_before
    assert revoked[-1]["timestamp"] >= removals[-1]["timestamp"]
    assert datetime.fromisoformat(removals[0]["timestamp"]) < not_before  # refused first
