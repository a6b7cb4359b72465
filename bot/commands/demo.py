"""``breakglass demo``: play a whole incident on the embedded default."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.commands.base import EXIT_FAILED, EXIT_OK, Command, Context, json_flag
from bot.config_model import SCALE_MAX, SCALE_MIN
from bot.demo import Demo
from bot.demo_options import (
    CRASH_SCALE,
    EXECUTORS,
    MINUTES,
    OPENCLAW_SCALE,
    SCALE,
    SCENARIOS,
    DemoOptions,
    minutes_range,
    require_folder,
)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="normal",
        help="normal (window expires), kill, early-kill, injected, crash, denied",
    )
    parser.add_argument(
        "--bundle-out",
        metavar="PATH",
        help="write the proof bundle here (in an existing folder), with trust.json beside it "
        "(<name>.trust.json when another trust.json is there)",
    )
    json_flag(parser, "the result")
    least, most = minutes_range()
    parser.add_argument(
        "--minutes",
        type=int,
        default=MINUTES,
        help=f"window length in (fast) minutes, {least}-{most} (Entra PIM's shortest is {least})",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help=f"how much faster time runs ({SCALE_MIN}-{SCALE_MAX}; default {SCALE:g}, "
        f"{CRASH_SCALE:g} for crash, {OPENCLAW_SCALE:g} with openclaw)",
    )
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="",
        help="who does the work (default: agent for injected, else runbook; openclaw needs "
        "`make openclaw`)",
    )


# OpenClaw runs at 1x (it needs ~25 s before its first call), so a kill inside PIM's first five
# minutes waits those minutes for real before the removal: a step may take up to ~5 minutes.
OPENCLAW_STEP_SECONDS = 480.0


def _bundle_out(given: str | None) -> Path | None:
    """Where the bundle goes, in a folder that is there (a mistyped path makes none)."""
    if not given:
        return None
    require_folder(Path(given))
    return Path(given)


async def run(args: argparse.Namespace, ctx: Context) -> int:
    options = DemoOptions(
        scenario=args.scenario,
        minutes=args.minutes,
        scale=args.speed,
        bundle_out=_bundle_out(args.bundle_out),
        json_output=args.json,
        executor=args.executor,
        timeout=OPENCLAW_STEP_SECONDS if args.executor == "openclaw" else 90.0,
    )
    result = await Demo(options).run()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print("DEMO OK" if result.ok else f"DEMO FAILED: {json.dumps(result.to_json())}")
    return EXIT_OK if result.ok else EXIT_FAILED


COMMANDS = (
    Command(
        ("demo",),
        "Play a whole incident on the simulated tenant (under a minute).",
        run,
        _arguments,
    ),
)
GROUPS = ()
