"""Offline verification of a proof bundle: clawsig core checks (``core``), then the
break-glass profile (``breakglass``: artifacts, approvals, calls, rollback).

Never raises for a bad bundle: the report says why.
"""

from __future__ import annotations

from engine.bundle import MAX_METADATA_BYTES, metadata_size
from engine.errors import VerificationError
from engine.verify.breakglass import check_breakglass
from engine.verify.core import verify_core
from engine.verify.trust import Report, Trust

PROFILE_CORE = "core"
PROFILE_BREAKGLASS = "breakglass"

__all__ = ["PROFILE_BREAKGLASS", "PROFILE_CORE", "Report", "Trust", "verify_bundle"]


def verify_bundle(envelope: object, trust: Trust, *, profile: str | None = None) -> Report:
    """Verify a proof bundle envelope. Never raises for bad bundles: the report says why.

    ``profile`` defaults to break-glass when ``trust`` is our own trust file, else core.
    """
    chosen = profile or (PROFILE_BREAKGLASS if trust.declares_breakglass else PROFILE_CORE)
    report = Report(valid=True, profile=chosen)
    try:
        payload = verify_core(envelope, trust)
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
