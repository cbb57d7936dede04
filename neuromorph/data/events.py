"""Event containers: numpy structured arrays, the same dtype convention as Tonic.

Vision events have fields ``x, y, t, p``; audio-like (cochlea) events have ``t, unit`` (and ``p`` where
the sensor gives one). ``t`` is always int64 microseconds.
"""

from __future__ import annotations

import numpy as np

from neuromorph.errors import ShapeError

#: x, y, t (µs), p: what every vision reader returns.
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
#: t (µs), unit (channel): audio-like spike data such as SHD/SSC.
AUDIO_EVENT_DTYPE = np.dtype([("t", np.int64), ("unit", np.int32)])


def make_events(x, y, t, p, dtype: np.dtype = EVENT_DTYPE) -> np.ndarray:
    """Pack equal-length coordinate arrays into a structured event array."""
    x, y, t, p = (np.asarray(a) for a in (x, y, t, p))
    n = len(t)
    if not (len(x) == len(y) == len(p) == n):
        raise ShapeError(f"x, y, t, p must have equal lengths, got {len(x)}, {len(y)}, {n}, {len(p)}")
    ev = np.empty(n, dtype=dtype)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def require_fields(events: np.ndarray, fields: tuple[str, ...], name: str = "events") -> None:
    """Raise ``ShapeError`` unless ``events`` is a structured array with every one of ``fields``."""
    names = getattr(getattr(events, "dtype", None), "names", None)
    if names is None:
        raise ShapeError(f"{name} must be a numpy structured array with fields {fields}, got {type(events).__name__}")
    missing = [f for f in fields if f not in names]
    if missing:
        raise ShapeError(f"{name} lacks field(s) {missing}; it has {list(names)}")
