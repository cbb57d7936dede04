"""Shared plumbing of the event-file readers: file access, bound checks, error reporting.

Decoders are numba kernels that never raise: they return an error code and the byte offset where the
damage was found, and :func:`raise_decode_error` turns that into a :class:`DataFormatError` naming the
file and the offset. Keeping ``raise`` out of the kernels keeps them ``nopython`` and fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from neuromorph.errors import DataFormatError

PathLike = Union[str, "os.PathLike[str]"]

#: events per chunk yielded by the ``iter_*`` readers unless told otherwise (~16 MB of EVENT_DTYPE)
DEFAULT_CHUNK_EVENTS = 1 << 20


def read_bytes(path: PathLike, offset: int = 0, size: int = -1) -> np.ndarray:
    """The bytes of ``path`` from ``offset`` (all of them when ``size < 0``) as a uint8 array."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such event file", path=path)
    with open(p, "rb") as f:
        f.seek(offset)
        data = f.read(size) if size >= 0 else f.read()
    return np.frombuffer(data, dtype=np.uint8)


def check_sensor_size(sensor_size, path: PathLike | None = None) -> tuple[int, int] | None:
    """Validate a ``(width, height)`` pair (or None) and return it as ints."""
    if sensor_size is None:
        return None
    try:
        w, h = (int(v) for v in tuple(sensor_size)[:2])
    except (TypeError, ValueError):
        raise DataFormatError(f"sensor_size must be (width, height), got {sensor_size!r}", path=path) from None
    if w <= 0 or h <= 0:
        raise DataFormatError(f"sensor_size must be positive, got {sensor_size!r}", path=path)
    return w, h


def check_bounds(events: np.ndarray, sensor_size, path: PathLike, offsets=None, what: str = "event") -> None:
    """Raise DataFormatError at the first event whose x/y lies outside ``sensor_size`` (width, height).

    ``offsets`` maps an event index to its byte offset in the file: an int array, a callable, or None
    (offset unknown).
    """
    if sensor_size is None or len(events) == 0:
        return
    w, h = sensor_size
    bad = (events["x"] < 0) | (events["x"] >= w) | (events["y"] < 0) | (events["y"] >= h)
    if bad.any():
        i = int(np.argmax(bad))
        off = None
        if callable(offsets):
            off = int(offsets(i))
        elif offsets is not None:
            off = int(offsets[i])
        raise DataFormatError(
            f"{what} {i} at x={int(events['x'][i])}, y={int(events['y'][i])} lies outside the declared "
            f"sensor {w}x{h}",
            path=path,
            offset=off,
        )


def read_header_block(path: PathLike, marker: bytes, extra: int = 0, max_bytes: int = 1 << 20) -> bytes:
    """The leading lines of ``path`` that start with ``marker`` (at most ``max_bytes``), then ``extra`` bytes.

    Reads line by line so that parsing a text header costs its own size, not a fixed large buffer
    (the streaming readers promise bounded memory).
    """
    out = bytearray()
    with open(path, "rb") as f:
        while len(out) < max_bytes:
            start = f.tell()
            if f.read(1) != marker:
                f.seek(start)
                break
            line = f.readline(max_bytes - len(out))
            out += marker + line
            if not line.endswith(b"\n"):
                break
        out += f.read(extra)
    return bytes(out)
