"""The short human report of ``breakglass verify``: a pure function of the verifier's report.

Everything shown comes from the verifier's summary; for a bundle that failed early the summary
is empty and the report says only what failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cards.text import reveal_hidden
from engine.verify import Report


def render(report: Report, bundle: Mapping[str, Any]) -> str:
    """The report as lines of text, ending in ``VALID`` or ``INVALID: CODE, CODE``.

    ``bundle`` is read only for a valid core-profile bundle (then its contents are signed).
    """
    # Bundle text is anyone's: each value stays on its line (a newline in a name forged a
    # line of the report) and an escape sequence never reaches the terminal.
    summary = _one_line(report.summary)
    lines = [f"profile     {report.profile}"]
    if not summary and report.valid:
        lines += _core(bundle.get("payload", {}))
    if summary:
        lines += _policy(summary)
        lines += _approvals(summary.get("approvals", []))
        lines += _tokens(summary.get("tokens", []))
        lines += _timeline(summary.get("timeline", []))
        lines += _models(summary.get("model_timeline", []))
        lines += _ending(summary)
    if report.reasons:
        lines.append("problems")
        lines += [f"  {_one_line(reason)}" for reason in report.reasons]
    lines.append(verdict(report))
    return reveal_hidden("\n".join(lines))


def _one_line(value: Any) -> Any:
    """``value`` with every string in it on one line, its hidden characters marked."""
    if isinstance(value, str):
        return reveal_hidden(value, keep="")
    if isinstance(value, Mapping):
        return {k: _one_line(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_one_line(v) for v in value]
    return value


def verdict(report: Report) -> str:
    return "VALID" if report.valid else "INVALID: " + ", ".join(report.reason_codes)


def _core(payload: Mapping[str, Any]) -> list[str]:
    events = payload.get("event_chain", [])
    runs = sorted({_one_line(str(e.get("run_id"))) for e in events})
    return [
        f"bundle      {_one_line(str(payload.get('bundle_id')))}",
        f"agent       {_one_line(str(payload.get('agent_did')))}",
        f"runs        {', '.join(runs) or 'none'}",
        f"events      {len(events)}",
        f"tool calls  {len(payload.get('tool_receipts', []))}",
        f"model calls {len(payload.get('receipts', []))}",
    ]


def _policy(summary: Mapping[str, Any]) -> list[str]:
    return [
        f"job         {summary.get('job_id')}",
        f"policy      {summary.get('policy_id')}  {summary.get('policy_hash_b64u')}",
        f"requester   {summary.get('requester')}",
    ]


def _approvals(approvals: Sequence[Mapping[str, Any]]) -> list[str]:
    if not approvals:
        return ["approvals   none"]
    return [
        f"{'approvals' if i == 0 else '':<11} {a.get('approver')}  {a.get('type')}  {a.get('at')}"
        for i, a in enumerate(approvals)
    ]


def _tokens(tokens: Sequence[Mapping[str, Any]]) -> list[str]:
    if not tokens:
        return ["tokens      none"]
    return [
        f"{'tokens' if i == 0 else '':<11} {t.get('jti')}  {t.get('kind')}  "
        f"{t.get('from')} to {t.get('until')}"
        for i, t in enumerate(tokens)
    ]


def _timeline(calls: Sequence[Mapping[str, Any]]) -> list[str]:
    if not calls:
        return ["tool calls  none"]
    lines = ["tool calls"]
    lines += [f"  {c.get('at')}  {c.get('tool')}  {c.get('status')}" for c in calls]
    return lines


def _models(calls: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each model call with its route, and whether the WPC allowed that route."""
    if not calls:
        return []
    lines = ["model route"]
    lines += [
        f"  {c.get('at')}  {c.get('route')}  {_allowed(c)}  receipt {c.get('receipt_hash_b64u')}"
        for c in calls
    ]
    return lines


def _allowed(call: Mapping[str, Any]) -> str:
    return "allowed" if call.get("allowed") else "OUTSIDE THE WPC"


def _ending(summary: Mapping[str, Any]) -> list[str]:
    rollback = "verified" if summary.get("rollback_verified") else "NOT verified"
    killed = summary.get("kill")
    return [
        f"model calls {summary.get('model_calls', 0)}",
        f"outcome     {summary.get('outcome')}",
        f"kill        {'by ' + str(killed) if killed else 'not pressed'}",
        f"rollback    {rollback}",
    ]
