"""Step-up sign-in with Microsoft Entra: OpenID Connect authorization code + PKCE.

An approver's click on a plan that needs step-up yields a sign-in URL (``StepUpFlow.begin``)
instead of counting at once. The callback (``routes``, on the public listener) exchanges
the code, verifies the ID token (``idtoken``) and only then submits the approval with the
step-up evidence; the engine checks the rest (``engine.stepup``). Every refusal is
submitted as ``StepUpFailed`` so the job records it.
"""

from adapters.entra_signin.config import CALLBACK_PATH, SignInConfig
from adapters.entra_signin.flow import (
    MemoryPendingSignIns,
    PendingSignIn,
    StepUpFlow,
    StoredPendingSignIns,
)
from adapters.entra_signin.idtoken import SignInRejected

__all__ = [
    "CALLBACK_PATH",
    "MemoryPendingSignIns",
    "PendingSignIn",
    "SignInConfig",
    "SignInRejected",
    "StepUpFlow",
    "StoredPendingSignIns",
]
