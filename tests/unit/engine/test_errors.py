from engine.errors import GraphError, InvalidToken, describe


def test_invalid_token_is_opaque_to_people() -> None:
    err = InvalidToken("TOKEN_REVOKED", "jti abc")
    assert describe(err) == "The scoped token was refused."
    assert err.reason == "TOKEN_REVOKED"


def test_foreign_error_becomes_one_line_without_text() -> None:
    assert (
        describe(ValueError("secret=hunter2"))
        == "Internal error (ValueError); see the service log."
    )


def test_graph_error_carries_code_and_request_id() -> None:
    err = GraphError("RoleAssignmentExists", "exists", status=400, request_id="r-1")
    assert "RoleAssignmentExists" in describe(err)
    assert err.request_id == "r-1"
