"""``breakglass evidence secret|token``: two of the seed's questions, answered from evidence.

``evidence secret --job ID``: did the bytes sent to or received from the model contain the
secret? The secret is read from stdin or ``--secret-file``, never from the command line
(argv is visible to every user of the machine and lands in shell history). Exit 0 when it
was not in any call and every call's bytes were checked; 1 when it was seen, or when some
call's bytes are gone (past retention) so nobody can say; 2 when there is no answer to give
(no such job, an unreadable secret, a store that cannot be opened or read).

``evidence token BUNDLE``: each CST of the bundle with the job and WPC hash it is bound to,
and whether the bundle proves it. Exit 0 when every token (or the one given) is proven.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from bot.commands.base import (
    EXIT_FAILED,
    EXIT_OK,
    STDIN,
    Command,
    Context,
    Group,
    json_flag,
    open_store,
    print_json,
    read_bytes,
)
from bot.commands.verify import bundle_arguments, read_bundle
from cards.text import clean_line, reveal_hidden
from engine.cst import MAX_TOKEN_BYTES, parse_token
from engine.errors import InputError, InvalidToken
from engine.receipts import GATEWAY_RECEIPT, content_hash
from engine.verify import verify_bundle
from engine.verify.bindings import token_bindings
from engine.verify.exposure import SecretAnswer, answer

MAX_SECRET_BYTES = 64 * 1024
MAX_SHOWN_ID = 200


def _read_secret(name: str) -> bytes:
    raw = read_bytes(name, MAX_SECRET_BYTES)
    if len(raw) > MAX_SECRET_BYTES:
        raise InputError(f"the secret is over {MAX_SECRET_BYTES} bytes")
    return raw


async def secret(args: argparse.Namespace, ctx: Context) -> int:
    data = _read_secret(args.secret_file)
    async with open_store(ctx, create=False) as store:
        records = await store.chain(args.job)
        kept = await store.exchanges(args.job)
    if not records:
        # argv is untrusted: escape sequences in it must not reach the terminal
        job = clean_line(args.job, MAX_SHOWN_ID)
        raise InputError(f"no job {job} in this store: nothing to answer from")
    receipts = [
        r.envelope
        for r in records
        if r.envelope is not None and r.envelope.get("envelope_type") == GATEWAY_RECEIPT
    ]
    result = answer(args.job, data, receipts, kept)
    if args.json:
        print_json(result.to_json())
    else:
        print(render_secret(result))
    return EXIT_OK if result.verdict == "not_seen" else EXIT_FAILED


def render_secret(result: SecretAnswer) -> str:
    lines = [f"job {result.job_id}: {len(result.calls)} model call(s) receipted"]
    for call in result.calls:
        where = f" ({' and '.join(call.where)})" if call.where else ""
        lines.append(
            f"  {call.at}  {call.route}  receipt {call.receipt_hash_b64u}  {call.status}{where}"
        )
    gone = len([c for c in result.unknown if c.status == "absent"])
    if gone:
        lines.append(
            f"{gone} call(s) have no kept bytes (past the retention period, or never stored): "
            "what they carried cannot be checked"
        )
    if any(c.status == "mismatch" for c in result.calls):
        lines.append("some kept bytes do not match their receipt's hashes: they prove nothing")
    lines.append(
        {
            "seen": "ANSWER: YES, the model saw the secret (receipts listed above)",
            "not_seen": "ANSWER: NO, the secret is in none of the model calls' bytes",
            "unknown": "ANSWER: UNKNOWN, not in the kept bytes, but some calls' bytes are gone",
        }[result.verdict]
    )
    return reveal_hidden("\n".join(lines))  # the job id and routes are text from others


def _presented_claims(name: str | None, issuers: frozenset[str]) -> Mapping[str, Any] | None:
    if name is None:
        return None
    try:
        raw = read_bytes(name, MAX_TOKEN_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"the token in {name} is not UTF-8 text") from None
    try:
        return parse_token(raw.strip(), issuers)
    except InvalidToken as err:
        raise InputError(f"the token was refused: {err.reason}") from None


async def token(args: argparse.Namespace, ctx: Context) -> int:
    bundle, trust = read_bundle(args, ctx)
    report = verify_bundle(bundle, trust)
    rows = token_bindings(bundle, report, trust)
    claims = _presented_claims(args.token_file, trust.token_issuer_dids)
    if claims is not None:
        rows = [r for r in rows if r["jti"] == claims.get("jti")]
        for row in rows:  # the presented token is exactly the one the bundle witnessed
            row["checks"]["presented_token_matches"] = _claims_hash(row, bundle, claims)
            row["proven"] = all(row["checks"].values())
    if args.json:
        print_json({"bundle_valid": report.valid, "tokens": rows})
    else:
        print(render_tokens(rows, report.valid, report.reason_codes))
    return EXIT_OK if rows and all(r["proven"] for r in rows) else EXIT_FAILED


def _claims_hash(
    row: Mapping[str, Any], bundle: Mapping[str, Any], claims: Mapping[str, Any]
) -> bool:
    events = bundle.get("payload", {}).get("event_chain", [])
    return any(
        e.get("event_hash_b64u") == row["issue_event_hash_b64u"]
        and e.get("payload_hash_b64u") == content_hash(claims)
        for e in events
    )


def render_tokens(rows: list[dict[str, Any]], valid: bool, codes: list[str]) -> str:
    lines = [f"bundle      {'VALID' if valid else 'INVALID: ' + ', '.join(codes)}"]
    if not rows:
        lines.append("no matching token in this bundle: nothing is proven")
    for row in rows:
        failed = [name for name, ok in row["checks"].items() if not ok]
        lines += [
            f"token       {row['jti']} ({row['kind']})",
            f"  job       {row['job_id']}  (bundle: {row['bundle_job_id']})",
            f"  WPC hash  {row['wpc_hash_b64u']}  ({row['policy_id'] or 'not in the bundle'})",
            f"  scope     {row['token_scope_hash_b64u']}",
            f"  window    {row['issued_at']} to {row['expires_at']}, "
            f"revoked {row['revoked_at'] or 'never'}",
            f"  issued at event {row['issue_event_hash_b64u'] or '(none)'}",
            "  PROVEN" if row["proven"] else "  NOT PROVEN: " + ", ".join(failed),
        ]
    return reveal_hidden("\n".join(lines))  # a bundle's ids are text from whoever made it


def _secret_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", required=True, metavar="ID", help="the job to answer for")
    parser.add_argument(
        "--secret-file",
        default=STDIN,
        metavar="FILE",
        help="read the secret from FILE (default: stdin); never give it on the command line",
    )
    json_flag(parser, "the answer")


def _token_arguments(parser: argparse.ArgumentParser) -> None:
    bundle_arguments(parser)
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="a CST (JWS) to check against the bundle (- for stdin); tokens never go in argv",
    )
    json_flag(parser, "the bindings")


GROUPS = (Group(("evidence",), "answer questions from the evidence (secret, token)"),)
COMMANDS = (
    Command(
        ("evidence", "secret"),
        "did the model see a secret? (secret on stdin or --secret-file; exit 0 no, 1 yes or "
        "unknown, 2 unusable input or store)",
        secret,
        _secret_arguments,
    ),
    Command(
        ("evidence", "token"),
        "the CST <-> job <-> WPC-hash bindings a bundle proves (exit 0 all proven)",
        token,
        _token_arguments,
    ),
)
