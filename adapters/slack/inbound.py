"""What people do in Slack: the slash command, app mentions, the request modal, button clicks.

Each listener acks at once (Slack wants an answer within 3 s) and hands the work to a task;
the only work before the ack is pure (parsing, and a dry run of the request so the modal can
show why it was refused). Job commands go through ``adapters.chat_actions`` and the
``JobCommands`` port, which make them durable and idempotent; refusals come back to the person
as an ephemeral line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from adapters import chat_actions
from adapters.entra_signin.jobs import sign_in_target
from adapters.slack import commands, origin
from adapters.slack.binding import binding_problem, recorded_workspace
from adapters.slack.commands import Parsed, Verb
from adapters.slack.config import PLATFORM, SlackConfig, chat_identity
from adapters.slack.web import SlackApi
from cards import forms
from cards import slack as render
from cards.actions import CardAction, CardActionError, from_slack
from cards.actions import Verb as CardVerb
from cards.views import RequestFormView, RequestValues
from engine import lifecycle
from engine.chat_ports import ChatPorts
from engine.errors import (
    BreakGlassError,
    CommandRefused,
    JobNotFound,
    StoreError,
    StrictJsonError,
    describe,
)
from engine.identity import Directory
from engine.job import Actor
from engine.outcome import Outcome

log = logging.getLogger("breakglass.slack")
Spawn = Callable[[Awaitable[Any]], None]
_ANY_ACTION = re.compile(r".*")
# Our own words: the modal's banner shows them as they are (cards escape them as user text,
# so no emoji code here; the ephemeral reply adds its own).
NOT_A_REQUESTER_TEXT = "You are not in the requester group; nothing was done."
NOT_A_REQUESTER = f":no_entry: {NOT_A_REQUESTER_TEXT}"
FORM_ORIGIN_UNKNOWN = (
    "This form was not opened by breakglass for you in one of the incident channels; "
    "open it again with the slash command."
)
UNSTORABLE = "contains a character that cannot be stored (a broken emoji?); please retype it"
_TEXT_FIELDS = (
    forms.Field.PRINCIPAL,
    forms.Field.RESOURCE,
    forms.Field.JUSTIFICATION,
    forms.Field.TICKET,
)


def _str(doc: object, *path: str) -> str:
    """``doc[path0][path1]…`` when it is a string, else ""."""
    for key in path:
        doc = doc.get(key) if isinstance(doc, Mapping) else None
    return doc if isinstance(doc, str) else ""


def refusal_text(outcome: Outcome) -> str:
    line = commands.echo_line(describe(CommandRefused(outcome.reason, outcome.detail)))
    if outcome.result.get("state"):  # refused, and the job moved (TARGET_BUSY ends it)
        return f":no_entry: Refused: {line}"
    return f":no_entry: Refused, nothing was changed: {line}"


class Inbound:
    def __init__(self, config: SlackConfig, ports: ChatPorts, api: SlackApi, spawn: Spawn) -> None:
        self.config = config
        self.jobs = ports.jobs
        self.store = ports.store
        self.limits = ports.limits
        self.clock = ports.clock
        self.api = api
        self.spawn = spawn
        self.directory: Directory = config.directory()

    def register(self, app: AsyncApp) -> None:
        app.command(self.config.command)(self.on_command)
        app.view(forms.REQUEST_CALLBACK_ID)(self.on_request_submitted)
        app.action(_ANY_ACTION)(self.on_action)
        app.event("app_mention")(self.on_mention)

    def actor(self, user: str, display: str = "") -> Actor:
        return self.directory.resolve(chat_identity(user), display)

    # ------------------------------------------------------------- slash command

    async def on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        user, channel = _str(body, "user_id"), _str(body, "channel_id")
        parsed = commands.parse(_str(body, "text"))
        if channel not in self.config.incident_channels:
            log.info("refused %s from %s: not an incident channel", self.config.command, user)
            await ack(text=commands.NOT_AN_INCIDENT_CHANNEL, response_type="ephemeral")
        elif parsed.verb in (Verb.HELP, Verb.INVALID):
            text = commands.help_text(self.config.command, parsed.problem)
            await ack(text=text, response_type="ephemeral")
        elif parsed.verb is Verb.REQUEST and not self.config.may_request(user):
            log.info("refused request by %s: not a requester", user)
            await ack(text=NOT_A_REQUESTER, response_type="ephemeral")
        else:
            await ack()
            self.spawn(self._run(parsed, channel, user, _str(body, "user_name"), body))

    async def _run(
        self, parsed: Parsed, channel: str, user: str, display: str, body: Mapping[str, Any]
    ) -> None:
        if parsed.verb is Verb.REQUEST:
            await self.open_form(_str(body, "trigger_id"), channel, user)
        elif parsed.verb is Verb.STATUS:
            await self.status(channel, user)
        elif parsed.verb is Verb.KILL:
            await self.kill(channel, user, display, parsed.job_id)

    # --------------------------------------------------------------- app mention

    async def on_mention(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self.spawn(self._mention(body))

    async def _mention(self, body: Mapping[str, Any]) -> None:
        event_id = _str(body, "event_id")
        # Slack re-delivers an event it thinks we missed (X-Slack-Retry-Num): act once.
        if event_id and not await self._claim(f"slack:event:{event_id}"):
            log.info("duplicate delivery of event %s ignored", event_id[:40])
            return
        user, channel = _str(body, "event", "user"), _str(body, "event", "channel")
        parsed = commands.parse(commands.strip_mentions(_str(body, "event", "text")))
        if channel not in self.config.incident_channels:
            await self.tell(channel, user, commands.NOT_AN_INCIDENT_CHANNEL)
        elif parsed.verb is Verb.REQUEST:
            await self.tell(channel, user, f"Use `{self.config.command} request` to open the form.")
        elif parsed.verb in (Verb.STATUS, Verb.KILL):
            await self._run(parsed, channel, user, "", body)
        else:
            await self.tell(channel, user, commands.help_text(self.config.command, parsed.problem))

    async def _claim(self, key: str) -> bool:
        return await self.store.claim_key(key, {}, self.clock())

    # ------------------------------------------------------------ status and kill

    async def status(self, channel: str, user: str) -> None:
        jobs = await self.jobs.open_jobs()
        await self.tell(channel, user, commands.status_text(jobs, self.clock(), channel))

    async def kill(self, channel: str, user: str, display: str, job_id: str | None) -> None:
        if job_id is None:
            candidates = commands.killable(await self.jobs.open_jobs(), channel)
            if len(candidates) != 1:
                await self.tell(channel, user, commands.kill_which(candidates))
                return
            job_id = candidates[0].job_id
        elif await self._of_another_channel(job_id, channel):
            log.warning(
                "refused kill of %s by %s in %s: another channel's job", job_id, user, channel
            )
            await self.tell(channel, user, commands.not_this_channel(job_id))
            return
        actor = self.actor(user, display)
        outcome = await self._act(CardAction(CardVerb.KILL, job_id), actor, channel, user)
        if outcome is not None and outcome.ok:
            await self.tell(channel, user, commands.kill_started(job_id))

    async def _of_another_channel(self, job_id: str, channel: str) -> bool:
        """Whether the job's card lives elsewhere: "anyone in the channel may stop a job"
        means this channel's jobs, not every incident channel's."""
        try:
            job = await self.jobs.peek(job_id)
        except JobNotFound:
            return False  # _act answers "No job …"
        return (job.channel.get("platform"), job.channel.get("channel")) != (PLATFORM, channel)

    # -------------------------------------------------------------- button clicks

    async def on_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        self.spawn(self._click(body))

    async def _click(self, body: Mapping[str, Any]) -> None:
        user = _str(body, "user", "id")
        channel = _str(body, "container", "channel_id") or _str(body, "channel", "id")
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else {}
        if _str(first, "action_id") == render.LINK_ACTION:
            return  # a link button: the browser opened it, nothing to do here
        try:
            action = from_slack(_str(first, "action_id"), _str(first, "value"))
        except CardActionError as err:
            log.warning("refused click by %s: %s", user, err)
            await self.tell(channel, user, ":no_entry: That button is not one breakglass knows.")
            return
        if await self._unbound(action, body, channel, user):
            return
        await self._act(action, self.actor(user, _str(body, "user", "name")), channel, user)

    async def _unbound(
        self, action: CardAction, body: Mapping[str, Any], channel: str, user: str
    ) -> bool:
        """Refuse (and log) a click not from the job's workspace or on the bot's message."""
        try:
            job = await self.jobs.peek(action.job_id)
        except JobNotFound:
            return False  # _act answers "No job …"
        problem = await binding_problem(self.store, job, body)
        if problem:
            log.warning("refused click by %s on %s: %s", user, job.job_id, problem)
            await self.tell(channel, user, f":no_entry: Refused, nothing was changed: {problem}.")
        return bool(problem)

    async def _act(
        self, action: CardAction, actor: Actor, channel: str, user: str
    ) -> Outcome | None:
        try:
            outcome = await chat_actions.act(self.jobs, action, actor)
        except JobNotFound:
            await self.tell(channel, user, f"No job {commands.echo(action.job_id)}.")
            return None
        except StoreError as err:  # the store's own text, with its database, is logged
            log.warning("%s on %s by %s not recorded: %s", action.verb, action.job_id, user, err)
            await self.tell(channel, user, describe(err))
            return None
        url = sign_in_target(outcome)
        if url is not None:
            await self.tell_card(channel, user, render.step_up_message(action.job_id, url))
        elif not outcome.ok:
            log.info("refused %s on %s by %s: %s", action.verb, action.job_id, user, outcome.reason)
            await self.tell(channel, user, refusal_text(outcome))
        return outcome

    # --------------------------------------------------------------- the request

    async def open_form(self, trigger_id: str, channel: str, user: str) -> None:
        view = self._form(context=origin.seal(self.config.signing_secret, channel, user))
        try:
            await self.api.open_view(trigger_id, render.request_modal(view))
        except BreakGlassError as err:
            log.warning("request form for %s not opened: %s", user, err)
            await self.tell(channel, user, "The request form did not open; please try again.")

    def _form(
        self, context: str, values: RequestValues | None = None, error: str | None = None
    ) -> RequestFormView:
        most = self.limits.max_minutes
        return RequestFormView(
            max_duration_minutes=most, values=values, error=error, context=context
        )

    async def on_request_submitted(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        view: Mapping[str, Any] = body["view"] if isinstance(body.get("view"), dict) else {}
        user, context = _str(body, "user", "id"), _str(view, "private_metadata")
        try:
            values = _values(view)
        except forms.RequestFormError as err:
            log.info("request form by %s refused: %s", user, err)
            await ack(**_field_error(err, self._form(context)))
            return
        channel, problem = self._origin(context, user)
        request = chat_actions.request_from_values(
            values,
            self.actor(user, _str(body, "user", "name")),
            self.config.tenant_id,
            {"platform": PLATFORM, "channel": channel, **recorded_workspace(self.config, body)},
        )
        problem = problem or self._dry_run(request)
        if problem:
            log.info("request form by %s refused: %s", user, problem)
            modal = render.request_modal(self._form(context, values, problem))
            await ack(response_action="update", view=modal)
            return
        await ack()
        view_id = _str(view, "id")  # one modal submits once, however often it is re-sent
        self.spawn(
            self._submit(request, f"slack:view:{view_id}" if view_id else None, channel, user)
        )

    def _origin(self, context: str, user: str) -> tuple[str, str]:
        """The channel the form was opened in, and why it may not be requested from ("")."""
        try:
            channel = origin.opened_in(self.config.signing_secret, context, user)
        except origin.OriginError as err:
            log.warning("request form by %s refused: %s", user, err)
            return "", FORM_ORIGIN_UNKNOWN
        if channel not in self.config.incident_channels:
            return channel, commands.NOT_AN_INCIDENT_CHANNEL
        if not self.config.may_request(user):
            return channel, NOT_A_REQUESTER_TEXT
        return channel, ""

    def _dry_run(self, request: lifecycle.Request) -> str:
        """The engine's verdict on the request, without storing anything."""
        try:
            self.jobs.check_request(request)
        except CommandRefused as err:
            return describe(err)
        except StrictJsonError:  # a text the chain cannot hold that no field check caught
            return f"The request {UNSTORABLE}."
        return ""

    async def _submit(
        self, request: lifecycle.Request, key: str | None, channel: str, user: str
    ) -> None:
        outcome = await self.jobs.request(request, key=key)
        if not outcome.ok:
            log.info("request by %s refused: %s", user, outcome.reason)
            await self.tell(channel, user, refusal_text(outcome))

    # -------------------------------------------------------------------- replies

    async def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral line to ``user``; a failure is logged (no one else waits for it)."""
        await self.tell_card(channel, user, {"text": text})

    async def tell_card(self, channel: str, user: str, message: Mapping[str, Any]) -> None:
        """An ephemeral message (text, optional blocks) only ``user`` sees."""
        if not channel or not user:
            return
        try:
            await self.api.ephemeral(channel, user, message["text"], message.get("blocks"))
        except BreakGlassError as err:
            log.warning("ephemeral reply to %s not delivered: %s", user, err)


def _state(view: Mapping[str, Any]) -> object:
    state = view.get("state")
    return state.get("values") if isinstance(state, Mapping) else None


def _values(view: Mapping[str, Any]) -> RequestValues:
    """The typed values; raises ``RequestFormError`` naming the field at fault."""
    values = forms.request_from_slack(_state(view))
    for field in _TEXT_FIELDS:
        try:  # a lone surrogate (JSON-escaped) parses, but no signed record can hold it
            str(getattr(values, field.value)).encode("utf-8")
        except UnicodeEncodeError:
            raise forms.RequestFormError(f"{field.value} {UNSTORABLE}") from None
    return values


def _field_of(message: str) -> str | None:
    """The modal block a form error is about (its message starts with the field id)."""
    if message == "unknown template":
        return forms.Field.TEMPLATE.value
    return next((f.value for f in forms.Field if message.startswith(f"{f.value} ")), None)


def _field_error(err: forms.RequestFormError, form: RequestFormView) -> dict[str, Any]:
    """``response_action: errors`` on the field the error names, else the form with a banner."""
    message = str(err)
    block = _field_of(message)
    if block == forms.Field.DURATION.value:  # the bounds this form has, not the parser's
        least, most = forms.min_minutes(form), forms.max_minutes(form)
        message = f"{block} must be a whole number from {least} to {most}"
    if block is not None:
        return {"response_action": "errors", "errors": {block: message[:150]}}
    banner = RequestFormView(
        max_duration_minutes=form.max_duration_minutes, error=message, context=form.context
    )
    return {"response_action": "update", "view": render.request_modal(banner)}
