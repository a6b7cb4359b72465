"""Target limits (the seed's target_constraints): a request outside its template's limits is
refused before anyone is asked to approve, naming every target it failed."""

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from engine.access import GLOBAL_ADMINISTRATOR, access_from_config
from engine.errors import CommandRefused, ConfigError, ConfigProblems
from engine.lifecycle import ASK_APPROVERS
from engine.limits import TARGET_NOT_ALLOWED, TargetNotAllowed
from engine.verify import verify_bundle
from tests.support.engine_sim import TENANT, JobSim, trust_for

USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
ONCALL_GROUP = "g-oncall"
EXAMPLE = Path(__file__).parents[3] / "breakglass.example.toml"

CONFIG = {
    "entra-role": {
        "roles": [USER_ADMIN, HELPDESK_ADMIN],
        "principals": ["u-alice"],
        "principal_groups": [ONCALL_GROUP],
        "step_up": "off",
    },
    "ca-exclusion": {"ca_policies": ["pol-mfa"], "groups": ["g-breakglass"]},
}


def limited_sim(config: dict[str, object] | None = None) -> JobSim:
    sim = JobSim()
    sim.rules = replace(sim.rules, access=access_from_config(config or CONFIG, {}))
    return sim


def role_targets(principal: str = "u-alice", role: str = USER_ADMIN) -> dict[str, str]:
    return {"tenant_id": TENANT, "principal_id": principal, "role_definition_id": role}


def refused_request(sim: JobSim, **kw: object) -> CommandRefused:
    with pytest.raises(CommandRefused) as err:
        sim.request(**kw)
    assert sim.job is None  # nothing was created, nobody was asked
    assert sim.records == []
    return err.value


def test_allowed_role_and_principal_are_asked_and_recorded_in_the_wpc() -> None:
    sim = limited_sim()
    transition = sim.request(targets=role_targets())
    assert ASK_APPROVERS in [e.kind for e in transition.effects]
    assert sim.job is not None
    access = sim.job.plan.payload["metadata"]["breakglass"]["access"]
    assert access["limits"]["admitted"] == {
        "tenant_id": "service_tenant",
        "principal_id": "listed",
        "role_definition_id": "listed",
    }
    assert len(access["limits"]["limits_hash_b64u"]) == 43
    assert "step_up" not in access


def test_global_administrator_outside_the_list_is_refused_before_approval() -> None:
    err = refused_request(limited_sim(), targets=role_targets(role=GLOBAL_ADMINISTRATOR))
    assert err.reason == TARGET_NOT_ALLOWED
    assert isinstance(err, TargetNotAllowed)
    assert err.failed == (f"role_definition_id={GLOBAL_ADMINISTRATOR}",)
    assert USER_ADMIN in err.detail  # the refusal names what is allowed


def test_every_failed_target_is_listed_not_only_the_first() -> None:
    err = refused_request(
        limited_sim(), targets=role_targets(principal="u-mallory", role=GLOBAL_ADMINISTRATOR)
    )
    assert isinstance(err, TargetNotAllowed)
    assert err.failed == ("principal_id=u-mallory", f"role_definition_id={GLOBAL_ADMINISTRATOR}")


def test_a_member_of_an_allowed_group_may_be_elevated() -> None:
    sim = limited_sim()
    sim.request(targets=role_targets(principal="u-dave"), memberships=(ONCALL_GROUP, "g-other"))
    assert sim.job is not None
    admitted = sim.job.plan.payload["metadata"]["breakglass"]["access"]["limits"]["admitted"]
    assert admitted["principal_id"] == f"group:{ONCALL_GROUP}"


def test_a_member_of_another_group_is_refused() -> None:
    err = refused_request(
        limited_sim(), targets=role_targets(principal="u-dave"), memberships=("g-other",)
    )
    assert err.reason == TARGET_NOT_ALLOWED


def test_ca_policy_and_exclusion_group_limits() -> None:
    sim = limited_sim()
    good = {"tenant_id": TENANT, "policy_id": "pol-mfa", "group_id": "g-breakglass"}
    sim.request(template="ca-exclusion", targets=good)
    assert sim.job is not None
    err = refused_request(
        limited_sim(),
        template="ca-exclusion",
        targets={"tenant_id": TENANT, "policy_id": "pol-other", "group_id": "g-all-users"},
    )
    assert isinstance(err, TargetNotAllowed)
    assert err.failed == ("policy_id=pol-other", "group_id=g-all-users")


def test_a_template_without_limits_is_refused_when_limits_are_configured() -> None:
    sim = limited_sim({"entra-role": CONFIG["entra-role"]})
    err = refused_request(
        sim,
        template="ca-exclusion",
        targets={"tenant_id": TENANT, "policy_id": "pol-mfa", "group_id": "g-breakglass"},
    )
    assert err.reason == TARGET_NOT_ALLOWED


def test_a_kind_with_no_list_allows_nothing() -> None:
    sim = limited_sim({"entra-role": {"roles": ["*"], "step_up": "off"}})
    err = refused_request(sim, targets=role_targets())
    assert isinstance(err, TargetNotAllowed)
    assert err.failed == ("principal_id=u-alice",)
    assert "allows no principal" in err.detail


def test_wildcard_and_guid_case_are_admitted() -> None:
    sim = limited_sim(
        {"entra-role": {"roles": [USER_ADMIN.upper()], "principals": ["*"], "step_up": "off"}}
    )
    sim.request(targets=role_targets(principal="u-zed", role=USER_ADMIN.upper()))
    assert sim.job is not None


def test_a_limited_job_still_verifies() -> None:
    sim = limited_sim({"entra-role": {"roles": ["r-ga"], "principals": ["u-alice"]}})
    sim.whole_job()
    report = verify_bundle(sim.bundle(), trust_for(sim.keys))
    assert report.valid, report.reasons


def test_no_access_rules_keeps_the_wpc_unchanged() -> None:
    sim = JobSim()
    sim.request()
    assert sim.job is not None
    assert "access" not in sim.job.plan.payload["metadata"]["breakglass"]


def test_the_example_configuration_does_not_allow_global_administrator() -> None:
    doc = tomllib.loads(EXAMPLE.read_text())
    rules = access_from_config(doc.get("templates", {}), doc.get("step_up", {}))
    assert rules is not None
    roles = rules.templates["entra-role"].limits.allowed
    assert GLOBAL_ADMINISTRATOR not in {r for ids in roles.values() for r in ids}
    assert "*" not in {r for ids in roles.values() for r in ids}
    sim = JobSim()
    sim.rules = replace(sim.rules, access=rules)
    err = refused_request(sim, targets=role_targets(role=GLOBAL_ADMINISTRATOR))
    assert err.reason == TARGET_NOT_ALLOWED


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ({"entra-role": {"roles": "all"}}, "list of ids"),
        ({"entra-role": {"colour": []}}, "unknown key"),
        ({"entra-role": {"step_up": "maybe"}}, "step_up"),
        ({"entra-role": {"prerequisite": "change_ticket"}}, "ticket_pattern"),
        ({"entra-role": {"prerequisite": "change_ticket", "ticket_pattern": "("}}, "regular"),
        ({"entra-role": "yes"}, "must be a table"),
    ],
)
def test_bad_configuration_is_a_config_error(templates: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        access_from_config(templates, {})


def test_every_problem_of_every_table_is_named_at_once() -> None:
    templates = {
        "entra-role": {"roles": [1, 2], "revoke_sessions_at_end": "yes"},
        "ca-exclusion": {"rotate_credentials": ["bogus"]},
    }
    with pytest.raises(ConfigProblems) as err:
        access_from_config(templates, {"authentication_context": "x"})
    assert err.value.problems == [
        "templates.entra-role.roles must be a list of ids",
        "templates.entra-role.revoke_sessions_at_end must be true or false",
        "templates.ca-exclusion.rotate_credentials must list only application_password",
        "step_up.authentication_context must be an id c1..c99",
    ]
