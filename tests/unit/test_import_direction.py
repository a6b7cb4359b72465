"""Imports point one way: ``engine`` ← ``cards`` ← ``adapters`` ← ``bot``.

Every import counts, wherever it stands: inside a function or under ``TYPE_CHECKING`` it is
still a dependency on the package it names. The checker runs on the real tree, and on small
synthetic trees to show that it does fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

LAYERS = ("engine", "cards", "adapters", "bot")  # each may import only those before it
ROOT = Path(__file__).resolve().parents[2]


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.partition(".")[0]
        # relative imports (level > 0) cannot leave their own top-level package


def check(root: Path) -> list[str]:
    """Every upward import under ``root``, then any cycle between the packages."""
    problems: list[str] = []
    depends: dict[str, set[str]] = {layer: set() for layer in LAYERS}
    for rank, layer in enumerate(LAYERS):
        for path in sorted((root / layer).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for line, target in _imported(tree):
                if target not in LAYERS or target == layer:
                    continue
                depends[layer].add(target)
                if LAYERS.index(target) > rank:
                    where = path.relative_to(root).as_posix()
                    problems.append(f"{where}:{line}: {layer} imports {target}")
    try:
        tuple(TopologicalSorter(depends).static_order())
    except CycleError as err:
        problems.append(f"import cycle between packages: {' -> '.join(err.args[1])}")
    return problems


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_project_imports_one_way() -> None:
    assert check(ROOT) == []


def test_an_upward_import_is_reported(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "engine/core.py": "import json\nfrom engine import other\nfrom bot.service import S\n",
            "engine/other.py": "",
            "bot/service.py": "import aiohttp\n",
        },
    )
    assert check(root) == ["engine/core.py:3: engine imports bot"]


def test_type_checking_and_function_imports_count(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "adapters/chat.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from bot.service import JobService\n"
                "def later():\n"
                "    import engine.job\n"
                "    import adapters.chat\n"
            ),
            "cards/views.py": "def render():\n    from adapters import chat\n",
        },
    )
    assert check(root) == [
        "cards/views.py:2: cards imports adapters",
        "adapters/chat.py:3: adapters imports bot",
    ]


def test_a_cycle_between_packages_is_reported(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "cards/a.py": "import adapters.b\n",
            "adapters/b.py": "from cards import a\n",
        },
    )
    upward, cycle = check(root)
    assert upward == "cards/a.py:1: cards imports adapters"
    assert cycle in (
        "import cycle between packages: cards -> adapters -> cards",
        "import cycle between packages: adapters -> cards -> adapters",
    )
