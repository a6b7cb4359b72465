"""Drive the pure job engine in memory: the same decide → execute → receipt path as the
service, with a tenant that always answers as planned and a clock the test moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine import activity, catalog
from engine.containment import end_steps
from engine.cst import TokenKind, sign_token
from engine.did import Signer
from engine.errors import GatewayRefusal
from engine.gateway import GatewayView, ToolCall, decide, recorded_call
from engine.job import Actor, Job
from engine.lifecycle import (
    Approve,
    Command,
    Ctx,
    Keys,
    Request,
    RollbackFinished,
    Rules,
    Tick,
    Transition,
    apply,
    start,
)
from engine.ports import ChainRecord
from engine.proof import bundle_for_job
from engine.timeutil import parse_iso
from engine.tools import ToolResult
from engine.verify import Trust
from engine.wpc import PlanRequest, Policy

T0 = datetime(2026, 11, 25, 9, 0, 0, 250_000, tzinfo=UTC)  # not on a second: iat truncates
TENANT = "11111111-1111-1111-1111-111111111111"
ALICE = Actor("console:alice", "u-alice", "Alice")
BOB = Actor("console:bob", "u-bob", "Bob")
CAROL = Actor("console:carol", "u-carol", "Carol")
DAVE = Actor("console:dave", "u-dave", "Dave")
ROLE_TARGETS = {"tenant_id": TENANT, "principal_id": "u-alice", "role_definition_id": "r-ga"}


def console_request(job_id: str, **changes: Any) -> Request:
    """A 30-minute role request from the console's incident channel; ``actor`` in ``changes``."""
    args: dict[str, Any] = {
        "job_id": job_id,
        "template": "entra-role",
        "targets": ROLE_TARGETS,
        "minutes": 30,
        "justification": "INC-42 MFA outage",
        "ticket": "INC-42",
        "channel": {"platform": "console", "conversation": "incident-42"},
    }
    return Request(**(args | changes))


def entra_role_request(
    job_id: str, actor: Actor, tenant_id: str, principal: str, role: str, **changes: Any
) -> Request:
    """A 30-minute request by ``actor`` that ``principal`` hold ``role`` in ``tenant_id``."""
    targets = {"tenant_id": tenant_id, "principal_id": principal, "role_definition_id": role}
    return _request(job_id, actor, "entra-role", targets, changes)


def ca_exclusion_request(
    job_id: str, actor: Actor, tenant_id: str, policy: str, group: str, **changes: Any
) -> Request:
    """A 30-minute request by ``actor`` that ``group`` skip CA ``policy`` in ``tenant_id``."""
    targets = {"tenant_id": tenant_id, "policy_id": policy, "group_id": group}
    return _request(job_id, actor, "ca-exclusion", targets, changes)


def _request(
    job_id: str, actor: Actor, template: str, targets: dict[str, str], changes: dict[str, Any]
) -> Request:
    args: dict[str, Any] = {"template": template, "targets": targets, "minutes": 30}
    return Request(job_id=job_id, actor=actor, **(args | changes))


def role_plan(tenant_id: str = "t-1", principal: str = "u-alice", **changes: Any) -> PlanRequest:
    """A 30-minute plan in which ``principal`` asks for Global Administrator (``r-ga``)."""
    targets = {"tenant_id": tenant_id, "principal_id": principal, "role_definition_id": "r-ga"}
    args: dict[str, Any] = {
        "template": "entra-role",
        "targets": targets,
        "minutes": 30,
        "requester": principal,
        "justification": "INC-7 outage: need GA to reset MFA",
        "ticket": "INC-7",
        "job_id": "job-1",
    }
    return PlanRequest(**(args | changes))


def fixed_keys(tag: bytes = b"") -> Keys:
    def key(role: bytes) -> Signer:
        return Signer.from_seed((role + tag + b"." * 32)[:32])

    return Keys(key(b"publisher"), key(b"issuer"), key(b"agent"), key(b"gateway"))


def trust_for(keys: Keys) -> Trust:
    return Trust.from_json(
        {
            "trust_version": "1",
            "agent_dids": [keys.agent.did],
            "gateway_receipt_signer_dids": [keys.gateway.did],
            "token_issuer_dids": [keys.issuer.did],
            "registry_publisher_dids": [keys.publisher.did],
        }
    )


def verified_result(arguments: dict[str, Any]) -> ToolResult:
    return ToolResult("success", {"verified": True, "expect": arguments.get("expect", "")})


# What the elevated principal did, as the tenant's logs would show it (issue 17 §5).
SAMPLE_AUDITS = [
    {
        "activityDisplayName": "Reset user password",
        "targetResources": [{"id": f"u-{name}", "userPrincipalName": f"{name}@example.test"}],
    }
    for name in ("erin", "frank")
]
SAMPLE_SIGN_INS = [{"userId": "u-alice", "appDisplayName": "Azure Portal"}] * 3


def activity_result(arguments: dict[str, Any]) -> ToolResult:
    body = {
        "window": activity.span(parse_iso(arguments["since"]), parse_iso(arguments["until"])),
        "audits": activity.summarize_audits(SAMPLE_AUDITS),
        "sign_ins": activity.summarize_sign_ins(SAMPLE_SIGN_INS),
        "settled": False,
    }
    return ToolResult("success", body)


@dataclass
class JobSim:
    keys: Keys = field(default_factory=fixed_keys)
    rules: Rules = field(
        default_factory=lambda: Rules(approvers=frozenset({"u-bob", "u-carol", "u-dave"}))
    )
    now: datetime = T0
    job: Job | None = None
    records: list[ChainRecord] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)  # grants other jobs hold (Ctx.held)
    last_receipt: tuple[str, Mapping[str, Any]] = ("", {})

    def ctx(self) -> Ctx:
        return Ctx(self.now, self.keys, self.rules, self.held)

    def _take(self, transition: Transition) -> Transition:
        self.job = transition.job
        self.records.extend(transition.records)
        self.revoked |= {t.jti for t in transition.job.tokens if t.revoked_at}
        return transition

    def request(self, minutes: int = 30, actor: Actor = ALICE, **kw: Any) -> Transition:
        args: dict[str, Any] = {
            "job_id": "job-0001",
            "actor": actor,
            "template": "entra-role",
            "targets": ROLE_TARGETS,
            "minutes": minutes,
            "justification": "INC-42: MFA outage, need GA to reset",
            "ticket": "INC-42",
        }
        return self._take(start(Request(**(args | kw)), self.ctx()))

    def do(self, command: Command) -> Transition:
        assert self.job is not None
        return self._take(apply(self.job, command, self.ctx()))

    def approve_both(self) -> Transition:
        assert self.job is not None
        self.do(Approve(BOB, self.job.plan.plan_hash))
        return self.do(Approve(CAROL, self.job.plan.plan_hash))

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def token_string(self, kind: str = TokenKind.AGENT) -> str:
        assert self.job is not None
        token = self.job.token(kind)
        assert token is not None
        return sign_token(token.claims, self.keys.issuer)

    def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        token: str | None = None,
        result: ToolResult | None = None,
    ) -> Transition:
        """Decide, execute against an always-as-planned tenant (or return ``result``),
        receipt: like the service."""
        assert self.job is not None
        presented = token if token is not None else self.token_string()
        view = GatewayView(
            job_id=self.job.job_id,
            policy=Policy.from_payload(self.job.plan.payload),
            trusted_issuers={self.keys.issuer.did},
            is_revoked=self.revoked.__contains__,
            credentials_added=len(self.job.derived_rollback),
            tool_receipts=self.job.tool_receipts,
        )
        receipt_id = f"tr_{self.job.job_id}_{self.job.chain_length:06d}"
        tool_call = ToolCall(tool, arguments)
        try:
            allowed = decide(tool_call, presented, view, self.now)
        except GatewayRefusal as refusal:
            command = recorded_call(
                tool_call, receipt_id=receipt_id, latency_ms=0, refusal=refusal, token=presented
            )
        else:
            answer = activity_result if tool in catalog.ACTIVITY_OF.values() else verified_result
            command = recorded_call(
                tool_call,
                receipt_id=receipt_id,
                latency_ms=3,
                allowed=allowed,
                result=result or answer(arguments),
            )
        self.last_receipt = (receipt_id, command.result)
        return self.do(command)

    def planned(self, *path: str) -> tuple[str, dict[str, Any]]:
        assert self.job is not None
        node: Any = self.job.plan.payload["metadata"]["breakglass"]
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node["tool"], dict(node["arguments"])

    def run_write_and_verify(self) -> None:
        self.advance(seconds=5)
        self.call(*self.planned("action"))
        self.advance(seconds=2)
        self.call(*self.planned("verify_action"))

    def run_rollback(self, verified: bool = True) -> Transition:
        token = self.token_string(TokenKind.ROLLBACK)
        self.advance(seconds=1)
        self.call(*self.planned("rollback", "steps", "0"), token=token)
        self.advance(seconds=1)
        self.call(*self.planned("rollback", "verify"), token=token)
        self.contain_at_end(token)
        self.advance(seconds=1)
        used = self.read_activity(token)
        return self.do(RollbackFinished(verified=verified, activity=used))

    def read_activity(self, token: str) -> dict[str, Any] | None:
        """The activity read the WPC plans, from the window's start to now (as the service)."""
        assert self.job is not None
        tool, planned = self.planned("activity")
        since = parse_iso(self.job.window_start or self.job.created_at)
        self.call(tool, activity.read_arguments(planned, activity.span(since, self.now)), token)
        receipt_id, result = self.last_receipt
        if "refused" in result:
            return activity.unavailable("the read was refused")
        return activity.read_record(receipt_id, result)

    def contain_at_end(self, token: str) -> None:
        """The end-of-window containment steps, after the removal, as the service runs them."""
        assert self.job is not None
        terms = self.job.plan.payload["metadata"]["breakglass"]
        for step in end_steps(terms, self.job.derived_rollback):
            self.advance(seconds=1)
            self.call(step["tool"], dict(step["arguments"]), token=token)

    def whole_job(self) -> None:
        """Request, two approvals, write + verify, window expires, rollback + verify."""
        self.request()
        self.advance(minutes=2)
        self.approve_both()
        self.run_write_and_verify()
        self.advance(minutes=30)
        self.do(Tick())
        self.run_rollback()

    def bundle(self) -> dict[str, Any]:
        assert self.job is not None
        return bundle_for_job(self.job, self.records, self.keys, self.now)[0]


WRITE_ROLE = catalog.WRITE_ROLE
