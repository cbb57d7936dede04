"""Lazy package namespaces: a package's public names load their submodule on first access.

A package ``__init__`` lists its public names as ordinary imports under ``if TYPE_CHECKING:`` (so
readers, IDEs and type checkers see them) and ends with::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)

``lazy_exports`` reads those imports from the file, so the list is written once. Importing the package
then costs nothing; ``neuromorph.train.cli`` (say) no longer loads torch just to build ``--help``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Callable


def _names(init_file: str) -> dict[str, tuple[str, str]]:
    """``name -> (module, attribute)`` of the ``from M import a, b as c`` lines under ``if TYPE_CHECKING:``."""
    table: dict[str, tuple[str, str]] = {}
    for node in ast.parse(Path(init_file).read_text(encoding="utf-8"), init_file).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
                    for alias in stmt.names:
                        table[alias.asname or alias.name] = (stmt.module, alias.name)
    return table


def lazy_exports(package: str, init_file: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Module ``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` (see the module docstring).
    Submodules (``neuromorph.data.readers``) are reachable as attributes too, as after an eager import."""
    table = _names(init_file)

    def __getattr__(name: str) -> Any:
        module = sys.modules[package]
        if name in table:
            source, attr = table[name]
            value = getattr(importlib.import_module(source), attr)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(table) | {n for n in vars(sys.modules[package]) if not n.startswith("_")} - {"TYPE_CHECKING", "annotations"})

    class _Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            # Importing a submodule binds it on its package. Where the package exports a name of that
            # submodule's own (neuromorph.energy.measure, the function in energy/measure.py), bind the
            # export: `import neuromorph.energy.measure` must not make `nm.energy.measure` a module.
            if isinstance(value, types.ModuleType) and table.get(name, ("",))[0] == value.__name__:
                value = getattr(value, table[name][1])
            super().__setattr__(name, value)

    if package in sys.modules and type(sys.modules[package]) is types.ModuleType:
        sys.modules[package].__class__ = _Package
    return __getattr__, __dir__, sorted(table)
