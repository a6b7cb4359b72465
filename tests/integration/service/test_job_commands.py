"""The chat ports over the real job service: a request is checked without being stored, and the
limits an adapter shows are the service's rules as they are now."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.job_commands import chat_ports
from engine.errors import CommandRefused
from tests.integration.service.conftest import Env
from tests.integration.service.test_jobs import request


async def test_check_request_accepts_a_good_request_and_stores_nothing(env: Env) -> None:
    ports = chat_ports(env.service)
    ports.jobs.check_request(request(actor=ports.people.actor("console:alice")))
    assert await env.store.list_jobs() == []
    assert env.chat.events == []


async def test_check_request_refuses_what_the_service_would_refuse(env: Env) -> None:
    ports = chat_ports(env.service)
    too_long = request(actor=ports.people.actor("console:alice"), minutes=61)
    with pytest.raises(CommandRefused) as refused:
        ports.jobs.check_request(too_long)
    outcome = await ports.jobs.request(too_long)
    assert not outcome.ok
    assert refused.value.reason == outcome.reason
    assert await env.store.list_jobs() == []


async def test_limits_follow_the_service_rules(env: Env) -> None:
    ports = chat_ports(env.service)
    assert ports.limits.max_minutes == 60
    env.service.rules = replace(env.service.rules, max_minutes=90)
    assert ports.limits.max_minutes == 90
    assert ports.limits.approvers == frozenset({"u-bob", "u-carol", "u-dave"})
