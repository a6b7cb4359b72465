"""Why the tenant refused a call, as an escalation says it: the code, the AADSTS number and
a hint, never the message's free text (adapters/graph/refusals.py)."""

from __future__ import annotations

import pytest

from adapters.graph.refusals import describe_gateway_refusal, describe_refusal
from engine.errors import GraphError


def result_of(err: GraphError) -> dict[str, str]:
    """What the gateway makes of a tool's GraphError (bot/gateway_service.py)."""
    return {"error": err.code, "message": str(err)[:300]}


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            GraphError("invalid_client", "AADSTS7000222: refused", status=401),
            "invalid_client AADSTS7000222: the app's client secret has expired: "
            "replace the app's client secret",
        ),
        (
            GraphError("invalid_client", "AADSTS7000215: refused", status=401),
            "invalid_client AADSTS7000215: the app's client secret is not valid (deleted or "
            "replaced): replace the app's client secret",
        ),
        (
            GraphError("unauthorized_client", "AADSTS7000112: refused", status=400),
            "unauthorized_client AADSTS7000112 (Graph 400): the app is disabled in the "
            "tenant: enable its service principal",
        ),
        (
            GraphError("Authorization_RequestDenied", "Insufficient privileges.", status=403),
            "Authorization_RequestDenied (Graph 403): the app lacks the Graph permission "
            "this step needs: grant the Graph permission again",
        ),
        (
            GraphError("TokenEndpointUnavailable", "could not be reached"),
            "TokenEndpointUnavailable: the token endpoint could not be reached",
        ),
        (GraphError("ServiceUnavailable", "later", status=503), "ServiceUnavailable (Graph 503)"),
    ],
)
def test_a_refusal_is_said_with_its_code_number_and_what_to_do(
    error: GraphError, said: str
) -> None:
    assert describe_refusal(result_of(error)) == said


def test_nothing_but_the_code_and_the_number_is_taken_from_the_tenant() -> None:
    secret = "s3cr3t~value"
    message = f"Graph 401 invalid_client: AADSTS7000222: {secret} AADSTS1 trace"
    said = describe_refusal({"error": "invalid_client", "message": message})
    assert said is not None
    assert secret not in said
    assert "trace" not in said
    # A code that is not a plain identifier is no code: nothing is said.
    assert describe_refusal({"error": f"bad {secret}", "message": message}) is None
    assert describe_refusal({"error": "x" * 65}) is None
    assert describe_refusal({"verified": False}) is None


def test_a_gateway_refusal_is_said_by_its_code() -> None:
    assert describe_gateway_refusal("TOKEN_INVALID") == "gateway refused: TOKEN_INVALID"
    assert describe_gateway_refusal("not a code at all") is None
