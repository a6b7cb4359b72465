"""The break-glass profile, on top of the core checks: the policy is the published WPC,
every event has its artifact and every artifact its event, two distinct approvers who are
not the requester approved the exact plan before the token was issued, every successful
tool call happened inside its token's window and the WPC, every token was revoked, the
rollback and both verification reads were receipted, what the window touched was contained
after the removal (sessions revoked, credentials it created removed), an activity summary is
what its receipted read returned, and the chain ends in a signed terminal record that counts
every event (so cutting events off the end is detected)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.verify.activity import check_activity
from engine.verify.approvals import check_approvals
from engine.verify.artifacts import (
    check_artifacts,
    check_request,
    check_revocations,
    check_terminal,
    check_tokens,
)
from engine.verify.calls import check_calls, check_model_calls, check_rollback
from engine.verify.contain import check_containment
from engine.verify.evidence import load_evidence
from engine.verify.stepup import check_step_up
from engine.verify.summary import summarise
from engine.verify.trust import Report, Trust


def check_breakglass(payload: Mapping[str, Any], trust: Trust, report: Report) -> None:
    """Add every break-glass finding to ``report``; raises VerificationError when the
    bundle is too broken to check further."""
    ev = load_evidence(payload, trust, report)
    check_request(ev)
    ev.tokens = check_tokens(ev)
    check_artifacts(ev)
    check_terminal(ev)
    check_approvals(ev)
    check_step_up(ev)
    calls = check_calls(ev)
    models = check_model_calls(ev)
    check_revocations(ev)
    rollback_verified = check_rollback(ev, calls)
    check_containment(ev, calls)
    check_activity(ev)
    report.summary = summarise(ev, calls, models, rollback_verified)
