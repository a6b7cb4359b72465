"""Compact lists of near-identical JSON objects (a job's WPCs, tokens, revocation records).

The first item is kept whole; each later one is stored as an RFC 7386 JSON merge patch
against the first (``{"merge_patch": {...}}``), so a job's extensions cost only what
changed. An item a merge patch cannot express (it holds ``null``) is kept whole. Expanding
accepts whole items anywhere, so bundles written before compaction still read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import VerificationError

PATCH_KEY = "merge_patch"


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
    """``items`` with every item after the first as a patch against the first."""
    if not items:
        return []
    first, out = items[0], [dict(items[0])]
    for item in items[1:]:
        patch = merge_patch(first, item)
        whole = apply_merge_patch(first, patch) != item or PATCH_KEY in item
        out.append(dict(item) if whole else {PATCH_KEY: patch})
    return out


def expand(stored: object, what: str) -> list[Mapping[str, Any]]:
    """The items of a compacted list; VerificationError(SCHEMA_VALIDATION_FAILED) if malformed."""
    if not isinstance(stored, list) or not all(isinstance(i, Mapping) for i in stored):
        raise VerificationError("SCHEMA_VALIDATION_FAILED", f"{what} is not a list of objects")
    if not stored:
        return []
    first = stored[0]
    items = [first]
    for item in stored[1:]:
        patch = item.get(PATCH_KEY)
        if patch is not None and (len(item) != 1 or not isinstance(patch, Mapping)):
            raise VerificationError("SCHEMA_VALIDATION_FAILED", f"{what}: malformed merge patch")
        items.append(item if patch is None else apply_merge_patch(first, patch))
    return items
