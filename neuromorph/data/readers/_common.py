"""Shared plumbing of the event-file readers: file access, bound checks, error reporting.

Decoders are numba kernels that never raise: they return an error code and the byte offset where the
damage was found, and :func:`raise_decode_error` turns that into a :class:`DataFormatError` naming the
file and the offset. Keeping ``raise`` out of the kernels keeps them ``nopython`` and fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from neuromorph.errors import ConfigError, DataFormatError

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


def check_sensor_size(sensor_size, path: PathLike | None = None, declared=None) -> tuple[int, int] | None:
    """The sensor (width, height) to check events against: ``sensor_size`` if given, else ``declared``.

    A bad ``sensor_size`` argument raises ConfigError; a bad size declared by the file's header raises
    DataFormatError naming the file.
    """
    from_file = sensor_size is None
    value = declared if from_file else sensor_size
    if value is None:
        return None
    try:
        # (width, height), or Tonic's (width, height, polarities)
        items = () if isinstance(value, (str, bytes)) else tuple(value)
        ok = len(items) in (2, 3) and all(float(v) == int(v) for v in items)
        w, h = (int(v) for v in items[:2]) if ok else (0, 0)
        ok = ok and w > 0 and h > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        if from_file:
            raise DataFormatError(f"the header declares an invalid sensor size {value!r}", path=path)
        raise ConfigError(f"sensor_size must be (width, height) with positive integers, got {value!r}")
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


# bytes that never occur in a text header line (tab, CR and LF excepted)
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13))


def is_text(line: bytes) -> bool:
    """True if ``line`` has no control bytes, i.e. could be a line of a text header."""
    return len(line.translate(None, _CONTROL)) == len(line)


def header_line_end(head: bytes, pos: int) -> int | None:
    """Where the header line at ``pos`` ends (index of its newline).

    None if the bytes at ``pos`` are binary data that merely start with the header marker byte (a
    control byte before the newline: formats such as Prophesee RAW and jAER AEDAT have no end-of-header
    mark, so the first data word can begin with ``%`` or ``#``); -1 for a text line that runs
    unterminated to the end of ``head`` (a truncated header).
    """
    end = head.find(b"\n", pos)
    if not is_text(head[pos:] if end < 0 else head[pos:end]):
        return None
    return end


def read_header_block(path: PathLike, marker: bytes, extra: int = 0, max_bytes: int = 1 << 20) -> bytes:
    """The leading text lines of ``path`` that start with ``marker`` (at most ``max_bytes``), then ``extra`` bytes.

    Reads line by line so that parsing a text header costs its own size, not a fixed large buffer
    (the streaming readers promise bounded memory); stops at the first line that is binary data.
    """
    out = bytearray()
    with open(path, "rb") as f:
        while len(out) < max_bytes:
            start = f.tell()
            line = f.readline(max_bytes - len(out))
            if not line.startswith(marker) or not is_text(line):
                f.seek(start)
                break
            out += line
            if not line.endswith(b"\n"):
                break
        out += f.read(extra)
    return bytes(out)


def header_lines(path: PathLike, marker: bytes, what: str, extra: int = 0,
                 last: Optional[Callable[[str], bool]] = None) -> tuple[bytes, list[str], int]:
    """The text header of an event file whose header lines start with ``marker`` (``#`` AEDAT, ``%`` Prophesee):
    (the bytes read, :func:`read_header_block` with ``extra``; the lines, marker kept, newline and ``\\r``
    removed; byte offset after the header). ``last(line)`` true ends the header after that line.
    ``what`` names the format in the errors: a missing file, a header line that runs unterminated."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such event file", path=path)
    head = read_header_block(p, marker, extra=extra)
    lines: list[str] = []
    pos = 0
    while pos < len(head) and head[pos : pos + 1] == marker:
        end = header_line_end(head, pos)
        if end is None:
            break  # binary data that starts with the marker byte: the header is over
        if end < 0:
            raise DataFormatError(f"{what} header line not terminated by a newline", path=path, offset=pos)
        line = head[pos:end].decode("latin-1").rstrip("\r")
        pos = end + 1
        lines.append(line)
        if last is not None and last(line):
            break
    return head, lines, pos
