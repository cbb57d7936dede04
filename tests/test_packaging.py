"""Packaging honesty: the declared Python range is one the code runs on, and data files ship where they are read."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import neuromorph
from neuromorph._compat import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(neuromorph.__file__).resolve().parent


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def test_tomllib_is_imported_only_through_compat():
    """requires-python >= 3.10 but tomllib is 3.11+: every reader goes through neuromorph._compat (tomli on 3.10)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("tomllib", "tomli") for n in names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders


def test_tomli_is_a_dependency_wherever_tomllib_is_missing():
    project = _pyproject()["project"]
    lowest = tuple(int(p) for p in re.search(r">=\s*(\d+)\.(\d+)", project["requires-python"]).groups())
    if lowest < (3, 11):
        deps = [d.replace(" ", "").replace('"', "'") for d in project["dependencies"]]
        assert any(d.startswith("tomli>=") and "python_version<'3.11'" in d for d in deps), deps


def test_dataset_manifests_ship_as_package_data_of_the_dataset_classes():
    from neuromorph.data.datasets import load_manifest, manifests_dir

    folder = manifests_dir()
    assert folder.parent == PACKAGE / "data" / "datasets"
    names = sorted(p.stem for p in folder.glob("*.toml"))
    assert names == ["dvsgesture", "nmnist", "shd", "ssc"]
    for name in names:
        assert load_manifest(name)["name"]
    globs = _pyproject()["tool"]["setuptools"]["package-data"]["neuromorph.data.datasets"]
    shipped = {p.name for p in folder.iterdir() if any(fnmatch.fnmatch(f"manifests/{p.name}", g) for g in globs)}
    assert shipped == {p.name for p in folder.iterdir() if p.is_file()}
    # one name per thing: the manifests are no separate top-level package any more
    assert "neuromorph.datasets" not in (ROOT / "setup.py").read_text() + (ROOT / "pyproject.toml").read_text()
