import json

from adapters.graph.failures import ResponseLost, error_from_response


def test_graph_error_body_becomes_graph_error() -> None:
    body = {
        "error": {
            "code": "RoleAssignmentExists",
            "message": "The Role assignment already exists.",
            "innerError": {"date": "2025-01-01T00:00:00", "request-id": "r-1"},
        }
    }
    err = error_from_response(400, json.dumps(body), {"request-id": "header-id"})
    assert (err.code, err.status, err.request_id) == ("RoleAssignmentExists", 400, "r-1")
    assert err.message == "The Role assignment already exists."


def test_request_id_falls_back_to_the_header() -> None:
    err = error_from_response(500, json.dumps({"error": {"code": "x"}}), {"Request-Id": "h-2"})
    assert err.request_id == "h-2"


def test_non_json_body_is_not_copied() -> None:
    err = error_from_response(502, "<html>" + "A" * 5000, {})
    assert err.code == "HTTP502"
    assert "<html>" not in err.message


def test_long_messages_are_cut_to_one_line() -> None:
    body = {"error": {"code": "c", "message": "first\nsecond" + "x" * 1000}}
    err = error_from_response(400, json.dumps(body), {})
    assert err.message == "first"


def test_response_lost_is_a_graph_error_with_its_own_code() -> None:
    err = ResponseLost("POST", "/roleManagement/x", 504)
    assert (err.code, err.status) == ("ResponseLost", 504)
