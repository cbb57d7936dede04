"""Locate the data files shipped inside the package: hardware profiles and dataset manifests.

In the repository they live in the top-level ``hardware/`` and ``datasets/`` folders; the wheel maps
them to ``neuromorph.hardware`` and ``neuromorph.datasets``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def hardware_dir() -> Path:
    """Folder holding the hardware profiles (``*.toml``)."""
    return Path(str(resources.files("neuromorph.hardware")))


def datasets_dir() -> Path:
    """Folder holding the dataset manifests (``*.toml``)."""
    return Path(str(resources.files("neuromorph.datasets")))
