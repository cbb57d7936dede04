"""neuromorph: spiking neural networks on PyTorch, from event data to neuromorphic hardware."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("errors", "functional", "kernels", "nn", "models", "data", "features", "energy", "export", "train")
# top-level functions, loaded with their module on first use: name -> module
_FUNCTIONS = {"save_model": "neuromorph.train.checkpoint", "load_model": "neuromorph.train.checkpoint"}


def __getattr__(name: str):
    # Subpackages load on first use so `import neuromorph` stays cheap for the CLI and data tools.
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(_FUNCTIONS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neuromorph' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES) + list(_FUNCTIONS))
