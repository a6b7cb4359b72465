"""What the privilege was used for (issue 17 §5), as plain data.

After the window the rollback runner reads the tenant's directory audit log and sign-in log
for the elevated principal (or, for a Conditional Access exclusion, the sign-ins the
exclusion let through) with a receipted read tool. The adapter hands the entries it read to
the functions here; the summary keeps counts, operation names, a few targets and the SHA-256
of exactly the entries read, never the entries themselves (the bundle's metadata is capped at
16 KiB). The job records the summary with the receipt of the read, or ``unavailable`` and why:
the read never keeps a job from ending.

Pure: no clock (``read_at`` is given), no I/O. Does NOT judge whether what was done was
allowed: it reports what the logs say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.canonical import jcs
from engine.receipts import content_hash
from engine.timeutil import iso_ms

READ = "read"
UNAVAILABLE = "unavailable"
# The summary must fit the bundle's 16 KiB metadata beside four extensions of maximum text:
# operations are kept, most frequent first, while their JSON stays within OPERATION_BYTES;
# the rest are counted in ``more``. The hashes name every entry read.
OPERATION_BYTES = 160
MAX_TARGETS = 2  # the targets named per operation
MAX_APPS = 1  # the app signed in to most
MAX_NAME = 40
# Entra reports 99 % of audit and sign-in entries within 5 minutes (docs/graph.md): a read
# sooner than that after the window may miss late entries, and says so.
LOG_LATENCY = timedelta(minutes=5)
# Sign-in results under which a Conditional Access policy did not act on the sign-in.
NOT_APPLIED = frozenset({"notApplied", "notEnabled"})


def _short(value: object) -> str:
    """At most ``MAX_NAME`` characters, keeping both ends (names that differ only at the
    end, like numbered operations or UPNs of one domain, stay told apart)."""
    text = str(value or "")
    return text if len(text) <= MAX_NAME else f"{text[: MAX_NAME - 12]}…{text[-11:]}"


def _target(resource: Mapping[str, Any]) -> str:
    name = resource.get("userPrincipalName") or resource.get("displayName") or resource.get("id")
    return str(name or "")


def summarize_audits(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per operation (``activityDisplayName``), with the first targets of each."""
    counts: Counter[str] = Counter()  # by the full name: shortening is for display only
    targets: dict[str, list[str]] = {}
    for entry in entries:
        name = str(entry.get("activityDisplayName") or "(unnamed)")
        counts[name] += 1
        named = targets.setdefault(name, [])
        for resource in entry.get("targetResources") or ():
            text = _target(resource) if isinstance(resource, Mapping) else ""
            if text and text not in named and len(named) < MAX_TARGETS:
                named.append(text)
    kept: list[dict[str, Any]] = []
    for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        op = {"name": _short(name), "count": count, "targets": [_short(t) for t in targets[name]]}
        bare = {**op, "targets": []}  # an operation is worth more than its targets
        fitting = [o for o in (op, bare) if len(jcs([*kept, o])) <= OPERATION_BYTES]
        if not fitting:
            break
        kept.append(fitting[0])
    return {
        "count": len(entries),
        "hash_b64u": content_hash(list(entries)),
        "operations": kept,
        "more": len(counts) - len(kept),
    }


def summarize_sign_ins(
    entries: Sequence[Mapping[str, Any]], policy_id: str | None = None
) -> dict[str, Any]:
    """Counts of sign-ins, failed ones and apps; with ``policy_id``, how many of them that
    Conditional Access policy did not apply to (what an exclusion let through)."""
    apps = Counter(_short(e.get("appDisplayName")) or "(unknown app)" for e in entries)
    failed = sum(1 for e in entries if _error_code(e) != 0)
    top = sorted(apps.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_APPS]
    summary: dict[str, Any] = {
        "count": len(entries),
        "hash_b64u": content_hash(list(entries)),
        "failed": failed,
        "apps": [{"app": a, "count": c} for a, c in top],
    }
    if policy_id is not None:
        through = [e for e in entries if _not_applied(e, policy_id)]
        summary["let_through"] = len(through)
        summary["users"] = len({str(e.get("userId")) for e in through})
    return summary


def _error_code(entry: Mapping[str, Any]) -> int:
    status = entry.get("status")
    code = status.get("errorCode", 0) if isinstance(status, Mapping) else 0
    return code if isinstance(code, int) else -1


def _not_applied(entry: Mapping[str, Any], policy_id: str) -> bool:
    for applied in entry.get("appliedConditionalAccessPolicies") or ():
        if isinstance(applied, Mapping) and applied.get("id") == policy_id:
            return applied.get("result") in NOT_APPLIED
    return False


def settled(until: datetime, read_at: datetime) -> bool:
    """Was the log read late enough after the window for (nearly) every entry to be in?"""
    return read_at >= until + LOG_LATENCY


def read_record(receipt_id: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The job's record of a successful activity read: the result as receipted and the
    receipt that proves it. The call is the WPC's planned read over ``result.window``, so
    the verifier rebuilds its arguments (``read_arguments``) rather than carrying them."""
    return {"status": READ, "receipt_id": receipt_id, "result": dict(result)}


def read_arguments(planned: Mapping[str, Any], window: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of the planned read (``terms.activity.arguments``) over ``window``."""
    return {**planned, "since": window.get("since"), "until": window.get("until")}


def unavailable(reason: str) -> dict[str, Any]:
    return {"status": UNAVAILABLE, "reason": reason[:200] or "unknown"}


def span(since: datetime, until: datetime) -> dict[str, str]:
    """The window as the read tool's ``since`` / ``until`` arguments."""
    return {"since": iso_ms(since), "until": iso_ms(until)}


def sentence(activity: Mapping[str, Any] | None, who: str) -> str | None:
    """The line of the audit message: "during the window alice@… did: …"; None when the job
    had nothing to read (no grant was made)."""
    if not isinstance(activity, Mapping):
        return None
    if activity.get("status") != READ:
        return f"activity: unavailable ({_short(activity.get('reason'))})"
    result = activity.get("result", {})
    sign_ins = result.get("sign_ins", {})
    if "let_through" in sign_ins:
        users = sign_ins.get("users", 0)
        text = (
            f"during the window the exclusion let through {sign_ins['let_through']} "
            f"sign-in(s) of {users} user(s) ({sign_ins.get('count', 0)} sign-in(s) in all)"
        )
    else:
        audits = result.get("audits", {})
        did = [_operation(op) for op in audits.get("operations", ())]
        if audits.get("more"):
            did.append(f"{audits['more']} other operation(s)")
        did.append(f"signed in {sign_ins.get('count', 0)} time(s)")
        text = f"during the window {who} did: " + "; ".join(did)
    if not result.get("settled", True):
        text += " (read within 5 minutes of the window's end: late log entries may be missing)"
    return text


def _operation(op: Mapping[str, Any]) -> str:
    targets = ", ".join(str(t) for t in op.get("targets", ()))
    on = f" on {targets}" if targets else ""
    return f"{op.get('name')} x{op.get('count')}{on}"
