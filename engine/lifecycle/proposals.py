"""Transitions that propose a plan: the request (``start``, a new job pending approval) and
an extension (``extend``, a longer window that needs fresh approvals); and who may approve
what someone asked (``may_approve``: neither the requester nor the grantee).

Apart from :mod:`engine.lifecycle.approvals` (the answers to a plan: approve, deny,
withdraw) because proposing builds and signs a new WPC and asks the approvers, while
answering records a decision on the plan that is open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from engine import chain
from engine.containment import max_extensions
from engine.errors import TemplateError
from engine.grants import busy, grant_key, holder_of
from engine.job import ACTIVE, PENDING, Job, Plan, stamp
from engine.lifecycle.commands import (
    ASK_APPROVERS,
    MAX_EXTENSIONS,
    UPDATE_CARDS,
    Ctx,
    Effect,
    Extend,
    Request,
    Transition,
    refuse,
    require_principal,
)
from engine.lifecycle.gatekeeping import access_terms
from engine.lifecycle.ledger import Ledger
from engine.wpc import PlanRequest, Policy, build_wpc, contain_terms, sign_wpc


def start(command: Request, ctx: Ctx) -> Transition:
    """Plan a new job from a request (it starts pending approval)."""
    actor = command.actor
    requester = require_principal(actor)
    if ctx.rules.requesters is not None and requester not in ctx.rules.requesters:
        raise refuse("NOT_ALLOWED_TO_REQUEST", "you are not in the requester group")
    request: dict[str, Any] = {
        "template": command.template,
        "targets": dict(command.targets),
        "minutes": command.minutes,
        "justification": command.justification,
        "ticket": command.ticket,
    }
    if command.resolved:
        request["resolved"] = {key: dict(found) for key, found in command.resolved.items()}
    access = access_terms(command, ctx)  # limits refuse here, before anyone is asked
    if access is not None:
        request["access"] = access
    try:
        request["contain"] = contain_terms(ctx.rules.access, command.template)
        plan = _make_plan(
            ctx, _plan_request(command.job_id, request, requester, command.minutes), 0
        )
    except TemplateError as exc:
        raise refuse("NOT_ELIGIBLE", str(exc)) from exc
    approvers = sorted(
        may_approve(ctx.rules.approvers, requester, request) - command.excluded_approvers
    )
    needed = int(plan.payload["metadata"]["breakglass"]["approvals"]["min_approvers"])
    if len(approvers) < needed:  # nobody could ever approve it: say so before asking anyone
        raise refuse(
            "TOO_FEW_APPROVERS",
            f"{needed} approvers are needed and only {len(approvers)} of the approver group "
            "may approve this (not the requester, not the person the role is for, not a "
            "member of the group it excludes)",
        )
    # Last: a target outside the limits or a malformed one is refused for that, whoever
    # holds it (the refusal names the holding job, which the requester may not know of).
    holder = holder_of(grant_key(command.template, command.targets), ctx.held, command.job_id)
    if holder is not None:
        raise busy(holder)
    refs = (
        {"prerequisite": str(access["prerequisite"]["id"])}
        if access and "prerequisite" in access
        else {}
    )
    job = Job(
        job_id=command.job_id,
        state=PENDING,
        created_at=stamp(ctx.now),
        expires_at=stamp(ctx.now + ctx.rules.pending_ttl),
        requester=actor,
        request=request,
        channel=dict(command.channel),
        plan=plan,
        simulated=ctx.rules.simulated,
        policies=(sign_wpc(plan.payload, ctx.keys.publisher, ctx.now),),
        external_refs=refs,
    )
    ledger = Ledger(job, ctx.now)
    ledger.add(chain.REQUEST, plan.plan_hash, None)
    effects = [
        Effect(ASK_APPROVERS, {"principals": approvers, "revision": 0}),
        Effect(UPDATE_CARDS),
    ]
    return ledger.finish(effects, {"state": PENDING, "plan_hash": plan.plan_hash})


def _plan_request(job_id: str, req: Mapping[str, Any], requester: str, minutes: int) -> PlanRequest:
    return PlanRequest(
        template=str(req["template"]),
        targets=dict(req["targets"]),
        minutes=minutes,
        requester=requester,
        justification=str(req["justification"]),
        ticket=str(req["ticket"]),
        job_id=job_id,
        access=req.get("access"),
        contain=req.get("contain"),
    )


def _make_plan(ctx: Ctx, request: PlanRequest, revision: int) -> Plan:
    payload = build_wpc(
        request,
        ctx.keys.publisher.did,
        model=ctx.rules.model,
        max_minutes=ctx.rules.max_minutes,
        revision=revision,
    )
    policy = Policy.from_payload(payload)
    return Plan(revision, payload, policy.policy_hash_b64u, request.minutes)


def grantee(request: Mapping[str, Any]) -> str | None:
    """Who would hold the role, for a role requested for someone else (or for oneself: then
    the requester rule already applies). The person who gains the privilege is no second
    pair of eyes on it, so two people other than the requester and the grantee approve."""
    targets = request.get("targets")
    found = targets.get("principal_id") if isinstance(targets, Mapping) else None
    return found if isinstance(found, str) else None


def may_approve(
    approvers: AbstractSet[str], requester: str | None, request: Mapping[str, Any]
) -> AbstractSet[str]:
    """Who of ``approvers`` may approve what ``requester`` asked: neither the requester nor
    the grantee (``approvals._check_approver`` refuses each with its own reason)."""
    return approvers - {requester, grantee(request)}


def extend(job: Job, command: Extend, ctx: Ctx) -> Transition:
    """Propose a longer window: a new plan that needs two fresh approvals."""
    principal = require_principal(command.actor)
    if job.state != ACTIVE:
        raise refuse("NOT_ACTIVE", f"the job is {job.state}")
    if principal != job.requester.principal:
        raise refuse("NOT_THE_REQUESTER", "only the requester can ask for more time")
    limit = max_extensions(job.plan.payload["metadata"]["breakglass"], MAX_EXTENSIONS)
    if len(job.policies) > limit:
        raise refuse("EXTENSION_LIMIT", f"at most {limit} extension requests per job")
    end = job.window_end_at()
    assert end is not None
    total = math.ceil((end - ctx.now).total_seconds() / 60) + command.minutes
    request = _plan_request(job.job_id, job.request, principal, total)
    try:
        # Every proposal gets its own revision (and so its own plan hash), even after a
        # refused one: an approval of one plan can never count for another.
        plan = _make_plan(ctx, request, len(job.policies))
    except TemplateError as exc:
        raise refuse("NOT_ELIGIBLE", str(exc)) from exc
    proposed = (*job.policies, sign_wpc(plan.payload, ctx.keys.publisher, ctx.now))
    ledger = Ledger(job.but(extension=plan, policies=proposed), ctx.now)
    ledger.add(chain.EXTENSION_REQUEST, plan.plan_hash, None)
    approvers = sorted(may_approve(ctx.rules.approvers, principal, job.request))
    effects = [
        Effect(ASK_APPROVERS, {"principals": approvers, "revision": plan.revision}),
        Effect(UPDATE_CARDS),
    ]
    return ledger.finish(effects, {"state": ACTIVE, "plan_hash": plan.plan_hash})
