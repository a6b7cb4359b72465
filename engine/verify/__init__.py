"""Offline verification of a proof bundle: clawsig core checks (``core``), then the
break-glass profile (``breakglass``: artifacts, approvals, calls, rollback).

Never raises for a bad bundle: the report says why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from engine.bundle import MAX_METADATA_BYTES, metadata_size
from engine.errors import VerificationError
from engine.verify import signatures
from engine.verify.breakglass import check_breakglass
from engine.verify.core import verify_core
from engine.verify.signatures import Signed
from engine.verify.trust import Report, Trust

PROFILE_CORE = "core"
PROFILE_BREAKGLASS = "breakglass"

__all__ = ["PROFILE_BREAKGLASS", "PROFILE_CORE", "Report", "Trust", "verify_bundle"]


def verify_bundle(envelope: object, trust: Trust, *, profile: str | None = None) -> Report:
    """Verify a proof bundle envelope. Never raises for bad bundles: the report says why.

    ``profile`` defaults to break-glass when ``trust`` is our own trust file, else core.
    A large bundle's receipt signatures are checked beside the rest (``signatures``).
    """
    chosen = profile or (PROFILE_BREAKGLASS if trust.declares_breakglass else PROFILE_CORE)
    check = signatures.start(_receipt_envelopes(envelope))
    if check is None:
        return _verify(envelope, trust, chosen, frozenset())
    try:
        report = _verify(envelope, trust, chosen, check.signed)
    finally:
        bad = check.bad()
    if not bad:
        return report
    return _verify(envelope, trust, chosen, check.signed - bad)  # their reasons, in order


def _verify(envelope: object, trust: Trust, chosen: str, verified: Collection[Signed]) -> Report:
    report = Report(valid=True, profile=chosen)
    try:
        payload = verify_core(envelope, trust, verified)
    except VerificationError as err:
        report.fail(err.code, err.message)
        return report
    size = metadata_size(payload)
    if size > MAX_METADATA_BYTES:  # the reference rejects it: say so, and check the rest
        report.fail("PROOF_BUNDLE_METADATA_TOO_LARGE", f"{size} bytes, cap {MAX_METADATA_BYTES}")
    if chosen == PROFILE_BREAKGLASS:
        try:
            check_breakglass(payload, trust, report)
        except VerificationError as err:
            report.fail(err.code, err.message)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            # Evidence of the wrong shape that no schema rule caught yet: still an answer.
            report.fail("SCHEMA_VALIDATION_FAILED", f"malformed evidence ({type(err).__name__})")
    return report


def _receipt_envelopes(envelope: object) -> list[object]:
    """The envelopes whose signatures ``verify_core`` skips when told they verified."""
    payload = envelope.get("payload") if isinstance(envelope, Mapping) else None
    if not isinstance(payload, Mapping):
        return []
    return [
        item
        for name in ("receipts", "tool_receipts")
        if isinstance(items := payload.get(name), list)
        for item in items
    ]
