"""The first law, checked on one job. Each rule is its own assertion (its own line), so
Hypothesis tells distinct violations apart and shrinks each one separately.

"Every job that reaches approval ends in a terminal state with a signed terminal record and
a bundle that verifies, and leaves nothing privileged — or ends ``failed`` with an escalation
naming exactly what is still privileged. No job posts to chat without bound."
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime

from adapters.graph.arguments import marked_job
from adapters.graph.simulated import SimulatedTenant
from bot.app import SIMULATED_SEED
from engine.bundle import RUN_END_TYPE
from engine.chain import RUN_END
from engine.envelope import verify_envelope
from engine.errors import VerificationError
from engine.grants import job_grant_key
from engine.job import FAILED, PENDING, Job
from engine.ports import ChainRecord, ChatEvent
from engine.timeutil import parse_iso
from engine.verify import verify_bundle
from tests.integration.invariant.world import World
from tests.support.engine_sim import trust_for
from tests.support.fakes import RecordingChat

SEED_EXCLUSIONS = {
    p["id"]: set(p["conditions"]["users"]["excludeGroups"])
    for p in SIMULATED_SEED["conditionalAccessPolicies"]
}
# What the verifier must say about a failed job's bundle, and all it may say.
FAILURE_CODES = {
    "BREAKGLASS_ROLLBACK_MISSING",
    "BREAKGLASS_VERIFICATION_MISSING",
    "BREAKGLASS_CONTAINMENT_MISSING",
}
# Posts a job may make: a base for its life, a few per command people sent it, a rollback's
# worth per restart it lived through, and the countdown notices its window earns.
POSTS_BASE = 60
POSTS_PER_COMMAND = 8
POSTS_PER_RESTART = 60
POSTS_PER_NOTICE = 2


@dataclass
class JobLog:
    """What the test did to one job (the bound on its posts is derived from it)."""

    commands: int = 0
    restarts: int = 0
    resolved_as: str | None = None


# ------------------------------------------------------------------ the tenant itself


def held_by(tenant: SimulatedTenant, job: Job, leftovers: Set[str] = frozenset()) -> list[str]:
    """What the job's own writes still grant in the tenant right now (read directly).

    Role grants carry the job's marker. A Conditional Access exclusion carries none: it counts
    as this job's unless the seed had it (no other open job can be on the same one, see
    :func:`check_one_open_job_per_grant`) or it is in ``leftovers``, what an earlier job that
    ended ``failed`` left and named in its escalation. While a leftover is in place a later
    job on it can neither add it (it is there) nor owns it (its restore leaves it)."""
    targets = job.request.get("targets", {})
    credentials = _credentials_held(tenant, job)
    if job.request.get("template") == "ca-exclusion":
        return [h for h in _ca_held(tenant, targets) if h not in leftovers] + credentials
    ours = {
        r.get("targetScheduleId")
        for r in tenant.directory.requests
        if r.get("action") == "adminAssign" and marked_job(r.get("justification")) == job.job_id
    }
    return [
        f"{a.principal_id} holds {a.role_id}"
        for a in tenant.active_grants()
        if a.schedule_id in ours
    ] + credentials


def _credentials_held(tenant: SimulatedTenant, job: Job) -> list[str]:
    """Application passwords the job's window created (they carry its marker) and the end
    has not removed: an un-rotated credential is as privileged as a role left behind."""
    return [
        f"application {app['id']} holds password {cred.get('keyId')}"
        for app in tenant.directory.applications.values()
        for cred in app.get("passwordCredentials", [])
        if marked_job(cred.get("displayName")) == job.job_id
    ]


def _ca_held(tenant: SimulatedTenant, targets: dict[str, str]) -> list[str]:
    policy = tenant.directory.policies.get(str(targets.get("policy_id")))
    group = targets.get("group_id")
    if policy is None:
        return []
    excluded = set(policy["conditions"]["users"].get("excludeGroups", []))
    if group in excluded and group not in SEED_EXCLUSIONS.get(policy["id"], set()):
        return [f"group {group} excluded from {policy['id']}"]
    return []


def still_left(tenant: SimulatedTenant, leftovers: set[str]) -> None:
    """Forget leftovers the tenant no longer has: one put back later is a new job's again."""
    present = {
        f"group {group} excluded from {policy['id']}"
        for policy in tenant.directory.policies.values()
        for group in policy["conditions"]["users"].get("excludeGroups", [])
    }
    leftovers.intersection_update(present)


def check_one_open_job_per_grant(jobs: list[Job]) -> None:
    """Never two open jobs on one grant (TARGET_BUSY): the soak found two jobs on one CA
    exclusion undoing each other (one ended ``closed`` with the exclusion still present)."""
    seen: dict[str, str] = {}
    for job in jobs:
        key = job_grant_key(job)
        if key is None or job.resolved:
            continue
        other = seen.setdefault(key, job.job_id)
        assert other == job.job_id, f"{other} and {job.job_id} are both open on one grant"


# ------------------------------------------------------------------------- the rules


def reached_approval(job: Job) -> bool:
    return job.window_start is not None


def check_terminal_record(job: Job, chain: list[ChainRecord], world: World) -> None:
    last = chain[-1] if chain else None
    ends_signed = last is not None and last.event["event_type"] == RUN_END
    assert ends_signed, f"{job.job_id} is {job.state} but its chain ends in no terminal record"
    assert last is not None
    try:
        verify_envelope(
            last.envelope, expected_types={RUN_END_TYPE}, allowed_signers={world.keys.agent.did}
        )
    except VerificationError as err:
        raise AssertionError(f"{job.job_id}: terminal record does not verify: {err}") from err
    assert last.envelope is not None
    assert last.envelope["payload"]["outcome"] == job.state, f"{job.job_id}: outcome differs"


async def check_bundle(job: Job, world: World) -> None:
    """The bundle verifies; a failed job's may only report the failure itself (DESIGN §5:
    a missing rollback or verification read makes the job fail, and the verifier says so)."""
    bundle, _ = await world.service.bundle(job)
    report = verify_bundle(bundle, trust_for(world.keys))
    allowed = FAILURE_CODES if job.state == FAILED else set()
    unexplained = set(report.reason_codes) - allowed
    assert not unexplained, f"{job.job_id} ({job.state}): bundle does not verify: {report.reasons}"
    finished = [e for e in _events(world.chat, job) if e.kind == "finish"]
    assert finished, f"{job.job_id} ({job.state}): no bundle was ever posted"


def check_nothing_left(job: Job, held: list[str]) -> None:
    if job.state != FAILED:
        assert not held, f"{job.job_id} ended {job.state} but the tenant still has: {held}"


def unverified_write(job: Job) -> bool:
    """Failed only because the read that must follow the write never confirmed it (DESIGN
    §5: the job fails, the verifier says so), while the rollback verified nothing is left."""
    return job.write_done and job.verified_after_write is not True and job.rollback_verified is True


def check_sessions_revoked(job: Job, tenant: SimulatedTenant) -> None:
    """A role job whose write landed and that did not fail revoked the principal's sessions
    after its window ended (they may have been re-established during a delayed removal)."""
    principal = job.request.get("targets", {}).get("principal_id")
    if job.state == FAILED or not job.write_done or job.request.get("template") != "entra-role":
        return
    ended = parse_iso(job.ended_at or job.created_at)
    revoked = [
        r
        for r in tenant.directory.revocations
        if r["userId"] == principal and parse_iso(r["at"]) >= ended
    ]
    assert revoked, f"{job.job_id} ({job.state}) never revoked {principal}'s sessions at its end"


def check_failed_escalates(job: Job, held: list[str], chat: RecordingChat) -> None:
    if job.state != FAILED:
        return
    escalations = [e for e in _events(chat, job) if e.kind == "escalate"]
    if unverified_write(job) and not held and not job.still_privileged:
        # Nothing is privileged: the escalation must name what is unverified instead.
        said = [e for e in escalations if e.detail.get("unverified")]
        assert said, f"{job.job_id} failed unverified but no escalation says what is unverified"
        return
    assert job.still_privileged, (
        f"{job.job_id} failed without naming what is still privileged "
        f"(rollback_verified={job.rollback_verified}, tenant holds {held})"
    )
    named = [list(e.detail["still_privileged"]) for e in escalations]
    assert list(job.still_privileged) in named, f"{job.job_id} failed but no escalation names it"


def check_failed_is_honest(job: Job, held: list[str]) -> None:
    """``failed`` with a verified rollback and nothing privileged is a contradiction, unless
    the write itself was never verified (then ``failed`` is the verdict on the write)."""
    contradiction = job.state == FAILED and job.rollback_verified is True and not held
    assert not contradiction or job.still_privileged or unverified_write(job), (
        f"{job.job_id} is failed while its rollback verified and nothing is privileged"
    )


def check_posts_bounded(job: Job, log: JobLog, chat: RecordingChat) -> None:
    posts = len(_events(chat, job))
    bound = posts_bound(job, log)
    assert posts <= bound, (
        f"{job.job_id} ({job.state}) posted {posts} times to chat (bound {bound}: "
        f"{log.commands} commands, {log.restarts} restarts)"
    )


def posts_bound(job: Job, log: JobLog) -> int:
    notices = 0
    if job.window_start and job.window_end:
        minutes = (parse_iso(job.window_end) - parse_iso(job.window_start)).total_seconds() / 60
        notices = int(minutes // 5) + 7  # every 5 minutes, then every minute in the last 5
    return (
        POSTS_BASE
        + POSTS_PER_COMMAND * log.commands
        + POSTS_PER_RESTART * log.restarts
        + POSTS_PER_NOTICE * notices
    )


async def check_resolved(job: Job, world: World, leftovers: set[str]) -> None:
    """Everything the law says about a job once it has resolved (checked once, at once).
    What a ``failed`` job left (and named) joins ``leftovers`` for the jobs after it."""
    chain = await world.service.store.chain(job.job_id)
    held = held_by(world.tenant, job, leftovers)
    check_terminal_record(job, chain, world)
    await check_bundle(job, world)
    check_nothing_left(job, held)
    check_sessions_revoked(job, world.tenant)
    check_failed_escalates(job, held, world.chat)
    check_failed_is_honest(job, held)
    if job.state == FAILED:
        leftovers.update(held)


def check_unapproved_holds_nothing(
    job: Job, tenant: SimulatedTenant, leftovers: Set[str] = frozenset()
) -> None:
    if job.state == PENDING:
        held = held_by(tenant, job, leftovers)
        assert not held, f"{job.job_id} is not approved yet but the tenant already has {held}"


def check_ended(job: Job, now: datetime) -> None:
    assert job.resolved, (
        f"{job.job_id} never ended: still {job.state} at {now:%H:%M} "
        f"(end reason {job.end_reason}, last call {job.last_tool_call})"
    )


def _events(chat: RecordingChat, job: Job) -> list[ChatEvent]:
    return [e for e in chat.events if e.job.get("job_id") == job.job_id]
