"""``GraphTools``: the ``ToolPort`` that performs breakglass's privileged actions in Entra.

Each call is checked first (tool known, arguments exactly as the catalog names them, ids are
GUIDs, tenant is ours) and only then reaches Graph. Outside failures raise ``GraphError``;
bad arguments raise ``InputError`` before anything is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.graph import activity, ca, credentials, prerequisites, resolve, roles, sessions
from adapters.graph.arguments import parse_arguments
from adapters.graph.client import GraphClient
from adapters.graph.config import GraphConfig
from adapters.graph.context import ToolContext
from engine import catalog
from engine.ports import JsonDoc, MarkedGrant, PacingSlots, SnapshotStore
from engine.targets import ResolvedTarget
from engine.tools import ToolResult

Handler = Callable[[ToolContext, Mapping[str, Any]], Awaitable[ToolResult]]


HANDLERS: dict[str, Handler] = {
    catalog.WRITE_ROLE: roles.write_role_assignment,
    catalog.READ_ROLE: roles.read_role_assignment,
    catalog.REMOVE_ROLE: roles.remove_role_assignment,
    catalog.EXCLUDE_GROUP: ca.exclude_group,
    catalog.RESTORE_CA: ca.restore_policy,
    catalog.READ_CA: ca.read_policy,
    catalog.REVOKE_SESSIONS: sessions.revoke_sessions,
    catalog.REVOKE_GROUP_SESSIONS: sessions.revoke_group_sessions,
    catalog.ADD_APP_PASSWORD: credentials.add_password,
    catalog.REMOVE_APP_PASSWORD: credentials.remove_password,
    catalog.READ_ACTIVITY: activity.read_activity,
    catalog.READ_EXCLUSION_ACTIVITY: activity.read_exclusion_activity,
}

TOOL_NAMES: frozenset[str] = frozenset(HANDLERS)
"""The catalog tools this adapter implements (all of them)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GraphTools:
    """Implements ``engine.ports.ToolPort`` and ``engine.targets.TargetResolver`` against one
    tenant.

    ``snapshots`` keeps Conditional Access snapshots (first write wins). If it also offers
    ``snapshot_keys(prefix)`` (see ``ca.SnapshotIndex``), ``find_marked_grants`` covers
    Conditional Access exclusions too; role grants are always found from Graph itself.
    ``pacing`` (the store) paces Conditional Access requests across replicas.
    """

    def __init__(
        self,
        config: GraphConfig,
        snapshots: SnapshotStore,
        *,
        client: GraphClient | None = None,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        pacing: PacingSlots | None = None,
    ) -> None:
        self.config = config
        self.client = client or GraphClient(config, sleep=sleep, pacing=pacing, clock=clock)
        self._ctx = ToolContext(
            self.client, config.tenant_id, snapshots, clock, sleep, config.deployment
        )

    async def __aenter__(self) -> GraphTools:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.client.close()

    async def call(self, tool_name: str, arguments: JsonDoc) -> ToolResult:
        args = parse_arguments(tool_name, arguments, self.config.tenant_id)
        handler = HANDLERS[tool_name]
        return await handler(self._ctx, args)

    async def resolve_targets(
        self, template: str, targets: Mapping[str, str]
    ) -> Mapping[str, ResolvedTarget]:
        """Preflight before approval (see ``resolve``); ``template`` names the request's policy
        template and does not change how a target is resolved."""
        return await resolve.resolve_targets(self._ctx, targets)

    async def read_pim_request(self, request_id: str) -> Mapping[str, Any] | None:
        """``engine.prerequisites.PimRequests``: a PIM request by id, None if there is none."""
        return await prerequisites.read_pim_request(self._ctx, request_id)

    async def check_member_groups(self, principal_id: str, group_ids: list[str]) -> list[str]:
        """Which of ``group_ids`` the principal is a member of (target limits by group)."""
        return await prerequisites.check_member_groups(self._ctx, principal_id, group_ids)

    async def grant_in_place(self, template: str, targets: Mapping[str, str]) -> bool:
        """Is what a request asks for in place already (before anyone approves it)?"""
        return await prerequisites.grant_in_place(self._ctx, template, targets)

    async def find_marked_grants(self) -> list[MarkedGrant]:
        found = await roles.marked_role_grants(self._ctx)
        return found + await ca.marked_ca_grants(self._ctx)
