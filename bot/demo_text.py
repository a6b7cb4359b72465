"""What ``breakglass demo`` prints: each line says what happened, with names, not bare ids.

Kept apart from the script (``bot.demo``) so the wording can be read and tested on its own.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bot.scripted_turns import INJECTED_PRINCIPAL


def pressed(who: str, verb: str, out: Mapping[str, Any]) -> str:
    """``bob presses APPROVE: ok → active`` or the refusal with its reason, never a dangling →."""
    if out.get("ok"):
        state = (out.get("result") or {}).get("state") or "unchanged"
        return f"{who} presses {verb.upper()}: ok → {state}"
    reason, detail = out.get("reason") or "REFUSED", out.get("detail") or ""
    if reason == "STEP_UP_REQUIRED":
        return f"{who} presses {verb.upper()}: the approval waits for {who} to sign in again"
    because = f" ({detail})" if detail else ""
    return f"{who} presses {verb.upper()}: refused {reason}{because}; nothing changed"


def stepped_up(who: str) -> str:
    return f"{who} signs in with MFA at the SIMULATED Entra (context c1) → approval recorded"


def rollback_line(job: Mapping[str, Any]) -> str:
    ended = f"job ended {job['state']} ({job['end_reason']})"
    verified = job.get("rollback_verified")
    # No rollback ran (None) and no write was sent: the job ended before its window (denied,
    # withdrawn, expired, killed while pending). "Rollback verified" would claim a check.
    if verified is None and not job.get("write_done") and not job.get("write_sent"):
        return f"{ended}; nothing was written; no rollback needed"
    return f"{ended}; rollback verified: {'yes' if verified else 'NO'}"


def named(text: str, names: Mapping[str, str]) -> str:
    """``text`` with each known id replaced by its display name."""
    for key, name in names.items():
        if key and key in text:
            text = text.replace(key, name)
    return text


def gateway_refusals(log_path: Path, job_id: str) -> list[str]:
    """The gateway's refusals for ``job_id`` as the service logged them (JSON lines)."""
    found: list[str] = []
    lines: Iterable[str] = log_path.read_text("utf-8", "replace").splitlines()
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("logger") == "breakglass.gateway"
            and entry.get("job_id") == job_id
            and isinstance(entry.get("reason"), str)
        ):
            found.append(entry["reason"])
    return found


def injected_line(reasons: list[str], job: Mapping[str, Any]) -> str:
    """The injected scenario's refused call: what the agent tried, why it was refused; with
    no refusal in the log (an agent that never ran), no such story."""
    ended = f"job {job['state']} ({job['end_reason']})"
    if not reasons:
        return (
            f"no refused call of the injected agent (the write for {INJECTED_PRINCIPAL}) "
            f"is in service.log → {ended}"
        )
    return (
        f"the injected agent also asked to write the role for {INJECTED_PRINCIPAL} "
        f"(outside the approved plan): gateway refused {', '.join(reasons)} → {ended}"
    )


# The job ended before its write: the executor never wrote the grant (its reason is logged).
NO_GRANT = "the grant was never written (the reason is in service.log): alice has none to use"


REFUSED_WRITE = "write_role_assignment [error]"


def receipt(line: str, names: Mapping[str, str], injected: bool) -> str:
    """A receipt line with names; in the injected scenario the refused write says what it was."""
    shown = named(line, names)
    if injected and REFUSED_WRITE in line:
        shown += f" ← the injected write for {INJECTED_PRINCIPAL}, refused by the gateway"
    return shown


def verify_command(bundle: Path, trust: Path) -> str:
    """A ``breakglass verify`` line that runs as printed (the venv's script when not on PATH)."""
    script = Path(sys.executable).parent / "breakglass"
    on_path = shutil.which("breakglass")
    if on_path and Path(on_path).resolve() == script.resolve():
        program = "breakglass"
    elif script.exists():
        program = str(script)
    else:
        program = f"{sys.executable} -m bot.cli"
    return f"{program} verify {bundle} --trust {trust}"
