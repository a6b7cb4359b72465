"""Each job's pinned WPC, verified against the publisher key once per hash.

Shared by the tool gateway and the model proxy. Each refuses a job without a published
policy in its own error type (``refuse``); a policy that fails verification raises the
engine's ``VerificationError``, which each maps (or not) as it always has.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.job import Job
from engine.wpc import Policy, verify_wpc

Refuse = Callable[[str, str], Exception]  # (reason code, detail) -> the caller's refusal


class PinnedPolicies:
    """Verified WPCs by payload hash: a job's policy is verified the first time it is seen."""

    def __init__(self) -> None:
        self._by_hash: dict[str, Policy] = {}

    def of(self, job: Job, publisher_did: str, refuse: Refuse) -> Policy:
        """The job's pinned WPC. Raises ``refuse("POLICY_MISSING", ...)`` when it has none and
        VerificationError when it does not verify (nothing is cached then)."""
        envelope = job.policy_envelope
        if envelope is None:
            raise refuse("POLICY_MISSING", "the job has no published policy")
        digest = str(envelope.get("payload_hash_b64u"))
        if digest not in self._by_hash:
            self._by_hash[digest] = verify_wpc(envelope, {publisher_did})
        return self._by_hash[digest]
