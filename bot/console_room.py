"""The local console's handlers (embedded default only): the people of the simulated seed
request, approve and kill through the same job service the chat adapters drive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import chat_actions
from adapters.console.channel import ConsoleHandlers, JobsPage
from bot.assembly import SIMULATED_SEED, Assembly, seed_people
from bot.job_commands import ServiceJobs
from bot.job_report import job_report
from bot.keys import trust_document
from bot.stepup import with_step_up
from cards.forms import duration_bounds
from cards.job_views import action_summary, receipt_line
from cards.views import RequestValues
from cards.wording import named
from engine.job import Job
from engine.outcome import Outcome

PAGE_SIZE = 20  # jobs on one page of the console, newest first


class ConsoleRoom:
    def __init__(self, parts: Assembly) -> None:
        self.parts = parts

    def handlers(self) -> ConsoleHandlers:
        return ConsoleHandlers(
            request=self.request,
            act=self.act,
            jobs=self.jobs,
            bundle=self.bundle,
            report=lambda job_id: job_report(self.parts, job_id),
            trust=lambda: trust_document(self.parts.keys),
            identities=self.identities,
            examples=self.examples,
        )

    def identities(self) -> list[dict[str, Any]]:
        names = self.parts.names
        out: list[dict[str, Any]] = []
        for identity, principals in self.parts.service.directory.by_chat_identity.items():
            name = names.get(principals[0], identity) if principals else identity
            out.append({"identity": identity, "name": f"{name} ({identity})"})
        return out

    def examples(self) -> dict[str, Any]:
        """Example ids per template, what kind each seed id is (for the form's hint), names,
        and each template's minutes."""
        seed = SIMULATED_SEED
        kinds = {"users": "user", "roles": "role", "groups": "group"}
        kinds["conditionalAccessPolicies"] = "policy"
        return {
            "templates": {
                "entra-role": {
                    "principal": seed_people().get("alice", ""),
                    "resource": seed["roles"][0]["id"],
                },
                "ca-exclusion": {
                    "principal": seed["groups"][0]["id"],
                    "resource": seed["conditionalAccessPolicies"][0]["id"],
                },
            },
            "kinds": {i["id"]: kind for key, kind in kinds.items() for i in seed.get(key, [])},
            "names": dict(self.parts.names),
            "minutes": duration_bounds(self.parts.service.rules.max_minutes),
        }

    async def request(self, identity: str, values: RequestValues) -> dict[str, Any]:
        service = self.parts.service
        request = chat_actions.request_from_values(
            values,
            service.actor(identity),
            self.parts.tenant_id,
            {"platform": "console", "conversation": "console"},
        )
        return (await service.request(request, key=None)).to_json()

    async def act(self, identity: str, action: Any) -> dict[str, Any]:
        service = self.parts.service
        jobs, actor = with_step_up(service, ServiceJobs(service)), service.actor(identity)
        outcome: Outcome = await chat_actions.act(jobs, action, actor)
        return outcome.to_json()

    async def jobs(self, before: str | None = None) -> JobsPage:
        """A page of jobs read by the database (one more than shown tells if there are older)."""
        stored = await self.parts.store.page_jobs(PAGE_SIZE + 1, before)
        page = stored[:PAGE_SIZE]
        older = page[-1].job_id if len(stored) > PAGE_SIZE else None
        return JobsPage([await self.summary(Job.from_json(s.document)) for s in page], older)

    async def summary(self, job: Job) -> dict[str, Any]:
        records = await self.parts.store.chain(job.job_id)
        names = self.parts.names
        action = action_summary(job, names)
        receipts = [_line(receipt_line(r)) for r in records]
        return {
            "job_id": job.job_id,
            "state": job.state,
            "resolved": job.resolved,
            "simulated": job.simulated,
            "action": f"{action.template.value}: {named(action.subject)} → "
            f"{named(action.resource)} for {action.duration_minutes} min",
            "requester": names.get(job.requester.principal or "", job.requester.chat_identity),
            "justification": job.request.get("justification"),
            "ticket": job.request.get("ticket"),
            "plan_hash": job.plan.plan_hash,
            "extension_plan": job.extension.plan_hash if job.extension else None,
            "approvals": [names.get(p, p) for p in job.plan.approvers()],
            "approver_ids": list(job.plan.approvers()),
            "requester_id": job.requester.principal,
            "ended_by_id": job.ended_by,
            "created_at": job.created_at,
            "expires_at": job.expires_at,
            "window_start": job.window_start,
            "window_end": job.window_end,
            "now": self.parts.clock().isoformat(),
            "last_tool_call": job.last_tool_call,
            "write_done": job.write_done,
            "end_reason": job.end_reason,
            "ended_at": job.ended_at,
            "ended_by": names.get(job.ended_by or "", job.ended_by),
            "rollback_verified": job.rollback_verified,
            "still_privileged": list(job.still_privileged),
            "refusals": [r["reason"] for r in job.refusals[-5:]],
            "receipts": receipts,
            "people": _named_in(names, [str(job.to_json()), *receipts]),
        }

    async def bundle(self, job_id: str) -> dict[str, Any] | None:
        service = self.parts.service
        job = await service.load(job_id)
        if not job.resolved:
            return None
        return (await service.bundle(job))[0]


def _named_in(names: Mapping[str, str], texts: list[str]) -> dict[str, str]:
    """The names of the ids that appear in ``texts`` (the page shows names, ids on hover)."""
    blob = "\n".join(texts)
    return {key: name for key, name in names.items() if key in blob}


def _line(view: Any) -> str:
    head = view.chain_head_b64u[:10]
    return (
        f"#{view.seq:03d} {view.at:%H:%M:%S} {view.kind:<14} {view.summary} [{view.outcome}] {head}"
    )
