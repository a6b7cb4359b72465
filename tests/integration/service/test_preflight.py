"""Targets are resolved before anyone is asked: a UPN becomes the object id the plan names,
the names are kept for the cards, and an unknown target is refused with nothing stored."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.job_commands import chat_ports
from engine.errors import CommandRefused, GraphError, JobNotFound
from engine.targets import TARGET_NOT_FOUND, TENANT_UNAVAILABLE, ResolvedTarget, TargetRejected
from tests.integration.service.conftest import build_env
from tests.integration.service.test_jobs import request

DAVE_UPN = "dave@contoso.example"
DAVE_ID = "u-dave-object-id"


class Directory:
    """A fake of the tenant's directory, as the preflight read sees it."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.asked: list[Mapping[str, str]] = []

    async def resolve_targets(
        self, template: str, targets: Mapping[str, str]
    ) -> Mapping[str, ResolvedTarget]:
        self.asked.append(dict(targets))
        if self.down:
            raise GraphError("ServiceUnavailable", "try later", status=503)
        principal = targets["principal_id"]
        if principal != DAVE_UPN:
            raise TargetRejected(TARGET_NOT_FOUND, "no such user", key="principal_id")
        return {"principal_id": ResolvedTarget("principal_id", DAVE_UPN, DAVE_ID, "Dave Doe")}


async def test_a_upn_is_resolved_to_the_object_id_the_plan_names(tmp_path: Path) -> None:
    env = await build_env(tmp_path, resolver=Directory())
    try:
        s = env.service
        targets = {"tenant_id": "t-1", "principal_id": DAVE_UPN, "role_definition_id": "r-ga"}
        out = await s.request(request(actor=s.actor("console:alice"), targets=targets))
        assert out.ok, out
        job = await s.load("job-s1")
        assert job.request["targets"]["principal_id"] == DAVE_ID
        assert job.request["resolved"]["principal_id"] == {
            "given": DAVE_UPN,
            "object_id": DAVE_ID,
            "display_name": "Dave Doe",
        }
        action = job.plan.payload["metadata"]["breakglass"]["action"]["arguments"]
        assert action["principal_id"] == DAVE_ID
    finally:
        await env.settle()
        await env.store.close()


@pytest.mark.parametrize(
    ("directory", "principal", "reason"),
    [
        (Directory(), "nobody@contoso.example", TARGET_NOT_FOUND),
        (Directory(down=True), DAVE_UPN, TENANT_UNAVAILABLE),
    ],
)
async def test_an_unresolvable_target_is_refused_before_anyone_is_asked(
    tmp_path: Path, directory: Directory, principal: str, reason: str
) -> None:
    env = await build_env(tmp_path, resolver=directory)
    try:
        s = env.service
        targets = {"tenant_id": "t-1", "principal_id": principal, "role_definition_id": "r-ga"}
        out = await s.request(request(actor=s.actor("console:alice"), targets=targets))
        assert (out.ok, out.reason) == (False, reason)
        assert directory.asked == [targets]
        with pytest.raises(JobNotFound):
            await s.load("job-s1")
        assert env.chat.events == []
    finally:
        await env.settle()
        await env.store.close()


async def test_a_target_name_passes_the_check_a_chat_form_makes_before_it_answers(
    tmp_path: Path,
) -> None:
    # A chat form checks a request before it answers: a role's display name (with a space,
    # so no plain id) must not be refused there; the request resolves it, or refuses it.
    directory = Directory()
    env = await build_env(tmp_path, resolver=directory)
    try:
        s = env.service
        jobs = chat_ports(s).jobs
        targets = {"tenant_id": "t-1", "principal_id": DAVE_UPN, "role_definition_id": "User Admin"}
        jobs.check_request(request(actor=s.actor("console:alice"), targets=targets))
        assert directory.asked == []  # the check reads nothing
        with pytest.raises(CommandRefused):  # what is not about targets is still checked
            jobs.check_request(request(actor=s.actor("console:alice"), targets=targets, minutes=61))
        missing = {"tenant_id": "t-1", "principal_id": DAVE_UPN}
        with pytest.raises(CommandRefused):  # and so is a target the template needs
            jobs.check_request(request(actor=s.actor("console:alice"), targets=missing))
        assert await env.store.list_jobs() == []
    finally:
        await env.settle()
        await env.store.close()
