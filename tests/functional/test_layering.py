"""functional (pure math) -> kernels -> nn: no module imports a layer above it, not even inside a function
(a function-level import is how the old cycle between functional and kernels was hidden)."""

import ast
from pathlib import Path

import pytest

import neuromorph

PKG = Path(neuromorph.__file__).parent
ABOVE = {"functional": ("neuromorph.kernels", "neuromorph.nn"), "kernels": ("neuromorph.nn",)}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_no_import_of_a_layer_above(layer):
    bad = [(p.name, m) for p in sorted((PKG / layer).glob("*.py")) for m in _imports(p)
           if m.startswith(ABOVE[layer])]
    assert not bad, f"{layer} imports from a layer above it: {bad}"


def test_the_unused_sequence_functions_are_gone():
    """One entry point for running a neuron: the kernels (via nn); functional holds only pure math."""
    import neuromorph.functional as F

    for name in ("lif", "if_", "alif", "cuba_lif", "li"):
        assert not hasattr(F, name)
