"""``breakglass token issue|verify|revoke``: the operator's own scoped-token tool.

Unlike the gateway, ``token verify`` shows the precise InvalidToken reason: the person running
it holds the keys already. Revocations go to the store, keyed by jti, so the service sees them.
"""

from __future__ import annotations

import argparse
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from bot.commands.base import (
    EXIT_FAILED,
    EXIT_OK,
    STDIN,
    Command,
    Context,
    Group,
    open_store,
    read_bytes,
    read_object,
)
from engine.cst import (
    MAX_TOKEN_BYTES,
    TokenKind,
    issue_token,
    parse_token,
    revocation_record,
    verify_token,
)
from engine.errors import InputError, InvalidToken
from engine.lifecycle import Keys
from engine.ports import ChainStore, Revocation, RevocationStore
from engine.timeutil import from_epoch, iso_ms
from engine.wpc import Policy, is_plain_id, verify_wpc

_JTI = re.compile(r"^[A-Za-z0-9._~-]{1,128}\Z")
DEFAULT_REASON = "revoked by an operator (breakglass CLI)"
UNKNOWN_JOB = "unknown"


def _policy(name: str, keys: Keys) -> Policy:
    """The WPC envelope in ``name``, verified as signed by our own publisher key."""
    return verify_wpc(read_object(name, "a signed WPC envelope"), {keys.publisher.did})


async def issue(args: argparse.Namespace, ctx: Context) -> int:
    keys = ctx.keys()
    policy = _policy(args.policy, keys)
    now = ctx.now()
    issued = issue_token(
        policy,
        job_id=args.job,
        kind=TokenKind.AGENT,
        issuer=keys.issuer,
        agent_did=keys.agent.did,
        now=now,
        window_end=now + timedelta(seconds=policy.cst_max_ttl_seconds),
        jti=f"cst_{secrets.token_urlsafe(18)}",  # an operator's token: no chain to derive from
        nonce=secrets.token_urlsafe(12),
        ttl_seconds=args.ttl_seconds,
    )
    print(issued.token)
    return EXIT_OK


def _token_text(value: str) -> str:
    """The token from argv, or from stdin read as bytes: text that is not UTF-8 is refused
    as it is by every command that reads a file."""
    if value != STDIN:
        return value.strip()
    try:
        return read_bytes(STDIN, MAX_TOKEN_BYTES).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError("the token on stdin is not UTF-8 text") from None


async def _revoked_jtis(store: RevocationStore, token: str, issuer_did: str) -> set[str]:
    """The token's jti when the store has it revoked; nothing for a token that won't parse
    (verify_token then refuses it for that reason)."""
    try:
        jti = parse_token(token, {issuer_did}).get("jti")
    except InvalidToken:
        return set()
    return {jti} if isinstance(jti, str) and await store.is_revoked(jti) else set()


async def verify(args: argparse.Namespace, ctx: Context) -> int:
    keys = ctx.keys()
    policy = _policy(args.policy, keys)
    token = _token_text(args.token)
    async with open_store(ctx) as store:
        revoked = await _revoked_jtis(store, token, keys.issuer.did)
    try:
        verified = verify_token(
            token,
            trusted_issuers={keys.issuer.did},
            now=ctx.now(),
            job_id=args.job,
            policy_hash_b64u=policy.policy_hash_b64u,
            is_revoked=revoked.__contains__,
        )
    except InvalidToken as err:
        print(f"INVALID: {err.reason}" + (f": {err.detail}" if err.detail else ""))
        return EXIT_FAILED
    until = iso_ms(from_epoch(verified.expires_at_epoch))
    print(f"VALID {verified.jti} kind={verified.kind} job={args.job} until={until}")
    return EXIT_OK


async def _claims_for(store: ChainStore, jti: str, job: str | None) -> Mapping[str, Any]:
    """The stored token's claims when the store knows it, else the minimal claims a
    revocation record needs: revoking must work for any jti an operator is handed."""
    if job is not None:
        for token in await store.tokens(job):
            if token.jti == jti:
                return token.claims
    return {
        "jti": jti,
        "mission_id": job or UNKNOWN_JOB,
        "policy_hash_b64u": "",
        "token_scope_hash_b64u": "",
    }


async def revoke(args: argparse.Namespace, ctx: Context) -> int:
    if not _JTI.match(args.jti):
        raise InputError("JTI must be 1-128 characters of letters, digits and ._~-")
    if not args.reason.strip() or len(args.reason) > 200:
        raise InputError("--reason must be 1-200 characters")
    if args.job is not None and not is_plain_id(args.job):
        raise InputError("--job must be a job id: 1-128 letters, digits and ._@-")
    keys = ctx.keys()
    now = ctx.now()
    async with open_store(ctx) as store:
        claims = await _claims_for(store, args.jti, args.job)
        record = revocation_record(claims, args.reason, keys.issuer, now)
        revocation = Revocation(args.jti, str(claims["mission_id"]), now, record)
        newly = await store.revoke(revocation)
        stored = await store.revocation(args.jti)
    when = iso_ms(stored.revoked_at) if stored is not None else iso_ms(now)
    print(f"{'revoked' if newly else 'already revoked'} {args.jti} at {when}")
    return EXIT_OK


def _issue_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", metavar="ENVELOPE", required=True, help="signed WPC file")
    parser.add_argument("--job", required=True, help="the job id the policy was built for")
    parser.add_argument(
        "--ttl-seconds", type=int, metavar="S", help="lifetime (default: the policy maximum)"
    )


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token", metavar="TOKEN", help="the compact CST (- for stdin)")
    parser.add_argument("--policy", metavar="ENVELOPE", required=True, help="signed WPC file")
    parser.add_argument("--job", required=True, help="the job the token must be for")


def _revoke_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jti", metavar="JTI", help="the token's jti claim")
    parser.add_argument("--job", help="the token's job (fills the record from the store)")
    parser.add_argument("--reason", default=DEFAULT_REASON, help="why (kept in the record)")


GROUPS = (Group(("token",), "scoped tokens (CST): issue, verify, revoke"),)
COMMANDS = (
    Command(("token", "issue"), "issue an agent CST for a signed WPC", issue, _issue_arguments),
    Command(
        ("token", "verify"),
        "verify a CST for a job and policy (exit 1 with the reason code)",
        verify,
        _verify_arguments,
    ),
    Command(
        ("token", "revoke"),
        "record a signed revocation of a jti in the store (idempotent)",
        revoke,
        _revoke_arguments,
    ),
)
