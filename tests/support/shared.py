"""Find ../shared (clawsig schemas and vectors, Adaptive Card schema) and load JSON Schemas.

The schemas are data kept outside the project; every JSON file is loaded into a
``referencing`` registry keyed by its ``$id`` so no ``$ref`` ever touches the network.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]


@cache
def shared_dir() -> Path | None:
    candidates = [os.environ.get("BREAKGLASS_SHARED_DIR", ""), REPO.parent / "shared"]
    candidates += [REPO.parent.parent / "shared", "/work/shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "clawsig" / "schemas").is_dir():
            return Path(candidate)
    return None


def require_shared() -> Path:
    found = shared_dir()
    if found is None:
        pytest.skip("SKIPPED LOUDLY: ../shared (clawsig schemas) not found beside the repo")
    return found


@cache
def _registry_and_files() -> tuple[Registry, dict[str, dict[str, Any]]]:
    root = require_shared() / "clawsig" / "schemas"
    registry: Registry = Registry()
    by_name: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.json")):
        schema = json.loads(path.read_text())
        by_name[path.name] = schema
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    return registry, by_name


def validator(file_name: str) -> Draft202012Validator:
    """A validator for the clawsig schema file named ``file_name`` (e.g. tool_receipt.v1.json)."""
    registry, by_name = _registry_and_files()
    return Draft202012Validator(by_name[file_name], registry=registry)


def assert_valid(file_name: str, instance: Any) -> None:
    errors = sorted(validator(file_name).iter_errors(instance), key=str)
    assert not errors, f"{file_name}: " + "; ".join(e.message for e in errors[:5])


def conformance(name: str) -> Any:
    return json.loads((require_shared() / "clawsig" / "conformance" / name).read_text())
