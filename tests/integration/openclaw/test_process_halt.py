"""The halt reaches the whole process group: SIGTERM first, SIGKILL after the grace for
whatever ignores it (a real child process tree stands in for OpenClaw; no OpenClaw needed)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from adapters.openclaw.install import Installation
from adapters.openclaw.runner import OpenClawProcess, RunFiles

STUBBORN = """trap '' TERM
sleep 1000 &
echo $! > "$HOME/child.pid"
echo started > "$HOME/started"
wait
"""
POLITE = """echo started > "$HOME/started"
exec sleep 1000
"""


def fake_openclaw(tmp_path: Path, script: str) -> tuple[Installation, RunFiles]:
    """/bin/sh in the place of Node, running ``script`` in the place of OpenClaw."""
    entry = tmp_path / "openclaw.sh"
    entry.write_text(script)
    files = RunFiles(home=tmp_path, config=tmp_path / "unused.json", workdir=tmp_path)
    return Installation(tmp_path, Path("/bin/sh"), entry), files


def is_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie is dead; its reaper is not us


async def started(files: RunFiles, process: OpenClawProcess) -> None:
    while not (files.home / "started").exists():
        assert process.running
        await asyncio.sleep(0.01)


async def test_sigterm_ignored_means_sigkill_for_the_whole_group(tmp_path: Path) -> None:
    inst, files = fake_openclaw(tmp_path, STUBBORN)
    process = await OpenClawProcess.start(inst, files, "the task", timeout_seconds=60)
    await started(files, process)
    child = int((files.home / "child.pid").read_text())
    outcome = await process.stop(grace=0.2)  # ignored SIGTERM: SIGKILL whatever the speed
    assert (outcome.status, outcome.halted, outcome.ok) == ("killed", True, False)
    assert not process.running
    assert is_gone(child)


async def test_a_process_that_honours_sigterm_ends_terminated(tmp_path: Path) -> None:
    inst, files = fake_openclaw(tmp_path, POLITE)
    process = await OpenClawProcess.start(inst, files, "the task", timeout_seconds=60)
    await started(files, process)
    outcome = await process.stop(grace=600)  # never reached: it exits on SIGTERM
    assert (outcome.status, outcome.halted) == ("terminated", True)


ORPHANING = """setsid sh -c 'echo $$ > "$HOME/agent.pid"; exec sleep 1000' &
while [ ! -s "$HOME/agent.pid" ]; do sleep 0.01; done
echo started > "$HOME/started"
exec sleep 1000
"""


async def test_an_agent_that_outlives_its_killed_launcher_does_not_hold_the_run(
    tmp_path: Path,
) -> None:
    # OpenClaw's agent runs in a session of its own and keeps the run's output open: with
    # its launcher killed (out of memory), the halt and the job's rollback waited for the
    # agent for minutes (a black-box run).
    inst, files = fake_openclaw(tmp_path, ORPHANING)
    process = await OpenClawProcess.start(inst, files, "the task", timeout_seconds=60)
    await started(files, process)
    agent = int((files.home / "agent.pid").read_text())
    os.kill(process.proc.pid, signal.SIGKILL)  # the launcher dies; the agent is not in its group
    outcome = await asyncio.wait_for(process.wait(), timeout=60)  # a hang fails, not waits
    assert (outcome.status, outcome.ok) == ("killed", False)
    assert is_gone(agent)
