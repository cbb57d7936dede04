"""Event Stream ``.es`` files (version 2.x), DVS and ATIS event types.

Source: the Event Stream specification and its reference implementation ``sepia.hpp``
(github.com/neuromorphic-paris/event_stream). Layout:

    "Event Stream" (12 bytes) | version major, minor, patch (3 bytes) | event type (1 byte:
    0 generic, 1 DVS, 2 ATIS, 4 color) | DVS/ATIS: width, height (uint16 little-endian each) | events

DVS events are a byte stream decoded by a state machine: in the idle state, byte 0xFF adds 127 µs to
the time, 0xFE is a no-op, any other byte b adds ``b >> 1`` µs and sets ``p = b & 1`` (1 = increase),
then four bytes give x and y (uint16 little-endian each). ATIS events: a byte with its top six bits
set adds ``63 * (b & 3)`` µs; otherwise it adds ``b >> 2`` µs, with bit 0 = threshold crossing (exposure
measurement) flag and bit 1 = polarity, then x, y as for DVS. Coordinates are stored as sepia writes
them (origin at the bottom-left corner); we return them unchanged. ``sepia`` rejects x >= width or
y >= height, and so do we (DataFormatError with the byte offset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numba
import numpy as np

from neuromorph.data.events import EVENT_DTYPE
from neuromorph.data.readers._common import DEFAULT_CHUNK_EVENTS, PathLike
from neuromorph.errors import DataFormatError, check_choice

MAGIC = b"Event Stream"
EVENT_TYPES = {0: "generic", 1: "dvs", 2: "atis", 4: "color"}


def parse_es_header(path: PathLike) -> tuple[dict, int]:
    """Read an ``.es`` header: ({"version", "event_type", "sensor_size"}, byte offset of the events)."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such event file", path=path)
    with open(p, "rb") as f:
        head = f.read(20)
    if head[:12] != MAGIC:
        raise DataFormatError("not an Event Stream file: the first 12 bytes are not 'Event Stream'", path=path, offset=0)
    if len(head) < 16:
        raise DataFormatError("Event Stream header truncated", path=path, offset=len(head))
    major, minor, patch, etype = head[12], head[13], head[14], head[15]
    if major != 2:
        raise DataFormatError(f"Event Stream version {major}.{minor}.{patch} is not supported (2.x is)", path=path, offset=12)
    if etype not in EVENT_TYPES:
        raise DataFormatError(f"unknown Event Stream event type {etype}", path=path, offset=15)
    fields = {"version": (major, minor, patch), "event_type": EVENT_TYPES[etype]}
    if etype not in (1, 2):
        raise DataFormatError(
            f"Event Stream event type {EVENT_TYPES[etype]!r} has no x, y, p events; only 'dvs' and 'atis' are read",
            path=path,
            offset=15,
        )
    if len(head) < 20:
        raise DataFormatError("Event Stream header truncated before width/height", path=path, offset=len(head))
    w = head[16] | (head[17] << 8)
    h = head[18] | (head[19] << 8)
    fields["sensor_size"] = (w, h)
    return fields, 20


@numba.njit(cache=True, nogil=True)
def _decode_es(buf, x, y, t, p, state, atis, want_tc, width, height, base):
    """Run the sepia byte state machine over ``buf``.

    state = [phase (0 idle, 1..4 inside an event), t, x, y, p, is_tc, start offset of the current event].
    Returns (k, err, err_offset): err 2 = coordinate outside the sensor.
    """
    k = 0
    phase = state[0]
    tt = state[1]
    ex = state[2]
    ey = state[3]
    ep = state[4]
    tc = state[5]
    start = state[6]
    err = 0
    erro = -1
    for i in range(buf.shape[0]):
        b = np.int64(buf[i])
        if phase == 0:
            if atis:
                if (b & 0xFC) == 0xFC:
                    tt += 63 * (b & 3)
                    continue
                tt += b >> 2
                tc = b & 1
                ep = (b >> 1) & 1
            else:
                if b == 0xFF:
                    tt += 127
                    continue
                if b == 0xFE:
                    continue
                tt += b >> 1
                ep = b & 1
            start = base + i
            phase = 1
        elif phase == 1:
            ex = b
            phase = 2
        elif phase == 2:
            ex |= b << 8
            if ex >= width:
                err = 2
                erro = start
                break
            phase = 3
        elif phase == 3:
            ey = b
            phase = 4
        else:
            ey |= b << 8
            if ey >= height:
                err = 2
                erro = start
                break
            phase = 0
            if atis and tc != want_tc:
                continue
            x[k] = ex
            y[k] = ey
            t[k] = tt
            p[k] = ep
            k += 1
    state[0], state[1], state[2], state[3], state[4], state[5], state[6] = phase, tt, ex, ey, ep, tc, start
    return k, err, erro


def iter_es(path: PathLike, chunk_events: int = DEFAULT_CHUNK_EVENTS, atis_events: str = "change_detection") -> Iterator[np.ndarray]:
    """Stream the events of an Event Stream 2.x DVS/ATIS file in chunks (bounded memory).

    ``atis_events`` (ATIS files only): "change_detection" (the DVS-like events, p = polarity) or
    "threshold_crossing" (exposure measurements, p = which of the two thresholds). One file holds both;
    each call returns one kind, so nothing is dropped unasked.
    """
    check_choice("atis_events", atis_events, ("change_detection", "threshold_crossing"))
    fields, off = parse_es_header(path)
    atis = fields["event_type"] == "atis"
    w, h = fields["sensor_size"]
    size = Path(path).stat().st_size
    chunk_bytes = min(max(5, 5 * int(chunk_events)), max(5, size - off))
    state = np.zeros(7, dtype=np.int64)
    base = off
    with open(path, "rb") as f:
        f.seek(off)
        while True:
            data = f.read(chunk_bytes)
            if not data:
                break
            buf = np.frombuffer(data, dtype=np.uint8)
            out = np.empty(len(buf) // 5 + 1, dtype=EVENT_DTYPE)
            k, err, erro = _decode_es(buf, out["x"], out["y"], out["t"], out["p"], state, atis,
                                      atis_events == "threshold_crossing", w, h, base)
            if err:
                raise DataFormatError(f"Event Stream event has a coordinate outside the declared sensor {w}x{h}",
                                      path=path, offset=int(erro))
            base += len(data)
            if k:
                yield out[:k]
    if state[0] != 0:
        raise DataFormatError("Event Stream file ends inside an event (truncated)", path=path, offset=int(state[6]))


def read_es(path: PathLike, atis_events: str = "change_detection") -> np.ndarray:
    """Read an Event Stream 2.x DVS or ATIS file into an EVENT_DTYPE array (t in µs, monotonic).

    The sensor size is in the header (:func:`parse_es_header`). See :func:`iter_es` for ``atis_events``.
    """
    parts = list(iter_es(path, chunk_events=1 << 40, atis_events=atis_events))
    if not parts:
        return np.empty(0, dtype=EVENT_DTYPE)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
