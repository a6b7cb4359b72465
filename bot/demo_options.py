"""The demo's scenarios, options and result (``bot.demo`` plays them)."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from adapters.openclaw import install as openclaw_install
from bot.config_model import SCALE_MAX, SCALE_MIN, PolicySection
from cards.forms import template_maximum, template_minimum
from cards.views import Template
from engine.errors import BreakGlassError, InputError
from engine.wpc import TEMPLATES

SCENARIOS = ("normal", "kill", "early-kill", "injected", "crash", "denied")
EXPECTED = {
    "normal": "closed",
    "kill": "killed",
    "early-kill": "killed",  # inside PIM's first 5 minutes: contained, then removed
    "injected": "killed",
    "crash": "closed",
    "denied": "denied",
}
CRASH_POINTS = ("after_approval", "after_grant", "during_rollback")
MINUTES = 5  # the shortest role window Entra PIM allows (ActiveDurationTooShort below it)
SCALE = 60.0  # so those five virtual minutes pass in about five seconds
# A crash scenario restarts the service, which takes real seconds: a slower clock keeps the
# restart inside the window's first virtual minute, as with the 1-minute window before.
CRASH_SCALE = 6.0
# Real time with OpenClaw: it takes ~25 s (more on a busy machine) before its first tool
# call, and the planned write asks for the whole window in minutes rounded up, so it must
# come within the window's first minute (at 4x, 25 s is already two minutes: refused).
OPENCLAW_SCALE = 1.0
EXECUTORS = ("runbook", "agent", "openclaw")
TEMPLATE = "entra-role"  # what every scenario requests: Global Administrator for alice
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
# Approvers sign in again at the simulated tenant ("complete MFA") before an approval counts,
# so the demo's bundles carry step-up evidence. Global Administrator is listed on purpose: the
# demo shows the riskiest grant; the example configuration leaves it out.
STEP_UP_CONFIG = f"""
[templates]
entra-role = {{ roles = ["{GLOBAL_ADMIN}"], principals = ["*"], step_up = "required" }}
ca-exclusion = {{ ca_policies = ["*"], groups = ["*"], step_up = "required" }}
[step_up]
authentication_context = "c1"
max_age_seconds = 600
"""


TRUST_NAME = "trust.json"  # the trust file's name beside the bundle, when free or the same


class DemoError(BreakGlassError):
    """The demo could not run (the service did not start, a step timed out)."""


@dataclass
class DemoOptions:
    scenario: str = "normal"
    minutes: int = MINUTES
    scale: float | None = None  # None: SCALE, or CRASH_SCALE for the crash scenario
    bundle_out: Path | None = None
    json_output: bool = False
    home: Path | None = None
    timeout: float = 90.0
    crash_at: str = "after_grant"  # crash scenario: after_approval | after_grant | during_rollback
    executor: str = ""  # "": agent for the injected scenario, else runbook


# Result fields the --json result leaves out: the run's own bookkeeping, not its outcome.
_UNSHOWN = frozenset({"window_end", "ended_at", "expected"})


@dataclass
class Result:
    scenario: str
    outcome: str = ""
    rollback_verified: bool = False
    bundle_path: str = ""
    bundle_valid: bool = False
    reason_codes: list[str] = field(default_factory=list)
    still_privileged: list[str] = field(default_factory=list)
    job_id: str = ""
    window_end: str | None = None
    ended_at: str | None = None
    expected: str = ""
    contained: list[str] = field(default_factory=list)  # early-kill: the containment done
    removal_not_before: str | None = None  # early-kill: when the tenant allowed the removal
    home: str = ""
    trust_path: str = ""
    stepped_up: int = 0  # approvals in the bundle that carry step-up evidence
    granted: bool = False  # the job wrote its grant (every scenario but denied must)

    @property
    def ok(self) -> bool:
        expected = self.expected or EXPECTED[self.scenario]
        verified = self.rollback_verified or self.outcome == "denied"
        contained = self.scenario != "early-kill" or bool(
            self.contained and self.removal_not_before
        )
        stepped_up = self.outcome == "denied" or self.stepped_up >= 2
        # A run that never granted anything shows nothing (an executor that failed to start
        # still ended its window "closed", verified, and said DEMO OK).
        granted = self.outcome == "denied" or self.granted
        return (
            self.outcome == expected
            and granted
            and self.bundle_valid
            and verified
            and contained
            and stepped_up
            and not self.still_privileged
        )

    def to_json(self) -> dict[str, Any]:
        """Every field but ``_UNSHOWN``, then the verdict."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _UNSHOWN}
        return shown | {"ok": self.ok}


def minutes_range() -> tuple[int, int]:
    """The windows the service accepts for the demo's request: the template's minimum, and
    the lower of its maximum and the default ``policy.max_minutes`` (the demo sets none)."""
    template = Template(TEMPLATE)
    return template_minimum(template), template_maximum(template, PolicySection().max_minutes)


def check_options(options: DemoOptions) -> None:
    """Refuse, before anything starts, what the run would fail on only later: a speed the
    service's clock refuses (said only in its log), a window the request is refused for, an
    OpenClaw that is not installed (the service would run the window with no agent)."""
    if options.scenario not in SCENARIOS:
        raise InputError(f"--scenario {options.scenario}: one of {', '.join(SCENARIOS)}")
    if options.executor not in ("", *EXECUTORS):
        raise InputError(f"--executor {options.executor}: one of {', '.join(EXECUTORS)}")
    if options.crash_at not in CRASH_POINTS:
        raise InputError(f"crash point {options.crash_at}: one of {', '.join(CRASH_POINTS)}")
    speed = options.scale
    # The service's clock.scale (bot.config_model): out of it the service would not start.
    if speed is not None and not (math.isfinite(speed) and SCALE_MIN <= speed <= SCALE_MAX):
        raise InputError(f"--speed {speed:g}: must be from {SCALE_MIN} to {SCALE_MAX}")
    least, most = minutes_range()
    if not least <= options.minutes <= most:
        template = TEMPLATES[TEMPLATE]
        why = f" ({template.min_reason})" if options.minutes < least and template.min_reason else ""
        raise InputError(
            f"--minutes {options.minutes}: an {TEMPLATE} window is {least} to {most} minutes{why}"
        )
    if options.executor == "openclaw":
        # Where the demo's service will look (bot.openclaw_executor): a ConfigError naming
        # the missing part and `make openclaw`.
        openclaw_install.find_installation(openclaw_install.DEFAULT_ROOT)


def default_scale(options: DemoOptions) -> float:
    if options.executor == "openclaw":
        return OPENCLAW_SCALE
    return CRASH_SCALE if options.scenario == "crash" else SCALE


def stepped_up(bundle: Mapping[str, Any]) -> int:
    """How many approvals in the bundle carry a fresh sign-in's evidence."""
    approvals = bundle.get("payload", {}).get("human_approval_receipts", [])
    return sum(1 for a in approvals if "step_up" in (a.get("binding") or {}))


def own_trust_path(bundle: Path) -> Path:
    """Where the trust file goes when another ``trust.json`` is already beside the bundle."""
    return bundle.with_name(f"{bundle.stem}.trust.json")


def check_bundle_out(bundle: Path) -> None:
    """Refuse, before the run, an output the demo could not write at its end or would
    destroy: the trust file's own name, a directory, a symlink or other special file."""
    if bundle.name == TRUST_NAME:
        raise InputError(
            f"--bundle-out {bundle}: the trust file is written as {TRUST_NAME} beside the "
            "bundle; give the bundle another name"
        )
    for path in (bundle, own_trust_path(bundle)):
        _refuse_special(path)


def require_folder(bundle: Path) -> None:
    """The bundle's folder must be there: a mistyped path creates no folders."""
    if not bundle.parent.is_dir():
        raise InputError(f"--bundle-out {bundle}: no folder {bundle.parent}")


def _refuse_special(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode  # lstat: a symlink counts as special
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"--bundle-out: cannot use {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"--bundle-out {path} is a directory; name a file in it")
    if not stat.S_ISREG(mode):
        raise InputError(f"--bundle-out: {path} exists and is not a regular file")
