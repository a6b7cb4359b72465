"""One ``openclaw agent exec`` run as a child process, and its envelope as an outcome.

The child runs in its own process group (so a halt reaches every process it started) with
its own HOME and a minimal environment. A halt sends SIGTERM to the group, waits a short
grace, then SIGKILL. The ``--json`` envelope is mapped by :func:`outcome_of`: a failed tool
call still exits 0, so ``toolSummary.failures`` is read too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from adapters.openclaw.install import Installation

EXIT_POLL_SECONDS = 0.5  # how often a run's launcher is checked for having exited
DRAIN_SECONDS = 2.0  # output still arriving once the launcher has exited
log = logging.getLogger("breakglass.openclaw")
HALT_GRACE_SECONDS = 5.0
EXIT_STATUS = {0: "ok", 1: "error", 2: "timeout", 143: "terminated", -15: "terminated"}


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended. ``ok`` only for exit 0, status ok and no failed tool call."""

    ok: bool
    status: str  # ok | error | timeout | terminated | killed | unreadable
    exit_code: int | None
    tool_calls: int = 0
    tool_failures: int = 0
    tools: tuple[str, ...] = ()
    usage: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    halted: bool = False  # stopped by us (Kill, window end, emergency halt)

    def summary(self) -> dict[str, Any]:
        """Fields safe for logs and receipts: counts and names, no model text."""
        return {
            "ok": self.ok,
            "status": self.status,
            "exit_code": self.exit_code,
            "tool_calls": self.tool_calls,
            "tool_failures": self.tool_failures,
            "tools": list(self.tools),
            "halted": self.halted,
        }


def outcome_of(exit_code: int | None, stdout: str, *, halted: bool = False) -> RunOutcome:
    """Map the exit code and the ``--json`` envelope (the last JSON line) to an outcome."""
    envelope = _envelope(stdout)
    by_exit = _status_by_exit(exit_code)
    if envelope is None:
        status = "unreadable" if exit_code == 0 else by_exit
        return RunOutcome(False, status, exit_code, halted=halted)
    raw_summary = envelope.get("toolSummary")
    summary: dict[str, Any] = raw_summary if isinstance(raw_summary, dict) else {}
    failures = _count(summary.get("failures"))
    status = str(envelope.get("status") or by_exit)
    error = envelope.get("error")
    return RunOutcome(
        ok=exit_code == 0 and status == "ok" and failures == 0 and not halted,
        status=status,
        exit_code=exit_code,
        tool_calls=_count(summary.get("calls")),
        tool_failures=failures,
        tools=tuple(str(t) for t in summary.get("tools") or () if isinstance(t, str)),
        usage=envelope["usage"] if isinstance(envelope.get("usage"), dict) else {},
        error=str(error.get("message", ""))[:300] if isinstance(error, dict) else "",
        halted=halted,
    )


def _status_by_exit(code: int | None) -> str:
    if code is None:
        return "killed"
    return EXIT_STATUS.get(code, "killed" if code < 0 else "error")


def _envelope(stdout: str) -> dict[str, Any] | None:
    """The envelope: all of stdout (it is pretty-printed), else its last JSON object line."""
    candidates = [stdout, *reversed(stdout.strip().splitlines())]
    for text in candidates:
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    return None


def _count(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    return len(value) if isinstance(value, list | dict) else 0


@dataclass(frozen=True)
class RunFiles:
    home: Path  # the run's own HOME (and TMPDIR): OpenClaw's state stays in here
    config: Path
    workdir: Path  # --cwd: empty, and file tools are denied anyway


class OpenClawProcess:
    """A started run. :meth:`wait` and :meth:`stop` both return its outcome."""

    def __init__(
        self, proc: asyncio.subprocess.Process, io: asyncio.Future[Any], home: Path
    ) -> None:
        self.proc = proc
        self._io = io
        self._home = home  # the run's own HOME: every process of the run inherits it
        self._halted = False

    @classmethod
    async def start(
        cls, inst: Installation, files: RunFiles, message: str, timeout_seconds: int
    ) -> OpenClawProcess:
        args = ["agent", "exec", "--config", str(files.config), "--cwd", str(files.workdir)]
        args += ["--json", "--timeout", str(max(1, timeout_seconds)), "--message-file", "-"]
        proc = await asyncio.create_subprocess_exec(
            *inst.command(*args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=inst.environment(files.home),
            cwd=files.workdir,
            start_new_session=True,  # its own process group: the halt reaches all of it
        )
        io = asyncio.ensure_future(proc.communicate(message.encode()))
        log.info("openclaw run started (pid %s)", proc.pid)
        return cls(proc, io, files.home)

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    async def wait(self) -> RunOutcome:
        out, err = await self._output()
        if self.proc.returncode not in (0, None) and not self._halted:
            log.warning("openclaw exited %s: %s", self.proc.returncode, _tail(err))
        return outcome_of(self.proc.returncode, out.decode(errors="replace"), halted=self._halted)

    async def stop(self, grace: float = HALT_GRACE_SECONDS) -> RunOutcome:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; the outcome.
        A run that has already ended is never signalled (its group id may be reused)."""
        if not self.running:
            return await self.wait()
        self._halted = True
        self._signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._io)
        except TimeoutError:
            log.warning("openclaw (pid %s) ignored SIGTERM; killing it", self.proc.pid)
        self._signal(signal.SIGKILL)  # what is left of the group, now that the leader is done
        return await self.wait()

    async def _output(self) -> tuple[bytes, bytes]:
        """The run's output once the launcher has exited. Its pipes normally close with it,
        but OpenClaw's agent runs in a session of its own: when the launcher is killed (an
        out-of-memory kill), the agent outlives it, out of the group's reach, and holds the
        pipes open, so the run, its halt and the job's rollback waited for it (for ten
        minutes in a black-box run). Such strays are killed; the output is what came."""
        while not (await asyncio.wait({self._io}, timeout=EXIT_POLL_SECONDS))[0]:
            if self.proc.returncode is None:
                continue  # still running (asyncio's wait() would also wait for the pipes)
            if not (await asyncio.wait({self._io}, timeout=DRAIN_SECONDS))[0]:
                killed = kill_strays(self._home)
                log.warning(
                    "openclaw (pid %s) exited; %d process(es) of its run held its output "
                    "open and were killed",
                    self.proc.pid,
                    killed,
                )
                if not (await asyncio.wait({self._io}, timeout=DRAIN_SECONDS))[0]:
                    return b"", b""
        return cast(tuple[bytes, bytes], self._io.result())

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(self.proc.pid, sig)


def kill_strays(home: Path) -> int:
    """SIGKILL every process (of this user) whose HOME is ``home``: a run's HOME is made for
    it alone, so only its own processes carry it. Linux: read from /proc."""
    marker = f"HOME={home}".encode()
    killed = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):  # gone meanwhile, or not ours to read
            continue
    return killed


def _tail(err: bytes) -> str:
    return err.decode(errors="replace").strip()[-300:]
