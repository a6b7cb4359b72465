"""The sections of the HTML report, each a pure function of the verifier's report and the
bundle (read only when its signature and hashes verified). Every piece of bundle text goes
through :func:`esc`: a bundle is untrusted input, and its text must never become markup."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cards.text import reveal_hidden
from engine import activity
from engine.compact import expand
from engine.containment import end_steps
from engine.errors import BreakGlassError
from engine.receipts import content_hash
from engine.timeutil import parse_iso
from engine.verify import Report
from engine.verify.reasons import meaning

Row = Sequence[object]


def esc(value: object) -> str:
    """Bundle text as inert HTML; control, bidi and zero-width characters become visible
    ``[U+202E]`` markers, as on the cards (a reordered ticket is an attack to be seen)."""
    return html.escape(reveal_hidden("" if value is None else str(value)), quote=True)


def table(headers: Sequence[str], rows: Iterable[Row], css: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section(ident: str, title: str, content: str) -> str:
    return f'<section id="{esc(ident)}"><h2>{esc(title)}</h2>{content}</section>'


def verdict(report: Report, bundle_id: object) -> str:
    word = "VALID" if report.valid else "INVALID"
    lines = [
        f'<section id="verdict" class="{word.lower()}"><h1>{word}</h1>',
        f"<p>Proof bundle <code>{esc(bundle_id)}</code>, checked offline with the "
        f"<b>{esc(report.profile)}</b> profile.</p>",
    ]
    if report.valid:
        lines.append("<p>Every signature, hash, chain link and rule checked out.</p>")
    else:
        rows = [(code, meaning(code)) for code in report.reason_codes]
        lines.append(table(("reason code", "what it means"), rows, "reasons"))
        lines.append("<h3>Details</h3><ul>")
        lines += [f"<li>{esc(reason)}</li>" for reason in report.reasons]
        lines.append("</ul>")
    lines.append("</section>")
    return "".join(lines)


def untrusted_note() -> str:
    return section(
        "contents",
        "Contents",
        "<p>The bundle failed its signature, hash or shape checks, so nothing it says can be "
        "trusted: its timeline, policy and calls are not shown.</p>",
    )


# ------------------------------------------------------------------------ the policy


def first_policy(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload of the WPC the job was requested under ({} when it cannot be read)."""
    meta = payload.get("metadata", {}).get("breakglass", {})
    try:
        policies = expand(meta.get("policies"), "policies")
    except BreakGlassError:
        return {}
    return policies[0].get("payload", {}) if policies else {}


def terms_of(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    terms = policy.get("metadata", {}).get("breakglass", {})
    return terms if isinstance(terms, Mapping) else {}


def policy_words(policy: Mapping[str, Any]) -> str:
    terms = terms_of(policy)
    action = terms.get("action", {})
    args = action.get("arguments", {})
    approvals = terms.get("approvals", {})
    targets = ", ".join(
        f"{k} {v}" for k, v in sorted(args.items()) if k not in ("justification", "job_id")
    )
    models = [s for s in policy.get("statements", []) if "model:invoke" in s.get("actions", [])]
    model_text = (
        ", ".join(
            "{}:{}".format(
                s["conditions"]["StringEquals"].get("Model:Provider"),
                s["conditions"]["StringEquals"].get("Model:Name"),
            )
            for s in models
        )
        or "none (no model may be called)"
    )
    tools = sorted(
        {
            s.get("conditions", {}).get("StringEquals", {}).get("Tool:Name", "?")
            for s in policy.get("statements", [])
            if "tool:execute" in s.get("actions", []) and s.get("effect") == "Allow"
        }
    )
    sentences = [
        f"<p><b>{esc(terms.get('requester'))}</b> asked for <b>{esc(terms.get('template'))}</b>"
        f" for {esc(terms.get('timebox', {}).get('requested_minutes'))} minutes "
        f"(ticket {esc(terms.get('ticket'))}): “{esc(terms.get('justification'))}”.</p>",
        f"<p>The change: <code>{esc(action.get('tool'))}</code> with {esc(targets)}.</p>",
        f"<p>It needs {esc(approvals.get('min_approvers'))} distinct approvers"
        + (
            ", none of them the requester"
            if approvals.get("approver_must_not_equal_requester")
            else ""
        )
        + ".</p>",
        f"<p>Allowed tools: {esc(', '.join(tools) or 'none')}.</p>",
        f"<p>Allowed model route: {esc(model_text)}.</p>",
        "<p>The kill switch fires on: "
        f"{esc(', '.join(terms.get('kill_switch', {}).get('triggers', [])))}.</p>",
        f"<p>Policy <code>{esc(policy.get('policy_id'))}</code>.</p>",
    ]
    return section("policy", "The policy, in plain words", "".join(sentences))


# ---------------------------------------------------------------------- the timeline


def _when(text: object) -> datetime:
    try:
        return parse_iso(text)
    except BreakGlassError:
        return datetime.min.replace(tzinfo=UTC)


def shown(text: object) -> str:
    """A time as people read it, whatever ISO form the evidence used."""
    when = _when(text)
    if when.year == 1:
        return str(text)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def timeline(summary: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    events = payload.get("event_chain", [])
    run = payload.get("metadata", {}).get("breakglass", {}).get("run", {})
    rows: list[tuple[object, object, str]] = []
    if events:
        rows.append((events[0].get("timestamp"), summary.get("requester"), "requested the job"))
    for a in summary.get("approvals", []):
        rows.append((a.get("at"), a.get("approver"), _decision(a.get("type"))))
    issues = [e.get("timestamp") for e in events if e.get("event_type") == "token_issued"]
    for at, t in zip(issues, summary.get("tokens", []), strict=False):
        rows.append((at, "token issuer", f"issued the {t.get('kind')} token {t.get('jti')}"))
    for c in summary.get("timeline", []):
        rows.append((c.get("at"), "agent", f"called {c.get('tool')}: {c.get('status')}"))
    for m in summary.get("model_timeline", []):
        rows.append((m.get("at"), "agent", f"called the model {m.get('route')}"))
    if run.get("ended_at"):
        who = run.get("ended_by") or "the service"
        rows.append((run.get("ended_at"), who, f"ended the job ({run.get('end_reason')})"))
    rows.sort(key=lambda r: _when(r[0]))
    rows = [(shown(at), who, what) for at, who, what in rows]
    people = sorted({str(r[1]) for r in rows})
    by_person = [(p, "; ".join(what for _, who, what in rows if str(who) == p)) for p in people]
    content = table(("when", "who", "what"), rows, "timeline")
    content += "<h3>By person</h3>" + table(("who", "did"), by_person, "people")
    return section("timeline", "Timeline", content)


def _decision(kind: object) -> str:
    return {
        "explicit_approve": "approved",
        "explicit_deny": "denied",
        "timeout_deny": "timed out (denied)",
        "auto_approve": "auto-approved",
    }.get(str(kind), str(kind))


def approvals(payload: Mapping[str, Any]) -> str:
    """Each decision with how it was made (method and any step-up evidence it carries)."""
    rows = []
    for a in payload.get("human_approval_receipts", []):
        step_up = {k: v for k, v in a.items() if "step_up" in k or k.startswith("mfa")}
        rows.append(
            (
                shown(a.get("timestamp")),
                a.get("approver_subject"),
                _decision(a.get("approval_type")),
                a.get("approver_method"),
                ", ".join(f"{k}={v}" for k, v in sorted(step_up.items())) or "none recorded",
                a.get("plan_hash_b64u"),
            )
        )
    headers = ("when", "who", "decision", "method", "step-up evidence", "plan hash")
    return section(
        "approvals", "Approvals", table(headers, rows, "approvals") if rows else "<p>None.</p>"
    )


def calls(summary: Mapping[str, Any]) -> str:
    tools = [
        (shown(c.get("at")), c.get("tool"), c.get("status")) for c in summary.get("timeline", [])
    ]
    models = [
        (
            shown(m.get("at")),
            m.get("route"),
            "allowed" if m.get("allowed") else "OUTSIDE THE WPC",
            m.get("receipt_hash_b64u"),
        )
        for m in summary.get("model_timeline", [])
    ]
    content = "<h3>Tool calls</h3>" + (
        table(("when", "tool", "result"), tools, "tools") if tools else "<p>None.</p>"
    )
    content += "<h3>Model calls</h3>" + (
        table(("when", "route", "policy", "receipt hash"), models, "models")
        if models
        else "<p>None: this job called no model.</p>"
    )
    return section("calls", "Every tool and model call", content)


def rollback(summary: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    terms = terms_of(first_policy(payload))
    done = [
        (r.get("payload", r), r.get("payload", r).get("timestamp"))
        for r in payload.get("tool_receipts", [])
    ]
    planned = [("verification read after the write", terms.get("verify_action", {}))]
    planned += [("rollback step", step) for step in terms.get("rollback", {}).get("steps", [])]
    planned.append(
        ("verification read after the rollback", terms.get("rollback", {}).get("verify", {}))
    )
    derived = payload.get("metadata", {}).get("breakglass", {}).get("run", {})
    ends = end_steps(terms, derived.get("derived_rollback", []))
    planned += [("containment at the window's end", step) for step in ends]
    rows = []
    for what, plan in planned:
        digest = content_hash(plan.get("arguments", {})) if plan else None
        hits = [
            (body.get("result_status"), at)
            for body, at in done
            if body.get("tool_name") == plan.get("tool") and body.get("args_hash_b64u") == digest
        ]
        status = ", ".join(f"{s} at {shown(at)}" for s, at in hits) or "NOT receipted"
        rows.append((what, plan.get("tool"), status))
    verified = "verified" if summary.get("rollback_verified") else "NOT verified"
    content = f"<p>Rollback: <b>{esc(verified)}</b>.</p>" + table(
        ("step", "tool", "receipted"), rows, "rollback"
    )
    run = payload.get("metadata", {}).get("breakglass", {}).get("run", {})
    who = str(terms.get("action", {}).get("arguments", {}).get("principal_id", "the principal"))
    used = activity.sentence(run.get("activity"), who)  # issue 17 §5; checked by the verifier
    if used is not None:
        content += f"<p>What the privilege was used for: {esc(used)}</p>"
    return section("rollback", "Rollback and verification reads", content)


def core_counts(payload: Mapping[str, Any]) -> str:
    rows = [
        ("agent", payload.get("agent_did")),
        ("events", len(payload.get("event_chain", []))),
        ("tool calls", len(payload.get("tool_receipts", []))),
        ("model calls", len(payload.get("receipts", []))),
    ]
    return section(
        "contents", "Contents (core checks only)", table(("what", "value"), rows, "counts")
    )
