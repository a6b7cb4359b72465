"""``StepUpJobs``: the ``JobCommands`` a chat adapter gets when step-up is configured.

A bare Approve click on a plan that needs step-up is not sent to the engine (which would
refuse it) unless the engine would refuse it for another reason first (self-approval, not an
approver...: nobody is sent to sign in only to be refused). The approver gets a sign-in URL
instead, in a refused ``Outcome`` whose
``result["sign_in_link"]`` an adapter may render as a link button and whose ``detail``
carries the same short link for adapters that only show text. Everything else passes
through unchanged.
"""

from __future__ import annotations

from adapters.entra_signin.flow import StepUpFlow
from engine.chat_ports import JobCommands, PassedOn
from engine.errors import CommandRefused
from engine.job import Job
from engine.lifecycle import Approve, Command, Request
from engine.outcome import Outcome
from engine.stepup import STEP_UP_REQUIRED, required

SIGN_IN_URL = "sign_in_url"  # Entra's authorization URL
SIGN_IN_LINK = "sign_in_link"  # the same, as a short link on our listener (for chat text)


class StepUpJobs(PassedOn):
    def __init__(self, inner: JobCommands, flow: StepUpFlow) -> None:
        super().__init__(inner)
        self._inner = inner
        self._flow = flow

    async def command(self, job_id: str, command: Command, key: str | None = None) -> Outcome:
        if isinstance(command, Approve) and command.step_up is None:
            url = await self._sign_in_url(job_id, command)
            if url is not None:
                link = self._flow.short_link(url)
                detail = f"sign in with MFA to approve (this link is yours alone): {link}"
                result = {SIGN_IN_URL: url, SIGN_IN_LINK: link}
                return Outcome(False, job_id, result, STEP_UP_REQUIRED, detail)
        return await super().command(job_id, command, key)

    async def _sign_in_url(self, job_id: str, command: Approve) -> str | None:
        job = await self._inner.peek(job_id)
        plan = job.extension if job.extension is not None else job.plan
        if plan.plan_hash != command.plan_hash or required(plan.payload) is None:
            return None  # the engine answers (outdated plan, or no step-up needed)
        try:
            self._inner.check_command(job, command)
        except CommandRefused as refused:
            if refused.reason != STEP_UP_REQUIRED:
                return None  # refused for another reason (self-approval...): the engine says so
        try:
            return await self._flow.begin(job_id, command.plan_hash, command.actor)
        except CommandRefused:
            return None

    def check_request(self, command: Request) -> None:
        self._inner.check_request(command)

    def check_command(self, job: Job, command: Command) -> None:
        self._inner.check_command(job, command)


MAX_BUTTON_URL = 3000  # Slack's limit on a button's url; Teams takes more


def sign_in_target(outcome: Outcome) -> str | None:
    """Where an approver's link button points: Entra's URL, or our short link when that URL
    is too long for a button; None when ``outcome`` asks for no sign-in."""
    if outcome.ok or outcome.reason != STEP_UP_REQUIRED:
        return None
    url, link = outcome.result.get(SIGN_IN_URL), outcome.result.get(SIGN_IN_LINK)
    if isinstance(url, str) and len(url) <= MAX_BUTTON_URL:
        return url
    return link if isinstance(link, str) else None
