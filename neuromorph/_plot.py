"""The one way neuromorph draws: matplotlib's pyplot on the file-only Agg backend, figures saved atomically.

Used by the feature plots, the training plots and the energy report's bar chart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from neuromorph._atomic import atomic_path
from neuromorph.errors import ConfigError

__all__ = ["pyplot", "save_png"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed); a clear ``ConfigError`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("plotting needs matplotlib: pip install 'neuromorph[plot]'") from exc
    return plt


def save_png(fig: Any, path: str | os.PathLike, dpi: int = 110, **savefig: Any) -> Path:
    """Write ``fig`` to ``path`` as PNG (atomically: an interrupted run never leaves a truncated file) and
    close it (pyplot keeps every figure until closed); returns the path."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, **savefig)
    finally:
        pyplot().close(fig)
    return path
