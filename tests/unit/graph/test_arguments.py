import pytest

from adapters.graph.arguments import job_marker, marked_job, parse_arguments
from engine import catalog
from engine.errors import InputError

TENANT = "dc1c6a57-17ae-540c-a63e-f9140a3f5e5b"
GUID = "c8d420e6-24f2-50b7-99ea-e4decf6ec878"
ROLE = "fe930be7-5e62-47db-91af-98c3a49a38b1"
READ = {"tenant_id": TENANT, "principal_id": GUID, "role_definition_id": ROLE, "expect": "present"}


def test_valid_arguments_pass_and_tenant_compares_case_insensitively() -> None:
    args = READ | {"tenant_id": TENANT.upper()}
    assert parse_arguments(catalog.READ_ROLE, args, TENANT) == args


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenant_id": GUID}, "tenant"),
        ({"principal_id": f"{GUID}' or 1 eq 1 or principalId eq '"}, "GUID"),
        ({"role_definition_id": "62e90394"}, "GUID"),
        ({"expect": "maybe"}, "one of"),
        ({"principal_id": 7}, "string"),
        ({"surprise": 1}, "unexpected"),
    ],
)
def test_bad_arguments_are_named_not_echoed(change: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_arguments(catalog.READ_ROLE, READ | change, TENANT)
    assert "or 1 eq 1" not in str(caught.value)


def test_missing_argument_and_unknown_tool() -> None:
    with pytest.raises(InputError, match="missing argument expect"):
        parse_arguments(catalog.READ_ROLE, {k: v for k, v in READ.items() if k != "expect"}, TENANT)
    with pytest.raises(InputError, match="unknown tool"):
        parse_arguments("breakglass.other.tool", READ, TENANT)


def test_marker_round_trip_and_forgery_resistance() -> None:
    assert marked_job(f"{job_marker('job-1.a:b')} text") == "job-1.a:b"
    assert marked_job("no marker") is None
    assert marked_job(None) is None
    args = {"tenant_id": TENANT, "principal_id": GUID, "role_definition_id": ROLE}
    with pytest.raises(InputError, match="job_id"):
        parse_arguments(catalog.REMOVE_ROLE, args | {"job_id": "x] [breakglass job=y"}, TENANT)
