"""The activity summary (issue 17 §5) is what the receipted read returned.

A job records, in ``metadata.breakglass.run.activity``, either ``unavailable`` and why, or
the read's result with the id of the tool receipt that witnessed it. Checked here: that
receipt exists, succeeded, is of the read the WPC planned, and hashes to exactly the planned
arguments over the result's window and to this result; so an edited summary (counts,
operations, the log hashes, the window) is caught even when the bundle was signed again.

Does NOT check the summary against the tenant's logs: only the receipt binds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.activity import READ, UNAVAILABLE, read_arguments
from engine.errors import VerificationError
from engine.receipts import content_hash
from engine.verify.evidence import Evidence

MISMATCH = "BREAKGLASS_ACTIVITY_MISMATCH"


def check_activity(ev: Evidence) -> None:
    """Add a finding when the recorded activity does not match its receipted read."""
    record = ev.meta.get("run", {}).get("activity")
    if record is None:
        if _read_receipted(ev):  # read, then left out of the bundle: hidden, not absent
            ev.report.fail(MISMATCH, "a receipted activity read, but no activity summary")
        return
    if not isinstance(record, Mapping) or record.get("status") not in (READ, UNAVAILABLE):
        raise VerificationError("SCHEMA_VALIDATION_FAILED", "metadata.breakglass.run.activity")
    if record["status"] == UNAVAILABLE:
        if not isinstance(record.get("reason"), str):
            raise VerificationError("SCHEMA_VALIDATION_FAILED", "activity names no reason")
        return
    planned, result = ev.policy.terms.get("activity"), record.get("result")
    if not isinstance(planned, Mapping) or not isinstance(result, Mapping):
        ev.report.fail(MISMATCH, "an activity summary, but the WPC planned no activity read")
        return
    receipt = _receipt(ev, record.get("receipt_id"))
    if receipt is None:
        ev.report.fail(MISMATCH, "the activity summary names no tool receipt of this bundle")
        return
    window = result.get("window")
    arguments = read_arguments(planned["arguments"], window if isinstance(window, Mapping) else {})
    expected = (planned["tool"], content_hash(arguments), content_hash(result), "success")
    found = (
        receipt.get("tool_name"),
        receipt.get("args_hash_b64u"),
        receipt.get("result_hash_b64u"),
        receipt.get("result_status", "success"),
    )
    if found != expected:
        ev.report.fail(MISMATCH, "the activity summary is not what the receipted read returned")


def _read_receipted(ev: Evidence) -> bool:
    """A successful write and a successful activity read are receipted: the service records
    every such read's outcome, so a missing summary was left out."""
    planned = ev.policy.terms.get("activity")
    tool = planned.get("tool") if isinstance(planned, Mapping) else None
    done = {
        item.get("payload", item).get("tool_name")
        for item in ev.payload.get("tool_receipts", [])
        if item.get("payload", item).get("result_status", "success") == "success"
    }
    return tool in done and ev.planned(("action",))[0] in done


def _receipt(ev: Evidence, receipt_id: object) -> Mapping[str, Any] | None:
    for item in ev.payload.get("tool_receipts", []):
        body = item.get("payload", item)
        if body.get("receipt_id") == receipt_id:
            return body  # type: ignore[no-any-return]
    return None
