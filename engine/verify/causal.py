"""Causal span checks: the reference verifier's rules for ``span_id``, ``parent_span_id``,
``tool_span_id``, ``phase`` and ``attribution_confidence`` in receipt bindings.

Spans are declared by gateway receipts (``payload.receipts[*].payload.binding``). When any
is declared, the graph must be sound (no dangling reference, no cycle, no clock going
backwards, allowed phase transitions, one connected lineage from a root) and every human
approval and side-effect receipt must anchor to a declared span. When none is declared the
bundle is legacy (the reference's ``observe`` mode accepts it); an approval that names a
span is then still an orphan. Reason codes are the reference's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from engine.canonical import jcs
from engine.errors import InputError, VerificationError
from engine.timeutil import parse_iso

PHASES: dict[str, frozenset[str]] = {  # phase -> phases a child span may be in
    "setup": frozenset({"setup", "planning"}),
    "planning": frozenset({"planning", "reasoning", "execution"}),
    "reasoning": frozenset({"reasoning", "execution", "observation"}),
    "execution": frozenset({"execution", "observation", "reflection", "teardown"}),
    "observation": frozenset({"observation", "reflection", "teardown"}),
    "reflection": frozenset({"reflection", "teardown"}),
    "teardown": frozenset({"teardown"}),
}
_IDS = (("span_id", "spanId"), ("parent_span_id", "parentSpanId"), ("tool_span_id", "toolSpanId"))
_CONFIDENCE = ("attribution_confidence", "attributionConfidence")
_CAUSAL_KEYS = frozenset({k for pair in (*_IDS, _CONFIDENCE) for k in pair} | {"phase"})


def fail(code: str, message: str, path: str) -> VerificationError:
    return VerificationError(code, f"{message} (at {path})")


class Decl(NamedTuple):  # a tuple: a bundle declares thousands, each built cheaply
    """One receipt binding that carries causal fields."""

    path: str
    span: str | None
    parent: str | None
    tool: str | None
    phase: object
    confidence: float | None
    at: datetime | None  # payload.timestamp, else envelope.issued_at


def check_causal(payload: Mapping[str, Any]) -> None:
    """Raise VerificationError with the first causal reason code, as the reference does."""
    decls = list(_declarations(payload.get("receipts", [])))
    _check_replay(payload.get("receipts", []))
    known = {d.span for d in decls if d.span is not None}
    if decls:
        _check_fields(decls, known)
        _check_relations(decls)
        _check_cycles(decls)
        _check_confidence(decls)
        _check_connected(decls)
    for section, code in (
        ("side_effect_receipts", "CAUSAL_SIDE_EFFECT_ORPHANED"),
        ("human_approval_receipts", "CAUSAL_HUMAN_APPROVAL_ORPHANED"),
    ):
        _check_anchored(payload.get(section, []), f"payload.{section}", known, code)


# ------------------------------------------------------------------ reading bindings


def _ident(binding: Mapping[str, Any], keys: tuple[str, str], path: str) -> str | None:
    """A snake_case/camelCase identifier pair, normalised (trimmed, must agree)."""
    if keys[1] not in binding:  # the usual case, one spelling: no list, no set
        raw = binding.get(keys[0])
        if raw is None and keys[0] not in binding:
            return None
        if not isinstance(raw, str) or not raw.strip():
            raise fail("CAUSAL_BINDING_NORMALIZATION_FAILED", f"{keys[0]} is not an id", path)
        return raw.strip()
    values = []
    for key in keys:
        if key not in binding:
            continue
        raw = binding[key]
        if not isinstance(raw, str) or not raw.strip():
            raise fail("CAUSAL_BINDING_NORMALIZATION_FAILED", f"{key} is not an id", path)
        values.append(raw.strip())
    if len(set(values)) > 1:
        raise fail("CAUSAL_BINDING_FIELD_CONFLICT", f"{keys[0]} and {keys[1]} differ", path)
    return values[0] if values else None


def _confidence(binding: Mapping[str, Any], path: str) -> float | None:
    values = []
    for key in _CONFIDENCE:
        if key not in binding:
            continue
        raw = binding[key]
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise fail("CAUSAL_BINDING_NORMALIZATION_FAILED", f"{key} is not a number", path)
        values.append(float(raw))
    if len(set(values)) > 1:
        raise fail("CAUSAL_BINDING_FIELD_CONFLICT", "attribution confidences differ", path)
    return values[0] if values else None


def _declarations(receipts: Sequence[Any]) -> Iterator[Decl]:
    for i, envelope in enumerate(receipts):
        body = envelope.get("payload", {}) if isinstance(envelope, Mapping) else {}
        binding = body.get("binding") if isinstance(body, Mapping) else None
        if not isinstance(binding, Mapping) or not _CAUSAL_KEYS & binding.keys():
            continue
        path = f"payload.receipts[{i}].payload.binding"
        span, parent, tool = (_ident(binding, keys, path) for keys in _IDS)
        yield Decl(
            path,
            span,
            parent,
            tool,
            binding.get("phase"),
            _confidence(binding, path),
            _clock(body.get("timestamp"), envelope.get("issued_at"), path),
        )


def _clock(stamp: object, issued: object, path: str) -> datetime | None:
    """The span's time; a payload timestamp after its envelope's issue is a contradiction."""
    times: list[datetime | None] = []
    for value in (stamp, issued):
        if value is None:
            times.append(None)
            continue
        try:
            times.append(parse_iso(value))
        except InputError as exc:
            raise fail(
                "CAUSAL_CLOCK_CONTRADICTION", "a binding time is not ISO-8601", path
            ) from exc
    at, issued_at = times
    if at is not None and issued_at is not None and at > issued_at:
        raise fail("CAUSAL_CLOCK_CONTRADICTION", "timestamp is after issued_at", path)
    return at or issued_at


def _check_replay(receipts: Sequence[Any]) -> None:
    """One receipt id, one payload: a replay with other content is refused."""
    bodies = [
        (i, body)
        for i, envelope in enumerate(receipts)
        if isinstance(envelope, Mapping)
        and isinstance(body := envelope.get("payload"), Mapping)
        and isinstance(body.get("receipt_id"), str)
    ]
    uses = Counter(body["receipt_id"] for _, body in bodies)
    seen: dict[str, bytes] = {}
    for i, body in bodies:
        if uses[body["receipt_id"]] < 2:
            continue  # an id used once replays nothing: no need to canonicalise it
        canonical = jcs(body)
        if seen.setdefault(body["receipt_id"], canonical) != canonical:
            path = f"payload.receipts[{i}].payload.receipt_id"
            raise fail("CAUSAL_RECEIPT_REPLAY_DETECTED", "receipt_id replayed", path)


# ------------------------------------------------------------------------ the graph


def _check_fields(decls: Sequence[Decl], known: set[str]) -> None:
    for d in decls:
        if d.phase is not None and d.phase not in PHASES:
            raise fail("CAUSAL_PHASE_INVALID", f"unknown phase {d.phase!r}", d.path)
        if d.confidence is not None and not 0.0 <= d.confidence <= 1.0:
            raise fail("CAUSAL_CONFIDENCE_OUT_OF_RANGE", "confidence outside [0, 1]", d.path)
        for ref in (d.parent, d.tool):
            if ref is not None and ref not in known:
                raise fail("CAUSAL_REFERENCE_DANGLING", f"unknown span {ref}", d.path)


def _spans(decls: Sequence[Decl]) -> dict[str, Decl]:
    """The first declaration of each span id (the reference's canonical one)."""
    first: dict[str, Decl] = {}
    for d in decls:
        if d.span is not None:
            first.setdefault(d.span, d)
    return first


def _check_relations(decls: Sequence[Decl]) -> None:
    spans = _spans(decls)
    for d in decls:  # a span declared twice must mean the same thing
        if d.span is None:
            continue
        prev = spans[d.span]
        if prev is d:
            continue  # its first declaration: nothing to differ from
        if prev.at is not None and d.at is not None and prev.at != d.at:
            raise fail("CAUSAL_CLOCK_CONTRADICTION", f"span {d.span} has two times", d.path)
        for name in ("parent", "tool", "phase", "confidence"):
            a, b = getattr(prev, name), getattr(d, name)
            if a is not None and b is not None and a != b:
                raise fail("CAUSAL_SPAN_REUSE_CONFLICT", f"span {d.span} reused ({name})", d.path)
    for span, d in spans.items():
        for ref in (d.parent, d.tool):
            up = spans.get(ref) if ref else None
            if up is None:
                continue
            if d.at is not None and up.at is not None and d.at < up.at:
                raise fail("CAUSAL_CLOCK_CONTRADICTION", f"span {span} precedes {ref}", d.path)
            if _bad_transition(up.phase, d.phase):
                message = f"phase {up.phase} -> {d.phase} for span {span}"
                raise fail("CAUSAL_PHASE_TRANSITION_INVALID", message, d.path)


def _bad_transition(parent: object, child: object) -> bool:
    if not isinstance(parent, str) or not isinstance(child, str):
        return False
    return child not in PHASES.get(parent, frozenset())


def _check_cycles(decls: Sequence[Decl]) -> None:
    parents: dict[str, Decl] = {}
    for d in decls:
        if d.span is not None and d.parent is not None:
            parents.setdefault(d.span, d)
    # Parent links form chains: a walk that ends (or meets a span already known to end)
    # proves its whole path acyclic, so each span is walked once, not once per descendant.
    acyclic: set[str] = set()
    for start in parents:
        seen = {start}
        node = parents[start].parent
        while node is not None and node in parents and node not in acyclic:
            if node in seen:
                raise fail("CAUSAL_CYCLE_DETECTED", f"parent cycle at {node}", parents[node].path)
            seen.add(node)
            node = parents[node].parent
        acyclic |= seen


def _check_confidence(decls: Sequence[Decl]) -> None:
    """Confidence may not claim more than the lineage proves: 1.0 direct, 0.5 inferred."""
    referenced = {ref for d in decls for ref in (d.parent, d.tool) if ref}
    for d in decls:
        if d.confidence is None:
            continue
        direct = d.parent or d.tool or (d.span is not None and d.span in referenced)
        cap = 1.0 if direct else 0.5 if d.span is not None else 0.0
        if d.confidence > cap:
            message = f"confidence {d.confidence} above {cap} for its evidence"
            raise fail("CAUSAL_CONFIDENCE_EVIDENCE_INCONSISTENT", message, d.path)


def _check_connected(decls: Sequence[Decl]) -> None:
    """One lineage: at least one root, every span reaches a root, one component."""
    spans = _spans(decls)
    if not spans:
        return
    roots = {s for s, d in spans.items() if d.parent is None and d.tool is None}
    if not roots:
        path = next(iter(spans.values())).path
        raise fail("CAUSAL_GRAPH_DISCONNECTED", "the causal graph has no root", path)
    rooted = _rooted(spans, roots)
    for span, d in spans.items():
        if span not in rooted:
            raise fail("CAUSAL_GRAPH_DISCONNECTED", f"span {span} reaches no root", d.path)
    links: dict[str, set[str]] = {s: set() for s in spans}
    for span, d in spans.items():
        for ref in (d.parent, d.tool):
            if ref in links:
                links[span].add(ref)
                links[ref].add(span)
    reached, todo = set(), [next(iter(spans))]
    while todo:
        node = todo.pop()
        if node not in reached:
            reached.add(node)
            todo.extend(links[node] - reached)
    for span, d in spans.items():
        if span not in reached:
            raise fail("CAUSAL_GRAPH_DISCONNECTED", "the causal graph is in pieces", d.path)


def _rooted(spans: Mapping[str, Decl], roots: set[str]) -> set[str]:
    """The spans from which a parent or tool reference path leads to a root: found walking
    the references backwards from the roots (linear, no recursion, for long lineages)."""
    children: dict[str, list[str]] = {}
    for span, d in spans.items():
        for ref in (d.parent, d.tool):
            if ref:
                children.setdefault(ref, []).append(span)
    rooted, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in rooted:
                rooted.add(child)
                todo.append(child)
    return rooted


def _check_anchored(items: Sequence[Any], prefix: str, known: set[str], code: str) -> None:
    """Every approval (side effect) names a declared span: its tool span, else its parent
    span, else its own span. Legacy bundles (no spans, no anchors) are let through."""
    for i, item in enumerate(items):
        path = f"{prefix}[{i}]"
        binding = item.get("binding") if isinstance(item, Mapping) else None
        if not isinstance(binding, Mapping):
            if known:
                raise fail(code, "no binding to anchor it to a span", path)
            continue
        path += ".binding"
        tool, parent, span = (_ident(binding, keys, path) for keys in reversed(_IDS))
        anchor = tool or parent or span
        if anchor is None and not known:
            continue
        if anchor not in known:
            raise fail(code, "not anchored to a declared span", path)
