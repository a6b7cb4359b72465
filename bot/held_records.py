"""A rollback's records the store refused, held in memory until it takes writes again.

A full disk must not stop a rollback half-way (docs/notes/store-full.md, item 4): the
removal has reached the tenant, so the read and the end's containment must follow it. So
the receipts of the rollback's calls that the store refuses are kept here in call order
(later ones join them without a try, so the chain keeps that order), and so is the verdict
(``RollbackFinished``) of a run whose receipts are held or whose own write is refused. The
runner's next round chains them first, each as a command, and stops at the first refusal;
the verdict goes last, as it closes the chain. Until then the runner sends nothing more.

A receipt chained late keeps the time its call ran (``started_at``), so the verifier
checks the call against the token that was live then. A process that dies loses what is
held: its successor runs the rollback again, as it would have before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.errors import StoreError
from engine.lifecycle import RollbackFinished, ToolCallRecorded

if TYPE_CHECKING:
    from bot.service import JobService

log = logging.getLogger("breakglass.rollback")


@dataclass
class _Held:
    receipts: list[ToolCallRecorded] = field(default_factory=list)
    verdict: tuple[RollbackFinished, str] | None = None  # the command and its key


class HeldRecords:
    def __init__(self, service: JobService) -> None:
        self.service = service
        self._jobs: dict[str, _Held] = {}

    def verdict_held(self, job_id: str) -> bool:
        held = self._jobs.get(job_id)
        return held is not None and held.verdict is not None

    async def chain(self, job_id: str, receipt: ToolCallRecorded) -> str:
        """Chain a rollback call's ``receipt``, or hold it: behind the receipts held before
        it, or refused by the store. The reason it was not chained ("" when it was, or is
        held: it will be)."""
        if job_id not in self._jobs:
            try:
                outcome = await self.service.command(job_id, receipt)
            except StoreError as refused:
                log.error(
                    "receipts of %s's rollback are held in memory: the store refuses writes "
                    "(%s); the rollback goes on and they are chained once it takes them",
                    job_id,
                    type(refused).__name__,
                    extra={"job_id": job_id},
                )
            else:
                return "" if outcome.ok else outcome.reason
        self._jobs.setdefault(job_id, _Held()).receipts.append(receipt)
        return ""

    def hold_verdict(self, job_id: str, verdict: RollbackFinished, key: str) -> None:
        self._jobs.setdefault(job_id, _Held()).verdict = (verdict, key)
        log.error(
            "the rollback of %s has run (%s) but the store refuses its record; it is "
            "recorded once the store takes writes",
            job_id,
            "verified" if verdict.verified else "not verified",
            extra={"job_id": job_id},
        )

    def forget(self, job_id: str) -> None:
        """Another replica took the job over (or ended it): what is held here cannot be
        chained; that replica's own calls are."""
        held = self._jobs.pop(job_id, None)
        if held is not None and held.receipts:
            log.warning(
                "%d held receipts of %s dropped: another replica took the job over",
                len(held.receipts),
                job_id,
                extra={"job_id": job_id},
            )

    async def flush(self, job_id: str) -> bool:
        """Chain what is held for ``job_id``, in order; True when that included the run's
        verdict (the rollback is over). A refusal raises StoreError and keeps the rest."""
        held = self._jobs.get(job_id)
        if held is None:
            return False
        while held.receipts:
            outcome = await self.service.command(job_id, held.receipts[0])
            if not outcome.ok:  # ended since (or past the chain's limit): it cannot be chained
                log.warning(
                    "held receipt of %s not chained: %s",
                    job_id,
                    outcome.reason,
                    extra={"job_id": job_id},
                )
            held.receipts.pop(0)
        verdict = held.verdict
        if verdict is not None:
            await self.service.command(job_id, verdict[0], key=verdict[1])
        del self._jobs[job_id]
        return verdict is not None
