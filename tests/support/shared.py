"""Find ../shared (clawsig schemas and vectors, Adaptive Card schema) and load JSON Schemas.

``shared/`` is data kept outside the project, beside the repository: the clawsig protocol's
JSON Schemas and conformance vectors, and the Adaptive Card schema. ``BREAKGLASS_SHARED_DIR``
names it explicitly (and then nothing else is tried); otherwise ``../shared`` (or, from a git
worktree, ``../../shared``). Without it the tests that need it are skipped, all under ONE
summary line (the skip is raised here, so pytest folds them together). Every JSON file is
loaded into a ``referencing`` registry keyed by its ``$id`` so no ``$ref`` touches the network.
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


SHARED_VAR = "BREAKGLASS_SHARED_DIR"
MISSING = (
    "SHARED DATA NOT FOUND: these tests need the clawsig schemas and vectors in ../shared "
    f"(beside the repository) or in ${SHARED_VAR}"
)


def _candidates() -> list[Path]:
    explicit = os.environ.get(SHARED_VAR, "")
    if explicit:
        return [Path(explicit)]
    return [REPO.parent / "shared", REPO.parent.parent / "shared"]


@cache
def shared_dir() -> Path | None:
    for candidate in _candidates():
        if (candidate / "clawsig" / "schemas").is_dir():
            return candidate
    return None


def require_shared() -> Path:
    found = shared_dir()
    if found is None:
        pytest.skip(MISSING)
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


def fold_missing_shared(report: pytest.TestReport) -> None:
    """Report every skip for missing shared data at ONE place, so -ra prints one line.

    pytest folds skips by (file, line, reason); a skip raised in a fixture is reported at each
    test instead. Called from tests/conftest.py for every report."""
    if not report.skipped or shared_dir() is not None:
        return
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2])
        if "SHARED DATA NOT FOUND" in reason or "shared/" in reason:
            report.longrepr = (__file__, 1, f"Skipped: {MISSING}")
