"""Forged or misdirected requests to /api/messages: each is refused with 401 before anything
routes it, nothing changes (job, chain, connector) and the refusal is logged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import pytest

from adapters.teams.inbound_auth import KEYS_TTL_SECONDS
from engine.job import Job
from tests.integration.teams.conftest import BOB, TeamsEnv
from tests.integration.teams.fakes import rsa_key
from tests.integration.teams.flow import approval_message, requested

Forge = Callable[[TeamsEnv], str]


@dataclass(frozen=True)
class Snapshot:
    state: str
    chain_length: int
    decisions: int
    calls: int


async def snapshot(env: TeamsEnv, job: Job) -> Snapshot:
    now = await env.service.load(job.job_id)
    chain = await env.store.chain(job.job_id)
    return Snapshot(now.state, len(chain), len(now.plan.decisions), len(env.connector.calls))


OTHER_KEY = rsa_key()

FORGERIES: dict[str, tuple[Forge, str]] = {
    "wrong audience": (lambda e: e.openid.mint(e.connector.url, aud="someone-elses-bot"), "TOKEN"),
    "wrong issuer": (lambda e: e.openid.mint(e.connector.url, iss="https://evil.example"), "TOKEN"),
    "expired": (lambda e: e.openid.mint(e.connector.url, age=3600, lifetime=600), "TOKEN"),
    "not yet valid": (lambda e: e.openid.mint(e.connector.url, age=-3600), "TOKEN"),
    "no exp": (lambda e: e.openid.mint(e.connector.url, drop=("exp",)), "TOKEN"),
    "no nbf": (lambda e: e.openid.mint(e.connector.url, drop=("nbf",)), "TOKEN"),
    "unknown key id": (
        lambda e: e.openid.mint(e.connector.url, key=OTHER_KEY, kid="attacker-key"),
        "UNKNOWN_SIGNING_KEY",
    ),
    "known key id, other key": (lambda e: e.openid.mint(e.connector.url, key=OTHER_KEY), "TOKEN"),
    "service url elsewhere": (
        lambda e: e.openid.mint("http://127.0.0.1:9/"),
        "SERVICE_URL_MISMATCH",
    ),
    "no service url": (lambda e: e.openid.mint(e.connector.url, drop=("serviceurl",)), "SERVICE"),
    "unsigned": (
        lambda e: jwt.encode({"aud": "x"}, key="", algorithm="none"),  # type: ignore[arg-type]
        "ALGORITHM_NOT_ALLOWED",
    ),
    "symmetric": (lambda e: jwt.encode({"aud": "x"}, "k" * 32, algorithm="HS256"), "ALGORITHM"),
    "garbage": (lambda e: "not.a.jwt", "MALFORMED_TOKEN"),
}


@pytest.fixture
async def pending(teams: TeamsEnv) -> tuple[Job, str]:
    job, _ = await requested(teams)
    message_id, _ = approval_message(teams)
    return job, message_id


def approve_activity(env: TeamsEnv, job: Job, message_id: str, **fields: object) -> dict:  # type: ignore[type-arg]
    data = {"verb": "approve", "job_id": job.job_id, "plan_hash": job.plan.plan_hash}
    return env.invoke(BOB, "approve", data, message_id, **fields)


@pytest.mark.parametrize("name", sorted(FORGERIES))
async def test_forged_token_is_refused_and_changes_nothing(
    teams: TeamsEnv, pending: tuple[Job, str], name: str, caplog: pytest.LogCaptureFixture
) -> None:
    job, message_id = pending
    forge, reason = FORGERIES[name]
    before = await snapshot(teams, job)
    caplog.set_level(logging.WARNING, "breakglass.teams.edge")
    status, body = await teams.post(approve_activity(teams, job, message_id), forge(teams))
    await teams.settle()
    assert status == 401
    assert body == {"error": "unauthorized"}
    assert await snapshot(teams, job) == before
    assert reason in caplog.text


@pytest.mark.parametrize(
    ("auth", "fields", "overrides", "reason"),
    [
        pytest.param(False, {}, {}, "NO_TOKEN", id="no_token"),
        # A genuine token for our connector, replayed with an activity naming another service.
        pytest.param(
            True,
            {"service_url": "http://127.0.0.1:9/"},
            {},
            "SERVICE_URL_MISMATCH",
            id="activity_pointing_elsewhere_than_its_token",
        ),
        pytest.param(
            True,
            {},
            {"channelId": "webchat"},
            "CHANNEL_NOT_ENDORSED",
            id="channel_the_key_does_not_endorse",
        ),
    ],
)
async def test_misdirected_activity_is_refused(
    teams: TeamsEnv,
    pending: tuple[Job, str],
    caplog: pytest.LogCaptureFixture,
    auth: bool,
    fields: dict[str, object],
    overrides: dict[str, object],
    reason: str,
) -> None:
    job, message_id = pending
    before = await snapshot(teams, job)
    activity = approve_activity(teams, job, message_id, **fields) | overrides
    status, _ = await teams.post(activity, auth=auth)
    assert status == 401
    assert await snapshot(teams, job) == before
    assert reason in caplog.text


async def test_unknown_key_refetches_keys_at_most_once(
    teams: TeamsEnv, pending: tuple[Job, str]
) -> None:
    job, message_id = pending
    fetches = teams.openid.fetches
    for _ in range(3):
        token = teams.openid.mint(teams.connector.url, key=OTHER_KEY, kid="rotated-away")
        status, _ = await teams.post(approve_activity(teams, job, message_id), token)
        assert status == 401
    assert teams.openid.fetches - fetches <= 1


async def test_oversized_body_is_refused_before_parsing(
    teams: TeamsEnv, pending: tuple[Job, str]
) -> None:
    job, message_id = pending
    before = await snapshot(teams, job)
    activity = approve_activity(teams, job, message_id) | {"text": "x" * 300_000}
    status, _ = await teams.post(activity)
    assert status == 400
    assert await snapshot(teams, job) == before


class Ticks:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_keys_stay_usable_when_the_metadata_endpoint_is_down(
    teams: TeamsEnv, pending: tuple[Job, str], caplog: pytest.LogCaptureFixture
) -> None:
    job, message_id = pending
    ticks = Ticks()
    teams.bot.keys.clock = ticks
    teams.bot.keys._fetched_at = ticks.now  # as if fetched just now (the fixture's request)
    await teams.openid.stop()
    ticks.now += KEYS_TTL_SECONDS + 1  # stale: a refresh is due, and fails
    status, _ = await teams.post(approve_activity(teams, job, message_id))
    await teams.settle()
    assert status == 200
    assert "cached ones stay in use" in caplog.text
    assert (await teams.service.load(job.job_id)).plan.approvers() == ["u-bob"]


async def test_without_any_keys_nothing_is_authenticated(
    teams: TeamsEnv, pending: tuple[Job, str]
) -> None:
    job, message_id = pending
    before = await snapshot(teams, job)
    teams.bot.keys._keys = {}
    teams.bot.keys._fetched_at = None
    await teams.openid.stop()
    status, body = await teams.post(approve_activity(teams, job, message_id))
    assert status == 503
    assert body == {"error": "authentication unavailable"}
    assert await snapshot(teams, job) == before
