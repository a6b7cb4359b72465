"""The request form's contract: field ids, labels, limits, and the parsers of a submission.

The same field ids name the Adaptive Card inputs (``id``) and the Slack modal's input blocks
(``block_id`` = ``action_id``), so both submissions parse into one :class:`RequestValues`.
Parsers check shape and size only; whether the template allows the target or the duration is
the engine's decision (``TemplateError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from cards.views import RequestFormView, RequestValues, Template
from engine.errors import InputError
from engine.wpc import TEMPLATES

REQUEST_VERB = "request"  # Teams Action.Execute verb of the form's submit button
REQUEST_CALLBACK_ID = "breakglass.request"  # Slack modal callback_id
FORM_MARKER = {"form": "request"}
MAX_DURATION_MINUTES = 1440
CONTEXT_LIMIT = 2000


class RequestFormError(InputError):
    """A request form submission is malformed; nothing was requested."""


class Field(StrEnum):
    TEMPLATE = "template"
    PRINCIPAL = "principal"
    RESOURCE = "resource"
    DURATION = "duration_minutes"
    JUSTIFICATION = "justification"
    TICKET = "ticket"


LIMITS = {Field.PRINCIPAL: 256, Field.RESOURCE: 256, Field.JUSTIFICATION: 500, Field.TICKET: 100}

TEMPLATE_CHOICES = {
    Template.ENTRA_ROLE: "Entra directory role (entra-role)",
    Template.CA_EXCLUSION: "Conditional Access exclusion (ca-exclusion)",
}
# Exactly what the preflight read resolves (engine.targets): a user by UPN or object id, a
# role or group by display name or id, a Conditional Access policy by id only.
_USER, _ROLE = "User (UPN or object id)", "Directory role (display name or id)"
_GROUP, _POLICY = "Group (display name or id)", "Conditional Access policy (id)"
_TARGET_LABELS = {
    None: (
        f"{_USER} for entra-role, or {_GROUP} for ca-exclusion",
        f"{_ROLE} for entra-role, or {_POLICY} for ca-exclusion",
    ),
    Template.ENTRA_ROLE: (_USER, _ROLE),
    Template.CA_EXCLUSION: (_GROUP, _POLICY),
}


def template_minimum(template: Template) -> int:
    """The shortest window the engine accepts for ``template`` (engine.wpc decides)."""
    return TEMPLATES[template.value].min_minutes


def template_maximum(template: Template, configured: int) -> int:
    """The longest window the engine accepts for ``template``: the lower of the configured
    maximum (``policy.max_minutes``) and the template's own, as engine.wpc.build_wpc takes it."""
    return min(configured, TEMPLATES[template.value].max_minutes)


def duration_bounds(configured: int) -> dict[str, dict[str, int]]:
    """Each template's shortest and longest window the engine accepts, by template name
    (for a form drawn outside these renderers: the console page)."""
    return {
        t.value: {"min": template_minimum(t), "max": template_maximum(t, configured)}
        for t in Template
    }


def _chosen(view: RequestFormView) -> tuple[Template, ...]:
    return (view.values.template,) if view.values else view.templates


def max_minutes(view: RequestFormView) -> int:
    """The duration input's maximum: the chosen template's, else the highest of those
    offered (a choice the form cannot see yet must not be blocked)."""
    return max(template_maximum(t, view.max_duration_minutes) for t in _chosen(view))


def min_minutes(view: RequestFormView) -> int:
    """The duration input's minimum: the chosen template's, else the lowest of those offered
    (a choice the form cannot see yet must not be blocked); never above the maximum."""
    return min(min(template_minimum(t) for t in _chosen(view)), max_minutes(view))


def duration_label(view: RequestFormView) -> str:
    """Says the minimum of each template whose minimum is above 1 (PIM's 5 minutes), and the
    maximum: one for all, or each template's when they differ."""
    chosen = _chosen(view)
    name = {t: TEMPLATE_CHOICES[t].split(" (")[0] for t in chosen}
    least = {t: template_minimum(t) for t in chosen}
    rules = [f"{name[t]}: at least {low}" for t, low in least.items() if low > 1]
    tops = {t: template_maximum(t, view.max_duration_minutes) for t in chosen}
    if len(set(tops.values())) == 1:
        rules.append(f"at most {max_minutes(view)}")
    else:
        rules.extend(f"{name[t]}: at most {top}" for t, top in tops.items())
    return f"Duration (minutes; {'; '.join(rules)})"


def labels(template: Template | None) -> dict[Field, str]:
    """Labels of each field; target labels name the template's targets when it is known."""
    principal, resource = _TARGET_LABELS[template]
    return {
        Field.TEMPLATE: "Template",
        Field.PRINCIPAL: principal,
        Field.RESOURCE: resource,
        Field.DURATION: "Duration (minutes)",
        Field.JUSTIFICATION: "Justification",
        Field.TICKET: "Ticket",
    }


@dataclass(frozen=True)
class FormInput:
    """One input of the request form, in order: what both renderers draw."""

    field: Field
    label: str
    value: str = ""  # pre-filled text (text inputs only)
    multiline: bool = False


def form_inputs(view: RequestFormView) -> list[FormInput]:
    """The request form's inputs in the order both platforms show them."""
    v = view.values
    label = labels(v.template if v else None)
    return [
        FormInput(Field.TEMPLATE, label[Field.TEMPLATE]),
        FormInput(Field.PRINCIPAL, label[Field.PRINCIPAL], v.principal if v else ""),
        FormInput(Field.RESOURCE, label[Field.RESOURCE], v.resource if v else ""),
        FormInput(Field.DURATION, duration_label(view)),
        FormInput(
            Field.JUSTIFICATION, label[Field.JUSTIFICATION], v.justification if v else "", True
        ),
        FormInput(Field.TICKET, label[Field.TICKET], v.ticket if v else ""),
    ]


Drawn = TypeVar("Drawn")


def draw_form(
    view: RequestFormView,
    choice: Callable[[RequestFormView, str], Drawn],
    number: Callable[[RequestFormView, str], Drawn],
    text: Callable[[Field, str, str, bool], Drawn],
) -> list[Drawn]:
    """Each input of :func:`form_inputs`, drawn by a renderer's element builders: ``choice``
    for the template, ``number`` for the duration, ``text`` (field, label, value, multiline)
    for the rest."""
    drawn: list[Drawn] = []
    for item in form_inputs(view):
        if item.field is Field.TEMPLATE:
            drawn.append(choice(view, item.label))
        elif item.field is Field.DURATION:
            drawn.append(number(view, item.label))
        else:
            drawn.append(text(item.field, item.label, item.value, item.multiline))
    return drawn


def _text(field: Field, value: object, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RequestFormError(f"{field} must be text")
    if len(value) > LIMITS[field]:
        raise RequestFormError(f"{field} is longer than {LIMITS[field]} characters")
    if required and not value.strip():
        raise RequestFormError(f"{field} is required")
    return value.strip()


def _duration(value: object) -> int:
    # Clients send numbers as numbers or as digit strings; booleans and fractions are refused.
    if isinstance(value, str) and value.strip().isdecimal() and len(value) < 8:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestFormError("duration_minutes must be a whole number")
    if not 1 <= value <= MAX_DURATION_MINUTES:
        raise RequestFormError(f"duration_minutes must be 1 to {MAX_DURATION_MINUTES}")
    return value


def _template(value: object) -> Template:
    try:
        return Template(value) if isinstance(value, str) else Template("")
    except ValueError:
        raise RequestFormError("unknown template") from None


def _values(raw: Mapping[Field, object]) -> RequestValues:
    return RequestValues(
        template=_template(raw.get(Field.TEMPLATE)),
        principal=_text(Field.PRINCIPAL, raw.get(Field.PRINCIPAL), required=True),
        resource=_text(Field.RESOURCE, raw.get(Field.RESOURCE), required=True),
        duration_minutes=_duration(raw.get(Field.DURATION)),
        justification=_text(Field.JUSTIFICATION, raw.get(Field.JUSTIFICATION), required=True),
        ticket=_text(Field.TICKET, raw.get(Field.TICKET), required=True),
    )


def request_from_teams(data: object) -> tuple[RequestValues, str]:
    """Parse the ``Action.Execute`` / ``Action.Submit`` data of the request form.

    Returns the values and the form's opaque ``context``.
    """
    if not isinstance(data, Mapping) or data.get("form") != FORM_MARKER["form"]:
        raise RequestFormError("not a request form submission")
    allowed = {*Field, "form", "context"}
    if not all(isinstance(key, str) and key in allowed for key in data):
        raise RequestFormError("request form data has unknown keys")
    context = data.get("context", "")
    if not isinstance(context, str) or len(context) > CONTEXT_LIMIT:
        raise RequestFormError("context must be short text")
    return _values({field: data.get(field.value) for field in Field}), context


def _slack_value(block: object, field: Field) -> object:
    if not isinstance(block, Mapping) or not isinstance(state := block.get(field.value), Mapping):
        raise RequestFormError(f"{field} is missing from the submission")
    if field is Field.TEMPLATE:
        option = state.get("selected_option")
        return option.get("value") if isinstance(option, Mapping) else None
    return state.get("value")


def request_from_slack(state_values: object) -> RequestValues:
    """Parse ``view.state.values`` of the request modal (``block_id`` → ``action_id`` → state)."""
    if not isinstance(state_values, Mapping):
        raise RequestFormError("view state must be an object")
    if not all(isinstance(key, str) and key in set(Field) for key in state_values):
        raise RequestFormError("view state has unknown blocks")
    return _values({field: _slack_value(state_values.get(field.value), field) for field in Field})
