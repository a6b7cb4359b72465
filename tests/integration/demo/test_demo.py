"""``breakglass demo`` scenarios and ``breakglass serve`` as a newcomer would run them."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.demo_options import DemoOptions
from tests.integration.demo.stepped import stepped_demo
from tests.integration.ops.support import breakglass


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["normal", "kill", "early-kill", "injected", "denied"])
async def test_demo_scenario(
    scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle_out = tmp_path / "out.bundle.json"
    options = DemoOptions(scenario=scenario, json_output=True, home=tmp_path, bundle_out=bundle_out)
    result = await stepped_demo(options, tmp_path, monkeypatch).run()
    assert result.ok, result.to_json()
    assert result.still_privileged == []
    # Both approvals carry a fresh sign-in's evidence (the bundle verifier checks it too).
    assert result.stepped_up == (0 if scenario == "denied" else 2)
    assert result.bundle_valid
    bundle = json.loads(bundle_out.read_text())
    assert bundle["envelope_type"] == "proof_bundle"
    used = bundle["payload"]["metadata"]["breakglass"]["run"].get("activity")
    if scenario == "denied":
        assert used is None  # nothing was granted, so nothing was read
    else:  # what alice did with the grant, as the tenant's logs say (issue 17 §5)
        assert used["status"] == "read", used
        assert used["result"]["audits"]["operations"][0]["name"] == "Admin reset MFA"
        assert used["result"]["sign_ins"]["count"] == 3


def test_demo_command_prints_a_machine_readable_result(tmp_path: Path) -> None:
    # "denied": the one scenario whose outcome cannot depend on how fast real time runs.
    env = {**os.environ, "BREAKGLASS_HOME": str(tmp_path)}
    out = breakglass(["demo", "--scenario", "denied", "--json"], env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert set(result) >= {
        "scenario",
        "outcome",
        "rollback_verified",
        "bundle_path",
        "still_privileged",
        "home",
        "trust_path",
    }
    assert Path(result["trust_path"]).parent == Path(result["bundle_path"]).parent
    assert json.loads(Path(result["trust_path"]).read_text())
    assert (result["scenario"], result["outcome"], result["still_privileged"]) == (
        "denied",
        "denied",
        [],
    )


@pytest.mark.slow
async def test_serve_with_no_configuration_then_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "BREAKGLASS_HOME": str(tmp_path)}
    env.pop("BREAKGLASS_DATABASE_URL", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        child = subprocess.Popen(  # noqa: ASYNC220 - started once, then polled
            [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
            env=env,
            stdout=sink,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "serve.json").exists():
            assert child.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not start"
            await asyncio.sleep(0.05)
        url = json.loads((tmp_path / "serve.json").read_text())["url"]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"{url}/") as resp:
                assert "breakglass console" in await resp.text()
            async with http.get(f"{url}/readyz") as resp:
                assert (await resp.json())["ready"] is True
            async with http.get(f"{url}/metrics") as resp:
                assert "breakglass_jobs" in await resp.text()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=15) == 0
        assert "Traceback" not in log.read_text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
