"""``breakglass report BUNDLE -o report.html``: the verification as one self-contained HTML
page people can read beside the incident ticket.

The page has no script, no external asset and no link off the page (it must open offline and
leak nothing when opened); all bundle text is escaped. The verdict comes first; then, when
the bundle's signatures and hashes held, the timeline, the policy in plain words, the
approvals, every tool and model call, and the rollback and verification reads. Exit codes
are those of ``verify``: 0 valid, 1 invalid (the page is still written), 2 unusable input.
``-o -`` writes the page to stdout; ``-o`` naming the bundle or the trust file, or anything
there that is not a regular file (a FIFO, a symlink, a device, a directory), is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.commands import html_sections as s
from bot.commands.base import EXIT_FAILED, EXIT_OK, STDIN, Command, Context
from bot.commands.verify import bundle_arguments, profile_argument, read_bundle
from bot.files import cannot_write, write_replacing
from engine.errors import InputError
from engine.verify import Report, verify_bundle

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#111;padding:0 1em}
h1{font-size:2.2em;margin:.2em 0}
#verdict{border-radius:8px;padding:.8em 1.2em;margin-bottom:1.5em}
#verdict.valid{background:#e5f6e8;border:2px solid #2e7d32}
#verdict.invalid{background:#fdeaea;border:2px solid #c62828}
table{border-collapse:collapse;margin:.5em 0 1em;width:100%}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
code,td{word-break:break-word}
"""


def render(report: Report, bundle: Mapping[str, Any]) -> str:
    """The whole page; ``bundle`` is read only when the core checks passed."""
    payload = bundle.get("payload", {}) if isinstance(bundle, Mapping) else {}
    payload = payload if isinstance(payload, Mapping) else {}
    parts = [s.verdict(report, payload.get("bundle_id"))]
    summary = report.summary
    if summary:
        parts += _details(summary, payload)
    elif report.valid:
        parts.append(s.core_counts(payload))
    else:
        parts.append(s.untrusted_note())
    title = f"Break-glass evidence: {'VALID' if report.valid else 'INVALID'}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{s.esc(title)}</title><style>{STYLE}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )


def _details(summary: Mapping[str, Any], payload: Mapping[str, Any]) -> list[str]:
    try:
        return [
            s.timeline(summary, payload),
            s.policy_words(s.first_policy(payload)),
            s.approvals(payload),
            s.calls(summary),
            s.rollback(summary, payload),
        ]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        # Evidence of a shape no check caught: the verdict above still stands.
        return [s.section("contents", "Contents", "<p>The details could not be read.</p>")]


async def run(args: argparse.Namespace, ctx: Context) -> int:
    _refuse_overwriting_inputs(args)
    _refuse_special_output(args.output)
    bundle, trust = read_bundle(args, ctx)
    result = verify_bundle(bundle, trust, profile=args.profile)
    page = render(result, bundle)
    if args.output == STDIN:
        print(page, end="")  # the page alone: the exit code carries the verdict
        return EXIT_OK if result.valid else EXIT_FAILED
    try:
        await asyncio.to_thread(write_replacing, Path(args.output), page.encode("utf-8"))
    except OSError as exc:
        raise cannot_write(args.output, exc) from None
    print(f"{'VALID' if result.valid else 'INVALID'}: report written to {args.output}")
    return EXIT_OK if result.valid else EXIT_FAILED


def _refuse_overwriting_inputs(args: argparse.Namespace) -> None:
    """``-o`` naming the bundle or the trust file would destroy the evidence it reports on."""
    if args.output == STDIN:
        return
    for name in (args.bundle, args.trust):
        if name is not None and name != STDIN and _same_file(args.output, name):
            raise InputError(f"-o {args.output} is an input file ({name}); name another file")


def _refuse_special_output(output: str) -> None:
    """The page replaces ``output`` by a rename, which would turn a FIFO, a symlink or a
    device node into a regular file: only a regular file (or nothing) may be there."""
    if output == STDIN:
        return
    try:
        mode = os.lstat(output).st_mode  # lstat: a symlink is not followed, and not regular
    except OSError:
        return  # nothing there, or an unusable folder: the write says why
    if not stat.S_ISREG(mode):
        raise InputError(f"-o {output} exists and is not a regular file; name another file")


def _same_file(a: str, b: str) -> bool:
    """By inode when both exist (hard links, symlinks), else by resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _arguments(parser: argparse.ArgumentParser) -> None:
    bundle_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="where to write the HTML page (- for stdout); a new or regular file, never the "
        "bundle or trust file",
    )
    profile_argument(parser)


GROUPS = ()
COMMANDS = (
    Command(
        ("report",),
        "write a self-contained HTML report of a proof bundle "
        "(exit 0 valid, 1 invalid, 2 unusable)",
        run,
        _arguments,
    ),
)
