"""Where neuromorph keeps data it derives (generated data sets, transformed samples): one per-user folder.

``cache_dir()`` is ``$NEUROMORPH_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/neuromorph``, else
``~/.cache/neuromorph``. Nothing is ever written into a data set's own folder: that folder may be
read-only or shared between users and machines.
"""

from __future__ import annotations

import os
from pathlib import Path

#: environment variable that moves every neuromorph cache (e.g. to a scratch disk)
CACHE_ENV = "NEUROMORPH_CACHE_DIR"


def cache_dir() -> Path:
    """Where neuromorph caches derived data: ``$NEUROMORPH_CACHE_DIR``, else ``$XDG_CACHE_HOME/neuromorph``,
    else ``~/.cache/neuromorph``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "neuromorph"
