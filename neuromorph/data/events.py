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


class EventArray(np.ndarray):
    """The events of one file with what its header says: what :func:`neuromorph.data.read` returns.

    An ordinary structured array (``EVENT_DTYPE`` or ``AUDIO_EVENT_DTYPE``; every numpy, Tonic and
    neuromorph function takes it) with four more attributes:

    - ``sensor_size``: (width, height) of the sensor, as declared by the header or implied by the format
      (the ``sensor_size=`` a reader was given wins); None when the file declares none. Transforms take
      Tonic's (width, height, polarities): ``ToFrame((*ev.sensor_size, 2), ...)``.
    - ``format``: the reader's name (one of ``neuromorph.data.FORMATS``);
    - ``header``: the header's fields as a JSON-able dict (empty for headerless formats);
    - ``path``: the file, as a string.

    The attributes describe the file as read, so only this array carries them: anything derived from it
    (``ev[mask]``, ``ev["x"]``, a copy, a transform's output) is a plain ``numpy.ndarray``, which cannot
    claim a sensor its coordinates no longer fit (after a crop or downsampling).
    """

    sensor_size: tuple[int, ...] | None = None
    format: str | None = None
    header: dict = {}
    path: str | None = None

    @classmethod
    def of(cls, events: np.ndarray, sensor_size=None, format: str | None = None, header: dict | None = None,
           path=None) -> "EventArray":
        """A view of ``events`` carrying the file's metadata (no copy)."""
        out = np.asarray(events).view(cls)
        out.sensor_size = None if sensor_size is None else tuple(int(v) for v in sensor_size)
        out.format, out.header, out.path = format, dict(header or {}), None if path is None else str(path)
        return out

    def __array_finalize__(self, obj) -> None:
        # new arrays made from this one do not inherit the file's metadata (see the class docstring)
        self.sensor_size, self.format, self.header, self.path = None, None, {}, None

    def __getitem__(self, key):
        out = super().__getitem__(key)
        return out.view(np.ndarray) if isinstance(out, np.ndarray) else out

    def copy(self, order="C") -> np.ndarray:
        return np.array(self, order=order, subok=False, copy=True)

    def __array_wrap__(self, out, context=None, return_scalar=False):
        return out.view(np.ndarray) if isinstance(out, np.ndarray) else out

    def __reduce__(self):
        state = super().__reduce__()
        meta = (self.sensor_size, self.format, self.header, self.path)
        return state[0], state[1], (state[2], meta)

    def __setstate__(self, state) -> None:
        base, meta = state
        super().__setstate__(base)
        self.sensor_size, self.format, self.header, self.path = meta


def make_events(x, y, t, p, dtype: np.dtype = EVENT_DTYPE) -> np.ndarray:
    """Pack equal-length coordinate arrays into a structured event array.

    Example:
        >>> ev = make_events(x=[0, 1, 1], y=[0, 0, 1], t=[10, 20, 30], p=[1, 0, 1])
        >>> ev.dtype.names, ev["t"].tolist()
        (('x', 'y', 't', 'p'), [10, 20, 30])
    """
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
