"""neuromorph: spiking neural networks on PyTorch, from event data to neuromorphic hardware."""

from __future__ import annotations

__version__ = "0.1.0"

_SUBMODULES = ("errors", "functional", "kernels", "nn", "models", "data", "features", "energy", "export", "train")
# top-level functions, loaded with their module on first use: name -> module
_FUNCTIONS = {"save_model": "neuromorph.train.checkpoint", "load_model": "neuromorph.train.checkpoint"}
__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str):
    # Subpackages load on first use, so `import neuromorph` (and `neuromorph --version`) loads no torch.
    import importlib

    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _FUNCTIONS:
        value = getattr(importlib.import_module(_FUNCTIONS[name]), name)
    else:
        raise AttributeError(f"module 'neuromorph' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
