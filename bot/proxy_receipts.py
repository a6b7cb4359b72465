"""The receipting of a forwarded model call: what passed through it (``Exchange``), the
upstream keys withheld from an answer held whole, the exact bodies kept, and the signed
``gateway_receipt.v1`` chained to the job (``CallReceipts``).

Apart from :mod:`bot.model_proxy` (the HTTP handler) because a receipt outlives its call: a
caller that hung up does not cancel it, and the proxy waits for the receipts being written
before it closes (``drain``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.llm import Delivery
from adapters.llm.sse import json_value, summarize
from adapters.llm.usage import reported
from adapters.llm.withhold import REFUSED_STATUSES, withhold
from bot.proxy_admission import Admitted
from bot.redaction import Redaction
from bot.service import JobService
from engine.lifecycle import ModelCallRecorded
from engine.ports import ModelExchange
from engine.receipts import GATEWAY_RECEIPT, gateway_receipt_payload

log = logging.getLogger("breakglass.model_proxy")


@dataclass
class Exchange:
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


class CallReceipts:
    """Receipts of the calls a proxy forwarded, and the ones still being written."""

    def __init__(self, service: JobService, gateway_id: str, keys: tuple[str, ...]) -> None:
        self.service = service
        self.gateway_id = gateway_id
        self._keys = keys
        self._pending: set[asyncio.Task[Any]] = set()

    async def settle(self, call: Admitted, ex: Exchange) -> Mapping[str, Any] | None:
        """Store and receipt the exchange; a cancelled caller does not cancel the receipt.
        An answer held whole has our upstream keys withheld first, so what is hashed, kept
        and passed on never holds them."""
        self._withhold(call, ex)
        task = asyncio.ensure_future(self._receipt(call, ex))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return await asyncio.shield(task)

    def _withhold(self, call: Admitted, ex: Exchange) -> None:
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

    async def _receipt(self, call: Admitted, ex: Exchange) -> Mapping[str, Any] | None:
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
            gateway_id=self.gateway_id,
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

    async def drain(self) -> None:
        """Wait until every receipt being written (also of hung-up calls) is written."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def _metadata(call: Admitted, ex: Exchange) -> dict[str, Any]:
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
