"""The model proxy (the seed's clawproxy): an OpenAI-compatible ``POST /v1/chat/completions``
that authenticates the job's CST, enforces the WPC's model statements, forwards to the
configured upstream and receipts every call it forwarded.

A receipt (``gateway_receipt.v1``) hashes the exact bytes sent upstream (after redaction)
and the exact bytes received (for a stream: every byte of it, as received); those bytes
are kept in the store for the configured retention, so an auditor can match them to the
hashes. The signed receipt comes back as ``_receipt_envelope`` in a JSON answer and as a
trailing ``: receipt <json>`` comment line after a stream's last event.

A call counts as forwarded once its bytes may have reached the upstream (``Delivery``), so a
call with no answer (a read timeout, a client that hung up) is receipted too.

Calls in flight are bounded per job and in all (``CallSlots``): a call over a bound is
refused at once (429, ``TOO_MANY_CALLS``, ``Retry-After``) before its body is read, and
nothing is sent upstream. The upstream keys are withheld from every answer the proxy holds
whole (:mod:`adapters.llm.withhold`) before it is hashed, kept or passed on. A token revoked
while the upstream answers cuts the call within ``REVOCATION_POLL_SECONDS`` (the store is
asked every ``STORE_POLLS`` polls): it is receipted as incomplete, and the client gets a
refusal, or a stream that ends.

Its parts: the configuration (:mod:`bot.proxy_config`), the calls in flight
(:mod:`bot.proxy_slots`), the receipting of a call (:mod:`bot.proxy_receipts`) and the
answers the proxy makes by itself (:mod:`bot.proxy_answers`); this module is the handler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any

from aiohttp import web

from adapters.llm import InProcess, ModelUpstream, format_comment
from adapters.llm.sse import ends_event
from bot.proxy_admission import Admission, Admitted, Route
from bot.proxy_answers import error, passed_headers, refusal, with_member
from bot.proxy_config import ProxyConfig, UpstreamConfig
from bot.proxy_receipts import CallReceipts, Exchange
from bot.proxy_slots import CallSlots, busy
from bot.scripted_model import SCRIPTED_PROVIDER, ScriptedModel
from bot.service import JobService
from engine.canonical import jcs
from engine.errors import BreakGlassError, InvalidToken, ModelError

log = logging.getLogger("breakglass.model_proxy")
CST_HEADER = "X-CST"
RECEIPT_HEADER = "X-Breakglass-Receipt-Id"
OPENROUTER_PREFIX = "openrouter/"
RECEIPT_MEMBER = "_receipt_envelope"
# How often an in-flight call looks for its token's revocation: this process's view is a
# set lookup; the store (another replica's revocation when NOTIFY is not heard) is a query.
REVOCATION_POLL_SECONDS = 0.1
STORE_POLLS = 10


class ModelProxy:
    def __init__(
        self, service: JobService, config: ProxyConfig, *, scripted: ScriptedModel | None = None
    ) -> None:
        self.service = service
        self.config = config
        self._upstreams: list[ModelUpstream] = []
        default = self._upstream(config.upstream, scripted)
        routes = {"": Route(default, _provider(config.upstream), "")}
        if config.openrouter is not None:
            routes[OPENROUTER_PREFIX] = Route(
                self._upstream(config.openrouter, None), config.openrouter.provider, ""
            )
        self.admission = Admission(service, config.redact, config.max_request_bytes, routes)
        self.slots = CallSlots(config.max_calls_per_job, config.max_calls)
        self.receipts = CallReceipts(service, config.gateway_id, config.keys())

    def _upstream(
        self, config: UpstreamConfig | None, scripted: ScriptedModel | None
    ) -> ModelUpstream:
        upstream: ModelUpstream = (
            config.build() if config is not None else InProcess(scripted or ScriptedModel())
        )
        self._upstreams.append(upstream)
        return upstream

    # ------------------------------------------------------------------ handling

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            caller = await self.admission.authenticate(request.headers.get(CST_HEADER, ""))
        except BreakGlassError as err:
            return refusal(err)
        job_id = caller.job.job_id
        bound = self.slots.take(job_id)  # before the body is read: nothing buffered yet
        if bound:
            limit = self.config.max_calls_per_job if bound == "job" else self.config.max_calls
            return busy(job_id, bound, limit)
        try:
            try:
                call = await self.admission.admit_caller(caller, request.content.iter_any())
            except BreakGlassError as err:
                return refusal(err)
            return await self._forward(request, call)
        finally:
            self.slots.give_back(job_id)

    async def _forward(self, request: web.Request, call: Admitted) -> web.StreamResponse:
        ex = Exchange()
        t0 = time.perf_counter()
        try:
            await self._relay_unless_revoked(request, call, ex)
        except ModelError as err:
            if not ex.delivery.sent:
                log.warning("model call of %s not forwarded: %s", call.job_id, err)
                return error(502, "UPSTREAM_UNAVAILABLE", "the model upstream failed")
            if ex.status == 0:
                log.warning("model call of %s forwarded, no answer: %s", call.job_id, err)
            else:
                log.warning("upstream broke off a call of %s: %s", call.job_id, err)
        except ConnectionResetError:
            ex.client_gone = True
            log.info("the client of %s hung up; the upstream was cut", call.job_id)
        except asyncio.CancelledError:
            # The client hung up (handler cancelled): the upstream is cut; receipt what passed.
            log.info("a call of %s was cancelled; the upstream was cut", call.job_id)
            if ex.delivery.sent:
                ex.latency_ms = _ms_since(t0)
                await self.receipts.settle(call, ex)
            raise
        ex.latency_ms = _ms_since(t0)
        envelope = await self.receipts.settle(call, ex) if ex.delivery.sent else None
        if ex.revoked:
            log.info("model call of %s cut: its token was revoked", call.job_id)
            if ex.stream is None:  # no answer after the revocation: the client is refused
                return refusal(InvalidToken("TOKEN_REVOKED", call.jti))
        return await self._respond(request, call, ex, envelope)

    async def _relay_unless_revoked(
        self, request: web.Request, call: Admitted, ex: Exchange
    ) -> None:
        """The relay, cut (``ex.revoked``) when the call's token is revoked meanwhile."""
        relay = asyncio.ensure_future(self._relay(request, call, ex))
        watch = asyncio.ensure_future(self._until_revoked(call))
        try:
            await asyncio.wait((relay, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the client hung up: the relay has ended before it is receipted
            watch.cancel()
            relay.cancel()
            await asyncio.wait((relay, watch))
        if relay.cancelled():  # only the watch's return cancels a relay that was running
            ex.revoked = True
        else:
            relay.result()  # the relay's own failure, if any

    async def _until_revoked(self, call: Admitted) -> None:
        """Returns once the call's token is revoked."""
        polls = 0
        while True:
            await asyncio.sleep(REVOCATION_POLL_SECONDS)
            polls += 1
            try:
                durable = polls % STORE_POLLS == 0
                if await self.admission.revoked(call.job_id, call.jti, durable=durable):
                    return
            except BreakGlassError as err:  # a lookup failed (the store): the next poll asks again
                log.warning("revocation check of a call of %s failed: %s", call.job_id, err)

    async def _relay(self, request: web.Request, call: Admitted, ex: Exchange) -> None:
        async with call.route.upstream.send(call.body, ex.delivery) as reply:
            ex.status = reply.status
            ex.headers = passed_headers(reply.headers)
            ex.content_type = reply.headers.get("Content-Type") or reply.content_type
            if reply.is_stream:
                ex.stream = web.StreamResponse(
                    headers={
                        **ex.headers,
                        "Content-Type": "text/event-stream",
                        "Cache-Control": "no-cache",
                    }
                )
                ex.stream.headers[RECEIPT_HEADER] = call.receipt_id
                await ex.stream.prepare(request)
            async with aclosing(reply.chunks) as chunks:
                async for chunk in chunks:
                    ex.received += chunk
                    if len(ex.received) > self.config.max_response_bytes:
                        raise ModelError("the upstream answer is above the size limit")
                    if ex.stream is not None:
                        await ex.stream.write(chunk)  # passed on as it arrives
                        ex.passed_on = len(ex.received)
            ex.complete = True

    async def _respond(
        self,
        request: web.Request,
        call: Admitted,
        ex: Exchange,
        envelope: Mapping[str, Any] | None,
    ) -> web.StreamResponse:
        if ex.stream is not None:
            if not ex.client_gone:
                # The receipt is an event of its own: after an upstream's last event that
                # lacked its blank line, or a line cut off, it would join that event.
                tail = bytes(ex.received[max(0, ex.passed_on - 4) : ex.passed_on])
                separator = b"" if ends_event(tail) else b"\n\n"
                comment = format_comment("receipt " + jcs(envelope).decode())
                await ex.stream.write(separator + comment)
                await ex.stream.write_eof()
            return ex.stream
        if not ex.complete:
            return error(502, "UPSTREAM_BROKE_OFF", "the model upstream broke off")
        body = bytes(ex.received)
        answer = ex.answer
        headers = {**ex.headers, RECEIPT_HEADER: call.receipt_id}
        if not isinstance(answer, dict):  # passed on as it came (an HTML error page, say)
            if ex.content_type:
                headers["Content-Type"] = ex.content_type
            return web.Response(body=body, status=ex.status, headers=headers)
        spliced = with_member(body, answer, RECEIPT_MEMBER, envelope)
        if spliced is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            return web.Response(body=spliced, status=ex.status, headers=headers)
        answer[RECEIPT_MEMBER] = envelope
        return web.json_response(answer, status=ex.status, headers=headers)

    # ------------------------------------------------------------------ upkeep

    async def purge_expired(self) -> int:
        """Delete kept bodies older than the retention (receipts keep their hashes).
        Whoever owns the service's timers calls this periodically."""
        before: datetime = self.service.clock() - self.config.retention
        return await self.service.store.purge_exchanges(before)

    async def drain(self) -> None:
        """Wait until every receipt being written (also of hung-up calls) is written."""
        await self.receipts.drain()

    async def close(self) -> None:
        await self.drain()
        for upstream in self._upstreams:
            await upstream.close()


def add_proxy_routes(app: web.Application, proxy: ModelProxy) -> None:
    app.router.add_post("/v1/chat/completions", proxy.handle)


def _provider(config: UpstreamConfig | None) -> str:
    return config.provider if config is not None else SCRIPTED_PROVIDER


def _ms_since(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)
