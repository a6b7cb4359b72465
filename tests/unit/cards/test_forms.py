"""The request form: what each platform submits parses into the same RequestValues."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cards import forms, slack, teams
from cards.forms import RequestFormError, request_from_slack, request_from_teams
from cards.views import RequestFormView, RequestValues, Template
from engine.errors import TemplateError
from engine.wpc import TEMPLATES, PlanRequest, build_wpc
from tests.support.engine_sim import ROLE_TARGETS
from tests.unit.cards import samples

ISSUER = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
VALUES = RequestValues(Template.CA_EXCLUSION, "grp-1", "pol-1", 45, "INC-9 lockout", "INC-9")


def teams_submission(card: dict[str, Any], values: RequestValues) -> dict[str, Any]:
    """What Teams sends: the submit action's data with every input's value merged in."""
    data = dict(card["actions"][0]["data"])
    typed = {
        "template": values.template.value,
        "principal": values.principal,
        "resource": values.resource,
        "duration_minutes": str(values.duration_minutes),
        "justification": values.justification,
        "ticket": values.ticket,
    }
    inputs = [e["id"] for e in card["body"] if e["type"].startswith("Input.")]
    assert sorted(inputs) == sorted(typed)
    return {**data, **typed}


def slack_state(modal: dict[str, Any], values: RequestValues) -> dict[str, Any]:
    """What Slack sends as view.state.values for the modal's input blocks."""
    state: dict[str, Any] = {}
    for block in modal["blocks"]:
        if block["type"] != "input":
            continue
        field = block["block_id"]
        assert block["element"]["action_id"] == field
        if field == "template":
            entry = {"type": "static_select", "selected_option": {"value": values.template.value}}
        else:
            raw = getattr(values, "duration_minutes" if field == "duration_minutes" else field)
            entry = {"type": block["element"]["type"], "value": str(raw) if raw != "" else None}
        state[field] = {field: entry}
    return state


def test_teams_form_round_trip() -> None:
    card = teams.request_form_card(samples.request_form())
    assert card["actions"][0]["verb"] == forms.REQUEST_VERB
    assert request_from_teams(teams_submission(card, VALUES)) == (VALUES, "C0123ABC")


def test_slack_form_round_trip() -> None:
    modal = slack.request_modal(samples.request_form())
    assert modal["callback_id"] == forms.REQUEST_CALLBACK_ID
    assert modal["private_metadata"] == "C0123ABC"
    assert request_from_slack(slack_state(modal, VALUES)) == VALUES


def test_the_ticket_is_required_as_the_engine_requires_it() -> None:
    """The engine refuses a request without a ticket (NOT_ELIGIBLE): both forms say so and
    an empty one is refused before it gets there."""
    values = RequestValues(Template.ENTRA_ROLE, "u", "r", 5, "why", " ")
    modal = slack.request_modal(samples.request_form())
    with pytest.raises(RequestFormError, match="ticket is required"):
        request_from_slack(slack_state(modal, values))
    (block,) = [b for b in modal["blocks"] if b.get("block_id") == "ticket"]
    assert not block.get("optional")
    assert block["label"]["text"] == "Ticket"
    card = teams.request_form_card(samples.request_form())
    (field,) = [e for e in card["body"] if e.get("id") == "ticket"]
    assert field["isRequired"] is True
    assert field["label"] == "Ticket"


def test_prefilled_form_shows_values_and_the_error() -> None:
    card = teams.request_form_card(samples.request_form(prefilled=True))
    values = {e["id"]: e.get("value") for e in card["body"] if e["type"].startswith("Input.")}
    assert values["principal"] == "alice@contoso.example"
    assert values["duration_minutes"] == 30
    assert card["body"][1]["style"] == "attention"


GOOD: dict[str, Any] = {
    "form": "request",
    "template": "entra-role",
    "principal": "u",
    "resource": "r",
    "duration_minutes": "30",
    "justification": "why",
}
BAD_TEAMS = {
    "not a form": {**GOOD, "form": "other"},
    "unknown template": {**GOOD, "template": "global-admin-forever"},
    "unknown key": {**GOOD, "approver": "me"},
    "missing principal": {k: v for k, v in GOOD.items() if k != "principal"},
    "blank justification": {**GOOD, "justification": "   "},
    "oversized justification": {**GOOD, "justification": "x" * 501},
    "duration zero": {**GOOD, "duration_minutes": "0"},
    "duration fraction": {**GOOD, "duration_minutes": "1.5"},
    "duration boolean": {**GOOD, "duration_minutes": True},
    "duration huge": {**GOOD, "duration_minutes": "9" * 50},
    "duration negative": {**GOOD, "duration_minutes": -5},
    "principal not text": {**GOOD, "principal": ["u"]},
    "context oversized": {**GOOD, "context": "c" * 5000},
}


@pytest.mark.parametrize("case", sorted(BAD_TEAMS))
def test_malformed_teams_submission_is_refused(case: str) -> None:
    with pytest.raises(RequestFormError):
        request_from_teams(BAD_TEAMS[case])


def test_malformed_slack_state_is_refused() -> None:
    modal = slack.request_modal(samples.request_form())
    state = slack_state(modal, VALUES)
    for broken in (
        {**state, "extra": {}},
        {k: v for k, v in state.items() if k != "resource"},
        {**state, "template": {"template": {"selected_option": None}}},
        "not a mapping",
    ):
        with pytest.raises(RequestFormError):
            request_from_slack(broken)


def test_labels_say_exactly_what_each_target_accepts() -> None:
    role, ca = forms.labels(Template.ENTRA_ROLE), forms.labels(Template.CA_EXCLUSION)
    F = forms.Field
    assert (role[F.PRINCIPAL], role[F.RESOURCE]) == (
        "User (UPN or object id)",
        "Directory role (display name or id)",
    )
    assert (ca[F.PRINCIPAL], ca[F.RESOURCE]) == (
        "Group (display name or id)",
        "Conditional Access policy (id)",
    )
    either = forms.labels(None)
    for label in (*role.values(), *ca.values()):
        if label not in ("Template", "Duration (minutes)", "Justification", "Ticket"):
            assert label in either[F.PRINCIPAL] or label in either[F.RESOURCE]


def duration_inputs(view: RequestFormView) -> tuple[dict[str, Any], dict[str, Any]]:
    card = teams.request_form_card(view)
    (teams_input,) = [e for e in card["body"] if e.get("id") == "duration_minutes"]
    modal = slack.request_modal(view)
    (slack_input,) = [b for b in modal["blocks"] if b.get("block_id") == "duration_minutes"]
    return teams_input, slack_input


def test_the_duration_minimum_of_an_entra_role_is_five_and_shown() -> None:
    role = RequestValues(Template.ENTRA_ROLE, "u", "r", 2, "why")
    teams_input, slack_input = duration_inputs(RequestFormView(values=role))
    assert (teams_input["min"], teams_input["value"]) == (5, 5)  # 2 was typed: raised to 5
    assert teams_input["errorMessage"] == "Enter 5 to 60 minutes"
    element = slack_input["element"]
    assert (element["min_value"], element["initial_value"]) == ("5", "5")
    for label in (teams_input["label"], slack_input["label"]["text"]):
        assert "at least 5" in label


def test_a_form_before_the_template_is_chosen_names_the_role_minimum() -> None:
    teams_input, slack_input = duration_inputs(RequestFormView())
    # The template is chosen in the same form: its input must not refuse a valid exclusion.
    assert (teams_input["min"], slack_input["element"]["min_value"]) == (1, "1")
    assert "Entra directory role: at least 5" in teams_input["label"]
    assert "Entra directory role: at least 5" in slack_input["label"]["text"]
    ca = RequestValues(Template.CA_EXCLUSION, "g", "p", 2, "why")
    teams_input, _ = duration_inputs(RequestFormView(values=ca))
    assert (teams_input["min"], teams_input["value"]) == (1, 2)
    assert "at least" not in teams_input["label"]


@pytest.mark.parametrize("configured", [30, 240])
def test_the_duration_maximum_is_what_the_engine_accepts(configured: int) -> None:
    # A black-box run: a form offered more minutes than the template allows (120 of 60),
    # and the user learned it only from the refusal after submitting.
    engine_limit = min(configured, TEMPLATES["entra-role"].max_minutes)
    role = RequestValues(Template.ENTRA_ROLE, "u", "r", 300, "why")
    for view in (
        RequestFormView(max_duration_minutes=configured),
        RequestFormView(max_duration_minutes=configured, values=role),
    ):
        teams_input, slack_input = duration_inputs(view)
        assert teams_input["max"] == engine_limit
        assert teams_input["errorMessage"].endswith(f"to {engine_limit} minutes")
        assert slack_input["element"]["max_value"] == str(engine_limit)
        for label in (teams_input["label"], slack_input["label"]["text"]):
            assert label.endswith(f"at most {engine_limit})")
    assert teams_input["value"] == engine_limit  # 300 was typed: lowered to what is allowed
    # The top the form offers is accepted by the engine, one more is not.
    request = PlanRequest("entra-role", ROLE_TARGETS, engine_limit, "u-alice", "why", "T-1", "bg-1")
    build_wpc(request, ISSUER, max_minutes=configured)
    with pytest.raises(TemplateError, match="maximum"):
        build_wpc(replace(request, minutes=engine_limit + 1), ISSUER, max_minutes=configured)


def test_templates_with_different_maxima_each_say_theirs(monkeypatch: pytest.MonkeyPatch) -> None:
    shorter = replace(TEMPLATES["ca-exclusion"], max_minutes=20)
    monkeypatch.setitem(TEMPLATES, "ca-exclusion", shorter)
    teams_input, _ = duration_inputs(RequestFormView(max_duration_minutes=240))
    assert teams_input["max"] == 60  # not chosen yet: a role's 60 must not be blocked
    assert "Entra directory role: at most 60" in teams_input["label"]
    assert "Conditional Access exclusion: at most 20" in teams_input["label"]
    ca = RequestValues(Template.CA_EXCLUSION, "g", "p", 45, "why")
    teams_input, _ = duration_inputs(RequestFormView(max_duration_minutes=240, values=ca))
    assert (teams_input["max"], teams_input["value"]) == (20, 20)
    assert forms.duration_bounds(240)["ca-exclusion"] == {"min": 1, "max": 20}
