"""``breakglass verify BUNDLE``: offline verification of a proof bundle.

Exit 0 valid, 1 invalid (the reason codes are printed), 2 when the input cannot be checked
at all (unreadable, not JSON, not an object, a bad trust file).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from bot.commands import report
from bot.commands.base import (
    EXIT_FAILED,
    EXIT_OK,
    MAX_BUNDLE_BYTES,
    Command,
    Context,
    json_flag,
    load_trust,
    print_json,
    read_object,
)
from engine.verify import PROFILE_BREAKGLASS, PROFILE_CORE, Trust, verify_bundle


async def run(args: argparse.Namespace, ctx: Context) -> int:
    bundle, trust = read_bundle(args, ctx)
    result = verify_bundle(bundle, trust, profile=args.profile)
    if args.json:
        print_json(result.to_json())
    else:
        print(report.render(result, bundle))
    return EXIT_OK if result.valid else EXIT_FAILED


def bundle_arguments(parser: argparse.ArgumentParser) -> None:
    """A bundle to read and the trust to read it with (shared by the commands that do)."""
    parser.add_argument("bundle", metavar="BUNDLE", help="proof bundle envelope (- for stdin)")
    parser.add_argument(
        "--trust",
        metavar="FILE",
        help="our trust file or the reference allowlists.v1.json (default: the local keys')",
    )


def read_bundle(args: argparse.Namespace, ctx: Context) -> tuple[Mapping[str, Any], Trust]:
    """The bundle and the trust that :func:`bundle_arguments` named."""
    bundle = read_object(args.bundle, "a proof bundle envelope", MAX_BUNDLE_BYTES)
    return bundle, load_trust(args.trust, ctx)


def profile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        choices=(PROFILE_CORE, PROFILE_BREAKGLASS),
        help="core checks only, or the break-glass rules too (default: breakglass with our "
        "trust file, core with a reference allowlist)",
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    bundle_arguments(parser)
    json_flag(parser, "the report")
    profile_argument(parser)


GROUPS = ()
COMMANDS = (
    Command(
        ("verify",),
        "verify a proof bundle offline (exit 0 valid, 1 invalid, 2 unusable)",
        run,
        _arguments,
    ),
)
