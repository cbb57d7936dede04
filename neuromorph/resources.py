"""Locate the data files shipped inside the package: hardware profiles and dataset manifests.

In the repository they live in the top-level ``hardware/`` and ``datasets/`` folders; the wheel maps
them to ``neuromorph.hardware`` and ``neuromorph.datasets``. When Python runs from the repository root,
the source folder shadows the editable install's mapping, so the top-level folders are used directly.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def _locate(package: str, folder: str) -> Path:
    try:
        return Path(str(resources.files(package)))
    except ModuleNotFoundError:
        path = _REPO / folder
        if path.is_dir():
            return path
        raise


def hardware_dir() -> Path:
    """Folder holding the hardware profiles (``*.toml``)."""
    return _locate("neuromorph.hardware", "hardware")


def datasets_dir() -> Path:
    """Folder holding the dataset manifests (``*.toml``)."""
    return _locate("neuromorph.datasets", "datasets")
