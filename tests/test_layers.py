"""Dependencies point one way (docs/design.md, "Layers"): the twin knows only what firmware
knows, the math imports no I/O layer, and the bench description imports no layer at all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FORBIDDEN = {
    "sim_hw": {"router", "scheduler"},
    "firmware_bridge": {"router", "scheduler", "sim_hw"},
    "scheduler": {"router", "firmware_bridge", "sim_hw"},
    "bench": {"router", "scheduler", "firmware_bridge", "sim_hw"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imports(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
