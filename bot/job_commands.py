"""The job service seen through the chat ports (``engine.chat_ports``).

Adapters get a :class:`ServiceJobs` instead of the ``JobService``: it can ask for commands,
read jobs and their records, resolve people and tell the form's limits, but it hands out no
signing key, no rules object to change and no whole store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.service import JobService
from bot.stepup import with_step_up
from engine import lifecycle
from engine.chat_ports import ChatPorts, PassedOn
from engine.job import Actor, Job
from engine.lifecycle import Command
from engine.ports import ChainRecord, JsonDoc

# Stands in for each target the request will resolve: a plain id, as the plan needs.
RESOLVED_LATER = "00000000-0000-0000-0000-000000000000"


class ServiceJobs(PassedOn):
    """Implements ``JobCommands``, ``JobRecords``, ``Identities`` and ``RequestLimits``."""

    def __init__(self, service: JobService) -> None:
        super().__init__(service)  # JobCommands: the service's own calls, passed on
        self._service = service

    def check_request(self, command: lifecycle.Request) -> None:
        """The engine's verdict on a request with the service's own keys and rules; the
        transition it would make is thrown away (nothing is stored or published). Does NOT
        see other open jobs (no store read here): TARGET_BUSY comes from the request itself.

        When the service resolves targets, a name ("User Administrator", a UPN) is a fine
        target here: the request itself resolves it, or refuses it as TARGET_NOT_FOUND."""
        service = self._service
        if service.resolver is not None:
            command = replace(command, targets=dict.fromkeys(command.targets, RESOLVED_LATER))
        lifecycle.start(command, lifecycle.Ctx(service.clock(), service.keys, service.rules))

    def check_command(self, job: Job, command: Command) -> None:
        """The engine's verdict on ``command`` (thrown away, as in ``check_request``)."""
        service = self._service
        lifecycle.apply(job, command, lifecycle.Ctx(service.clock(), service.keys, service.rules))

    # JobRecords
    async def chain(self, job_id: str) -> list[ChainRecord]:
        return await self._service.store.chain(job_id)

    async def bundle(self, job: Job) -> JsonDoc:
        return (await self._service.bundle(job))[0]

    # Identities
    def actor(self, chat_identity: str, display: str = "", email: str | None = None) -> Actor:
        return self._service.actor(chat_identity, display, email)

    # RequestLimits (read each time: the rules are the service's, not a copy)
    @property
    def max_minutes(self) -> int:
        return self._service.rules.max_minutes

    @property
    def approvers(self) -> frozenset[str]:
        return self._service.rules.approvers

    def now(self) -> datetime:
        return self._service.clock()


def chat_ports(service: JobService) -> ChatPorts:
    """What a chat adapter gets from ``service``."""
    jobs = ServiceJobs(service)
    return ChatPorts(
        jobs=with_step_up(service, jobs),  # issue 17: Approve clicks start step-up sign-ins
        records=jobs,
        people=jobs,
        limits=jobs,
        store=service.store,
        clock=jobs.now,
    )
