"""Locate the hardware profiles shipped inside the package.

In the repository they live in the top-level ``hardware/`` folder; the wheel maps it to
``neuromorph.hardware``. When Python runs from the repository root, the source folder shadows the
editable install's mapping, so the top-level folder is used directly. (Dataset manifests are package
data of ``neuromorph.data.datasets``: see ``neuromorph.data.datasets.manifests_dir``.)
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

