"""Prerequisites in the pure engine: a change ticket must match the configured pattern; a
PIM request must have been confirmed live by the caller, approved, for the same principal
and role. Every refusal happens before anything is planned."""

from dataclasses import replace

import pytest

from engine.access import access_from_config
from engine.errors import CommandRefused
from engine.lifecycle.gatekeeping import PREREQUISITE_INVALID, PREREQUISITE_MISSING
from engine.prerequisites import judge_pim_request
from tests.support.engine_sim import JobSim

TICKETS = {"roles": ["*"], "principals": ["*"], "step_up": "off"}


def sim_with(prerequisite: str, **extra: str) -> JobSim:
    sim = JobSim()
    table = {**TICKETS, "prerequisite": prerequisite, **extra}
    sim.rules = replace(sim.rules, access=access_from_config({"entra-role": table}, {}))
    return sim


def refused(sim: JobSim, **kw: object) -> str:
    with pytest.raises(CommandRefused) as err:
        sim.request(**kw)
    assert sim.job is None
    return err.value.reason


def test_a_change_ticket_matching_the_pattern_is_recorded() -> None:
    sim = sim_with("change_ticket", ticket_pattern="CHG[0-9]{7}")
    sim.request(ticket="CHG0001234")
    assert sim.job is not None
    assert sim.job.external_refs["prerequisite"] == "CHG0001234"
    recorded = sim.job.plan.payload["metadata"]["breakglass"]["access"]["prerequisite"]
    assert recorded == {"kind": "change_ticket", "id": "CHG0001234", "checked": "pattern"}


@pytest.mark.parametrize("ticket", ["INC-42", "CHG0001234x", "xCHG0001234", "CHG12"])
def test_a_ticket_not_matching_the_whole_pattern_is_refused(ticket: str) -> None:
    sim = sim_with("change_ticket", ticket_pattern="CHG[0-9]{7}")
    assert refused(sim, ticket=ticket) == PREREQUISITE_INVALID


def test_a_pim_request_not_confirmed_live_is_refused() -> None:
    sim = sim_with("pim_request")
    pim_id = "0b5f9a4e-0000-4000-8000-000000000001"
    assert refused(sim, prerequisite={"id": pim_id}) == PREREQUISITE_INVALID
    assert refused(sim, prerequisite={"id": ""}, ticket="x") == PREREQUISITE_MISSING


def test_a_confirmed_pim_request_is_recorded_with_what_was_checked() -> None:
    sim = sim_with("pim_request")
    checked = {"status": "Provisioned", "principal_id": "u-alice", "role_definition_id": "r-ga"}
    pim_id = "0b5f9a4e-0000-4000-8000-000000000001"
    sim.request(prerequisite={"id": pim_id, "verified": True, **checked})
    assert sim.job is not None
    recorded = sim.job.plan.payload["metadata"]["breakglass"]["access"]["prerequisite"]
    assert recorded == {"kind": "pim_request", "id": pim_id, "checked": checked}


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (None, "no PIM request"),
        ({"status": "Denied", "principalId": "p", "roleDefinitionId": "r"}, "Denied"),
        ({"status": "Provisioned", "principalId": "q", "roleDefinitionId": "r"}, "principal"),
        ({"status": "Approved", "principalId": "p", "roleDefinitionId": "s"}, "another role"),
        ({"principalId": "p", "roleDefinitionId": "r"}, "missing"),
    ],
)
def test_judging_a_pim_request(doc: dict[str, str] | None, words: str) -> None:
    with pytest.raises(CommandRefused, match=words):
        judge_pim_request(doc, "id-1", "p", "r")


def test_an_approved_pim_request_names_what_was_checked() -> None:
    doc = {"status": "Provisioned", "principalId": "P", "roleDefinitionId": "R"}
    assert judge_pim_request(doc, "id-1", "p", "r") == {
        "status": "Provisioned",
        "principal_id": "p",
        "role_definition_id": "r",
    }
