"""What ``breakglass demo`` prints reads right: refusals say why, a denied job has nothing to
roll back, the closing receipt counts itself, the injected call is named with its reason, the
verify line runs as printed, and the trust file is written beside the bundle."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from bot.demo import Demo
from bot.demo_options import DemoOptions
from bot.demo_text import pressed, rollback_line, verify_command
from engine.lifecycle import Kill
from tests.support.engine_sim import DAVE, JobSim


def test_a_refusal_says_why_and_has_no_dangling_arrow() -> None:
    out = {"ok": False, "reason": "SELF_APPROVAL", "detail": "the requester cannot approve"}
    line = pressed("alice", "approve", out)
    assert line == (
        "alice presses APPROVE: refused SELF_APPROVAL (the requester cannot approve); "
        "nothing changed"
    )
    assert pressed("bob", "deny", {"ok": True, "result": {"state": "denied"}}).endswith("→ denied")


def test_a_job_without_a_grant_has_nothing_to_roll_back() -> None:
    denied = {"state": "denied", "end_reason": "denied", "rollback_verified": None}
    assert rollback_line(denied) == (
        "job ended denied (denied); nothing was written; no rollback needed"
    )
    # A black-box run: a job killed while pending was summed up "rollback verified: ...",
    # though no rollback ran and nothing had been written.
    sim = JobSim()
    sim.request()
    killed_pending = sim.do(Kill(DAVE)).job.to_json()
    line = rollback_line(killed_pending)
    assert line == "job ended killed (kill); nothing was written; no rollback needed"
    assert "rollback verified" not in line
    killed = {
        "state": "killed",
        "end_reason": "kill",
        "rollback_verified": True,
        "write_done": True,
    }
    assert rollback_line(killed).endswith("rollback verified: yes")


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [re.sub(r"^\[\s*[0-9.]+s\] ", "", line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.slow
async def test_denied_demo_prints_what_happened_and_saves_trust_beside_the_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "out" / "job.bundle.json"
    result = await Demo(
        DemoOptions(scenario="denied", home=tmp_path / "home", bundle_out=bundle)
    ).run()
    shown = lines(capsys)
    assert result.ok, result.to_json()
    assert not [line for line in shown if line.rstrip().endswith("→")]
    assert any("refused SELF_APPROVAL (the requester cannot approve" in line for line in shown)
    assert any(line.endswith("nothing was written; no rollback needed") for line in shown)
    assert "rollback verified: None" not in "\n".join(shown)
    (closing,) = [line for line in shown if "run_end" in line]
    assert closing.startswith("  receipt #002 ")
    assert "chain closed: 3 events, this one last" in closing
    assert any("explicit_deny by Bob Example" in line for line in shown)

    trust = bundle.parent / "trust.json"
    assert json.loads(trust.read_text())
    doc = result.to_json()
    assert (doc["trust_path"], doc["home"]) == (str(trust), str(tmp_path / "home"))
    (verify,) = [line for line in shown if line.startswith("verify it yourself: ")]
    command = shlex.split(verify.removeprefix("verify it yourself: "))
    assert command[1:] == ["verify", str(bundle), "--trust", str(trust)]
    ran = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.slow
async def test_injected_demo_names_the_refused_call_and_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await Demo(DemoOptions(scenario="injected", home=tmp_path)).run()
    shown = lines(capsys)
    assert result.ok, result.to_json()
    (refused,) = [line for line in shown if "write_role_assignment [error]" in line]
    assert "the injected write for u-mallory-injected, refused by the gateway" in refused
    assert any(
        "u-mallory-injected" in line
        and "gateway refused TARGET_OUT_OF_SCOPE → job killed (unexpected_target_detected)" in line
        for line in shown
    )


def test_the_printed_verify_command_exists(tmp_path: Path) -> None:
    program = shlex.split(verify_command(tmp_path / "b.json", tmp_path / "t.json"))[0]
    assert program == "breakglass" or Path(program).exists()
