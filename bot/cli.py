"""The ``breakglass`` command line: parser and error handling around the command registry.

Exit codes: 0 done or valid; 1 a check failed or the operation did; 2 the command could not
run (bad usage, unusable input, configuration). Every error is ONE line on stderr, never a
traceback. Commands live in :mod:`bot.commands`; see there how to add one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import NoReturn

from bot.commands import COMMANDS, GROUPS, Command, Context, Group
from bot.commands.base import EXIT_FAILED, EXIT_UNUSABLE
from bot.home import Home
from engine.errors import BreakGlassError, ConfigError, InputError, StoreError, describe

PROG = "breakglass"
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """argparse refused the command line; the message is already one line."""


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus a message and exits; we want one line and our exit code.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def build_parser(
    commands: Iterable[Command] = COMMANDS, groups: Iterable[Group] = GROUPS
) -> argparse.ArgumentParser:
    """One sub-parser per word of each command's path; leaves remember their Command."""
    root = _Parser(prog=PROG, description="Two-person, time-boxed break-glass: offline tools.")
    parsers: dict[tuple[str, ...], argparse.ArgumentParser] = {(): root}
    actions: dict[tuple[str, ...], argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    helps = {group.path: group.help for group in groups}
    for command in commands:
        for depth in range(1, len(command.path) + 1):
            path, parent = command.path[:depth], command.path[: depth - 1]
            if path in parsers:
                continue
            if parent not in actions:
                if parsers[parent].get_default("_command") is not None:
                    raise ValueError(f"{' '.join(parent)} is both a command and a group")
                actions[parent] = parsers[parent].add_subparsers(
                    title="commands", metavar="COMMAND", dest=f"_word{depth}", required=True
                )
            text = command.help if path == command.path else helps.get(path, "")
            parsers[path] = actions[parent].add_parser(path[-1], help=text, description=text)
        leaf = parsers[command.path]
        if leaf.get_default("_command") is not None or command.path in actions:
            raise ValueError(f"command {' '.join(command.path)} is registered twice")
        leaf.set_defaults(_command=command)
        command.arguments(leaf)
    return root


def _say(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr)


def _one_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def run(command: Command, args: argparse.Namespace, ctx: Context) -> int:
    """Run one command; every failure becomes one line on stderr and an exit code."""
    try:
        code = asyncio.run(command.run(args, ctx))
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at the exit
        return code
    except (InputError, ConfigError) as err:
        _say(describe(err))
        return EXIT_UNUSABLE
    except StoreError as err:  # an operator at the host: the store's own line says why
        _say(_one_line(str(err)))
        return EXIT_FAILED
    except BreakGlassError as err:
        _say(describe(err))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except OSError as err:  # the machine's, not ours: stdout full or closed, a disk error
        _say(f"input/output failed: {err.strerror or type(err).__name__}")
        _drop_stdout()
        return EXIT_UNUSABLE
    except Exception as err:  # anything unexpected: still one line, never a traceback
        _say(f"internal error ({type(err).__name__}): {_one_line(str(err))}")
        return EXIT_FAILED


def _is_text(word: str) -> bool:
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _drop_stdout() -> None:
    """What is left in stdout's buffer cannot be written either: drop it, so the exit does
    not print a second error (the recipe of Python's signal docs, for SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is no file (tests)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """The ``breakglass`` entry point; returns the exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    if not all(_is_text(word) for word in words):
        # Python hands bytes that are not UTF-8 over as lone surrogates; they would end up
        # in a WPC or a record that no JSON reader takes back.
        _say("an argument is not UTF-8 text")
        return EXIT_UNUSABLE
    try:
        args = build_parser().parse_args(words)
    except UsageError as err:  # already "breakglass <command>: <message>"
        print(_one_line(str(err)), file=sys.stderr)
        return EXIT_UNUSABLE
    except SystemExit as exc:  # --help printed its text
        return exc.code if isinstance(exc.code, int) else EXIT_UNUSABLE
    try:
        ctx = Context(Home.from_environ(os.environ))
    except ConfigError as err:
        _say(describe(err))
        return EXIT_UNUSABLE
    return run(args._command, args, ctx)


if __name__ == "__main__":
    sys.exit(main())
