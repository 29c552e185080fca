"""The import layering, read off the source tree: ``ir`` imports nothing above it, ``passes`` only ``ir``, ``runtime``
only ``ir`` (the machine description ``cimc.ir.target`` included), and ``compiler`` whatever it needs. An import
inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Each subpackage and the cimc subpackages it may import (itself included).
ALLOWED = {
    "ir": {"ir"},
    "passes": {"ir", "passes"},
    "runtime": {"ir", "runtime"},
    "compiler": {"ir", "passes", "runtime", "compiler"},
}


def cimc_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, subpackage)`` of every ``cimc.<subpackage>`` import in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cimc" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports cimc.{target}"
        for path in files
        for line, target in cimc_imports(path)
        if target not in ALLOWED[package]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from cimc.compiler.pipeline import x\n\nimport cimc.runtime.isa\n")
    assert sorted(cimc_imports(source)) == [(2, "compiler"), (2, "compiler"), (4, "runtime")]
