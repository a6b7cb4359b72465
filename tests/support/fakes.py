"""Recording ports for service tests: a clock the test moves, a tenant kept in memory that
answers the catalog tools honestly, and a chat channel that records what it was shown."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine import activity, catalog
from engine.errors import ChatError, GraphError
from engine.ports import ChatEvent, MarkedGrant
from engine.tools import ToolResult


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def empty_activity(args: Mapping[str, Any]) -> dict[str, Any]:
    """What an activity read finds in a tenant that kept no logs: nothing, settled."""
    window = {"since": args["since"], "until": args["until"]}
    return {
        "window": window,
        "audits": activity.summarize_audits([]),
        "sign_ins": activity.summarize_sign_ins([]),
        "settled": True,
    }


@dataclass
class MemoryTenant:
    """Role assignments and CA exclusions as sets; every call recorded."""

    roles: set[tuple[str, str, str]] = field(default_factory=set)
    excluded: set[tuple[str, str, str]] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set up, writes wait for it (in-flight tests)
    fail_removals: int = 0  # how many removals fail with a 503 before one works
    markers: dict[tuple[str, str, str], str] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)  # principals, in revocation order
    fail_revocations: int = 0  # how many session revocations fail with a 503 first
    passwords: dict[str, set[str]] = field(default_factory=dict)  # application -> keyIds

    async def call(self, tool_name: str, arguments: Mapping[str, Any]) -> ToolResult:
        args = dict(arguments)
        self.calls.append((tool_name, args))
        if self.gate is not None and tool_name in (catalog.WRITE_ROLE, catalog.EXCLUDE_GROUP):
            await self.gate.wait()
        role = (
            args.get("tenant_id", ""),
            args.get("principal_id", ""),
            args.get("role_definition_id", ""),
        )
        ca = (args.get("tenant_id", ""), args.get("policy_id", ""), args.get("group_id", ""))
        if tool_name == catalog.WRITE_ROLE:
            self.roles.add(role)
            self.markers[role] = args["job_id"]
            return ToolResult("success", {"status": "Provisioned"})
        if tool_name == catalog.REMOVE_ROLE:
            if self.fail_removals:
                self.fail_removals -= 1
                raise GraphError("ServiceUnavailable", "try later", status=503)
            seen = role in self.roles  # no replicas here: the fake always sees its own
            self.roles.discard(role)
            return ToolResult("success", {"removed": True, "ours_seen": seen})
        if tool_name == catalog.READ_ROLE:
            present = role in self.roles
            return ToolResult("success", {"verified": present == (args["expect"] == "present")})
        if tool_name == catalog.EXCLUDE_GROUP:
            self.excluded.add(ca)
            return ToolResult("success", {"excluded": True})
        if tool_name == catalog.RESTORE_CA:
            seen = ca in self.excluded
            self.excluded.discard(ca)
            return ToolResult("success", {"restored": True, "ours_seen": seen})
        if tool_name == catalog.READ_CA:
            present = ca in self.excluded
            return ToolResult("success", {"verified": present == (args["expect"] == "excluded")})
        if tool_name in catalog.ACTIVITY_OF.values():  # a tenant whose logs are empty
            return ToolResult("success", empty_activity(args))
        return self._contain(tool_name, args)

    def _contain(self, tool_name: str, args: dict[str, Any]) -> ToolResult:
        """Sessions and application passwords: what the end of a window contains."""
        if tool_name == catalog.REVOKE_SESSIONS:
            if self.fail_revocations:
                self.fail_revocations -= 1
                raise GraphError("ServiceUnavailable", "try later", status=503)
            self.revoked.append(args["principal_id"])
            return ToolResult("success", {"revoked": True})
        if tool_name == catalog.REVOKE_GROUP_SESSIONS:
            self.revoked.append(f"group:{args['group_id']}")
            return ToolResult("success", {"users": 0, "revoked": []})
        app = str(args.get("application_id", ""))
        if tool_name == catalog.ADD_APP_PASSWORD:
            key_id = f"key-{sum(len(k) for k in self.passwords.values()) + 1}"
            self.passwords.setdefault(app, set()).add(key_id)
            return ToolResult("success", {"key_id": key_id, "application_id": app})
        if tool_name == catalog.REMOVE_APP_PASSWORD:
            self.passwords.get(app, set()).discard(args["key_id"])
            return ToolResult("success", {"removed": True})
        return ToolResult("error", {"error": "unknown tool"})

    async def find_marked_grants(self) -> list[MarkedGrant]:
        return [
            MarkedGrant(
                self.markers[r],
                catalog.REMOVE_ROLE,
                {
                    "tenant_id": r[0],
                    "principal_id": r[1],
                    "role_definition_id": r[2],
                    "job_id": self.markers[r],
                },
                f"{r[1]} holds {r[2]}",
            )
            for r in self.roles
            if r in self.markers
        ]


@dataclass
class RecordingChat:
    platform: str = "console"
    events: list[ChatEvent] = field(default_factory=list)
    down: bool = False

    async def deliver(self, event: ChatEvent) -> None:
        if self.down:
            raise ChatError("chat is unreachable")
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]
