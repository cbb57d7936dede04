"""Prophesee event files: EVT 2.0 and EVT 3.0 ``.raw`` streams and the ``.dat`` CD format.

Sources: Prophesee's format documentation ("EVT 2.0 Format", "EVT 3.0 Format", "DAT File Format",
docs.prophesee.ai) and the open decoder in OpenEB (``evt2_decoder.h``, ``evt3_decoder.h``), whose
conventions we follow:

* A ``.raw`` file starts with ASCII header lines that begin with ``%`` (e.g. ``% evt 3.0``,
  ``% format EVT3;height=720;width=1280``, ``% geometry 640x480``, ``% plugin_name hal_plugin_gen41_evk3``)
  and ends at the first line that does not, or at ``% end``.
* EVT 2.0: little-endian 32-bit words, type in bits 31..28. CD_OFF (0x0) / CD_ON (0x1): bits 27..22 =
  timestamp bits 5..0, 21..11 = x, 10..0 = y. EV_TIME_HIGH (0x8): bits 27..0 = timestamp bits 33..6.
  EXT_TRIGGER (0xA), OTHERS (0xE), CONTINUED (0xF) carry no CD event.
* EVT 3.0: little-endian 16-bit words, type in bits 15..12. EVT_ADDR_Y (0x0): y = bits 10..0.
  EVT_ADDR_X (0x2): one event, p = bit 11, x = bits 10..0. VECT_BASE_X (0x3): p = bit 11, base x = bits
  10..0. VECT_12 (0x4) / VECT_8 (0x5): bit i set = event at base x + i, then base x += 12 / 8.
  EVT_TIME_LOW (0x6) / EVT_TIME_HIGH (0x8): timestamp bits 11..0 / 23..12. CONTINUED_4 (0x7),
  EXT_TRIGGER (0xA), OTHERS (0xE), CONTINUED_12 (0xF) carry no CD event.
* Timestamps wrap (EVT 2.0: 34 bits, EVT 3.0: 24 bits): like OpenEB, a TIME_HIGH more than 10 units
  below the previous one starts a new loop, so ``t`` stays monotonic across wraps.
* Until the first TIME_HIGH no absolute time is known: OpenEB skips those words and so do we, with a
  ``UserWarning`` that says how many CD events were skipped (never silently).

A word type that neither format defines is damage: DataFormatError with its byte offset.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Iterator

import numba
import numpy as np

from neuromorph.data.events import EVENT_DTYPE
from neuromorph.data.readers._common import (
    DEFAULT_CHUNK_EVENTS,
    PathLike,
    check_sensor_size,
    header_lines,
)
from neuromorph.errors import DataFormatError


# Sensor geometry by HAL plugin name, for headers that carry no geometry line (older firmware).
_PLUGIN_SENSORS = (
    ("gen41", (1280, 720)),
    ("gen4", (1280, 720)),
    ("imx636", (1280, 720)),
    ("imx8", (320, 320)),
    ("genx320", (320, 320)),
    ("gen31", (640, 480)),
    ("gen3", (640, 480)),
)

# error codes returned by the kernels
_ERR_TYPE = 1
_ERR_BOUNDS = 2


def _percent_header(path: PathLike, extra: int, stop_at_end: bool) -> tuple[bytes, list[str], int]:
    """The ``%`` header lines shared by Prophesee ``.raw`` and ``.dat`` files: (header bytes read, lines
    without the marker, byte offset after the header). ``.raw`` headers may close with ``% end``."""
    head, raw, pos = header_lines(path, b"%", "Prophesee", extra=extra,
                                  last=(lambda line: line[1:].strip() == "end") if stop_at_end else None)
    lines = [line[1:].strip() for line in raw]
    if stop_at_end and lines and lines[-1] == "end":
        lines.pop()  # the closing mark is not a header field
    return head, lines, pos


def parse_raw_header(path: PathLike) -> tuple[dict, int]:
    """Parse the ``%`` header of a Prophesee ``.raw`` file: (fields, byte offset of the data).

    ``fields`` has the header's ``key value`` pairs plus, where determinable, ``format``
    ("evt2"/"evt3") and ``sensor_size`` (width, height).
    """
    _, lines, pos = _percent_header(path, extra=0, stop_at_end=True)
    fields: dict = {}
    for line in lines:
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
    evt = fields.get("evt", "")
    fmt_line = fields.get("format", "")
    if fmt_line:
        parts = dict(kv.split("=", 1) for kv in fmt_line.split(";")[1:] if "=" in kv)
        fields["format"] = fmt_line.split(";")[0].strip().lower().replace(" ", "").replace(".0", "")
        if "width" in parts and "height" in parts:
            try:
                fields["sensor_size"] = (int(parts["width"]), int(parts["height"]))
            except ValueError:
                raise DataFormatError(f"bad geometry in header line 'format {fmt_line}'", path=path) from None
    elif evt:
        fields["format"] = {"2.0": "evt2", "3.0": "evt3", "2.1": "evt21"}.get(evt, "evt" + evt)
    if "sensor_size" not in fields and "geometry" in fields:
        m = re.fullmatch(r"(\d+)x(\d+)", fields["geometry"])
        if m:
            fields["sensor_size"] = (int(m.group(1)), int(m.group(2)))
    if "sensor_size" not in fields:
        plugin = fields.get("plugin_name", "").lower()
        for key, size in _PLUGIN_SENSORS:
            if key in plugin:
                fields["sensor_size"] = size
                break
    return fields, pos


@numba.njit(cache=True, nogil=True, inline="always")
def _time_high(high, last_high, loops, time_set, shift, wrap_bits):
    """A TIME_HIGH word (EVT 2.0 and 3.0): the raw counter ``high`` wraps after ``2**wrap_bits`` µs; a value
    more than 10 below the previous one (after the first) counts one more wrap. Returns (last_high, loops,
    time base in µs)."""
    if time_set and last_high > high + 10:
        loops += 1
    return high, loops, (high << shift) + loops * (np.int64(1) << wrap_bits)


# --------------------------------------------------------------------------------------------- EVT 2.0
@numba.njit(cache=True, nogil=True)
def _decode_evt2(words, x, y, t, p, state, width, height):
    """state = [time_set, time_high (µs, incl. loops), last_high_raw, n_loops, skipped]. Returns (k, err, idx)."""
    k = 0
    time_set = state[0]
    time_base = state[1]
    last_high = state[2]
    loops = state[3]
    skipped = state[4]
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 28
        if typ <= 1:
            if time_set == 0:
                skipped += 1
                continue
            xi = (w >> 11) & 0x7FF
            yi = w & 0x7FF
            if width > 0 and (xi >= width or yi >= height):
                state[0], state[1], state[2], state[3], state[4] = time_set, time_base, last_high, loops, skipped
                return k, 2, i
            x[k] = xi
            y[k] = yi
            p[k] = typ
            t[k] = time_base + ((w >> 22) & 0x3F)
            k += 1
        elif typ == 8:
            last_high, loops, time_base = _time_high(w & 0xFFFFFFF, last_high, loops, time_set, 6, 34)
            time_set = 1
        elif typ == 0xA or typ == 0xE or typ == 0xF:
            continue
        else:
            state[0], state[1], state[2], state[3], state[4] = time_set, time_base, last_high, loops, skipped
            return k, 1, i
    state[0], state[1], state[2], state[3], state[4] = time_set, time_base, last_high, loops, skipped
    return k, 0, -1


# --------------------------------------------------------------------------------------------- EVT 3.0
@numba.njit(cache=True, nogil=True)
def _count_evt3(words):
    """Upper bound of the CD events in ``words`` (ADDR_X words plus set bits of vector masks)."""
    n = 0
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 12
        if typ == 2:
            n += 1
        elif typ == 4 or typ == 5:
            m = w & (0xFFF if typ == 4 else 0xFF)
            while m:
                m &= m - 1
                n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _decode_evt3(words, x, y, t, p, state, width, height):
    """state = [time_set, time_base (µs, incl. loops), time_low, last_high_raw, n_loops, y, base_x, pol,
    skipped]. Returns (k, err, idx)."""
    k = 0
    time_set = state[0]
    time_base = state[1]
    time_low = state[2]
    last_high = state[3]
    loops = state[4]
    cur_y = state[5]
    base_x = state[6]
    pol = state[7]
    skipped = state[8]
    err = 0
    erri = -1
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 12
        if typ == 0:
            cur_y = w & 0x7FF
        elif typ == 2:
            if time_set == 0:
                skipped += 1
                continue
            xi = w & 0x7FF
            if width > 0 and (xi >= width or cur_y >= height):
                err = 2
                erri = i
                break
            x[k] = xi
            y[k] = cur_y
            p[k] = (w >> 11) & 1
            t[k] = time_base + time_low
            k += 1
        elif typ == 3:
            base_x = w & 0x7FF
            pol = (w >> 11) & 1
        elif typ == 4 or typ == 5:
            nbits = 12 if typ == 4 else 8
            m = w & (0xFFF if typ == 4 else 0xFF)
            if time_set == 0:
                while m:
                    m &= m - 1
                    skipped += 1
                base_x += nbits
                continue
            if m and width > 0 and cur_y >= height:
                err = 2
                erri = i
                break
            bad = False
            for b in range(nbits):
                if (m >> b) & 1:
                    xi = base_x + b
                    if width > 0 and xi >= width:
                        bad = True
                        break
                    x[k] = xi
                    y[k] = cur_y
                    p[k] = pol
                    t[k] = time_base + time_low
                    k += 1
            if bad:
                err = 2
                erri = i
                break
            base_x += nbits
        elif typ == 6:
            time_low = w & 0xFFF
        elif typ == 8:
            last_high, loops, time_base = _time_high(w & 0xFFF, last_high, loops, time_set, 12, 24)
            time_set = 1
        elif typ == 7 or typ == 0xA or typ == 0xE or typ == 0xF:
            continue
        else:
            err = 1
            erri = i
            break
    state[0], state[1], state[2], state[3], state[4] = time_set, time_base, time_low, last_high, loops
    state[5], state[6], state[7], state[8] = cur_y, base_x, pol, skipped
    return k, err, erri


def _raise(err: int, idx: int, words: np.ndarray, word_bytes: int, base: int, path, fmt: str, sensor) -> None:
    off = base + idx * word_bytes
    w = int(words[idx])
    if err == _ERR_TYPE:
        typ = w >> (8 * word_bytes - 4)
        raise DataFormatError(f"{fmt}: word 0x{w:0{2 * word_bytes}x} has undefined event type 0x{typ:x}", path=path, offset=off)
    raise DataFormatError(
        f"{fmt}: event in word 0x{w:0{2 * word_bytes}x} lies outside the declared sensor {sensor[0]}x{sensor[1]}",
        path=path,
        offset=off,
    )


def _iter_raw(path: PathLike, fmt: str, sensor_size, chunk_events: int) -> Iterator[np.ndarray]:
    fields, data_offset = parse_raw_header(path)
    declared = fields.get("format")
    if declared is not None and declared != fmt:
        raise DataFormatError(f"header declares format {declared!r}, not {fmt!r}", path=path, offset=0)
    sensor = check_sensor_size(sensor_size, path, declared=fields.get("sensor_size"))
    w, h = sensor if sensor is not None else (0, 0)
    word_bytes = 4 if fmt == "evt2" else 2
    size = Path(path).stat().st_size
    if (size - data_offset) % word_bytes:
        whole = size - (size - data_offset) % word_bytes
        raise DataFormatError(
            f"{fmt}: data length {size - data_offset} is not a whole number of {word_bytes}-byte words "
            "(truncated file?)",
            path=path,
            offset=whole,
        )
    state = np.zeros(9, dtype=np.int64)
    chunk_words = max(1, int(chunk_events))
    if fmt == "evt3":
        # a 16-bit word may hold up to 12 events; read fewer words so a chunk stays near chunk_events
        chunk_words = max(1, chunk_words // 2)
    chunk_words = min(chunk_words, max(1, (size - data_offset) // word_bytes))  # read() allocates its size
    base = data_offset
    with open(path, "rb") as f:
        f.seek(data_offset)
        while True:
            data = f.read(chunk_words * word_bytes)
            if not data:
                break
            if len(data) % word_bytes:
                raise DataFormatError(f"{fmt}: file ends inside a word", path=path, offset=base + len(data))
            words = np.frombuffer(data, dtype="<u4" if fmt == "evt2" else "<u2")
            if fmt == "evt2":
                out = np.empty(len(words), dtype=EVENT_DTYPE)
                k, err, idx = _decode_evt2(words, out["x"], out["y"], out["t"], out["p"], state, w, h)
            else:
                out = np.empty(_count_evt3(words), dtype=EVENT_DTYPE)
                k, err, idx = _decode_evt3(words, out["x"], out["y"], out["t"], out["p"], state, w, h)
            if err:
                _raise(err, idx, words, word_bytes, base, path, fmt, sensor)
            base += len(data)
            if k:
                yield out[:k]
    skipped = int(state[4] if fmt == "evt2" else state[8])
    if skipped:
        warnings.warn(
            f"{path}: skipped {skipped} CD events before the first TIME_HIGH word (no absolute time known; "
            "OpenEB does the same)",
            UserWarning,
            stacklevel=3,
        )


def _read_all(chunks: Iterator[np.ndarray]) -> np.ndarray:
    parts = list(chunks)
    if not parts:
        return np.empty(0, dtype=EVENT_DTYPE)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


_WHOLE = 1 << 40  # "one chunk" for any real file: the decoders size their output from the chunk itself


def read_evt2(path: PathLike, sensor_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a Prophesee EVT 2.0 ``.raw`` file into an EVENT_DTYPE array (t in µs, p: 0 = OFF, 1 = ON).

    ``sensor_size`` (width, height) overrides the geometry from the header (``format``/``geometry``
    line or the HAL plugin name); events outside it raise DataFormatError with the word's byte offset.
    Format: Prophesee "EVT 2.0 Format" documentation; timestamp loops as OpenEB's evt2 decoder.
    """
    return _read_all(_iter_raw(path, "evt2", sensor_size, _WHOLE))


def read_evt3(path: PathLike, sensor_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a Prophesee EVT 3.0 ``.raw`` file (vectorised 16-bit words) into an EVENT_DTYPE array.

    Same conventions and checks as :func:`read_evt2`; format: Prophesee "EVT 3.0 Format"
    documentation, timestamp loops (24-bit) as OpenEB's evt3 decoder.
    """
    return _read_all(_iter_raw(path, "evt3", sensor_size, _WHOLE))


def iter_evt2(path: PathLike, sensor_size: tuple[int, int] | None = None, chunk_events: int = DEFAULT_CHUNK_EVENTS) -> Iterator[np.ndarray]:
    """Stream an EVT 2.0 file in chunks of at most ``chunk_events`` events (bounded memory)."""
    return _iter_raw(path, "evt2", sensor_size, chunk_events)


def iter_evt3(path: PathLike, sensor_size: tuple[int, int] | None = None, chunk_events: int = DEFAULT_CHUNK_EVENTS) -> Iterator[np.ndarray]:
    """Stream an EVT 3.0 file in chunks of (about) ``chunk_events`` events (bounded memory).

    A chunk holds the events of ``chunk_events // 2`` words, at most ``6 * chunk_events`` events.
    """
    return _iter_raw(path, "evt3", sensor_size, chunk_events)


# ------------------------------------------------------------------------------------------------ DAT
DAT_EVENT_BYTES = 8


def parse_dat_header(path: PathLike) -> tuple[dict, int]:
    """Parse a Prophesee ``.dat`` header: ``%`` lines, then event type and size bytes.

    Returns (fields, byte offset of the first event). Fields include ``version``, ``sensor_size``
    (from ``% Width``/``% Height``), ``event_type`` and ``event_size`` (must be 8 for CD events).
    """
    head, lines, pos = _percent_header(path, extra=2, stop_at_end=False)  # + event type and size bytes
    fields: dict = {}
    for line in lines:
        key, _, value = line.partition(" ")
        fields[key.lower()] = value.strip()
    if len(head) < pos + 2:
        raise DataFormatError("dat: file ends before the event type/size bytes", path=path, offset=pos)
    fields["event_type"] = head[pos]
    fields["event_size"] = head[pos + 1]
    if fields["event_size"] != DAT_EVENT_BYTES:
        raise DataFormatError(f"dat: event size {fields['event_size']} is not 8 (only CD events are supported)", path=path, offset=pos + 1)
    if "width" in fields and "height" in fields:
        try:
            fields["sensor_size"] = (int(fields["width"]), int(fields["height"]))
        except ValueError:
            raise DataFormatError("dat: non-numeric Width/Height header", path=path) from None
    return fields, pos + 2


def _dat_layout(path: PathLike, sensor_size: tuple[int, int] | None) -> tuple[tuple[int, int] | None, int, int]:
    """(sensor size, byte offset of the events, file size) of a ``.dat`` file whose data is whole events."""
    fields, off = parse_dat_header(path)
    sensor = check_sensor_size(sensor_size, path, declared=fields.get("sensor_size"))
    size = Path(path).stat().st_size
    if (size - off) % DAT_EVENT_BYTES:
        whole = size - (size - off) % DAT_EVENT_BYTES
        raise DataFormatError(
            f"dat: data length {size - off} is not a whole number of 8-byte events (truncated file?)", path=path, offset=whole
        )
    return sensor, off, size


def read_dat(path: PathLike, sensor_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a Prophesee ``.dat`` CD file into an EVENT_DTYPE array.

    Each event is 8 bytes, little-endian: uint32 timestamp (µs), then uint32 with x = bits 13..0,
    y = bits 27..14, p = bit 28 (Prophesee "DAT File Format"; ``dat_events_tools.py`` of the
    automotive dataset toolbox).
    """
    sensor, off, size = _dat_layout(path, sensor_size)
    return _decode_dat_words(np.fromfile(path, dtype="<u4", offset=off), sensor, path, off)


def iter_dat(path: PathLike, sensor_size: tuple[int, int] | None = None,
             chunk_events: int = DEFAULT_CHUNK_EVENTS) -> Iterator[np.ndarray]:
    """Stream a Prophesee ``.dat`` file in chunks of at most ``chunk_events`` events (bounded memory)."""
    sensor, off, size = _dat_layout(path, sensor_size)
    n_chunk = max(1, min(int(chunk_events), (size - off) // DAT_EVENT_BYTES or 1))
    pos = off
    while pos < size:
        words = np.fromfile(path, dtype="<u4", count=2 * n_chunk, offset=pos)
        if len(words) == 0:
            break
        yield _decode_dat_words(words, sensor, path, pos)
        pos += 4 * len(words)


def _decode_dat_words(words: np.ndarray, sensor, path, base: int) -> np.ndarray:
    out = np.empty(len(words) // 2, dtype=EVENT_DTYPE)
    w, h = sensor if sensor is not None else (0, 0)
    bad = _decode_dat(words, out["x"], out["y"], out["t"], out["p"], w, h)
    if bad >= 0:
        raise DataFormatError(
            f"dat: event {bad} at x={int(out['x'][bad])}, y={int(out['y'][bad])} lies outside the declared "
            f"sensor {w}x{h}",
            path=path,
            offset=base + DAT_EVENT_BYTES * bad,
        )
    return out


@numba.njit(cache=True, nogil=True)
def _decode_dat(words, x, y, t, p, width, height):
    """Decode (timestamp, data) uint32 pairs; returns the index of the first event outside the sensor or -1."""
    for i in range(words.shape[0] // 2):
        d = np.int64(words[2 * i + 1])
        xi = d & 0x3FFF
        yi = (d >> 14) & 0x3FFF
        if width > 0 and (xi >= width or yi >= height):
            x[i] = xi
            y[i] = yi
            return i
        x[i] = xi
        y[i] = yi
        p[i] = (d >> 28) & 1
        t[i] = words[2 * i]
    return -1
