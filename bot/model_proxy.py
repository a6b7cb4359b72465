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
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import hdrs, web

from adapters.llm import Delivery, HttpUpstream, InProcess, ModelUpstream, format_comment
from adapters.llm.sse import ends_event, json_value, summarize
from adapters.llm.usage import reported
from adapters.llm.withhold import REFUSED_STATUSES, withhold
from bot.proxy_admission import Admission, Admitted, Route
from bot.redaction import Redaction
from bot.scripted_model import SCRIPTED_PROVIDER, ScriptedModel
from bot.service import JobService
from engine.canonical import jcs
from engine.errors import (
    AdapterError,
    BreakGlassError,
    ConfigError,
    GatewayRefusal,
    InvalidToken,
    ModelError,
    TooLarge,
)
from engine.lifecycle import ModelCallRecorded
from engine.ports import ModelExchange
from engine.receipts import GATEWAY_RECEIPT, gateway_receipt_payload

log = logging.getLogger("breakglass.model_proxy")
CST_HEADER = "X-CST"
RECEIPT_HEADER = "X-Breakglass-Receipt-Id"
OPENROUTER_PREFIX = "openrouter/"
RECEIPT_MEMBER = "_receipt_envelope"
# How often an in-flight call looks for its token's revocation: this process's view is a
# set lookup; the store (another replica's revocation when NOTIFY is not heard) is a query.
REVOCATION_POLL_SECONDS = 0.1
STORE_POLLS = 10
# An upstream's headers the caller gets too: how long to wait before trying again (OpenAI's
# SDKs honour retry-after-ms, then Retry-After, and x-should-retry), the rate-limit state,
# and the upstream's request id. Nothing else of the upstream's is passed on.
PASSED_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-request-id",
)
PASSED_HEADER_CHARS = 200  # longer values are not passed on
# A call refused for too many in flight may come back after this long: the calls ahead of
# it are model turns, seconds each.
BUSY_RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class UpstreamConfig:
    """One OpenAI-compatible upstream. ``provider`` is what the WPC's ``Model:Provider``
    must name and what receipts record."""

    provider: str
    base_url: str  # e.g. http://127.0.0.1:8000/v1 ; the proxy posts to {base_url}/chat/completions
    api_key: str = field(default="", repr=False)
    auth_scheme: str = "Bearer"  # "Key" for the fal OpenRouter router
    read_timeout_seconds: float = 120.0

    def __post_init__(self) -> None:
        if not self.provider:
            raise ConfigError("an upstream needs a provider name")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream {self.provider}: base_url must be http(s)")
        if self.auth_scheme not in ("Bearer", "Key"):
            raise ConfigError(f"upstream {self.provider}: auth_scheme is Bearer or Key")

    def build(self) -> HttpUpstream:
        return HttpUpstream(
            self.base_url,
            self.api_key,
            scheme=self.auth_scheme,
            read_timeout=self.read_timeout_seconds,
        )


def fal_openrouter(base_url: str, key: str, provider: str = "openrouter") -> UpstreamConfig:
    """The "OpenRouter via fal" route: the fal OpenRouter router URL and a fal key."""
    return UpstreamConfig(provider, base_url, key, auth_scheme="Key")


@dataclass(frozen=True)
class ProxyConfig:
    upstream: UpstreamConfig | None = None  # None: the embedded scripted model, in-process
    openrouter: UpstreamConfig | None = None  # models named openrouter/<model> go here
    redact: tuple[str, ...] = field(default=(), repr=False)  # literal secrets
    retention: timedelta = timedelta(days=30)  # how long exact bodies are kept
    gateway_id: str = "breakglass-model-proxy"
    max_request_bytes: int = 1024 * 1024
    max_response_bytes: int = 8 * 1024 * 1024
    # Calls in flight (each may buffer both limits above): for one job, and in all.
    max_calls_per_job: int = 4
    max_calls: int = 16

    def __post_init__(self) -> None:
        if any(not isinstance(s, str) or not s for s in self.redact):
            raise ConfigError("redaction secrets must be non-empty strings")
        if self.retention <= timedelta(0):
            raise ConfigError("exchange retention must be positive")
        if self.max_calls_per_job < 1 or self.max_calls < 1:
            raise ConfigError("the proxy's bounds on calls in flight must be at least 1")

    def keys(self) -> tuple[str, ...]:
        """The upstream keys the proxy presents (withheld from every answer)."""
        upstreams = (self.upstream, self.openrouter)
        return tuple(u.api_key for u in upstreams if u is not None and u.api_key)


class CallSlots:
    """Model calls in flight, per job and in all. A call over either bound is refused at
    once, never queued: a waiting call would hold its connection and buffers all the same."""

    def __init__(self, per_job: int, total: int) -> None:
        self.per_job = per_job
        self.total = total
        self._jobs: Counter[str] = Counter()
        self._taken = 0

    def take(self, job_id: str) -> str:
        """Takes a slot for a call of ``job_id`` and returns "" (give it back when the
        call ends); or takes none and names the bound the call is over: "job" or "proxy"."""
        if self._jobs[job_id] >= self.per_job:
            return "job"
        if self._taken >= self.total:
            return "proxy"
        self._jobs[job_id] += 1
        self._taken += 1
        return ""

    def give_back(self, job_id: str) -> None:
        self._taken -= 1
        self._jobs[job_id] -= 1
        if self._jobs[job_id] <= 0:
            del self._jobs[job_id]

    def in_flight(self, job_id: str | None = None) -> int:
        return self._taken if job_id is None else self._jobs[job_id]


@dataclass
class _Exchange:
    """What passed through one forwarded call so far."""

    delivery: Delivery = field(default_factory=Delivery)  # sent: the upstream may have it
    revoked: bool = False  # cut because its token was revoked meanwhile
    status: int = 0  # 0: no answer
    content_type: str = ""  # the upstream's Content-Type
    headers: dict[str, str] = field(default_factory=dict)  # the upstream's, passed on
    stream: web.StreamResponse | None = None
    received: bytearray = field(default_factory=bytearray)
    passed_on: int = 0  # a stream: how many of the received bytes the caller was sent
    complete: bool = False
    client_gone: bool = False
    latency_ms: int = 0
    answer: object = None  # a JSON answer, parsed once for its usage and for the reply
    finished: bool = False  # a stream: ended by data: [DONE] (the documented end)
    stream_error: bool = False  # a stream: carried an error event
    usage_reported: bool = False  # the upstream reported its token counts
    withheld: bool = False  # bytes of the answer were withheld (our upstream key)


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
        self._keys = config.keys()
        self._pending: set[asyncio.Task[Any]] = set()

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
            return _refusal(err)
        job_id = caller.job.job_id
        bound = self.slots.take(job_id)  # before the body is read: nothing buffered yet
        if bound:
            limit = self.config.max_calls_per_job if bound == "job" else self.config.max_calls
            return _busy(job_id, bound, limit)
        try:
            try:
                call = await self.admission.admit_caller(caller, request.content.iter_any())
            except BreakGlassError as err:
                return _refusal(err)
            return await self._forward(request, call)
        finally:
            self.slots.give_back(job_id)

    async def _forward(self, request: web.Request, call: Admitted) -> web.StreamResponse:
        ex = _Exchange()
        t0 = time.perf_counter()
        try:
            await self._relay_unless_revoked(request, call, ex)
        except ModelError as err:
            if not ex.delivery.sent:
                log.warning("model call of %s not forwarded: %s", call.job_id, err)
                return _error(502, "UPSTREAM_UNAVAILABLE", "the model upstream failed")
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
                await self._settle(call, ex)
            raise
        ex.latency_ms = _ms_since(t0)
        envelope = await self._settle(call, ex) if ex.delivery.sent else None
        if ex.revoked:
            log.info("model call of %s cut: its token was revoked", call.job_id)
            if ex.stream is None:  # no answer after the revocation: the client is refused
                return _refusal(InvalidToken("TOKEN_REVOKED", call.jti))
        return await self._respond(request, call, ex, envelope)

    async def _relay_unless_revoked(
        self, request: web.Request, call: Admitted, ex: _Exchange
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

    async def _relay(self, request: web.Request, call: Admitted, ex: _Exchange) -> None:
        async with call.route.upstream.send(call.body, ex.delivery) as reply:
            ex.status = reply.status
            ex.headers = _passed(reply.headers)
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
        ex: _Exchange,
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
            return _error(502, "UPSTREAM_BROKE_OFF", "the model upstream broke off")
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

    # ---------------------------------------------------------------- receipting

    async def _settle(self, call: Admitted, ex: _Exchange) -> Mapping[str, Any] | None:
        """Store and receipt the exchange; a cancelled caller does not cancel the receipt.
        An answer held whole has our upstream keys withheld first, so what is hashed, kept
        and passed on never holds them."""
        self._withhold(call, ex)
        task = asyncio.ensure_future(self._receipt(call, ex))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return await asyncio.shield(task)

    def _withhold(self, call: Admitted, ex: _Exchange) -> None:
        if ex.stream is not None or not self._keys:  # a stream passed on as it arrived
            return
        withheld = withhold(ex.received, ex.status, self._keys)
        if withheld is None:
            return
        ex.received, ex.withheld = bytearray(withheld), True
        if ex.status in REFUSED_STATUSES:  # its message is not logged: it may quote the key
            log.warning(
                "the model upstream refused a call of %s (%d; its message withheld): check "
                "the proxy's credentials for %s",
                call.job_id,
                ex.status,
                call.route.provider,
            )

    async def _receipt(self, call: Admitted, ex: _Exchange) -> Mapping[str, Any] | None:
        response = bytes(ex.received)
        if ex.stream is None:
            ex.answer = json_value(response)
            counts = reported([ex.answer])
        else:
            summary = summarize(response)
            ex.finished, ex.stream_error = summary.done, summary.error
            counts = reported(summary.answers)
        ex.usage_reported = counts is not None
        tokens_in, tokens_out = counts or (0, 0)
        payload = gateway_receipt_payload(
            receipt_id=call.receipt_id,
            gateway_id=self.config.gateway_id,
            provider=call.route.provider,
            model=call.route.model,
            request_body=call.body,
            response_body=response,
            tokens_input=tokens_in,
            tokens_output=tokens_out,
            latency_ms=ex.latency_ms,
            at=call.at,
            metadata=_metadata(call, ex),
        )
        exchange = ModelExchange(call.receipt_id, call.job_id, call.body, response, call.at)
        command = ModelCallRecorded(payload, call.scope_hash)
        # The bodies go in the receipt's own transaction: one durable commit per call. No
        # idempotency key: the receipt id is new, and the exchange's row is keyed by it.
        outcome = await self.service.command(call.job_id, command, exchange=exchange)
        if not outcome.ok:
            log.warning("model receipt for %s not chained: %s", call.job_id, outcome.reason)
            await self.service.store.put_exchange(exchange)  # what passed is kept all the same
            return None
        envelope = outcome.result.get("envelope")
        if isinstance(envelope, Mapping):
            return envelope
        return await self._chained(call.job_id, call.receipt_id)

    async def _chained(self, job_id: str, receipt_id: str) -> Mapping[str, Any] | None:
        """The signed receipt as the chain holds it (newest record first)."""
        for record in reversed(await self.service.store.chain(job_id)):
            envelope = record.envelope
            if (
                envelope is not None
                and envelope.get("envelope_type") == GATEWAY_RECEIPT
                and envelope["payload"].get("receipt_id") == receipt_id
            ):
                return envelope
        return None

    # ------------------------------------------------------------------ upkeep

    async def purge_expired(self) -> int:
        """Delete kept bodies older than the retention (receipts keep their hashes).
        Whoever owns the service's timers calls this periodically."""
        before: datetime = self.service.clock() - self.config.retention
        return await self.service.store.purge_exchanges(before)

    async def drain(self) -> None:
        """Wait until every receipt being written (also of hung-up calls) is written."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        for upstream in self._upstreams:
            await upstream.close()


def add_proxy_routes(app: web.Application, proxy: ModelProxy) -> None:
    app.router.add_post("/v1/chat/completions", proxy.handle)


def _provider(config: UpstreamConfig | None) -> str:
    return config.provider if config is not None else SCRIPTED_PROVIDER


def _metadata(call: Admitted, ex: _Exchange) -> dict[str, Any]:
    """``complete``: the whole answer passed; for a stream, up to its ``data: [DONE]`` and
    without an error event (a stream cut or failed mid-answer is not complete however its
    connection ended). ``usage_reported``: false when the token counts (0) are not the
    upstream's but its silence (a stream not asked for usage, or cut before it)."""
    redaction: Redaction = call.redaction
    complete = ex.complete
    if ex.stream is not None:
        complete = complete and ex.finished and not ex.stream_error
    metadata = {
        "stream": call.stream,
        "complete": complete,
        "upstream_status": ex.status,
        "usage_reported": ex.usage_reported,
        **redaction.metadata(),
    }
    if ex.stream_error:
        metadata["stream_error"] = True
    if ex.withheld:  # the response hash is of the bytes passed on, not those received
        metadata["key_withheld"] = True
    return metadata


def _passed(headers: Mapping[str, str]) -> dict[str, str]:
    """The upstream's headers the caller gets too (``PASSED_HEADERS``), one line each."""
    lowered = {name.lower(): value for name, value in headers.items()}
    passed = {}
    for name in PASSED_HEADERS:
        value = lowered.get(name)
        if value is not None and len(value) <= PASSED_HEADER_CHARS and value.isprintable():
            passed[name] = value
    return passed


def with_member(body: bytes, parsed: dict[str, Any], name: str, value: object) -> bytes | None:
    """``body`` (the JSON object ``parsed``) with ``name: value`` added as its last member and
    its own bytes kept: re-encoding a large answer costs more than every check of the call.
    None when that cannot be done by appending: a body that is not UTF-8, or that holds the
    name already (the caller replaces it then, so the answer never carries it twice)."""
    if name in parsed or json.detect_encoding(body) != "utf-8" or body.startswith(_UTF8_BOM):
        return None
    head = body.rstrip(b" \t\r\n")[:-1]  # the object's closing brace removed
    member = json.dumps(name).encode() + b":" + jcs(value)
    return head + (b"," if parsed else b"") + member + b"}"


_UTF8_BOM = b"\xef\xbb\xbf"


def _ms_since(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "breakglass_refusal", "code": code}}
    return web.json_response(body, status=status)


def _busy(job_id: str, bound: str, limit: int) -> web.Response:
    """Too many calls in flight: refused at once, nothing read or forwarded."""
    log.info(
        "model call refused: TOO_MANY_CALLS (%s: %d in flight for the %s)", job_id, limit, bound
    )
    where = "for this job" if bound == "job" else "through this proxy"
    message = f"too many model calls in flight {where} (at most {limit}); retry when one ends"
    response = _error(429, "TOO_MANY_CALLS", message)
    response.headers[hdrs.RETRY_AFTER] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


def _refusal(err: BreakGlassError) -> web.Response:
    """Token problems stay opaque to the caller; the log keeps the precise reason."""
    if isinstance(err, InvalidToken):
        log.info("model call refused: %s", err.reason)
        return _error(401, "TOKEN_INVALID", "the scoped token was refused")
    if isinstance(err, GatewayRefusal):
        log.info("model call refused: %s (%s)", err.reason, err.detail)
        return _error(403, err.reason, err.detail or err.reason)
    if isinstance(err, TooLarge):
        log.info("model call refused: REQUEST_TOO_LARGE (%s)", err)  # the limit, no content
        return _error(413, "REQUEST_TOO_LARGE", str(err))
    if isinstance(err, AdapterError):
        log.warning("model call failed before forwarding: %s", type(err).__name__)
        return _error(503, "UNAVAILABLE", "try again")
    # The message may quote the body (a duplicate key): the log gets only its kind.
    log.info("model call refused: INVALID_REQUEST (%s)", type(err).__name__)
    return _error(400, "INVALID_REQUEST", str(err)[:200])
