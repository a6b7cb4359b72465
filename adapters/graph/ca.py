"""Conditional Access: exclude a group from a policy for the window, then remove only that.

The policy is snapshotted before the first change, under ``ca:<job_id>:<policy_id>``; the
store keeps the first write, so a retried exclusion never replaces the original with an
already-modified policy. Only ``conditions.users`` is ever written (the whole object, as Graph
requires). The rollback re-reads the *current* policy and removes only our exclusion: writing
the stale snapshot back would silently undo other administrators' edits made during the
window. Every difference between the snapshot and the current policy other than ours is
reported as drift; verification checks the effective state (our group no longer excluded,
everything else as it currently is). A write is never computed from a read that shows a
version we already wrote on (a replica behind our last write): see ``ca_claims``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from adapters.graph.ca_claims import PolicyRead, fresh_policy, stale, write_on
from adapters.graph.context import ToolContext
from engine.catalog import RESTORE_CA
from engine.errors import GraphError, InputError
from engine.ports import MarkedGrant
from engine.tools import ToolResult

POLICIES = "/identity/conditionalAccess/policies"
# Changed by Graph on every write, or not part of the policy itself.
_VOLATILE = frozenset({"modifiedDateTime", "@odata.context"})

Doc = dict[str, Any]


@runtime_checkable
class SnapshotIndex(Protocol):
    """Optional extra of a snapshot store: list keys, so reconciliation finds our snapshots."""

    async def snapshot_keys(self, prefix: str) -> list[str]: ...


def snapshot_key(job_id: str, policy_id: str) -> str:
    return f"ca:{job_id}:{policy_id}"


def users_of(policy: Mapping[str, Any]) -> Doc:
    conditions = policy.get("conditions") or {}
    return dict(conditions.get("users") or {})


def excluded_groups(policy: Mapping[str, Any]) -> list[str]:
    return list(users_of(policy).get("excludeGroups") or [])


def drift(snapshot: Mapping[str, Any], current: Mapping[str, Any], ours: str) -> list[str]:
    """Every part of the policy that changed since the snapshot, other than group ``ours``
    entering or leaving ``conditions.users.excludeGroups``."""
    changed = [
        k for k in _keys(snapshot, current, {"conditions"}) if snapshot.get(k) != current.get(k)
    ]
    old, new = snapshot.get("conditions") or {}, current.get("conditions") or {}
    changed += [f"conditions.{k}" for k in _keys(old, new, {"users"}) if old.get(k) != new.get(k)]
    old_users, new_users = _normal(users_of(snapshot)), _normal(users_of(current))
    for key in (set(old_users) | set(new_users)) - _VOLATILE:
        was, now = old_users.get(key), new_users.get(key)
        if key == "excludeGroups":
            was, now = _without(was, ours), _without(now, ours)
        if was != now:
            changed.append(f"conditions.users.{key}")
    return sorted(changed)


def without_group(policy: Mapping[str, Any], group_id: str) -> Doc:
    """The policy's ``users`` condition with ``group_id`` taken out of ``excludeGroups``."""
    users = users_of(policy)
    users["excludeGroups"] = [g for g in excluded_groups(policy) if g != group_id]
    return users


async def get_policy(ctx: ToolContext, policy_id: str) -> Doc:
    body = (await ctx.client.get(f"{POLICIES}/{policy_id}")).body
    return {k: v for k, v in body.items() if k != "@odata.context"}


async def exclude_group(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    policy_id, group_id = args["policy_id"], args["group_id"]
    async with ctx.exclusive(policy_id):  # read and write as one: see KeyedLocks
        read = await fresh_policy(ctx, policy_id, lambda: get_policy(ctx, policy_id))
        if not read.fresh:
            raise stale(policy_id, args["job_id"])  # its snapshot and write would be stale
        policy = read.policy
        key = snapshot_key(args["job_id"], policy_id)
        saved = ctx.originals.keep(
            key, await ctx.snapshots.save_snapshot(key, _snapshot(ctx, args, policy))
        )
        if group_id not in excluded_groups(policy):
            users = users_of(policy)
            users["excludeGroups"] = [*excluded_groups(policy), group_id]
            await _patch_users(ctx, read, args, users, lambda p: group_id in excluded_groups(p))
    after, reads = await ctx.poll(
        lambda: get_policy(ctx, policy_id), lambda p: group_id in excluded_groups(p)
    )
    verified = group_id in excluded_groups(after)
    body = {
        "verified": verified,
        "policy_id": policy_id,
        "group_id": group_id,
        "excluded_before": group_id in excluded_groups(saved["policy"]),
        "exclude_groups": excluded_groups(after),
        "reads": reads,
    }
    return ToolResult("success" if verified else "error", body)


async def restore_policy(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    original = await _load_original(ctx, args)
    try:
        if original is None:
            return await _never_changed(ctx, args)
        return await _restore(ctx, args, original)
    except GraphError as err:
        if err.status != 404:  # 404: it existed when planned, so someone deleted it
            raise
        return _deleted(args)


async def _restore(ctx: ToolContext, args: Mapping[str, Any], original: Doc) -> ToolResult:
    policy_id, group_id = args["policy_id"], args["group_id"]
    async with ctx.exclusive(policy_id):  # read and write as one: see KeyedLocks
        read = await fresh_policy(ctx, policy_id, lambda: get_policy(ctx, policy_id), removal=True)
        current = read.policy
        ours = group_id not in excluded_groups(original)
        expected = without_group(current, group_id) if ours else users_of(current)
        # ``ours_seen``: the policy showed our exclusion (or had it before the job, so the
        # job added nothing). When not, a replica may not have caught up with our write.
        seen = not ours or group_id in excluded_groups(current)
        if ours and seen:  # a stale read is refused there (a replica behind our removal)
            target = copy.deepcopy(expected)
            await _patch_users(
                ctx, read, args, target, lambda p: group_id not in excluded_groups(p), True
            )
    body, settled = await _effective_state(ctx, args, original, expected)
    return ToolResult("success" if settled else "error", body | {"ours_seen": seen})


async def read_policy(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    policy_id, group_id = args["policy_id"], args["group_id"]
    if args["expect"] == "restored":
        original = await _load_original(ctx, args)
        try:
            if original is None:
                return await _never_changed(ctx, args)
            body, _ = await _effective_state(ctx, args, original, None)
        except GraphError as err:
            if err.status != 404:  # as in restore_policy
                raise
            return _deleted(args)
        return ToolResult("success", body | {"expect": "restored"})
    after, reads = await ctx.poll(
        lambda: get_policy(ctx, policy_id), lambda p: group_id in excluded_groups(p)
    )
    body = {
        "verified": group_id in excluded_groups(after),
        "expect": "excluded",
        "policy_id": policy_id,
        "group_id": group_id,
        "exclude_groups": excluded_groups(after),
        "reads": reads,
    }
    return ToolResult("success", body)


async def marked_ca_grants(ctx: ToolContext) -> list[MarkedGrant]:
    """Policies we snapshotted that still exclude the job's group (needs a ``SnapshotIndex``)."""
    if not isinstance(ctx.snapshots, SnapshotIndex):
        return []
    grants = []
    current: dict[str, Doc] = {}  # each policy read once a sweep: CA requests are paced
    for key in await ctx.snapshots.snapshot_keys("ca:"):
        snap = await ctx.snapshots.load_snapshot(key)
        if snap is None or not {"job_id", "policy_id", "group_id", "policy"} <= set(snap):
            continue
        group_id, policy_id = snap["group_id"], snap["policy_id"]
        if group_id in excluded_groups(snap["policy"]):
            continue  # excluded before the job: not ours to undo
        if policy_id not in current:
            try:
                current[policy_id] = await get_policy(ctx, policy_id)
            except GraphError as err:
                if err.status != 404:
                    raise
                current[policy_id] = {}  # deleted: our exclusion went with it
        if group_id in excluded_groups(current[policy_id]):
            grants.append(_marked(ctx, snap))
    return grants


async def _effective_state(
    ctx: ToolContext,
    args: Mapping[str, Any],
    original: Mapping[str, Any],
    expected_users: Doc | None,
) -> tuple[Doc, bool]:
    """Read until our exclusion is undone: (evidence, whether it is).

    ``expected_users``: the ``users`` condition the restore aimed at (the current one minus
    our group); when given, it must also hold, so a restore that dropped anyone else's
    change is never verified. Drift is reported, and is not ours to undo.
    """
    policy_id, group_id = args["policy_id"], args["group_id"]
    ours = group_id not in excluded_groups(original)

    def settled(policy: Doc) -> bool:
        if ours == (group_id in excluded_groups(policy)):
            return False  # ours still there, or a pre-existing exclusion gone
        return expected_users is None or _normal(users_of(policy)) == _normal(expected_users)

    after, reads = await ctx.poll(lambda: get_policy(ctx, policy_id), settled)
    done = settled(after)
    body = {
        "verified": done,
        "restored": done,
        "drift": drift(original, after, group_id),
        "policy_id": policy_id,
        "group_id": group_id,
        "excluded_before": not ours,
        "exclude_groups": excluded_groups(after),
        "reads": reads,
    }
    return body, done


async def _patch_users(
    ctx: ToolContext,
    base: PolicyRead,
    args: Mapping[str, Any],
    users: Doc,
    settled: Callable[[Doc], bool],
    removal: bool = False,
) -> None:
    """PATCH the whole ``users`` condition computed from ``base`` (claimed first, see
    ``ca_claims``; a ``removal`` goes unclaimed when the store refuses the claim); after a
    lost answer, read back before resending."""
    policy_id = args["policy_id"]
    path = f"{POLICIES}/{policy_id}"

    async def send() -> bool:
        await ctx.client.patch(path, {"conditions": {"users": users}})
        return True

    async def read_back() -> bool | None:
        seen, _ = await ctx.poll(lambda: get_policy(ctx, policy_id), settled)
        return True if settled(seen) else None

    async def write() -> None:
        await ctx.write_once(send, read_back)

    await write_on(ctx, base, args["job_id"], write, removal=removal)


async def _load_original(ctx: ToolContext, args: Mapping[str, Any]) -> Doc | None:
    """The policy as the job's first write found it; None when the job never wrote it. Kept
    in the process as well (it never changes): a restore needs no store that answers."""
    key = snapshot_key(args["job_id"], args["policy_id"])
    snap = ctx.originals.get(key)
    if snap is None:
        snap = await ctx.snapshots.load_snapshot(key)
        if snap is None:
            return None
        ctx.originals.keep(key, snap)
    if not isinstance(snap.get("policy"), Mapping):
        raise InputError("the Conditional Access snapshot of this job and policy is damaged")
    return dict(snap["policy"])


async def _never_changed(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """No snapshot: the job never changed the policy (its write takes the snapshot first,
    under the policy's lock, and sends nothing without it; a write cancelled by a Kill
    before that is one). Nothing of ours to undo, whoever else excludes the group."""
    policy = await get_policy(ctx, args["policy_id"])
    body = {
        "verified": True,
        "restored": True,
        "never_changed": True,
        "ours_seen": True,  # as when excluded before the job: there is no write to wait for
        "policy_id": args["policy_id"],
        "group_id": args["group_id"],
        "exclude_groups": excluded_groups(policy),
    }
    return ToolResult("success", body)


def _deleted(args: Mapping[str, Any]) -> ToolResult:
    """The policy is gone: our exclusion went with it, and there is nothing to restore or to
    wait for (a deleted policy does not come back from a lagging replica)."""
    body = {
        "verified": True,
        "restored": True,
        "policy_deleted": True,
        "drift": ["policy deleted"],
        "ours_seen": True,
        "policy_id": args["policy_id"],
        "group_id": args["group_id"],
        "exclude_groups": [],
    }
    return ToolResult("success", body)


def _snapshot(ctx: ToolContext, args: Mapping[str, Any], policy: Doc) -> Doc:
    return {
        "job_id": args["job_id"],
        "tenant_id": ctx.tenant_id,
        "policy_id": args["policy_id"],
        "group_id": args["group_id"],
        "taken_at": ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "policy": policy,
    }


def _marked(ctx: ToolContext, snap: Mapping[str, Any]) -> MarkedGrant:
    job_id, policy_id, group_id = snap["job_id"], snap["policy_id"], snap["group_id"]
    return ctx.marked_grant(
        job_id,
        RESTORE_CA,
        {"policy_id": policy_id, "group_id": group_id},
        f"group {group_id} excluded from CA policy {policy_id} by job {job_id}",
    )


def _keys(a: Mapping[str, Any], b: Mapping[str, Any], skip: set[str]) -> set[str]:
    return (set(a) | set(b)) - _VOLATILE - skip


def _without(ids: Any, group_id: str) -> Any:
    return [i for i in ids if i != group_id] if isinstance(ids, list) else ids


def _normal(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return value
