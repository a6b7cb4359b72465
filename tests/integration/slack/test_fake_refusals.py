"""The fake Slack refuses what Slack documents it refuses (docs/slack.md §5), in Slack's
shapes, as slack_sdk's real client sees them: Block Kit limits, the text a message's blocks
may hold in all, a cut ``text``, modal limits, trigger ids, deleted and frozen messages, an
archived channel or one the bot left, a refused token, and the transient answers (429 with
``Retry-After``, 5xx, ``fatal_error``, ``request_timeout``) on demand."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.integration.slack.block_kit import BLOCKS_TEXT_LIMIT, MESSAGE_TEXT_LIMIT
from tests.integration.slack.fake_slack import FakeSlack
from tests.integration.slack.support import INCIDENT, OTHER_CHANNEL, TOKEN

Json = dict[str, Any]


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])


def section(text: str) -> Json:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(title: str = "Break-glass request", **more: Any) -> Json:
    label = {"type": "plain_text", "text": "Ticket"}
    field = {"type": "input", "label": label, "element": {"type": "plain_text_input"}}
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Review request"},
        "blocks": [field],
        **more,
    }


async def refused(call: Any) -> Json:
    with pytest.raises(SlackApiError) as caught:
        await call
    data: Json = caught.value.response.data
    assert data["ok"] is False
    return data


async def test_a_section_over_3000_characters_is_invalid_blocks_naming_where(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    blocks = [section("fine"), section("x" * 3001)]
    data = await refused(client.chat_postMessage(channel=INCIDENT, text="t", blocks=blocks))
    assert data["error"] == "invalid_blocks"
    assert data["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    ]
    assert data["response_metadata"]["messages"] == [f"[ERROR] {data['errors'][0]}"]
    assert not fake.messages  # nothing was posted
    ok = await client.chat_postMessage(channel=INCIDENT, text="t", blocks=[section("x" * 3000)])
    assert ok["ok"]


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        ([section("x")] * 51, "must provide no more than 50 items [json-pointer:/blocks]"),
        ([section("")], "must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
            "must provide between 1 and 10 elements [json-pointer:/blocks/0/elements]",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "b" * 76},
                            "action_id": "a",
                        }
                    ],
                }
            ],
            "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        ),
        (
            [{**section("x"), "block_id": "b" * 256}],
            "must be less than 256 characters [json-pointer:/blocks/0/block_id]",
        ),
        (
            [modal()["blocks"][0]],  # an input block belongs in a modal
            "unsupported block type [json-pointer:/blocks/0/type]",
        ),
    ],
    ids=["51 blocks", "empty text", "header", "context", "button text", "block_id", "input"],
)
async def test_every_documented_block_limit_is_refused(
    client: AsyncWebClient, blocks: list[Json], problem: str
) -> None:
    for method in (client.chat_postMessage, client.chat_postEphemeral):
        data = await refused(method(channel=INCIDENT, user="U1", text="t", blocks=blocks))
        assert (data["error"], data["errors"]) == ("invalid_blocks", [problem])


async def test_blocks_holding_too_much_text_in_all_are_msg_blocks_too_long(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    fitting = [section("x" * 2750)] * 4  # each section within its 3000
    assert sum(len(b["text"]["text"]) for b in fitting) == BLOCKS_TEXT_LIMIT
    posted = await client.chat_postMessage(channel=INCIDENT, text="t", blocks=fitting)
    data = await refused(
        client.chat_update(
            channel=INCIDENT, ts=posted["ts"], text="t", blocks=[*fitting, section("x")]
        )
    )
    assert data["error"] == "msg_blocks_too_long"
    assert fake.messages[(INCIDENT, posted["ts"])]["blocks"] == fitting  # left as it was


async def test_text_over_40000_characters_is_cut_with_a_warning(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    answer = await client.chat_postMessage(channel=INCIDENT, text="y" * (MESSAGE_TEXT_LIMIT + 7))
    assert answer["ok"]
    assert answer["response_metadata"]["warnings"] == ["message_truncated"]
    assert len(fake.messages[(INCIDENT, answer["ts"])]["text"]) == MESSAGE_TEXT_LIMIT
    assert fake.warnings == [("chat.postMessage", "message_truncated")]


@pytest.mark.parametrize(
    ("view", "where"),
    [
        (modal(title="t" * 25), "/view/title/text"),
        (modal(private_metadata="m" * 3001), "/view/private_metadata"),
        (modal(callback_id="c" * 256), "/view/callback_id"),
        ({**modal(), "blocks": [section("s")] * 101}, "/view/blocks"),
    ],
    ids=["title", "private_metadata", "callback_id", "101 blocks"],
)
async def test_a_modal_over_a_documented_limit_is_invalid_arguments(
    client: AsyncWebClient, fake: FakeSlack, view: Json, where: str
) -> None:
    fake.issue_trigger("trig.1")
    data = await refused(client.views_open(trigger_id="trig.1", view=view))
    assert data["error"] == "invalid_arguments"
    (message,) = data["response_metadata"]["messages"]
    assert message.startswith("[ERROR] ")
    assert message.endswith(f"[json-pointer:{where}]")
    assert (await client.views_open(trigger_id="trig.1", view=modal()))["ok"]  # not used up


async def test_a_trigger_id_opens_one_modal_within_3_seconds(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    now = [100.0]
    fake.clock = lambda: now[0]
    unknown = await refused(client.views_open(trigger_id="trig.never-sent", view=modal()))
    assert unknown["error"] == "invalid_trigger_id"
    fake.issue_trigger("trig.1")
    fake.issue_trigger("trig.2")
    now[0] += 3.0
    assert (await client.views_open(trigger_id="trig.1", view=modal()))["ok"]
    again = await refused(client.views_open(trigger_id="trig.1", view=modal()))
    assert again["error"] == "exchanged_trigger_id"
    now[0] += 0.001
    late = await refused(client.views_open(trigger_id="trig.2", view=modal()))
    assert late["error"] == "expired_trigger_id"


async def test_a_deleted_message_cannot_be_updated_and_takes_its_empty_thread(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    lonely = await client.chat_postMessage(channel=INCIDENT, text="card")
    busy = await client.chat_postMessage(channel=INCIDENT, text="card")
    await client.chat_postMessage(channel=INCIDENT, text="reply", thread_ts=busy["ts"])
    for ts in (lonely["ts"], busy["ts"]):
        fake.delete_message(INCIDENT, ts)
        gone = await refused(client.chat_update(channel=INCIDENT, ts=ts, text="new"))
        assert gone["error"] == "message_not_found"
    orphan = client.chat_postMessage(channel=INCIDENT, text="r", thread_ts=lonely["ts"])
    assert (await refused(orphan))["error"] == "thread_not_found"
    # A deleted message with replies stays as a tombstone its thread still hangs on.
    assert (await client.chat_postMessage(channel=INCIDENT, text="r", thread_ts=busy["ts"]))["ok"]


async def test_the_workspace_edit_window_closes_updates(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    now = [0.0]
    fake.clock = lambda: now[0]
    fake.edit_window = 60.0
    posted = await client.chat_postMessage(channel=INCIDENT, text="card")
    now[0] = 60.0
    assert (await client.chat_update(channel=INCIDENT, ts=posted["ts"], text="1"))["ok"]
    now[0] = 61.0
    data = await refused(client.chat_update(channel=INCIDENT, ts=posted["ts"], text="2"))
    assert data["error"] == "edit_window_closed"
    assert fake.refusals[-1] == ("chat.update", "edit_window_closed")


async def test_an_archived_channel_refuses_posts_updates_ephemerals_and_files(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    card = await client.chat_postMessage(channel=INCIDENT, text="card")
    fake.archive(INCIDENT)
    post = client.chat_postMessage(channel=INCIDENT, text="r", thread_ts=card["ts"])
    assert (await refused(post))["error"] == "is_archived"
    update = client.chat_update(channel=INCIDENT, ts=card["ts"], text="new")
    assert (await refused(update))["error"] == "is_inactive"  # "frozen, archived or deleted"
    ephemeral = client.chat_postEphemeral(channel=INCIDENT, user="U1", text="t")
    assert (await refused(ephemeral))["error"] == "is_archived"
    upload = client.files_upload_v2(channel=INCIDENT, content=b"{}", filename="b.json")
    assert (await refused(upload))["error"] == "posting_to_channel_denied"
    assert fake.messages[(INCIDENT, card["ts"])]["text"] == "card"  # left as it was


async def test_a_channel_the_bot_was_removed_from_refuses_it_until_invited(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    card = await client.chat_postMessage(channel=INCIDENT, text="card")
    fake.remove_bot(INCIDENT)
    post = client.chat_postMessage(channel=INCIDENT, text="r")
    assert (await refused(post))["error"] == "not_in_channel"
    ephemeral = client.chat_postEphemeral(channel=INCIDENT, user="U1", text="t")
    assert (await refused(ephemeral))["error"] == "not_in_channel"
    update = client.chat_update(channel=INCIDENT, ts=card["ts"], text="new")
    assert (await refused(update))["error"] == "channel_not_found"
    fake.invite_bot(INCIDENT)
    assert (await client.chat_update(channel=INCIDENT, ts=card["ts"], text="new"))["ok"]


@pytest.mark.parametrize("code", ["token_revoked", "account_inactive", "invalid_auth"])
async def test_a_refused_token_refuses_every_method_until_it_works_again(
    client: AsyncWebClient, fake: FakeSlack, code: str
) -> None:
    fake.refuse_token(code)
    for call in (
        client.chat_postMessage(channel=INCIDENT, text="t"),
        client.conversations_open(users="U1"),
        client.chat_postEphemeral(channel=INCIDENT, user="U1", text="t"),
    ):
        assert (await refused(call))["error"] == code
    fake.refuse_token(None)
    assert (await client.chat_postMessage(channel=INCIDENT, text="t"))["ok"]


async def test_a_rate_limit_is_a_429_with_retry_after_in_its_channel_only(
    client: AsyncWebClient, fake: FakeSlack
) -> None:
    fake.channels.add(OTHER_CHANNEL)
    fake.rate_limit("chat.postMessage", times=2, retry_after=30, channel=INCIDENT)
    assert (await client.chat_postMessage(channel=OTHER_CHANNEL, text="t"))["ok"]
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=INCIDENT, text="t")
    answer = caught.value.response
    assert (answer.status_code, answer["error"]) == (429, "ratelimited")
    assert answer.headers["Retry-After"] == "30"
    assert (await refused(client.chat_postMessage(channel=INCIDENT, text="t")))["ok"] is False
    assert (await client.chat_postMessage(channel=INCIDENT, text="t"))["ok"]  # used up


@pytest.mark.parametrize(
    ("error", "status", "taken"),
    [
        ("service_unavailable", 503, False),
        ("internal_error", 200, True),
        ("fatal_error", 200, True),
        ("request_timeout", 200, False),
    ],
)
async def test_a_transient_answer_takes_effect_only_when_asked(
    client: AsyncWebClient, fake: FakeSlack, error: str, status: int, taken: bool
) -> None:
    fake.fail("chat.postMessage", error, status=status, taken=taken)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=INCIDENT, text="maybe")
    assert (caught.value.response.status_code, caught.value.response["error"]) == (status, error)
    posted = [m for m in fake.messages.values() if m["text"] == "maybe"]
    assert len(posted) == (1 if taken else 0)
    assert fake.refusals == [("chat.postMessage", error)]


@pytest.mark.parametrize("page_type", ["text/html", "application/json"])
async def test_an_error_page_that_is_not_slacks_json(
    client: AsyncWebClient, fake: FakeSlack, page_type: str
) -> None:
    fake.fail("chat.postMessage", "", status=502, page_type=page_type)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel=INCIDENT, text="t")
    assert not fake.messages
    assert fake.refusals == [("chat.postMessage", "http_502")]
