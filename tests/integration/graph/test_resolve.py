"""Preflight target resolution against the simulated tenant, over real HTTP."""

from __future__ import annotations

import pytest

from adapters.graph import GraphTools
from adapters.graph.simulated import Fault, SimulatedTenant
from engine.errors import CommandRefused
from engine.targets import ResolvedTarget, TargetRejected, TargetResolver
from tests.integration.graph.support import (
    DAVE,
    EXCLUSION_GROUP,
    GLOBAL_ADMIN,
    MFA_POLICY,
    TENANT,
    USER_ADMIN,
)

UNKNOWN_ID = "00000000-0000-0000-0000-00000000f00d"


async def resolve_one(tools: GraphTools, key: str, given: str) -> ResolvedTarget:
    return (await tools.resolve_targets("entra-role", {key: given}))[key]


async def refusal(tools: GraphTools, key: str, given: str) -> TargetRejected:
    with pytest.raises(TargetRejected) as caught:
        await tools.resolve_targets("entra-role", {key: given})
    assert isinstance(caught.value, CommandRefused)
    assert caught.value.key == key
    return caught.value


@pytest.mark.parametrize(
    "given",
    [
        "dave@breakglass-sim.onmicrosoft.com",
        "Dave@Breakglass-Sim.onmicrosoft.com",  # Graph matches UPNs without regard to case
        DAVE,
    ],
)
async def test_principal_as_upn_or_id_resolves_to_the_object_id(
    tools: GraphTools, given: str
) -> None:
    found = await resolve_one(tools, "principal_id", given)
    assert found == ResolvedTarget("principal_id", given, DAVE, "Dave Example")


@pytest.mark.parametrize("given", ["Global Administrator", "global administrator", GLOBAL_ADMIN])
async def test_role_by_display_name_or_id(tools: GraphTools, given: str) -> None:
    found = await resolve_one(tools, "role_definition_id", given)
    assert (found.object_id, found.display_name) == (GLOBAL_ADMIN, "Global Administrator")


@pytest.mark.parametrize("given", ["Break-glass CA exclusion", EXCLUSION_GROUP])
async def test_group_by_display_name_or_id(tools: GraphTools, given: str) -> None:
    found = await resolve_one(tools, "group_id", given)
    assert (found.object_id, found.display_name) == (EXCLUSION_GROUP, "Break-glass CA exclusion")


async def test_a_whole_request_resolves_and_the_tenant_is_ours(tools: GraphTools) -> None:
    resolver: TargetResolver = tools
    targets = {
        "tenant_id": TENANT,
        "principal_id": "dave@breakglass-sim.onmicrosoft.com",
        "role_definition_id": "User Administrator",
    }
    found = await resolver.resolve_targets("entra-role", targets)
    assert {k: v.object_id for k, v in found.items()} == {
        "tenant_id": TENANT,
        "principal_id": DAVE,
        "role_definition_id": USER_ADMIN,
    }


async def test_policy_id_resolves_to_its_name(tools: GraphTools) -> None:
    found = await resolve_one(tools, "policy_id", MFA_POLICY)
    assert (found.object_id, found.display_name) == (MFA_POLICY, "Require MFA for all users")


@pytest.mark.parametrize(
    ("key", "given"),
    [
        ("principal_id", "nobody@breakglass-sim.onmicrosoft.com"),
        ("principal_id", UNKNOWN_ID),
        ("principal_id", EXCLUSION_GROUP),  # a group is not a user
        ("role_definition_id", "Chief Everything Officer"),
        ("role_definition_id", UNKNOWN_ID),
        ("group_id", "No such group"),
        ("group_id", UNKNOWN_ID),
        ("policy_id", UNKNOWN_ID),
    ],
)
async def test_unknown_targets_are_not_found(tools: GraphTools, key: str, given: str) -> None:
    assert (await refusal(tools, key, given)).reason == "TARGET_NOT_FOUND"


async def test_two_groups_with_the_same_name_are_ambiguous(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    twin = {"id": UNKNOWN_ID, "displayName": "Break-glass CA exclusion", "securityEnabled": True}
    sim.directory.groups[UNKNOWN_ID] = twin
    assert (await refusal(tools, "group_id", "Break-glass CA exclusion")).reason == (
        "TARGET_AMBIGUOUS"
    )


@pytest.mark.parametrize(
    ("key", "given"),
    [
        ("policy_id", "not-a-guid"),
        ("principal_id", ""),
        ("principal_id", "   "),
        ("principal_id", "a" * 300 + "@breakglass-sim.onmicrosoft.com"),
        ("principal_id", "dave\x00@breakglass-sim.onmicrosoft.com"),
        ("principal_id", "dave@breakglass-sim.onmicrosoft.com\u202e"),  # bidi override
        ("principal_id", "dave'@breakglass-sim.onmicrosoft.com"),
        ("principal_id", "../../groups"),
        ("principal_id", "dave@breakglass-sim.onmicrosoft.com?$select=id"),
        ("role_definition_id", "Global Administrator' or displayName ne '"),  # OData injection
        ("group_id", "x' or 1 eq 1 or displayName eq 'y"),
        ("group_id", "line\nbreak"),
        ("tenant_id", "00000000-0000-0000-0000-000000000001"),  # not our tenant
        ("job_id", "anything"),  # not a target
    ],
)
async def test_malformed_targets_are_invalid_before_any_request(
    sim: SimulatedTenant, tools: GraphTools, key: str, given: str
) -> None:
    before = sim.state()
    assert (await refusal(tools, key, given)).reason == "TARGET_INVALID"
    assert sim.requests_log == []  # not even a token was fetched
    assert sim.state() == before


async def test_refusal_names_the_target_but_never_echoes_it(tools: GraphTools) -> None:
    hostile = "<!channel> x' or 1 eq 1"
    refused = await refusal(tools, "group_id", hostile)
    assert hostile not in str(refused)
    assert "group_id" in str(refused)


async def test_unreachable_tenant_is_tenant_unavailable(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    sim.add_fault(Fault("unavailable", path="/users/", times=50))
    refused = await refusal(tools, "principal_id", DAVE)
    assert refused.reason == "TENANT_UNAVAILABLE"


async def test_stopped_tenant_is_tenant_unavailable(
    sim: SimulatedTenant, tools: GraphTools
) -> None:
    await sim.stop()
    refused = await refusal(tools, "role_definition_id", "Global Administrator")
    assert refused.reason == "TENANT_UNAVAILABLE"
