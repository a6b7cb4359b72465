"""What the demo tells when its executor wrote nothing (an agent that never ran): no story of
a grant being used, or of an injected call being refused, that did not happen. A run with an
OpenClaw that was not installed once printed both, then ``DEMO FAILED``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import seed_people
from bot.demo import Demo
from bot.demo_options import DemoOptions, Result
from bot.demo_text import injected_line


class Tenant:
    """Records what the demo does with the tenant."""

    def __init__(self) -> None:
        self.done: list[str] = []

    def act(self, who: str, what: str, targets: list[str]) -> None:
        self.done.append(what)

    def sign_in(self, who: str, app: str) -> None:
        self.done.append(f"sign-in {app}")


@pytest.mark.parametrize("written", [False, True])
def test_alice_uses_the_grant_only_when_it_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], written: bool
) -> None:
    demo = Demo(DemoOptions(home=tmp_path))
    tenant = Tenant()
    sim: Any = tenant
    demo._use_the_grant(sim, seed_people(), {"write_done": written})
    out = capsys.readouterr().out
    if written:
        assert tenant.done.count("Admin reset MFA") == 2
        assert "alice (SIMULATED) resets MFA for dave and erin" in out
    else:
        assert tenant.done == []
        assert "resets MFA" not in out
        assert "the grant was never written (the reason is in service.log)" in out


def test_the_injected_line_claims_no_refusal_the_log_does_not_hold() -> None:
    job = {"state": "closed", "end_reason": "timebox_expired"}
    line = injected_line([], job)
    assert "gateway refused" not in line
    assert line == (
        "no refused call of the injected agent (the write for u-mallory-injected) is in "
        "service.log → job closed (timebox_expired)"
    )
    killed = {"state": "killed", "end_reason": "unexpected_target_detected"}
    assert "gateway refused TARGET_OUT_OF_SCOPE → job killed" in injected_line(
        ["TARGET_OUT_OF_SCOPE"], killed
    )


def test_a_run_that_never_granted_is_not_ok() -> None:
    # An executor that never wrote still ended its window closed and verified: DEMO OK.
    done = Result(
        "normal", outcome="closed", rollback_verified=True, bundle_valid=True, stepped_up=2
    )
    assert not done.ok
    done.granted = True
    assert done.ok
    assert done.to_json()["granted"] is True
    denied = Result("denied", outcome="denied", bundle_valid=True)
    assert denied.ok  # denied grants nothing, and that is its point
