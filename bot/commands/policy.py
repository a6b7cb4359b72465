"""``breakglass policy template|sign|verify|hash``: build, sign and check WPCs offline."""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from bot.commands.base import (
    EXIT_FAILED,
    EXIT_OK,
    Command,
    Context,
    Group,
    Runner,
    load_trust,
    print_json,
    read_object,
)
from engine.errors import InputError, VerificationError
from engine.policy import Policy
from engine.wpc import PlanRequest, build_wpc, policy_hash, sign_wpc, verify_wpc

# The engine requires both; the CLI says plainly that none was given rather than inventing one.
NO_JUSTIFICATION = "none given (breakglass CLI)"
NO_TICKET = "none"

# template name -> (--flag, WPC target name) for each target it needs
TARGET_FLAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "entra-role": (
        ("tenant", "tenant_id"),
        ("principal", "principal_id"),
        ("role", "role_definition_id"),
    ),
    "ca-exclusion": (("tenant", "tenant_id"), ("policy", "policy_id"), ("group", "group_id")),
}
_TARGET_HELP = {
    "tenant": "Entra tenant id",
    "principal": "user (object id) who gets the role",
    "role": "role definition id",
    "policy": "Conditional Access policy id",
    "group": "group to exclude from the policy",
}


def new_job_id() -> str:
    return f"job-{secrets.token_hex(6)}"


def _template_arguments(template: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        for flag, _target in TARGET_FLAGS[template]:
            parser.add_argument(f"--{flag}", required=True, help=_TARGET_HELP[flag])
        parser.add_argument("--minutes", type=int, required=True, help="length of the window")
        parser.add_argument("--requester", required=True, help="directory principal asking")
        parser.add_argument("--justification", default=NO_JUSTIFICATION, help="why")
        parser.add_argument("--ticket", default=NO_TICKET, help="incident or change ticket")
        parser.add_argument("--job", help="job id (default: a new random id)")

    return add


def _template_runner(template: str) -> Runner:
    async def run(args: argparse.Namespace, ctx: Context) -> int:
        targets = {target: getattr(args, flag) for flag, target in TARGET_FLAGS[template]}
        request = PlanRequest(
            template=template,
            targets=targets,
            minutes=args.minutes,
            requester=args.requester,
            justification=args.justification,
            ticket=args.ticket,
            job_id=args.job or new_job_id(),
        )
        print_json(build_wpc(request, ctx.keys().publisher.did))
        return EXIT_OK

    return run


def _is_envelope(doc: Mapping[str, Any]) -> bool:
    return "envelope_version" in doc and isinstance(doc.get("payload"), Mapping)


def _wpc_payload(name: str, doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """``doc`` when it is a WPC payload; else it is the wrong file (exit 2)."""
    try:
        Policy.from_payload(doc)
    except VerificationError as err:
        raise InputError(f"{name}: {err.code}: {err.message}") from None
    return doc


async def sign(args: argparse.Namespace, ctx: Context) -> int:
    payload = read_object(args.file, "a WPC payload")
    if _is_envelope(payload):
        raise InputError(f"{args.file} is already a signed envelope; sign a payload")
    _wpc_payload(args.file, payload)
    publisher = ctx.keys().publisher
    if payload.get("issuer_did") != publisher.did:
        raise InputError(f"{args.file} names another issuer_did than the publisher key")
    print_json(sign_wpc(payload, publisher, ctx.now()))
    return EXIT_OK


async def verify(args: argparse.Namespace, ctx: Context) -> int:
    envelope = read_object(args.file, "a signed WPC envelope")
    trust = load_trust(args.trust, ctx)
    try:
        policy = verify_wpc(envelope, trust.registry_publisher_dids)
    except VerificationError as err:
        print(f"INVALID: {err.code}: {err.message}")
        return EXIT_FAILED
    print(f"VALID {policy.policy_hash_b64u} {policy.payload['policy_id']}")
    return EXIT_OK


async def hash_(args: argparse.Namespace, _ctx: Context) -> int:
    doc = read_object(args.file, "a WPC payload or envelope")
    payload = _wpc_payload(args.file, doc["payload"] if _is_envelope(doc) else doc)
    print(policy_hash(payload))
    return EXIT_OK


def _file_argument(what: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE", help=f"{what} (JSON; - for stdin)")

    return add


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    _file_argument("the signed WPC envelope")(parser)
    parser.add_argument("--trust", metavar="F", help="trust file (default: the local keys')")


GROUPS = (
    Group(("policy",), "Work Policy Contracts: build, sign, verify, hash"),
    Group(("policy", "template"), "print a WPC payload built from a template"),
)
COMMANDS = (
    Command(
        ("policy", "template", "entra-role"),
        "activate an Entra directory role for a principal",
        _template_runner("entra-role"),
        _template_arguments("entra-role"),
    ),
    Command(
        ("policy", "template", "ca-exclusion"),
        "exclude a group from a Conditional Access policy",
        _template_runner("ca-exclusion"),
        _template_arguments("ca-exclusion"),
    ),
    Command(
        ("policy", "sign"),
        "sign a WPC payload with the publisher key; print the envelope",
        sign,
        _file_argument("the WPC payload"),
    ),
    Command(
        ("policy", "verify"),
        "verify a signed WPC envelope (exit 1 with the reason code)",
        verify,
        _verify_arguments,
    ),
    Command(
        ("policy", "hash"),
        "print policy_hash_b64u of a payload or of an envelope's payload",
        hash_,
        _file_argument("a WPC payload or envelope"),
    ),
)
