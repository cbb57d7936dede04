"""neuromorph: spiking neural networks on PyTorch, from event data to neuromorphic hardware."""

from __future__ import annotations

__version__ = "0.1.0"

_SUBMODULES = ("errors", "functional", "kernels", "nn", "models", "data", "features", "energy", "export", "train")
__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    # Subpackages load on first use, so `import neuromorph` (and `neuromorph --version`) loads no torch.
    if name in _SUBMODULES:
        import importlib

        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'neuromorph' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
