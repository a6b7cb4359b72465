"""``breakglass demo``: a whole incident on the embedded default, in under a minute.

The demo runs the simulated tenant in this process and the real service (``breakglass
serve``) as a child process, and plays the people through the local console channel: the
same service code the chat adapters drive. Time runs faster (five virtual minutes, the
shortest role window, in about five seconds), with both processes counting from one anchor,
so the ``crash`` scenario can SIGKILL the service and restart it and the two still agree
about the window.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from adapters.entra_signin import CALLBACK_PATH
from adapters.entra_signin.jobs import SIGN_IN_URL
from adapters.graph.simulated import SimulatedTenant
from adapters.graph.simulated.faults import Fault
from bot import demo_text as text
from bot.app import seed_people
from bot.clock import ScaledClock
from bot.demo_options import (
    GLOBAL_ADMIN,
    STEP_UP_CONFIG,
    TEMPLATE,
    TRUST_NAME,
    DemoError,
    DemoOptions,
    Result,
    check_bundle_out,
    check_options,
    default_scale,
    own_trust_path,
    stepped_up,
)
from bot.files import cannot_write, write_replacing
from engine import activity
from engine.canonical import jcs
from engine.stepup import STEP_UP_REQUIRED
from engine.verify import Trust, verify_bundle


class Demo:
    def __init__(self, options: DemoOptions) -> None:
        check_options(options)  # now, before the tenant, the service or the home is made
        if options.bundle_out is not None:
            check_bundle_out(options.bundle_out)  # now, not after the whole run
        self.options = options
        self.home = options.home or Path(tempfile.mkdtemp(prefix="breakglass-demo-"))
        self.home.mkdir(parents=True, exist_ok=True)
        self.anchor = datetime.now(UTC)
        self.scale = options.scale or default_scale(options)
        self.clock = ScaledClock(self.anchor, self.scale)
        self.started = time.monotonic()
        self.child: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.seen_receipts = 0
        self.names: dict[str, str] = {}  # ids to display names, as the console shows them
        self.sim: SimulatedTenant  # set in run(), before the service starts

    def patience(self) -> float:
        """How long, in real seconds, one step may take before the demo gives up: the
        guard, plus the whole window at this speed (its end comes no sooner)."""
        return self.options.timeout + self.options.minutes * 60 / self.scale

    def say(self, text: str) -> None:
        if not self.options.json_output:
            print(f"[{time.monotonic() - self.started:5.1f}s] {text}", flush=True)

    # -------------------------------------------------------------- processes

    def _config(self, sim: SimulatedTenant) -> str:
        agent = self.options.scenario == "injected"
        executor = self.options.executor or ("agent" if agent else "runbook")
        return "\n".join(
            [
                "[service]",
                "port = 0",
                "tick_seconds = 0.2",
                "[tenant]",
                'mode = "simulated"',
                f'simulated_url = "{sim.base_url}"',
                "[clock]",
                f"scale = {self.scale}",
                f'anchor = "{self.anchor.isoformat()}"',
                "[executor]",
                f'mode = "{executor}"',
                "[model]",
                f"injected = {'true' if agent else 'false'}",
                STEP_UP_CONFIG,
            ]
        )

    async def _start_service(self, secret: str) -> None:
        (self.home / "serve.json").unlink(missing_ok=True)
        env = {
            **os.environ,
            "BREAKGLASS_HOME": str(self.home),
            "BREAKGLASS_SIMULATED_CLIENT_SECRET": secret,
        }
        with (self.home / "service.log").open("ab") as log:  # the child keeps its own copy
            self.child = subprocess.Popen(  # noqa: ASYNC220 - started once, then only polled
                [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while not (self.home / "serve.json").exists():
            if self.child.poll() is not None or time.monotonic() > deadline:
                raise DemoError(f"the service did not start; see {self.home / 'service.log'}")
            await asyncio.sleep(0.05)
        state = json.loads((self.home / "serve.json").read_text())
        self.url = state["url"]
        # The tenant's admin registers the step-up callback on the app (a new port each start).
        self.sim.register_redirect_uri(f"{state['public_url'].rstrip('/')}{CALLBACK_PATH}")
        self.say(f"service up at {self.url} (pid {self.child.pid})")

    def _kill_service(self) -> None:
        assert self.child is not None
        self.child.send_signal(signal.SIGKILL)
        self.child.wait()
        self.say(f"service SIGKILLed (pid {self.child.pid})")

    def _stop_service(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.child.kill()

    # ------------------------------------------------------------------ people

    async def _post(
        self, http: aiohttp.ClientSession, path: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        async with http.post(f"{self.url}{path}", json=body) as resp:
            data: dict[str, Any] = await resp.json()
            return data

    async def _get(self, http: aiohttp.ClientSession, path: str) -> Any:
        async with http.get(f"{self.url}{path}") as resp:
            return await resp.json()

    async def _act(
        self, http: aiohttp.ClientSession, who: str, verb: str, job: str, plan: str = ""
    ) -> None:
        body = {"as": f"console:{who}", "verb": verb, "job_id": job}
        if plan:
            body["plan_hash"] = plan
        out = await self._post(http, "/console/api/act", body)
        self.say(text.pressed(who, verb, out))
        if out.get("reason") == STEP_UP_REQUIRED:
            await self._step_up(http, who, out["result"][SIGN_IN_URL])

    async def _step_up(self, http: aiohttp.ClientSession, who: str, link: str) -> None:
        """``who`` opens the sign-in link, signs in with MFA at the simulated tenant and is
        sent back to the service's callback, which records the approval."""
        form = {**URL(link).query, "user": seed_people()[who], "mfa": "1"}
        async with http.post(link, data=form, allow_redirects=False) as signed:
            if signed.status != 302:
                raise DemoError(f"{who}'s sign-in failed: {signed.status} {await signed.text()}")
            callback = signed.headers["Location"]
        async with http.get(callback, allow_redirects=False) as answer:
            if answer.status != 200:
                raise DemoError(f"the step-up callback refused {who}: {answer.status}")
        self.say(text.stepped_up(who))

    async def _job(self, http: aiohttp.ClientSession, job_id: str) -> dict[str, Any]:
        jobs = await self._get(http, "/console/api/jobs")
        return next(j for j in jobs if j["job_id"] == job_id)

    def _show(self, job: Mapping[str, Any]) -> None:
        for line in job["receipts"][self.seen_receipts :]:
            injected = self.options.scenario == "injected"
            self.say(f"  receipt {text.receipt(line, self.names, injected)}")
        self.seen_receipts = len(job["receipts"])

    def _progress(self, job: Mapping[str, Any]) -> None:
        if job["state"] != "active" or not job.get("window_end"):
            return
        now, end = datetime.fromisoformat(job["now"]), datetime.fromisoformat(job["window_end"])
        start = datetime.fromisoformat(job["window_start"])
        total = max(1.0, (end - start).total_seconds())
        left = max(0.0, (end - now).total_seconds())
        filled = int(24 * (1 - left / total))
        self.say(f"ACTIVE [{'█' * filled}{'░' * (24 - filled)}] {left / 60:4.1f} min left")

    async def _until(
        self, http: aiohttp.ClientSession, job_id: str, done: Any, label: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.patience()
        last_progress = 0.0
        while True:
            job = await self._job(http, job_id)
            self._show(job)
            if done(job):
                return job
            if time.monotonic() - last_progress > 1.0:
                self._progress(job)
                last_progress = time.monotonic()
            if time.monotonic() > deadline:
                raise DemoError(f"timed out waiting for {label} (job is {job['state']})")
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------- script

    async def run(self) -> Result:
        result = Result(self.options.scenario)
        if self._crashing("during_rollback"):
            result.expected = "killed"  # the rollback was started by a kill
        async with SimulatedTenant(clock=self.clock) as sim:
            self.sim = sim
            self.say(f"SIMULATED tenant at {sim.base_url}; home {self.home}")
            (self.home / "breakglass.toml").write_text(self._config(sim))
            await self._start_service(sim.client_secret)
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                    await self._play(http, sim, result)
            finally:
                self._stop_service()
        return result

    async def _play(
        self, http: aiohttp.ClientSession, sim: SimulatedTenant, result: Result
    ) -> None:
        ids = seed_people()
        self.names = (await self._get(http, "/console/api/examples"))["names"]
        request = {
            "as": "console:alice",
            "template": TEMPLATE,
            "principal": ids["alice"],
            "resource": GLOBAL_ADMIN,
            "minutes": self.options.minutes,
            "justification": "DEMO: MFA outage, reset the admins' methods",
            "ticket": "INC-DEMO-1",
        }
        out = await self._post(http, "/console/api/request", request)
        if not out.get("ok"):
            raise DemoError(f"the request was refused: {out.get('reason')} {out.get('detail')}")
        job_id, plan = out["job_id"], out["result"]["plan_hash"]
        result.job_id = job_id
        self.say(
            f"alice requests Global Administrator for {self.options.minutes} min: "
            f"job {job_id}, plan {plan[:12]}…"
        )
        await self._act(http, "alice", "approve", job_id, plan)  # refused: self-approval
        if self.options.scenario == "denied":
            await self._act(http, "bob", "deny", job_id, plan)
        else:
            await self._act(http, "bob", "approve", job_id, plan)
            await self._act(http, "carol", "approve", job_id, plan)
            if self._crashing("after_approval"):
                await self._crash_and_restart(sim)
            granted = await self._until(
                http,
                job_id,
                lambda j: j["write_done"] or j["resolved"],
                "the grant",
            )
            self.say(f"tenant now: {self._grants(sim) or 'no grant'}")
            self._use_the_grant(sim, ids, granted)
            await self._scenario(http, sim, job_id)
            if self.options.scenario == "early-kill":
                await self._delayed_removal(http, job_id, result)
        job = await self._until(http, job_id, lambda j: j["resolved"], "the end of the job")
        self._progress(job)
        await self._finish(http, sim, job, result)

    async def _scenario(
        self, http: aiohttp.ClientSession, sim: SimulatedTenant, job_id: str
    ) -> None:
        scenario = self.options.scenario
        if scenario == "kill":
            await asyncio.sleep(1.0)
            await self._act(http, "dave", "kill", job_id)
        elif scenario == "early-kill":  # at once: the removal may have to wait
            await self._act(http, "dave", "kill", job_id)
        elif self._crashing("after_grant"):
            await self._crash_and_restart(sim)
        elif self._crashing("during_rollback"):
            # Graph refuses the removal for now, so the rollback is still retrying when we crash.
            sim.add_fault(
                Fault(
                    "unavailable",
                    method="POST",
                    path="roleAssignmentScheduleRequests",
                    times=10_000,
                )
            )
            await self._act(http, "dave", "kill", job_id)
            await self._until(http, job_id, lambda j: j["state"] == "rolling_back", "the rollback")
            await asyncio.sleep(0.3)
            sim.core.faults.clear()
            await self._crash_and_restart(sim)

    async def _delayed_removal(
        self, http: aiohttp.ClientSession, job_id: str, result: Result
    ) -> None:
        """Killed inside PIM's first five minutes: the tenant refuses the removal, so the
        service contains the principal (revokes their sessions) and tells the channel when
        it will remove the role. Wait for that announcement on the console's feed."""
        deadline = time.monotonic() + self.patience()
        while True:
            for post in await self._get(http, "/console/api/feed"):
                detail = post["detail"]
                if post["job_id"] == job_id and detail.get("event") == "removal_delayed":
                    result.contained = list(detail["contained"])
                    result.removal_not_before = detail["not_before"]
                    self.say(
                        f"contained at once ({', '.join(result.contained) or 'nothing'}); "
                        f"the role is removed at {detail['not_before']}"
                    )
                    return
            if (await self._job(http, job_id))["resolved"] or time.monotonic() > deadline:
                return  # ended without a delay (ok says so), or the end wait times out
            await asyncio.sleep(0.1)

    def _use_the_grant(
        self, sim: SimulatedTenant, ids: Mapping[str, str], job: Mapping[str, Any]
    ) -> None:
        """Alice, now an admin, does the work (the tenant's logs record it: issue 17 §5);
        nothing when the job ended before its write (an executor that never wrote)."""
        if not job["write_done"]:
            self.say(text.NO_GRANT)
            return
        for user in ("dave", "erin"):
            sim.act(ids["alice"], "Admin reset MFA", [ids[user]])
        for _ in range(3):
            sim.sign_in(ids["alice"], app="Microsoft Entra admin center")
        self.say("alice (SIMULATED) resets MFA for dave and erin and signs in 3 times")

    def _crashing(self, point: str) -> bool:
        return self.options.scenario == "crash" and self.options.crash_at == point

    async def _crash_and_restart(self, sim: SimulatedTenant) -> None:
        self._kill_service()
        self.say(f"while it is down the tenant still shows: {self._grants(sim) or 'no grant'}")
        await asyncio.sleep(1.0)
        await self._start_service(sim.client_secret)
        self.say("restarted: it resumes the open job")

    def _grants(self, sim: SimulatedTenant) -> list[str]:
        return [
            text.named(f"{a.principal_id} holds {a.role_id}", self.names)
            for a in sim.active_grants()
            if a.origin == "pim"
        ]

    async def _finish(
        self,
        http: aiohttp.ClientSession,
        sim: SimulatedTenant,
        job: Mapping[str, Any],
        result: Result,
    ) -> None:
        result.outcome = job["state"]
        result.window_end, result.ended_at = job.get("window_end"), job.get("ended_at")
        result.rollback_verified = bool(job["rollback_verified"])
        result.granted = bool(job["write_done"])
        bundle = await self._get(http, f"/console/api/jobs/{job['job_id']}/bundle")
        trust = await self._get(http, "/console/api/trust")
        path = self.options.bundle_out or (self.home / f"{job['job_id']}.bundle.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        trust_path = write_outputs(path, jcs(bundle), jcs(trust))
        if trust_path.name != TRUST_NAME:
            self.say(f"another {TRUST_NAME} is beside the bundle: kept; trust file {trust_path}")
        report = verify_bundle(bundle, Trust.from_json(trust))
        result.bundle_path, result.bundle_valid = str(path), report.valid
        result.trust_path, result.home = str(trust_path), str(self.home)
        result.reason_codes = report.reason_codes
        result.stepped_up = stepped_up(bundle)
        result.still_privileged = self._grants(sim)
        if self.options.scenario == "injected":
            refusals = text.gateway_refusals(self.home / "service.log", job["job_id"])
            self.say(text.injected_line(refusals, job))
        self.say(text.rollback_line(job))
        recorded = bundle["payload"]["metadata"]["breakglass"]["run"].get("activity")
        if (used := activity.sentence(recorded, "alice")) is not None:
            self.say(used)
        self.say(
            f"proof bundle: {path} → "
            + ("VALID" if report.valid else "INVALID " + ", ".join(report.reason_codes))
        )
        self.say(f"verify it yourself: {text.verify_command(path, trust_path)}")
        self.say(f"still privileged in the tenant: {result.still_privileged or 'nothing'}")


def write_outputs(bundle_path: Path, bundle: bytes, trust: bytes) -> Path:
    """Write the bundle and, beside it, the trust file; return the trust file's path.

    That is ``trust.json`` unless a different ``trust.json`` is already there (another
    run's, someone's own): it is kept, and this one goes to ``<bundle stem>.trust.json``.
    """
    trust_path = bundle_path.parent / TRUST_NAME
    if _holds_other_than(trust_path, trust):
        trust_path = own_trust_path(bundle_path)
    for path, data in ((bundle_path, bundle), (trust_path, trust)):
        try:
            write_replacing(path, data)
        except OSError as exc:
            raise cannot_write(path, exc) from None
    return trust_path


def _holds_other_than(path: Path, data: bytes) -> bool:
    """Is something other than a regular file with exactly ``data`` at ``path``?"""
    try:
        if not path.is_symlink() and path.is_file():
            return path.read_bytes() != data
    except OSError:
        return True
    return os.path.lexists(path)
