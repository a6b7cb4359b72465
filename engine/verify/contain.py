"""Containment at the window's end (issue 17, item 4): every step the WPC plans for the end
(``rollback.at_end``, e.g. revoke the principal's sessions) and every step a credential write
derived (remove the password it created) has a successful receipt after the removal.

A derived step is trusted only as far as the receipts bind it: its record in
``metadata.breakglass.run.derived_rollback`` must carry the exact arguments and result the
write's receipt hashes, from which the step is re-derived (a record that still carries its
step, as older bundles do, must carry that same step); every successful credential write
must have such a record. A step that did not run fails with the reason naming it, whether or
not the job ended ``failed`` saying so (as a missing rollback does).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine import catalog
from engine.containment import derived_steps, describe_left, end_steps, step_of
from engine.receipts import content_hash
from engine.timeutil import from_epoch
from engine.verify.evidence import Call, Evidence, timestamp

MISSING = "BREAKGLASS_CONTAINMENT_MISSING"
UNBOUND = "BREAKGLASS_DERIVED_STEP_UNBOUND"


def check_containment(ev: Evidence, calls: list[Call]) -> None:
    """(1) every credential write's derived step is recorded and bound to its receipt;
    (2) for a job whose window ended, every derived step ran after the last removal, and so
    did every planned end step once the planned write succeeded."""
    run = ev.meta.get("run", {})
    derived = _bound_records(ev, run.get("derived_rollback", []))
    if not _window_ended(ev):
        return
    ok = [c for c in calls if c.status == "success"]
    after = _after_removal(ev, ok, run)
    failed = run.get("outcome") == "failed"
    failed_naming = set(run.get("still_privileged", [])) if failed else set()
    write_tool, _ = ev.planned(("action",))
    # The planned end steps are owed once the write landed; before that the runner still
    # runs them, but a write refused before sending left nothing to contain.
    if any(c.tool == write_tool for c in ok):
        owed = end_steps(ev.policy.terms, derived)
    else:
        owed = derived_steps(derived)
    for step in owed:
        key = (str(step["tool"]), content_hash(step["arguments"]))
        if any((c.tool, c.args_hash) == key and c.at >= after for c in ok):
            continue
        said = " (the job failed naming it)" if describe_left(step) in failed_naming else ""
        ev.report.fail(MISSING, f"{describe_left(step)[:200]}{said}")


def _bound_records(ev: Evidence, records: object) -> list[Mapping[str, Any]]:
    """The derived records that match a successful credential write's receipt exactly."""
    by_receipt = {
        str(r.get("receipt_id")): r
        for r in (records if isinstance(records, list) else [])
        if isinstance(r, Mapping)
    }
    bound = []
    for body in _receipts(ev):
        if body["tool_name"] != catalog.ADD_APP_PASSWORD or body.get("result_status") != "success":
            continue
        record = by_receipt.pop(str(body["receipt_id"]), None)
        if record is None or not _binds(record, body):
            ev.report.fail(
                UNBOUND, f"credential write {str(body['receipt_id'])[:80]} derived no step"
            )
            continue
        bound.append(record)
    for receipt_id in by_receipt:
        ev.report.fail(UNBOUND, f"derived step names no credential write ({receipt_id[:80]})")
    return bound


def _binds(record: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    step = step_of(record)
    if step is None or record.get("step", step) != step:
        return False
    hashes = (content_hash(record["arguments"]), content_hash(record["result"]))
    return hashes == (body["args_hash_b64u"], body["result_hash_b64u"])


def _receipts(ev: Evidence) -> list[Mapping[str, Any]]:
    return [item.get("payload", item) for item in ev.payload.get("tool_receipts", [])]


def _window_ended(ev: Evidence) -> bool:
    """A rollback token was issued: the window ended and its end had to contain."""
    return any(str(c.get("sub", "")).startswith("breakglass:rollback:") for c in ev.token_claims)


def _after_removal(ev: Evidence, ok: list[Call], run: Mapping[str, Any]) -> datetime:
    """End steps count from the last successful removal step, else from the window's end."""
    steps = {
        (str(s["tool"]), content_hash(s["arguments"])) for s in ev.policy.terms["rollback"]["steps"]
    }
    removals = [c.at for c in ok if (c.tool, c.args_hash) in steps]
    if removals:
        return max(removals)
    return timestamp(run["ended_at"]) if run.get("ended_at") else from_epoch(0)
