"""Steps of a job as people take them in Slack, and where to find what the bot posted."""

from __future__ import annotations

from adapters.slack import refs as kinds
from engine.job import Job
from tests.integration.graph.support import ALICE as ALICE_OID
from tests.integration.graph.support import DAVE as DAVE_OID
from tests.integration.graph.support import USER_ADMIN
from tests.integration.slack.conftest import Env
from tests.integration.slack.support import ALICE, INCIDENT, Json, form_values

REQUEST = {
    "template": "entra-role",
    "principal": DAVE_OID,
    "resource": USER_ADMIN,
    "duration_minutes": "30",
    "justification": "INC-42: mail flow is down, need User Administrator",
    "ticket": "INC-42",
}

# A second open job needs a grant of its own (one open job per grant: TARGET_BUSY).
OTHER_GRANT = {"principal": ALICE_OID}


async def open_form(env: Env, user: str = ALICE, channel: str = INCIDENT) -> Json:
    """``/breakglass request`` in ``channel``: the modal as views.open showed it."""
    response = await env.sender.command(user, "request", channel)
    assert response.status == 200
    await env.settle()
    call = env.fake.of("views.open")[-1]
    view: Json = call.params["view"]
    return view | {"id": f"V{len(env.fake.of('views.open')):08d}", "hash": "h1"}


async def submit(
    env: Env, user: str = ALICE, channel: str = INCIDENT, **typed: str
) -> tuple[int, bytes]:
    view = await open_form(env, user, channel)
    answer = await env.sender.submit(user, view, form_values(**(REQUEST | typed)))
    await env.settle()
    return answer.status, answer.body


async def request_job(env: Env, user: str = ALICE, channel: str = INCIDENT, **typed: str) -> Job:
    status, _ = await submit(env, user, channel, **typed)
    assert status == 200
    return (await env.jobs())[-1]


def posted(env: Env, channel: str, ts: str) -> Json:
    """A message as it is now (after updates), with its ts, as a click payload carries it."""
    return env.fake.messages[(channel, ts)] | {"ts": ts}


def dm_of(env: Env, user: str) -> Json:
    """The (last) approval prompt in ``user``'s DM."""
    channel = f"D{user}"
    (*_, ts) = [t for (ch, t) in env.fake.messages if ch == channel]
    return posted(env, channel, ts)


def status_card(env: Env) -> Json:
    tops = [
        ts for (ch, ts), m in env.fake.messages.items() if ch == INCIDENT and "thread_ts" not in m
    ]
    assert tops, "no status card posted"
    return posted(env, INCIDENT, tops[-1])


def thread(env: Env) -> list[Json]:
    return env.fake.posts(INCIDENT, thread_ts=status_card(env)["ts"])


def thread_texts(env: Env) -> list[str]:
    return [str(p.get("text", "")) for p in thread(env)]


async def click(env: Env, user: str, channel: str, message: Json, action: str) -> None:
    response = await env.sender.click(user, channel, message, f"breakglass.{action}")
    assert response.status == 200
    await env.settle()


async def approve(env: Env, user: str, on_dm_of: str | None = None) -> None:
    owner = on_dm_of or user
    await click(env, user, f"D{owner}", dm_of(env, owner), "approve")


async def ref_of(env: Env, job_id: str, kind: str) -> Json:
    """Where the job's one message of ``kind`` is (its ``channel`` and ``ts``), as stored."""
    (ref,) = [r.ref for r in await env.store.message_refs(job_id, kinds.PLATFORM) if r.kind == kind]
    return dict(ref)


async def approve_job(env: Env, job_id: str, user: str) -> None:
    """``user`` presses Approve on the prompt of job ``job_id`` in their DM."""
    ref = await ref_of(env, job_id, kinds.approval_kind(user))
    await click(env, user, ref["channel"], posted(env, ref["channel"], ref["ts"]), "approve")


def ephemerals(env: Env, user: str) -> list[str]:
    return [
        str(c.params.get("text", ""))
        for c in env.fake.of("chat.postEphemeral")
        if c.params.get("user") == user
    ]
