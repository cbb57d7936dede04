"""Compatibility with the oldest supported Python (3.10): one place for what newer versions provide."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (a dependency on 3.10 only, see pyproject.toml)
    import tomli as tomllib

__all__ = ["tomllib"]
