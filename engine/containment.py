"""Containing what a window touched (issue 17, item 4): the steps the end of every window
runs after the removal, and the rollback steps a write during the window derives.

Per template, the WPC's ``metadata.breakglass.contain`` says whether the elevated
principal's sign-in sessions are revoked at the end (``revoke_sessions_at_end``) and which
credential kinds the agent may create and the end removes (``rotate_credentials``). The
fixed end steps are planned into ``rollback.at_end``; a credential created during the window
derives its removal from the write's result (``derive_step``), recorded in the job and the
bundle and checked by the verifier.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine import catalog
from engine.access import ROTATABLE_KINDS, AccessRules
from engine.errors import TemplateError
from engine.policy import resource
from engine.tools import TargetKind

APPLICATION_PASSWORD = "application_password"
ROTATABLE = frozenset(ROTATABLE_KINDS)
# Each credential the window creates adds its derived record (~0.75 KB) to the bundle's run
# metadata, and each approved extension ~1.2 KB of plan, token and revocation: a rotating
# template's worst case fits the 16 KiB metadata cap (with margin) only with both bounded.
# The gateway refuses a credential write past the limit (CREDENTIAL_LIMIT), the engine an
# extension request past its limit (EXTENSION_LIMIT). tests/unit/engine/test_rotation_budget.py
MAX_DERIVED_CREDENTIALS = 2
MAX_EXTENSIONS_WHEN_ROTATING = 2
# A proof bundle holds at most 1000 tool receipts (clawsig proof_bundle.v1, maxItems): the
# agent's calls, allowed or refused, may fill this many (the gateway refuses more: CALL_LIMIT,
# and chains one refusal past it); the rest is the rollback's room.
AGENT_CALL_LIMIT = 600
# The write that creates each rotatable credential kind, and the step that removes one.
_ROTATION_TOOLS = {APPLICATION_PASSWORD: (catalog.ADD_APP_PASSWORD, catalog.REMOVE_APP_PASSWORD)}
CREDENTIAL_WRITES = frozenset(create for create, _ in _ROTATION_TOOLS.values())
# The ``key_id`` of a removal of every password the job's marker names on one application
# (what a credential write in doubt may have created: its key id was never recorded).
EVERY_MARKED_KEY = "*"
# What a credential write's mark keeps of its arguments: where it may create a credential.
_MARKED_WHERE = ("tenant_id", "application_id", "job_id")


@dataclass(frozen=True)
class ContainSettings:
    """One template's containment, as signed into its WPC."""

    revoke_sessions_at_end: bool
    rotate_credentials: tuple[str, ...] = ()

    def terms(self) -> dict[str, Any]:
        return {
            "revoke_sessions_at_end": self.revoke_sessions_at_end,
            "rotate_credentials": sorted(self.rotate_credentials),
        }

    @classmethod
    def from_terms(cls, doc: Mapping[str, Any]) -> ContainSettings:
        """Parse (and check) a ``contain`` record; TemplateError when it is not one."""
        revoke = doc.get("revoke_sessions_at_end")
        rotate = doc.get("rotate_credentials", [])
        if not isinstance(revoke, bool) or not isinstance(rotate, list):
            raise TemplateError("contain terms are malformed")
        unknown = [kind for kind in rotate if kind not in ROTATABLE]
        if unknown:
            raise TemplateError(f"cannot rotate credential kind {str(unknown[0])[:40]!r}")
        return cls(revoke, tuple(sorted(set(rotate))))


def settings_for(rules: AccessRules | None, template: str, revocable: bool) -> ContainSettings:
    """The containment of ``template`` from configuration: the template's own table, or the
    defaults (revoke the sessions the template's target names, rotate nothing)."""
    access = rules.templates.get(template) if rules is not None else None
    revoke = access.revoke_sessions_at_end if access is not None else None
    rotate = access.rotate_credentials if access is not None else ()
    if revoke and not revocable:
        raise TemplateError(f"template {template} names no principal whose sessions to revoke")
    return ContainSettings(revocable if revoke is None else revoke, tuple(rotate))


def rotation_statements(settings: ContainSettings, tenant_id: str) -> list[dict[str, Any]]:
    """WPC Allow statements for the credential writes a template rotates and their removal.

    The application is a wildcard: which app the agent needs is not known at request time,
    and every credential it creates is removed at the end (a derived rollback step).
    """
    out = []
    for kind in settings.rotate_credentials:
        for verb, tool in zip(("Create", "Remove"), _ROTATION_TOOLS[kind], strict=True):
            resources = [resource(TargetKind.TENANT, tenant_id)]
            resources.append(resource(TargetKind.APPLICATION, "*"))
            out.append(
                {
                    "sid": f"AllowRotation{verb}{kind.title().replace('_', '')}",
                    "effect": "Allow",
                    "actions": ["tool:execute"],
                    "resources": resources,
                    "conditions": {"StringEquals": {"Tool:Name": tool}},
                }
            )
    return out


def derive_step(
    tool_name: str, arguments: Mapping[str, Any], result: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The rollback step a successful credential write derives from its own result (None
    for any other call): remove the application password whose keyId the write returned."""
    key_id = result.get("key_id")
    if tool_name != catalog.ADD_APP_PASSWORD or not isinstance(key_id, str) or not key_id:
        return None
    keep = ("tenant_id", "application_id", "job_id")
    step_args = {name: str(arguments[name]) for name in keep if name in arguments}
    return {"tool": catalog.REMOVE_APP_PASSWORD, "arguments": {**step_args, "key_id": key_id}}


def derived_record(
    receipt_id: str, tool_name: str, arguments: Mapping[str, Any], result: Mapping[str, Any]
) -> dict[str, Any] | None:
    """What the job (and its bundle) keeps of a derived step: the write's receipt id,
    arguments and result. Not the step itself: it is re-derived from them wherever it is
    needed (``derived_steps``), and the verifier checks them against the receipt's hashes."""
    if derive_step(tool_name, arguments, result) is None:
        return None
    return {"receipt_id": receipt_id, "arguments": dict(arguments), "result": dict(result)}


def step_of(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The removal step a derived record stands for (None when it derives none). A record
    kept before the step was dropped from it still carries it: it is ignored here."""
    arguments, result = record.get("arguments"), record.get("result")
    if not isinstance(arguments, Mapping) or not isinstance(result, Mapping):
        return None
    return derive_step(catalog.ADD_APP_PASSWORD, arguments, result)


def derived_steps(derived: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The removal steps of ``derived``, in order (records that derive none are skipped)."""
    steps = (step_of(record) for record in derived if isinstance(record, Mapping))
    return [step for step in steps if step is not None]


def credential_mark(
    receipt_id: str, tool_name: str, arguments: Mapping[str, Any]
) -> dict[str, str] | None:
    """What the job keeps, before it leaves the gateway, of a credential write (None for any
    other call): the receipt id its receipt will carry and where it may create a credential.
    From then until that receipt settles it (``settles_mark``), a credential no derived step
    removes may exist: the end names it (``describe_unrecorded``). Does NOT mean the planned
    write may have landed."""
    if tool_name not in CREDENTIAL_WRITES or not receipt_id:
        return None
    return {"receipt_id": receipt_id, "tool": tool_name, **_where(arguments)}


def _where(arguments: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(arguments[name]) for name in _MARKED_WHERE if name in arguments}


def on_application(mark: Mapping[str, Any], arguments: Mapping[str, Any]) -> bool:
    """Does a credential write in doubt (``mark``) name the application ``arguments`` name?"""
    return all(mark.get(k) == arguments.get(k) for k in ("tenant_id", "application_id"))


def settles_mark(status: str, result: Mapping[str, Any], derived: bool) -> bool:
    """Does a credential write's receipt say what became of it? A success that derived its
    removal does, and so does any answer of the tool (an error after the adapter's own
    read-back, a refusal before sending); a call cancelled before its answer came does not
    (its request may have reached the tenant): it stays in doubt, like a lost receipt."""
    if status == "success":
        return derived
    return result.get("cancelled") is not True


def unrecorded_steps(marks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One removal of every password the job marked, per application a credential write in
    doubt names, in order (``EVERY_MARKED_KEY``)."""
    steps: dict[tuple[str, str], dict[str, Any]] = {}
    for mark in marks:
        arguments = _where(mark)
        where = (arguments.get("tenant_id", ""), arguments.get("application_id", ""))
        arguments["key_id"] = EVERY_MARKED_KEY
        steps.setdefault(where, {"tool": catalog.REMOVE_APP_PASSWORD, "arguments": arguments})
    return list(steps.values())


def is_unrecorded_step(tool_name: str, arguments: Mapping[str, Any]) -> bool:
    """Is this the removal of every password the job marked on an application?"""
    return tool_name == catalog.REMOVE_APP_PASSWORD and arguments.get("key_id") == EVERY_MARKED_KEY


def after_sweep(
    marks: Sequence[Mapping[str, Any]],
    derived: Sequence[Mapping[str, Any]],
    arguments: Mapping[str, Any],
    result: Mapping[str, Any],
    settled: bool,
) -> tuple[Mapping[str, Any], ...]:
    """The credential writes still in doubt after a successful removal of every password
    the job marked on one application (``arguments``). That application's are settled when
    the removal found at least as many such passwords, besides those the receipted writes
    created, as writes in doubt there, or when it began once replication had time to show
    them (``settled``: ADR 0013's rule). Does NOT check the result against the tenant."""
    doubtful = [mark for mark in marks if on_application(mark, arguments)]
    recorded = {str(record.get("result", {}).get("key_id")) for record in derived}
    found = {str(key) for key in result.get("removed_key_ids", ()) or ()} - recorded
    if not doubtful or (len(found) < len(doubtful) and not settled):
        return tuple(marks)
    return tuple(mark for mark in marks if not on_application(mark, arguments))


def describe_unrecorded(mark: Mapping[str, Any]) -> str:
    """What a credential write in doubt may have left, in plain words (for the escalation):
    the same for every write in doubt on one application, and for its removal step."""
    job = mark.get("job_id", "?")
    return (
        f"application {mark.get('application_id')} may still hold a password job {job} "
        f"created and never recorded (its display name is marked 'breakglass job={job}'), "
        f"in tenant {mark.get('tenant_id', '?')}"
    )


def unrecorded_left(marks: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """``describe_unrecorded`` of every credential write still in doubt, in order."""
    return tuple(dict.fromkeys(describe_unrecorded(mark) for mark in marks))


def max_extensions(terms: Mapping[str, Any], default: int) -> int:
    """How many extension requests a job under these WPC terms may make."""
    rotating = terms.get("contain", {}).get("rotate_credentials")
    return min(default, MAX_EXTENSIONS_WHEN_ROTATING) if rotating else default


def describe_left(step: Mapping[str, Any]) -> str:
    """What is still there when a containment step did not run, in plain words."""
    args = step.get("arguments", {})
    tenant = args.get("tenant_id", "?")
    if is_unrecorded_step(str(step.get("tool")), args):
        return describe_unrecorded(args)
    if step.get("tool") == catalog.REMOVE_APP_PASSWORD:
        return (
            f"application {args.get('application_id')} still holds password keyId "
            f"{args.get('key_id')} added in the window, in tenant {tenant}"
        )
    if step.get("tool") == catalog.REVOKE_GROUP_SESSIONS:
        whose = f"the users of group {args.get('group_id')}"
    else:
        whose = f"principal {args.get('principal_id')}"
    return f"sign-in sessions of {whose} not revoked in tenant {tenant}"


def end_steps(
    terms: Mapping[str, Any],
    derived: Sequence[Mapping[str, Any]],
    unrecorded: Sequence[Mapping[str, Any]] = (),
) -> list[Any]:
    """Every containment step the end of this window runs after the removal, in order: the
    derived credential removals, the removals of what credential writes in doubt
    (``unrecorded``, the job's ``credentials_in_flight``) may have created, then the planned
    ``at_end`` steps (sessions last, so a session refreshed with a removed credential is
    cut too)."""
    planned = terms.get("rollback", {}).get("at_end", [])
    return [*derived_steps(derived), *unrecorded_steps(unrecorded), *planned]
