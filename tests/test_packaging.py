"""Packaging: every subpackage folder is listed in pyproject.toml, and the console script is declared."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {"cimc.ir": "ir", "cimc.passes": "passes", "cimc.compiler": "compiler", "cimc.runtime": "runtime"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_folder_with_init_is_a_listed_package() -> None:
    found = set()
    for package, folder in PACKAGE_DIRS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert sorted(found) == sorted(_pyproject()["tool"]["setuptools"]["packages"])


def test_package_dirs_and_script() -> None:
    project = _pyproject()
    assert project["tool"]["setuptools"]["package-dir"] == PACKAGE_DIRS
    assert project["project"]["scripts"] == {"cimc": "cimc.compiler.cli:main"}
    assert not (ROOT / "cimc" / "__init__.py").exists()  # cimc is a namespace package


def test_no_module_imports_the_folders_by_their_bare_names() -> None:
    for folder in PACKAGE_DIRS.values():
        for source in (ROOT / folder).rglob("*.py"):
            for line in source.read_text().splitlines():
                stripped = line.strip()
                for bare in PACKAGE_DIRS.values():
                    assert not stripped.startswith((f"import {bare}", f"from {bare} ", f"from {bare}.")), (
                        f"{source}: '{stripped}' imports '{bare}' by its bare name; use cimc.{bare}"
                    )


def test_runtime_never_imports_the_onnx_importer() -> None:
    for source in (ROOT / "runtime").rglob("*.py"):
        assert "onnx_importer" not in source.read_text(), f"{source} imports the ONNX importer"


def test_a_non_editable_install_ships_the_chip_presets(tmp_path: Path) -> None:
    """``pip install .`` (a wheel) must carry the preset TOML files beside ir/target/chip.py."""
    presets = sorted(p.name for p in (ROOT / "ir" / "target" / "chips").glob("*.toml"))
    assert presets, "no chip presets in ir/target/chips"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("cimc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(Path(n).name for n in archive.namelist() if n.startswith("cimc/ir/target/chips/"))
    assert shipped == presets
