"""Helpers for the Graph integration tests: seed ids, an in-memory snapshot store, state probes."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeVar

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import SimulatedTenant
from engine.errors import GraphError, InputError

TENANT = "dc1c6a57-17ae-540c-a63e-f9140a3f5e5b"
ALICE = "92c37b1a-3449-5aff-9fd1-00ab297ec470"
BOB = "2deaf196-6f46-52be-8b81-dd0bb43868a8"
DAVE = "c8d420e6-24f2-50b7-99ea-e4decf6ec878"
ERIN = "bb8e9f0a-e1a9-59fd-8b1b-ff410e3464f1"  # standing Global Administrator in the seed
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"  # max 60 minutes in the seed
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"  # max 240 minutes
EXCLUSION_GROUP = "f2709144-020b-50f3-a776-bce8de0efbbd"
EMERGENCY_GROUP = "c0303331-a0d1-5475-b417-c216eaee68e3"  # already excluded from MFA_POLICY
RESPONDERS = "92834d79-48cc-5a9e-9744-15121128f4a9"  # "Incident responders": no policy names it
DEVICE = "5f0c3a52-7d1e-4b8a-9e64-2c1d0b7f8a13"  # a device: groups hold devices too
MFA_POLICY = "75400886-ec78-56f5-84ed-13ceef2cf5f7"
LEGACY_POLICY = "3f818883-ec6b-5f79-8c24-a12d93a4d1cb"
REQUESTS = "roleAssignmentScheduleRequests"  # a role's writes and removals are POSTs here


class MemorySnapshots:
    """SnapshotStore (first write wins) plus the optional ``snapshot_keys`` index."""

    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}
        self.save_calls = 0

    async def save_snapshot(self, key: str, snapshot: Mapping[str, Any]) -> Mapping[str, Any]:
        self.save_calls += 1
        self.saved.setdefault(key, copy.deepcopy(dict(snapshot)))
        return copy.deepcopy(self.saved[key])

    async def load_snapshot(self, key: str) -> Mapping[str, Any] | None:
        found = self.saved.get(key)
        return copy.deepcopy(found) if found is not None else None

    async def snapshot_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.saved if k.startswith(prefix))


def read_args(expect: str, principal: str = DAVE, role: str = USER_ADMIN) -> dict[str, Any]:
    pair = {"tenant_id": TENANT, "principal_id": principal, "role_definition_id": role}
    return pair | {"expect": expect}


def remove_args(
    job: str = "job-1", principal: str = DAVE, role: str = USER_ADMIN
) -> dict[str, Any]:
    return {
        "tenant_id": TENANT,
        "principal_id": principal,
        "role_definition_id": role,
        "job_id": job,
    }


def write_args(minutes: int = 30, **kw: Any) -> dict[str, Any]:
    return remove_args(**kw) | {
        "duration_minutes": minutes,
        "justification": "INC-42: restore mail flow",
        "ticket_number": "INC-42",
    }


def ca_args(
    job: str = "job-ca", policy: str = MFA_POLICY, group: str = EXCLUSION_GROUP
) -> dict[str, Any]:
    return {"tenant_id": TENANT, "policy_id": policy, "group_id": group, "job_id": job}


def has(body: Mapping[str, Any], **expected: Any) -> bool:
    """True when ``body`` contains every expected key with that value."""
    return all(body.get(k) == v for k, v in expected.items())


def holders(sim: SimulatedTenant, role: str) -> set[str]:
    return {a.principal_id for a in sim.active_grants() if a.role_id == role}


def posts(sim: SimulatedTenant, fragment: str) -> int:
    return sum(1 for e in sim.requests_log if e.method == "POST" and fragment in e.path)


def statuses(sim: SimulatedTenant, method: str, fragment: str) -> list[int]:
    """The status of each ``method`` request whose path holds ``fragment``, in order."""
    return [e.status for e in sim.requests_log if e.method == method and fragment in e.path]


def state_without_log(sim: SimulatedTenant) -> dict[str, Any]:
    """The directory as the control API shows it (what negative tests compare)."""
    return sim.state()


E = TypeVar("E", GraphError, InputError)


async def refused(
    sim: SimulatedTenant, tools: GraphTools, tool: str, args: Mapping[str, Any], kind: type[E]
) -> E:
    """The call fails with ``kind`` and nothing changed; the error.

    An ``InputError`` is our own refusal, so it must come before any request leaves.
    """
    before = sim.state()
    with pytest.raises(kind) as caught:
        await tools.call(tool, dict(args))
    if kind is InputError:
        assert sim.requests_log == []
    assert sim.state() == before
    return caught.value
