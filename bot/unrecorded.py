"""A window's end the store refuses to record (its disk is full, say) is not held back for
its record (docs/notes/store-full.md).

The end of a window is a store write, and halting the agent and the rollback are effects
after it (ADR 0004): while the store refuses writes, the privilege would outlive its window
by the whole outage (a CA exclusion has no end in the tenant but ours). So when the write
of a transition that ends the window is refused, this process at once:

- stops the agent: its token is refused here (the in-process revoked set), its calls in
  flight are cancelled and its executor is halted;
- runs the WPC's removal and end-of-window steps straight through the tool port, as the
  reconciliation sweep does: unreceipted, and said in one ERROR naming what is done and
  what is still privileged;
- keeps the person's command (a Kill, a Done) to record it first once the store takes
  writes again, so it is not lost. The ordinary end then follows: recorded, rolled back
  (its removal finds nothing left), signed and verified. The command is kept on this
  replica's disk too (``bot.kept_commands``): a process that starts after one died during
  the outage records it first as well, and does not start the job's agent again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.kept_commands import KeptCommands
from engine import lifecycle
from engine.containment import describe_left, end_steps
from engine.cst import TokenKind
from engine.errors import AdapterError, EndUnrecorded, JobNotFound, StoreError
from engine.job import Job, describe_grant
from engine.lifecycle import Command
from engine.lifecycle.commands import ActorCommand

if TYPE_CHECKING:
    from bot.service import JobService

log = logging.getLogger("breakglass.service")
UNRECORDED_TEXT = (
    "The store cannot record this right now, but the window is ended all the same: the agent "
    "is stopped and the removal has run. It is recorded once the store takes writes again."
)


def ends_window(job: Job, command: Command, service: JobService) -> bool:
    """Would ``command`` end ``job``'s window now (its transition starts a rollback)?"""
    transition = service.would(job, command)
    effects = transition.effects if transition is not None else ()
    return any(effect.kind == lifecycle.RUN_ROLLBACK for effect in effects)


class UnrecordedEnds:
    """The ends this process carried out while the store refused to record them."""

    def __init__(self, service: JobService, spool: Path | None = None) -> None:
        self.service = service
        self.kept = KeptCommands(spool)  # the person's commands, on this replica's disk
        # A person's command, recorded when it can be (a dead predecessor's first).
        self._pending: dict[str, Command] = dict(self.kept.load())
        self._done: set[str] = set()  # jobs whose steps all ran: not run again
        self._said: dict[str, tuple[str, ...]] = {}  # what the last ERROR said was left

    async def end(self, job_id: str, command: Command, refused: StoreError) -> EndUnrecorded | None:
        """``command``'s write was refused: if it ends the window, end it here, and say
        what was done (for its caller); None when it does not end the window."""
        service = self.service
        job = await service.peek(job_id)
        if not ends_window(job, command, service):
            return None
        if isinstance(command, ActorCommand) and job_id not in self._pending:
            self._pending[job_id] = command
            self.kept.save(self._pending)
        left = await self._contain(job, type(command).__name__, refused)
        still = f" Still: {'; '.join(left)}." if left else ""
        return EndUnrecorded(UNRECORDED_TEXT + still)

    async def rollback_unleased(self, job_id: str, refused: StoreError) -> None:
        """A recorded rollback whose lease no replica can take while the store refuses
        writes (the replica that ran it died, say): its steps run here as an unrecorded
        end's, and the rollback itself runs, receipted, once the store takes writes."""
        await self._contain(await self.service.peek(job_id), "rollback taken over", refused)

    async def _contain(self, job: Job, cause: str, refused: StoreError) -> list[str]:
        """Stop the agent, run the removal and end steps once; what is still privileged."""
        self.stop_agent(job)
        if job.job_id in self._done:
            return []
        left = await self._run_steps(job)
        if not left:
            self._done.add(job.job_id)
        if self._said.get(job.job_id) != tuple(left):  # once per change, not at every tick
            self._said[job.job_id] = tuple(left)
            _escalate(job.job_id, cause, refused, left)
        return left

    async def record_pending(self) -> None:
        """Record the commands kept while the store refused them (first, at each tick)."""
        for job_id, command in list(self._pending.items()):
            try:
                await self.service.command(job_id, command)
            except JobNotFound:
                log.error(
                    "kept %s for job %s dropped: the store has no such job",
                    type(command).__name__,
                    job_id,
                    extra={"job_id": job_id},
                )
            except StoreError:  # still refused (``end`` ran again): kept for the next tick
                continue
            del self._pending[job_id]
            self._done.discard(job_id)
            self.kept.save(self._pending)

    def holds(self, job_id: str) -> bool:
        """Is a person's end of ``job_id`` kept here (by this process or a dead predecessor),
        not yet recorded? Its window is over, whatever the stored job says: its agent is
        not started again (``bot.ticks.run_active``)."""
        return job_id in self._pending

    def forget(self, job_id: str) -> None:
        """The job's end is recorded: nothing of it is kept here any more."""
        if job_id not in self._pending:
            self._done.discard(job_id)
            self._said.pop(job_id, None)

    def stop_agent(self, job: Job) -> None:
        """Refuse the job's agent token in this process, cancel its calls, halt it."""
        service = self.service
        token = job.token(TokenKind.AGENT)
        if token is not None:
            service.refuse_here(job.job_id, token.jti)
        if service.executor is not None:
            service.tasks.spawn(service.executor.halt(job.job_id), f"halt:{job.job_id}")

    async def _run_steps(self, job: Job) -> list[str]:
        """The WPC's removal, then every end-of-window step; what did not succeed."""
        terms = job.plan.payload["metadata"]["breakglass"]
        left = []
        for step in terms["rollback"]["steps"]:
            if not await self._call(job, step):
                left.append(describe_grant(job))
        for step in end_steps(terms, job.derived_rollback, job.credentials_in_flight):
            if not await self._call(job, step):
                left.append(describe_left(step))
        return left

    async def _call(self, job: Job, step: Mapping[str, Any]) -> bool:
        try:
            result = await self.service.tools.call(str(step["tool"]), dict(step["arguments"]))
        except AdapterError as err:
            log.warning("%s for %s failed: %s", step["tool"], job.job_id, err)
            return False
        return result.ok


def _escalate(job_id: str, cause: str, refused: StoreError, left: list[str]) -> None:
    log.error(
        "ESCALATION job %s: its window ended (%s) but the store refuses writes (%s); "
        "the agent is stopped, %s. It is recorded once the store takes writes again",
        job_id,
        cause,
        str(refused)[:200],
        "the removal and end steps ran unrecorded" if not left else f"still: {'; '.join(left)}",
        extra={"job_id": job_id},
    )
