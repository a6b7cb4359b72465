"""Compact lists of near-identical JSON objects (a job's WPCs, tokens, revocation records).

The first item is kept whole; each later one is stored as an RFC 7386 JSON merge patch
against the first (``{"merge_patch": {...}}``) or against the item before it
(``{"merge_patch_previous": {...}}``), whichever is shorter, so a job's extensions cost only
what changed, and so does each renewal of its rollback token after the first (against the
first, the agent's token, every renewal repeated its whole scope). An item a merge patch
cannot express (it holds ``null``) is kept whole. Expanding accepts whole items anywhere, so
bundles written before compaction (or before patches against the previous item) still read.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from engine.canonical import jcs
from engine.errors import VerificationError

PATCH_KEY = "merge_patch"  # against the first item
PREVIOUS_KEY = "merge_patch_previous"  # against the item before


def merge_patch(base: Any, target: Any) -> Any:
    """The merge patch that turns ``base`` into ``target`` (objects recurse, the rest replace)."""
    if not isinstance(base, Mapping) or not isinstance(target, Mapping):
        return target
    patch: dict[str, Any] = {key: None for key in base if key not in target}
    for key, value in target.items():
        if key not in base or base[key] != value:
            patch[key] = merge_patch(base.get(key), value)
    return patch


def apply_merge_patch(base: Any, patch: Any) -> Any:
    """RFC 7386: ``null`` removes a member, an object merges, anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(base) if isinstance(base, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def compact(items: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``items`` with every item after the first as the shorter of its patches against the
    first and against the one before it (or whole, when no patch expresses it)."""
    if not items:
        return []
    out: list[Any] = [dict(items[0])]
    for previous, item in itertools.pairwise(items):
        candidates = [
            {key: patch}
            for key, base in ((PATCH_KEY, items[0]), (PREVIOUS_KEY, previous))
            if _expresses(base, patch := merge_patch(base, item), item)
        ]
        out.append(min(candidates, key=lambda c: len(jcs(c))) if candidates else dict(item))
    return out


def _expresses(base: Mapping[str, Any], patch: Any, item: Mapping[str, Any]) -> bool:
    return apply_merge_patch(base, patch) == item and not {PATCH_KEY, PREVIOUS_KEY} & item.keys()


def expand(stored: object, what: str) -> list[Mapping[str, Any]]:
    """The items of a compacted list; VerificationError(SCHEMA_VALIDATION_FAILED) if malformed."""
    if not isinstance(stored, list) or not all(isinstance(i, Mapping) for i in stored):
        raise VerificationError("SCHEMA_VALIDATION_FAILED", f"{what} is not a list of objects")
    if not stored:
        return []
    items = [stored[0]]
    for item in stored[1:]:
        items.append(_expanded(item, items[0], items[-1], what))
    return items


def _expanded(
    item: Mapping[str, Any], first: Mapping[str, Any], previous: Mapping[str, Any], what: str
) -> Mapping[str, Any]:
    """``item`` whole, or its patch applied to the first or the previous item."""
    keys = [key for key in (PATCH_KEY, PREVIOUS_KEY) if item.get(key) is not None]
    if not keys:
        return item
    patch = item[keys[0]]
    if len(keys) != 1 or len(item) != 1 or not isinstance(patch, Mapping):
        raise VerificationError("SCHEMA_VALIDATION_FAILED", f"{what}: malformed merge patch")
    expanded: dict[str, Any] = apply_merge_patch(first if keys[0] == PATCH_KEY else previous, patch)
    return expanded
