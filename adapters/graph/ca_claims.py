"""Never write a Conditional Access policy on top of a version we already wrote on.

Every CA write is a read-modify-write of the whole ``users`` condition. Graph's replicas may
hand back the policy as it was before our last write for a while after it (Entra is
eventually consistent, see docs/graph.md); a write computed from that stale read puts back
what the last write took out: a restore resurrects another job's exclusion, or an exclusion
re-adds a group a restore just removed, after that job ended verified.

So each write first *claims* the version it is based on (a digest of the whole policy as
read), in the snapshot store (first write wins, shared by replicas and restarts). A read
whose version carries a live claim is stale by definition: someone wrote on it already, so
the tenant has a newer one. A claim lives ``CLAIM_HOLD``, the longest replication settle the
configuration allows (ADR 0013); a write Graph definitely refused voids its claim at once.
A version whose claims are all void or expired can be claimed again, in the next slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from adapters.graph.client import WRITES, Writes
from adapters.graph.context import ToolContext
from adapters.graph.failures import ResponseLost
from engine.errors import GraphError, StoreError
from engine.timeutil import iso_ms, parse_iso

log = logging.getLogger(__name__)
CLAIM_HOLD = timedelta(seconds=300)  # bot.config_model: replication_settle_seconds <= 300
STALE = "ReplicaBehind"

Doc = dict[str, Any]


def claim_key(policy_id: str, policy: Doc) -> str:
    canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"))
    return f"ca-base:{policy_id}:{hashlib.sha256(canonical.encode()).hexdigest()}"


@dataclass(frozen=True)
class PolicyRead:
    """One read of a policy: is it a version no write of ours was based on yet (``fresh``),
    and the claim slot a write computed from it takes."""

    policy_id: str
    policy: Doc
    fresh: bool
    slot: str


async def fresh_policy(
    ctx: ToolContext,
    policy_id: str,
    read: Callable[[], Awaitable[Doc]],
    *,
    removal: bool = False,
) -> PolicyRead:
    """Read until the policy shows a version no write of ours was based on yet (bounded);
    the last read. A ``removal`` whose claims the store cannot read (it does not answer)
    takes the read as fresh: its write then goes unclaimed (``write_on``, ADR 0024)."""
    for attempt in range(ctx.retry.readback_attempts):
        if attempt:
            await ctx.sleep(ctx.retry.readback_interval)
        policy = await read()
        key = claim_key(policy_id, policy)
        try:
            live, free = await _claims(ctx, key)
        except StoreError:
            if not removal:
                raise
            live, free = False, 0
        if not live:
            break
    return PolicyRead(policy_id, policy, not live, f"{key}:{free}")


def stale(policy_id: str, job_id: str) -> GraphError:
    """The refusal to write on a claimed version, said at WARNING: after a writer died
    between its claim and its answer it lasts until the claim expires, and the policy keeps
    meanwhile what that write may have changed."""
    log.warning(
        "Conditional Access policy %s not written for %s: the version read is claimed by a "
        "write that may have landed (a Graph replica behind, or a writer that stopped before "
        "its answer); tried again until the claim settles, at most %d s",
        policy_id,
        job_id,
        CLAIM_HOLD.total_seconds(),
        extra={"job_id": job_id},
    )
    return GraphError(
        STALE,
        f"Conditional Access policy {policy_id}: every read still shows a version already "
        "claimed by a write (a Graph replica behind, or a writer that stopped before its "
        "answer: its claim is held up to 5 minutes); nothing was written",
    )


async def write_on(
    ctx: ToolContext,
    base: PolicyRead,
    job_id: str,
    write: Callable[[], Awaitable[None]],
    *,
    removal: bool = False,
) -> None:
    """Claim ``base`` (the read ``write`` was computed from), then write; a definite refusal
    voids the claim (the write did not land), and so does a cancel (a Kill) that came before
    the write left for the tenant (in the pacer's wait, say). A lost answer, a cancel after
    it left, or a crash keeps it.

    A ``removal`` (the restore) whose claim the store refuses (a full disk) is written
    unclaimed: an exclusion must not outlive its window because our disk is full, and the
    claim only guards against a lost update, which the restore's read-back then reports as
    drift (ADR 0014)."""
    mine = {"job_id": job_id, "writer": uuid.uuid4().hex, "at": iso_ms(ctx.now())}
    if not base.fresh:
        raise stale(base.policy_id, job_id)
    try:
        claimed = await ctx.snapshots.save_snapshot(base.slot, mine) == mine
    except StoreError as err:
        if not removal:
            raise
        log.warning(
            "Conditional Access policy %s restored for %s unclaimed: the store refuses the "
            "claim (%s)",
            base.policy_id,
            job_id,
            str(err)[:200],
            extra={"job_id": job_id},
        )
        await write()
        return
    if not claimed:
        raise stale(base.policy_id, job_id)  # written on meanwhile (another replica)
    writes = Writes()
    current = WRITES.set(writes)
    try:
        await write()
    except ResponseLost:
        raise
    except GraphError:
        await _void(ctx, base, mine)
        raise
    except asyncio.CancelledError:
        if not writes.left:  # held 5 minutes, it blocked every CA write on the policy
            # Shielded: a Kill stops the agent's calls more than once, and a second cancel
            # would otherwise take back the void before the store has it.
            await asyncio.shield(_void(ctx, base, mine))
        raise
    finally:
        WRITES.reset(current)


async def _void(ctx: ToolContext, base: PolicyRead, mine: Doc) -> None:
    """The write did not land: its claim no longer holds the version. A void the store
    refuses (a full disk) is kept in this process, so its next write (a restore retried at
    the window's end) is not held back until the claim expires; other replicas wait that
    long, as for a writer that died."""
    try:
        await ctx.snapshots.save_snapshot(f"{base.slot}:void", {"writer": mine["writer"]})
    except StoreError as err:
        ctx.voided.add(base.slot)
        log.warning(
            "the claim on Conditional Access policy %s is void (its write did not land) but "
            "the store refuses to record that (%s); voided in this process only",
            base.policy_id,
            str(err)[:200],
        )


async def _claims(ctx: ToolContext, key: str) -> tuple[bool, int]:
    """(whether a live claim is on this version, the first free slot)."""
    slot = 0
    while (claim := await ctx.snapshots.load_snapshot(f"{key}:{slot}")) is not None:
        expired = ctx.now() >= parse_iso(claim["at"]) + CLAIM_HOLD
        voided = f"{key}:{slot}" in ctx.voided
        if (
            not expired
            and not voided
            and await ctx.snapshots.load_snapshot(f"{key}:{slot}:void") is None
        ):
            return True, slot
        slot += 1
    return False, slot
