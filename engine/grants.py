"""One open job per grant: the key that names what a job grants, and the rule built on it.

Two open jobs on one grant undo each other: the first one's rollback removes the exclusion
or role the second still relies on, or the second's write is a no-op that its rollback then
removes under the first (issue 14, found by the first-law soak). So a request for a grant
another open job holds is refused (``TARGET_BUSY``), and so is the last approval of a job
whose grant a live job took meanwhile. The store adds a unique claim per key, taken with
the activating write, so two replicas can never both make a job live on one grant
(``adapters.store.claims``).

Pure: the open jobs come in as data (``Ctx.held``), read by ``bot/``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from engine.errors import CommandRefused
from engine.job import Job
from engine.wpc import TEMPLATES

TARGET_BUSY = "TARGET_BUSY"
ALREADY_GRANTED = "ALREADY_GRANTED"  # the tenant holds the grant already: nothing to do
END_TARGET_BUSY = "target_busy"  # the end reason of a job closed by the rule at approval


def grant_key(template: str, targets: Mapping[str, object]) -> str | None:
    """A fixed-length key for what ``template`` grants on ``targets`` (resolved ids), or
    None for an unknown template. Ids compare case-insensitively (GUIDs, UPNs and names in
    Entra all do); only the template's own target keys count.

    Does NOT resolve anything: give it the ids preflight resolution produced, or a name and
    its id will be two keys."""
    spec = TEMPLATES.get(template)
    if spec is None:
        return None
    named = {arg: str(targets.get(arg, "")).strip().lower() for arg in spec.target_args}
    text = json.dumps([template, named], sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def job_grant_key(job: Job) -> str | None:
    """The grant key of ``job``'s request (its stored targets are the resolved ids)."""
    return grant_key(str(job.request.get("template", "")), job.request.get("targets", {}))


def held_grants(jobs: Iterable[Job], *, live: bool = False) -> dict[str, str]:
    """Grant key -> id of the open job that holds it, for the open jobs among ``jobs``; with
    ``live``, only jobs past their last approval (active, rolling back). A request is
    refused for any open job's grant; an approval only for a live one, so of two pending
    requests on one grant (two replicas at once) the first to be approved wins. Should two
    jobs hold one key, the older one is named."""
    held: dict[str, str] = {}
    for job in sorted(jobs, key=lambda j: (j.created_at, j.job_id)):
        key = job_grant_key(job)
        taken = job.window_start is not None if live else True
        if key is not None and taken and not job.resolved:
            held.setdefault(key, job.job_id)
    return held


def holder_of(key: str | None, held: Mapping[str, str], job_id: str) -> str | None:
    """The id of another job that holds ``key``, or None when it is free (or held by
    ``job_id`` itself)."""
    holder = held.get(key) if key is not None else None
    return holder if holder is not None and holder != job_id else None


def busy(holder: str) -> CommandRefused:
    """The refusal of a request, naming the job holding the grant."""
    return CommandRefused(
        TARGET_BUSY,
        f"job {holder} is open on the same grant; end it (or wait for it to end) and ask again",
    )


def taken(holder: str) -> CommandRefused:
    """The refusal of a last approval, naming the live job that took the grant first."""
    return CommandRefused(
        TARGET_BUSY,
        f"job {holder} went live on the same grant first, so this request ends denied; "
        "ask again once it has ended",
    )
