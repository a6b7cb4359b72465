"""Ports: what the engine needs from the outside world, as Protocols and plain records.

Adapters implement these; the engine and ``bot/`` depend only on them. Records are frozen
dataclasses of JSON-able values (``Mapping[str, Any]`` documents) and aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine.tools import ToolResult

JsonDoc = Mapping[str, Any]


@dataclass(frozen=True)
class StoredJob:
    """A job as stored: its document (the engine's job as JSON) and its CAS version."""

    job_id: str
    version: int
    state: str
    document: JsonDoc


@dataclass(frozen=True)
class ChainRecord:
    """One entry of a job's event chain and the signed artifact it witnesses.

    ``seq`` is the 0-based position in the job's chain; (job_id, seq) is unique, so a chain
    can never fork. ``envelope`` is the signed receipt or record whose payload hash the event
    carries (None for events that witness nothing signed).
    """

    job_id: str
    seq: int
    event: JsonDoc
    envelope: JsonDoc | None


@dataclass(frozen=True)
class ApprovalRecord:
    job_id: str
    approver: str  # directory principal id
    chat_identity: str  # e.g. "slack:U123" or "teams:29:abc"
    decision: str  # approve | deny | withdraw
    plan_hash_b64u: str
    at: datetime
    receipt_id: str


@dataclass(frozen=True)
class TokenRecord:
    jti: str
    job_id: str
    kind: str  # agent | rollback
    claims: JsonDoc
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Revocation:
    jti: str
    job_id: str
    revoked_at: datetime
    record: JsonDoc  # the signed revocation envelope


@dataclass(frozen=True)
class JobUpdate:
    """Everything one transition writes, in one transaction, or nothing.

    Applied only when the stored version equals ``expected_version``; the new version is
    ``expected_version + 1``. ``idempotency_key`` (when given) is stored with
    ``idempotency_result`` in the same transaction and must be new. ``claim`` (a grant key,
    ``engine.grants``) is claimed for the job in the same transaction: when another job
    holds it the write raises ``GrantClaimed``; ``release_claims`` drops the job's claims.
    ``exchanges`` are stored as ``put_exchange`` would, in the same transaction: bodies
    exactly when their receipt is.
    """

    job_id: str
    expected_version: int
    state: str
    document: JsonDoc
    chain: Sequence[ChainRecord] = ()
    approvals: Sequence[ApprovalRecord] = ()
    tokens: Sequence[TokenRecord] = ()
    revocations: Sequence[Revocation] = ()
    idempotency_key: str | None = None
    idempotency_result: JsonDoc | None = None
    claim: str | None = None
    release_claims: bool = False
    exchanges: Sequence[ModelExchange] = ()  # a model call's bodies, with its receipt


@dataclass(frozen=True)
class MessageRef:
    """Where a card for a job was posted, so it can be updated in place later."""

    job_id: str
    platform: str  # slack | teams | console
    kind: str  # status | approval:<principal> | ...
    ref: JsonDoc  # platform-specific: channel + ts, conversation reference + activity id


@dataclass(frozen=True)
class OutboxItem:
    """A chat delivery not yet confirmed; delivered later when the platform is back."""

    item_id: int
    platform: str
    job_id: str
    payload: JsonDoc
    attempts: int
    not_before: datetime


@dataclass(frozen=True)
class ModelExchange:
    """The exact bytes one model call sent and received, kept for auditors."""

    receipt_id: str
    job_id: str
    request_body: bytes
    response_body: bytes
    at: datetime


# The store, one port per concern: each caller asks for only the part it uses. Every
# method is one transaction. Errors are ``StoreError``, ``ConcurrentUpdate`` (CAS lost,
# duplicate key, duplicate chain seq) or ``JobNotFound``.


class PolicyStore(Protocol):
    """Signed WPC envelopes by hash (the WPC registry)."""

    async def put_policy(self, policy_hash_b64u: str, envelope: JsonDoc) -> bool:
        """Store a signed WPC envelope; True when it was already there (idempotent)."""
        ...

    async def get_policy(self, policy_hash_b64u: str) -> JsonDoc | None: ...


class JobStore(Protocol):
    """Job documents, changed only by compare-and-set transitions (:class:`JobUpdate`)."""

    async def create_job(self, update: JobUpdate) -> StoredJob:
        """Insert a new job at version 1 (``expected_version`` must be 0)."""
        ...

    async def load_job(self, job_id: str) -> StoredJob: ...

    async def update_job(self, update: JobUpdate) -> StoredJob: ...

    async def list_jobs(self, states: Collection[str] | None = None) -> list[StoredJob]: ...

    async def list_changed(
        self, states: Collection[str], known: Mapping[str, int]
    ) -> tuple[list[str], list[StoredJob]]:
        """The ids of the jobs in ``states`` in creation order, and the jobs among them whose
        version differs from ``known[job_id]`` (as they are now, documents and all)."""
        ...

    async def page_jobs(self, limit: int, before: str | None = None) -> list[StoredJob]:
        """Up to ``limit`` jobs, newest first, after the job ``before`` (``JobNotFound`` when
        there is no such job): one page of a list, read in the database."""
        ...

    async def count_jobs(self) -> dict[str, int]:
        """Jobs by state, counted in the database (one GROUP BY)."""
        ...


class ChainStore(Protocol):
    """What a job's transitions wrote beside the document: its chain, approvals, tokens."""

    async def chain(self, job_id: str) -> list[ChainRecord]: ...

    async def approvals(self, job_id: str) -> list[ApprovalRecord]: ...

    async def tokens(self, job_id: str) -> list[TokenRecord]: ...


class ReplayGuard(Protocol):
    """Inbound deliveries seen before (signatures, event ids): claimed once, durably."""

    async def claim_key(self, key: str, result: JsonDoc, at: datetime) -> bool:
        """Record an inbound idempotency key; False when it was already claimed."""
        ...


class IdempotencyStore(ReplayGuard, Protocol):
    """Idempotency keys and the result first answered for each."""

    async def idempotent_result(self, key: str) -> JsonDoc | None: ...


class RevocationStore(Protocol):
    """Revoked tokens, keyed by jti, never by the token string."""

    async def revoke(self, revocation: Revocation) -> bool:
        """Revoke outside a job transition (CLI); True when newly revoked."""
        ...

    async def is_revoked(self, jti: str) -> bool: ...

    async def revocation(self, jti: str) -> Revocation | None: ...

    async def watch_revocations(
        self, on_revoked: Callable[[str, str], None], on_ready: Callable[[], None] | None = None
    ) -> None:
        """Call ``on_revoked(job_id, jti)`` for each revocation any replica commits, until
        cancelled (a hint for caches; returns at once where the store cannot announce)."""
        ...


class MessageRefs(Protocol):
    """Where cards were posted, so they are updated in place instead of posted twice."""

    async def put_message_ref(self, ref: MessageRef) -> None: ...

    async def message_refs(self, job_id: str, platform: str | None = None) -> list[MessageRef]: ...


class OutboxWriter(Protocol):
    """Queues a chat delivery that could not be confirmed, to be retried later."""

    async def enqueue(self, platform: str, job_id: str, payload: JsonDoc, at: datetime) -> int: ...


class Outbox(Protocol):
    """Deliveries a platform missed, claimed with a lease and confirmed or postponed."""

    async def due(
        self, platform: str, now: datetime, limit: int = 50, lease_until: datetime | None = None
    ) -> list[OutboxItem]:
        """Undelivered items whose ``not_before`` has come, oldest first.

        With ``lease_until`` the items are also claimed in the same transaction (their
        ``not_before`` moves to it), so another replica polling meanwhile skips them; an item
        whose delivery is never confirmed comes due again when the lease ends.
        """
        ...

    async def delivered(self, item_id: int) -> None: ...

    async def postpone(self, item_id: int, not_before: datetime) -> None: ...


class SnapshotStore(Protocol):
    """Tool snapshots (the Conditional Access tools): the first write wins, so a retried
    snapshot never overwrites the original."""

    async def save_snapshot(self, key: str, snapshot: JsonDoc) -> JsonDoc: ...

    async def load_snapshot(self, key: str) -> JsonDoc | None: ...


class ExchangeStore(Protocol):
    """The exact bodies of model calls, kept for auditors for the retention period."""

    async def put_exchange(self, exchange: ModelExchange) -> None: ...

    async def exchanges(self, job_id: str) -> list[ModelExchange]: ...

    async def purge_exchanges(self, before: datetime) -> int: ...


class LeaseStore(Protocol):
    """One replica at a time per job: a lease taken and kept by compare-and-set."""

    async def acquire_lease(self, job_id: str, owner: str, until: datetime, now: datetime) -> bool:
        """Take or renew the job's lease until ``until``: True when it is free, expired at
        ``now`` or already ``owner``'s; False when another owner holds it."""
        ...

    async def renew_leases(self, job_ids: Collection[str], owner: str, until: datetime) -> set[str]:
        """Extend to ``until`` the leases among ``job_ids`` that ``owner`` still holds, in one
        write; returns the ids renewed."""
        ...

    async def release_lease(self, job_id: str, owner: str) -> bool: ...

    async def lease_holders(self, now: datetime) -> dict[str, str]:
        """Every lease alive at ``now``: job id → owner."""
        ...

    async def reassign_leases(self, owner: str, to: str, until: datetime) -> set[str]:
        """Give every lease ``owner`` holds to ``to`` until ``until`` (a process taking over
        from its dead predecessor); returns the job ids."""
        ...


class SignInStore(Protocol):
    """Begun step-up sign-ins, so that any replica can take the callback; each is used once."""

    async def put_sign_in(self, state: str, document: JsonDoc, started: datetime) -> None: ...

    async def sign_in(self, state: str) -> tuple[JsonDoc, bool] | None:
        """The sign-in's document and whether it was used; None when unknown."""
        ...

    async def claim_sign_in(self, state: str) -> bool:
        """Mark it used: True for exactly one caller, however many replicas ask at once."""
        ...

    async def purge_sign_ins(self, before: datetime) -> int: ...


class PacingSlots(Protocol):
    """Request slots every replica draws from, so N replicas together keep one rate limit of
    an outside system (Conditional Access: 1 request/s per tenant)."""

    async def reserve_slot(self, bucket: str, interval: timedelta, now: datetime) -> datetime:
        """Reserve the first free slot of ``bucket`` at or after ``now`` and return when it
        starts (the caller waits until then); the next slot starts ``interval`` later.

        Slots are reckoned on the callers' clocks, as leases are: replicas must agree on the
        time (NTP) to well under ``interval``. A bucket booked implausibly far ahead of ``now``
        (a clock set back) may start afresh. Does not check that the caller then sends."""
        ...


class Housekeeping(Protocol):
    """Cheap questions and clean-ups the service asks of the store."""

    async def purge_keys(self, before: datetime) -> int:
        """Forget idempotency keys created before ``before``; how many went."""
        ...


class Store(
    PolicyStore,
    JobStore,
    ChainStore,
    IdempotencyStore,
    RevocationStore,
    MessageRefs,
    OutboxWriter,
    Outbox,
    SnapshotStore,
    ExchangeStore,
    LeaseStore,
    SignInStore,
    PacingSlots,
    Housekeeping,
    Protocol,
):
    """Durable state: every port above, as the SQL store implements them."""


@dataclass(frozen=True)
class MarkedGrant:
    """A grant found in the tenant that carries a breakglass job marker."""

    job_id: str
    rollback_tool: str
    arguments: JsonDoc
    description: str
    deployment: str | None = None  # the deployment that marked it (None: unmarked, older)


class ToolPort(Protocol):
    """Executes privileged tools by name. Raises ``GraphError`` (or another ``AdapterError``)
    when the outside system fails; returns ``ToolResult`` otherwise."""

    async def call(self, tool_name: str, arguments: JsonDoc) -> ToolResult: ...

    async def find_marked_grants(self) -> list[MarkedGrant]:
        """Every grant in the tenant that carries a breakglass job marker (for reconciliation)."""
        ...


@dataclass(frozen=True)
class ChatEvent:
    """Something people in the incident channel should see about a job.

    ``kind`` is one of the lifecycle effect kinds that concern people (ask_approvers,
    update_cards, announce, countdown_notice, finish, escalate) or ``receipts`` for new
    chain records. ``job`` is the job document; adapters render it with ``cards``.
    """

    kind: str
    job: JsonDoc
    detail: JsonDoc
    records: Sequence[ChainRecord]
    now: datetime
    bundle: JsonDoc | None = None


class ChatPort(Protocol):
    """One chat platform (slack, teams, console). Raises ``ChatError`` when it could not
    deliver; the caller keeps the event and tries again later."""

    platform: str

    async def deliver(self, event: ChatEvent) -> None: ...


class ExecutorPort(Protocol):
    """Runs the privileged step for a job through the gateway, with the job's agent token."""

    async def start(self, job: JsonDoc, token: str) -> None: ...

    async def refresh(self, job: JsonDoc, token: str) -> None:
        """Continue with a new token (after an approved extension)."""
        ...

    async def halt(self, job_id: str) -> None:
        """Stop the agent; return once it has stopped and its in-flight calls settled."""
        ...
