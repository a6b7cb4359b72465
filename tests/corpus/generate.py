"""Regenerate the tamper corpus: a good bundle and named bad variants, each with the reason
code the verifier must give. Run ``make corpus``; a test fails when the committed corpus
differs from what this script produces (drift check).

Variants come in two kinds. "Edited" ones change a signed bundle and re-sign only the
bundle (a producer that lost track of its chain). "Forged" ones are rebuilt consistently by
a producer holding every key but breaking the rules (self-approval, calls outside the
window, ...): only the break-glass checks can catch those.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine import chain
from engine.canonical import jcs
from engine.cst import TokenKind
from engine.did import Signer
from engine.envelope import sign_envelope
from engine.job import Actor
from engine.lifecycle import Kill, ModelCallRecorded, Tick
from engine.ports import ChainRecord, ModelExchange
from engine.proof import bundle_for_job
from engine.receipts import content_hash, gateway_receipt_payload, witness_hash
from engine.timeutil import iso_ms, parse_iso
from engine.wpc import ModelAllowance, build_wpc, sign_wpc
from tests.support.engine_sim import JobSim, role_plan

HERE = Path(__file__).resolve().parent
Bundle = dict[str, Any]


def good_sim() -> JobSim:
    sim = JobSim()
    sim.whole_job()
    return sim


def killed_sim() -> JobSim:
    sim = JobSim()
    sim.request()
    sim.advance(minutes=1)
    sim.approve_both()
    sim.run_write_and_verify()
    sim.advance(minutes=5)
    sim.do(Kill(Actor("console:oncall", None)))
    sim.run_rollback()
    return sim


AGENT_MODEL = ModelAllowance("scripted", "breakglass-agent")


def model_call(sim: JobSim, n: int, prompt: str, answer: str = "") -> ModelExchange:
    """A model call as the proxy receipts it (the agent's conversation, under its token);
    returns the exchange the proxy would keep."""
    assert sim.job is not None
    token = sim.job.token(TokenKind.AGENT)
    assert token is not None
    request = {"model": AGENT_MODEL.name, "messages": [{"role": "user", "content": prompt}]}
    reply = {"choices": [{"message": {"role": "assistant", "content": answer or f"step {n}"}}]}
    receipt_id = f"gw_{sim.job.job_id}_{n:03d}"
    payload = gateway_receipt_payload(
        receipt_id=receipt_id,
        gateway_id="breakglass-model-proxy",
        provider=AGENT_MODEL.provider,
        model=AGENT_MODEL.name,
        request_body=jcs(request),
        response_body=jcs(reply),
        tokens_input=12,
        tokens_output=3,
        latency_ms=40,
        at=sim.now,
    )
    sim.do(ModelCallRecorded(payload, str(token.claims["token_scope_hash_b64u"])))
    return ModelExchange(receipt_id, sim.job.job_id, jcs(request), jcs(reply), sim.now)


def agent_sim() -> JobSim:
    """An agent-mode job: the model plans, then the write and its verification run."""
    sim = JobSim()
    sim.rules = replace(sim.rules, model=AGENT_MODEL)
    sim.request()
    sim.advance(minutes=2)
    sim.approve_both()
    sim.advance(seconds=1)
    model_call(sim, 1, "plan the role grant")
    sim.advance(seconds=2)
    model_call(sim, 2, "the grant is done; verify it")
    sim.run_write_and_verify()
    sim.advance(minutes=30)
    sim.do(Tick())
    sim.run_rollback()
    return sim


def resign(bundle: Bundle, signer: Signer) -> Bundle:
    payload = copy.deepcopy(bundle["payload"])
    return sign_envelope("proof_bundle", payload, signer, parse_iso(bundle["issued_at"]))


# ------------------------------------------------------------------ forging (rechain)

Mutation = Callable[[list[dict[str, Any]]], None]


def forge(sim: JobSim, mutate: Mutation) -> Bundle:
    """Rebuild the job's chain after ``mutate`` edits its entries, re-signing everything.

    Entries are dicts: ``event_type``, ``at``, and ``payload`` (an unbound receipt payload,
    token claims, or a record payload) plus ``envelope_type`` and ``signer``.
    """
    assert sim.job is not None
    signers = {
        "human_approval_receipt": sim.keys.agent,
        "tool_receipt": sim.keys.gateway,
        "breakglass_revocation": sim.keys.issuer,
        "breakglass_run_end": sim.keys.agent,
        "gateway_receipt": sim.keys.gateway,
    }
    entries = []
    claims = {content_hash(t.claims): dict(t.claims) for t in sim.job.tokens}
    for record in sim.records:
        event = record.event
        entry: dict[str, Any] = {"event_type": event["event_type"], "at": event["timestamp"]}
        if record.envelope is not None:
            entry["envelope_type"] = record.envelope["envelope_type"]
            entry["payload"] = {
                k: v for k, v in record.envelope["payload"].items() if k != "binding"
            }
            if "binding" in record.envelope["payload"]:
                entry["binding"] = record.envelope["payload"]["binding"]
        elif event["event_type"] == chain.TOKEN_ISSUED:
            entry["payload"] = claims[event["payload_hash_b64u"]]
        else:
            entry["payload_hash"] = event["payload_hash_b64u"]
        entries.append(entry)
    mutate(entries)
    records, head, tokens = [], None, []
    for seq, entry in enumerate(entries):
        at = parse_iso(entry["at"])
        if entry.get("envelope_type") == "breakglass_run_end":
            entry["payload"] |= {"event_count": seq, "head_hash_b64u": head}
        if "binding" in entry:
            digest = witness_hash(entry["payload"])
        elif "envelope_type" in entry or entry["event_type"] == chain.TOKEN_ISSUED:
            digest = content_hash(entry["payload"])
        else:
            digest = entry["payload_hash"]
        event = chain.make_event(
            run_id=sim.job.job_id,
            seq=seq,
            event_type=entry["event_type"],
            payload_hash_b64u=digest,
            prev_hash_b64u=head,
            at=at,
        )
        head = event["event_hash_b64u"]
        envelope = None
        if "binding" in entry:
            binding = dict(entry["binding"]) | {"event_hash_b64u": head}
            signer = signers[entry["envelope_type"]]
            envelope = sign_envelope(
                entry["envelope_type"], {**entry["payload"], "binding": binding}, signer, at
            )
        elif "envelope_type" in entry:
            envelope = sign_envelope(
                entry["envelope_type"], entry["payload"], signers[entry["envelope_type"]], at
            )
        elif entry["event_type"] == chain.TOKEN_ISSUED:
            tokens.append(entry["payload"])
        records.append(ChainRecord(sim.job.job_id, seq, event, envelope))
    job = sim.job.but(tokens=tuple(t for t in sim.job.tokens if dict(t.claims) in tokens))
    return bundle_for_job(job, records, sim.keys, sim.now)[0]


def _index(entries: list[dict[str, Any]], event_type: str, nth: int = 0, **match: Any) -> int:
    hits = [
        i
        for i, e in enumerate(entries)
        if e["event_type"] == event_type
        and all(e.get("payload", {}).get(k) == v for k, v in match.items())
    ]
    return hits[nth]


def _shift(entry: dict[str, Any], **delta: float) -> None:
    moved = iso_ms(parse_iso(entry["at"]) + timedelta(**delta))
    entry["at"] = moved
    if "timestamp" in entry.get("payload", {}):
        entry["payload"]["timestamp"] = moved


def self_approval(entries: list[dict[str, Any]]) -> None:
    entries[_index(entries, chain.APPROVAL, 1)]["payload"]["approver_subject"] = "u-alice"


def single_approver(entries: list[dict[str, Any]]) -> None:
    del entries[_index(entries, chain.APPROVAL, 0)]


def approval_after_issue(entries: list[dict[str, Any]]) -> None:
    _shift(entries[_index(entries, chain.APPROVAL, 1)], seconds=30)


def call_after_expiry(entries: list[dict[str, Any]]) -> None:
    _shift(entries[_index(entries, chain.TOOL_CALL, 0)], minutes=40)


def call_after_revocation(entries: list[dict[str, Any]]) -> None:
    _shift(entries[_index(entries, chain.TOOL_CALL, 0)], minutes=6)


def call_outside_policy(entries: list[dict[str, Any]]) -> None:
    entry = entries[_index(entries, chain.TOOL_CALL, 0)]
    entry["payload"]["tool_name"] = "breakglass.microsoft_graph.exclude_group_from_ca_policy"


def missing_revocation(entries: list[dict[str, Any]]) -> None:
    del entries[_index(entries, chain.REVOCATION, 0)]


def missing_rollback(entries: list[dict[str, Any]]) -> None:
    del entries[_index(entries, chain.TOOL_CALL, 2)]


def missing_containment(entries: list[dict[str, Any]]) -> None:
    """The principal's sessions never revoked after the removal (the fifth tool call)."""
    del entries[_index(entries, chain.TOOL_CALL, 4)]


def skipped_verification(entries: list[dict[str, Any]]) -> None:
    del entries[_index(entries, chain.TOOL_CALL, 1)]


def event_after_terminal(entries: list[dict[str, Any]]) -> None:
    extra = copy.deepcopy(entries[_index(entries, chain.TOOL_CALL, 3)])
    extra["payload"]["receipt_id"] += "_late"
    entries.append(extra)


def model_outside_route(entries: list[dict[str, Any]]) -> None:
    entries[_index(entries, chain.LLM_CALL, 1)]["payload"]["model"] = "gpt-unapproved"


# ---------------------------------------------------------------------- edited variants


def orphaned_approval(bundle: Bundle, sim: JobSim) -> Bundle:
    """An approval that names a span no model call declares."""
    edited = copy.deepcopy(bundle)
    edited["payload"]["human_approval_receipts"][0]["binding"]["span_id"] = "span_nobody"
    return resign(edited, sim.keys.agent)


def dropped_receipt(bundle: Bundle, sim: JobSim) -> Bundle:
    edited = copy.deepcopy(bundle)
    del edited["payload"]["tool_receipts"][1]
    return resign(edited, sim.keys.agent)


def reordered_events(bundle: Bundle, sim: JobSim) -> Bundle:
    edited = copy.deepcopy(bundle)
    events = edited["payload"]["event_chain"]
    events[3], events[4] = events[4], events[3]
    return resign(edited, sim.keys.agent)


def edited_tool_args_hash(bundle: Bundle, sim: JobSim) -> Bundle:
    edited = copy.deepcopy(bundle)
    edited["payload"]["tool_receipts"][0]["payload"]["args_hash_b64u"] = content_hash(
        {"principal_id": "u-mallory"}
    )
    return resign(edited, sim.keys.agent)


def truncated_tail(bundle: Bundle, sim: JobSim) -> Bundle:
    """Cut the last events and everything bound to them, as a careful truncator would."""
    edited = copy.deepcopy(bundle)
    payload = edited["payload"]
    cut = payload["event_chain"][-4:]
    del payload["event_chain"][-4:]
    gone = {e["event_hash_b64u"] for e in cut}
    payload["tool_receipts"] = [
        r
        for r in payload["tool_receipts"]
        if r["payload"]["binding"]["event_hash_b64u"] not in gone
    ]
    meta = payload["metadata"]["breakglass"]
    meta["terminal"] = None
    meta["revocations"] = meta["revocations"][:-1]
    return resign(edited, sim.keys.agent)


def swapped_policy(bundle: Bundle, sim: JobSim) -> Bundle:
    edited = copy.deepcopy(bundle)
    other = role_plan(
        "t-other", "u-mallory", justification="other", ticket="X-1", job_id="job-9999"
    )
    payload = build_wpc(other, sim.keys.publisher.did)
    edited["payload"]["metadata"]["breakglass"]["policies"] = [
        sign_wpc(payload, sim.keys.publisher, sim.now)
    ]
    return resign(edited, sim.keys.agent)


def foreign_signer(bundle: Bundle, sim: JobSim) -> Bundle:
    mallory = Signer.from_seed(b"mallory".ljust(32, b"."))
    edited = copy.deepcopy(bundle)
    edited["payload"]["agent_did"] = mallory.did
    return resign(edited, mallory)


def unsigned_edit(bundle: Bundle, sim: JobSim) -> Bundle:
    edited = copy.deepcopy(bundle)
    edited["payload"]["metadata"]["breakglass"]["run"]["outcome"] = "closed"
    edited["payload"]["metadata"]["breakglass"]["run"]["ended_by"] = "nobody"
    return edited


def edited_activity_summary(bundle: Bundle, sim: JobSim) -> Bundle:
    """The activity summary hides what the principal did (re-signed by the bot's own key):
    it no longer hashes to the receipted read."""
    edited = copy.deepcopy(bundle)
    audits = edited["payload"]["metadata"]["breakglass"]["run"]["activity"]["result"]["audits"]
    audits["count"], audits["operations"] = 0, []
    return resign(edited, sim.keys.agent)


EDITED = {
    "dropped_receipt": (dropped_receipt, "BREAKGLASS_RECEIPT_MISSING"),
    "reordered_events": (reordered_events, "HASH_CHAIN_BREAK"),
    "edited_tool_args_hash": (edited_tool_args_hash, "HASH_MISMATCH"),
    "truncated_tail": (truncated_tail, "BREAKGLASS_CHAIN_TRUNCATED"),
    "swapped_policy": (swapped_policy, "BREAKGLASS_POLICY_MISMATCH"),
    "foreign_signer": (foreign_signer, "SIGNER_NOT_ALLOWED"),
    "unsigned_edit": (unsigned_edit, "HASH_MISMATCH"),
    "edited_activity_summary": (edited_activity_summary, "BREAKGLASS_ACTIVITY_MISMATCH"),
}
FORGED: dict[str, tuple[Callable[[], JobSim], Mutation, str]] = {
    "self_approval": (good_sim, self_approval, "BREAKGLASS_SELF_APPROVAL"),
    "single_approver": (good_sim, single_approver, "BREAKGLASS_APPROVALS_INSUFFICIENT"),
    "approval_after_issue": (good_sim, approval_after_issue, "BREAKGLASS_APPROVAL_AFTER_ISSUE"),
    "call_after_expiry": (good_sim, call_after_expiry, "BREAKGLASS_CALL_OUTSIDE_WINDOW"),
    "call_after_revocation": (
        killed_sim,
        call_after_revocation,
        "BREAKGLASS_CALL_AFTER_REVOCATION",
    ),
    "call_outside_policy": (good_sim, call_outside_policy, "BREAKGLASS_CALL_OUTSIDE_POLICY"),
    "missing_revocation": (good_sim, missing_revocation, "BREAKGLASS_REVOCATION_MISSING"),
    "missing_rollback": (good_sim, missing_rollback, "BREAKGLASS_ROLLBACK_MISSING"),
    "skipped_verification": (good_sim, skipped_verification, "BREAKGLASS_VERIFICATION_MISSING"),
    "missing_containment": (good_sim, missing_containment, "BREAKGLASS_CONTAINMENT_MISSING"),
    "event_after_terminal": (good_sim, event_after_terminal, "BREAKGLASS_EVENT_AFTER_TERMINAL"),
    "model_outside_route": (agent_sim, model_outside_route, "BREAKGLASS_MODEL_OUTSIDE_POLICY"),
}


def corpus() -> dict[str, str]:
    """File name -> content of every corpus file."""
    sim, killed = good_sim(), killed_sim()
    good = sim.bundle()
    bundles: dict[str, Bundle] = {"good": good, "good_killed": killed.bundle()}
    expected: dict[str, str] = {"good": "OK", "good_killed": "OK"}
    for name, (edit, code) in EDITED.items():
        bundles[name], expected[name] = edit(good, sim), code
    agent = agent_sim()
    bundles["good_agent"], expected["good_agent"] = agent.bundle(), "OK"
    bundles["orphaned_approval"] = orphaned_approval(bundles["good_agent"], agent)
    expected["orphaned_approval"] = "CAUSAL_HUMAN_APPROVAL_ORPHANED"
    for name, (base, mutation, code) in FORGED.items():
        bundles[name], expected[name] = forge(base(), mutation), code
    trust = {
        "trust_version": "1",
        "agent_dids": [sim.keys.agent.did],
        "gateway_receipt_signer_dids": [sim.keys.gateway.did],
        "token_issuer_dids": [sim.keys.issuer.did],
        "registry_publisher_dids": [sim.keys.publisher.did],
    }
    files = {f"{name}.bundle.json": _dump(b) for name, b in bundles.items()}
    files["expected.json"] = _dump(expected)
    files["trust.json"] = _dump(trust)
    return files


def _dump(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False) + "\n"


def main(target: Path = HERE) -> int:
    for name, text in corpus().items():
        (target / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(corpus())} files to {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
