"""jAER / cAER AEDAT files: versions 1.0 and 2.0 (big-endian address-event words) and 3.1 (packets).

Sources: iniVation's "AEDAT file formats" documentation (docs.inivation.com, sections AEDAT 1.0,
2.0 and 3.1), jAER's chip classes for the address layouts, and libcaer's ``polarity.h``.

* **AEDAT 1.0 / 2.0**: optional header lines starting with ``#`` (the first one ``#!AER-DAT1.0`` /
  ``#!AER-DAT2.0``), then big-endian records ``address, timestamp``: 2 + 4 bytes (1.0) or 4 + 4 bytes
  (2.0), timestamps in ticks of 1 µs (jAER). Headerless files (e.g. the FPGA cochlea recordings of
  pyNAVIS) need ``address_bytes`` given explicitly.
  :func:`read_aedat_addresses` returns the raw words as ``AUDIO_EVENT_DTYPE`` (``unit`` = address), the
  natural form for cochlea (NAS) data; :func:`read_aedat2` decodes vision addresses per chip:
  ``dvs128``: p = bit 0, x = bits 7..1, y = bits 14..8, bit 15 = external (trigger) event;
  ``davis240`` / ``davis346``: bit 31 = 1 marks APS/IMU samples (not DVS events), bit 10 = external
  event, y = bits 30..22, x = bits 21..12, p = bit 11, both axes flipped as jAER does
  (x = W-1-x, y = H-1-y; same as Tonic's ``read_davis_346``).
* **AEDAT 3.1**: ``#!AER-DAT3.1`` header ending with ``#!END-HEADER``, then packets. Each packet has a
  28-byte little-endian header (int16 eventType, int16 eventSource, int32 eventSize, int32
  eventTSOffset, int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid) and
  eventCapacity × eventSize bytes of events. Polarity events (type 1, 8 bytes): uint32 data (bit 0
  valid mark, bit 1 polarity, bits 16..2 y, bits 31..17 x), int32 timestamp; the full timestamp is
  ``eventTSOverflow << 31 | timestamp`` µs. Events whose valid mark is 0 were deleted by a filter
  upstream and are skipped, as libcaer's iterators do. Other packet types (special, frame, IMU, ...)
  carry no polarity events.

Non-pixel records that these readers skip (external events, APS/IMU samples) are counted and reported
with a ``UserWarning``, so nothing vanishes unannounced.
"""

from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from neuromorph.data.events import AUDIO_EVENT_DTYPE, EVENT_DTYPE
from neuromorph.data.readers._common import PathLike, check_bounds, check_sensor_size, header_lines
from neuromorph.errors import ConfigError, DataFormatError, check_choice

CHIPS = {"dvs128": (128, 128), "davis240": (240, 180), "davis346": (346, 260)}
# sensor of an AEDAT 3.1 "#Source N: NAME" line
_SOURCE_SENSORS = (("DVS128", (128, 128)), ("DAVIS346", (346, 260)), ("DAVIS240", (240, 180)),
                   ("DVXPLORER", (640, 480)), ("DAVIS640", (640, 480)))
PACKET_HEADER = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1


def parse_aedat_header(path: PathLike) -> tuple[dict, int]:
    """Parse the ``#`` header of an AEDAT 1.0/2.0/3.1 file: (fields, byte offset of the data).

    ``fields["version"]`` is "1.0", "2.0", "3.1" or None (no ``#!AER-DAT`` line: a headerless jAER
    stream); ``fields["lines"]`` holds the header lines; 3.1 files add ``sources`` ({id: name}).
    """
    _, lines, pos = header_lines(path, b"#", "AEDAT", last=lambda line: line == "#!END-HEADER")
    fields: dict = {"version": None, "lines": lines, "sources": {}}
    for line in lines:
        if line.startswith("#!AER-DAT"):
            fields["version"] = line[len("#!AER-DAT"):].strip()
        m = re.match(r"#Source (\d+): *(.+)", line)
        if m:
            fields["sources"][int(m.group(1))] = m.group(2).strip()
        if m := re.match(r"#Format: *(.+)", line):
            fields["format"] = m.group(1).strip()
    if fields["version"] not in (None, "1.0", "2.0", "3.0", "3.1"):
        four = str(fields["version"]).startswith("4")
        raise DataFormatError(f"AEDAT version {fields['version']!r} is not supported by this reader (1.0, 2.0, 3.1)",
                              path=path, offset=0, options={"format": "aedat4"} if four else None)
    return fields, pos


#: a real address stream's timestamps run forwards; a 32-bit wrap or a timestamp reset steps back once.
#: Reading records with the wrong address size mixes address and timestamp bytes, and then a third to
#: two thirds of the steps run backwards (the pyNAVIS cochlea recordings: 36-60 %).
_MAX_BACKWARD = 0.01


def _address_records(path: PathLike, off: int, address_bytes: int, count: int = -1) -> np.ndarray:
    dtype = np.dtype([("a", ">u2" if address_bytes == 2 else ">u4"), ("t", ">u4")])
    return np.fromfile(path, dtype=dtype, offset=off, count=count)


def _backward_steps(t: np.ndarray) -> np.ndarray:
    """Indices i where timestamp i + 1 is below timestamp i."""
    return np.flatnonzero(t[1:] < t[:-1])


def _implausible(t: np.ndarray, back: np.ndarray) -> bool:
    return len(back) > 2 + _MAX_BACKWARD * (len(t) - 1)


def guess_address_bytes(path: PathLike, off: int | None = None) -> int | None:
    """The address size (2 or 4) under which a headerless/AEDAT 1.0-2.0 address stream reads as one:
    whole records and timestamps that run forwards. None when neither or both fit (then it must be given)."""
    if off is None:
        off = parse_aedat_header(path)[1]
    size = Path(path).stat().st_size
    fits = []
    for ab in (2, 4):
        if size > off and (size - off) % (ab + 4) == 0:
            t = _address_records(path, off, ab, count=1 << 20)["t"]  # the first million records decide
            if len(t) > 1 and not _implausible(t, _backward_steps(t)):
                fits.append(ab)
    return fits[0] if len(fits) == 1 else None


def read_aedat_addresses(path: PathLike, address_bytes: int | None = None, timestamp_tick_us: float = 1.0) -> np.ndarray:
    """Raw address-events of an AEDAT 1.0/2.0 (or headerless jAER) file as AUDIO_EVENT_DTYPE.

    ``unit`` = the address word, ``t`` = floor(timestamp × ``timestamp_tick_us``) µs (jAER: 1 µs; some
    FPGA cochlea recordings use 0.2 µs ticks). ``address_bytes`` (2 or 4) defaults to the header's
    version (1.0: 2, 2.0: 4) and must be given for headerless files. Records that do not fit
    ``address_bytes`` are refused with a DataFormatError naming the likely size: a data length that is
    no whole number of records, or timestamps that run backwards at more than 1 % of the steps (a real
    stream steps back only at a 32-bit wrap or a reset; misread records mix address and timestamp bytes).
    """
    fields, off = parse_aedat_header(path)
    if address_bytes is None:
        address_bytes = {"1.0": 2, "2.0": 4}.get(fields["version"])
        if address_bytes is None:
            raise DataFormatError("AEDAT file has no '#!AER-DAT1.0/2.0' header line: the address size must be given",
                                  path=path, offset=0,
                                  options={"address_bytes": guess_address_bytes(path, off) or (2, 4)})
    check_choice("address_bytes", address_bytes, (2, 4))
    if fields["version"] not in (None, "1.0", "2.0"):
        raise DataFormatError(f"AEDAT {fields['version']} holds packets, not address words", path=path, offset=0,
                              options={"format": "aedat31"})
    if isinstance(timestamp_tick_us, bool) or not isinstance(timestamp_tick_us, (int, float, np.integer, np.floating)) \
            or not 0 < timestamp_tick_us < np.inf:  # an argument, not the file: ConfigError (inf cast to garbage t)
        raise ConfigError(f"timestamp_tick_us must be a finite number > 0, got {timestamp_tick_us!r}")
    rec = address_bytes + 4
    size = Path(path).stat().st_size
    other = 6 - address_bytes  # the other possible address size
    if (size - off) % rec:
        whole = size - (size - off) % rec
        guess = guess_address_bytes(path, off)
        raise DataFormatError(f"AEDAT data length {size - off} is not a whole number of {rec}-byte records "
                              f"({address_bytes}-byte address + 4-byte timestamp): truncated file, or the wrong "
                              "address size", path=path, offset=whole,
                              options={"address_bytes": guess} if guess == other else None)
    raw = _address_records(path, off, address_bytes)
    back = _backward_steps(raw["t"])
    if _implausible(raw["t"], back):
        guess = guess_address_bytes(path, off)
        raise DataFormatError(
            f"timestamps run backwards at {len(back):,} of {len(raw) - 1:,} steps (the first at the offset named): "
            f"the records are not {address_bytes}-byte addresses with 4-byte timestamps",
            path=path, offset=off + rec * (int(back[0]) + 1),
            options={"address_bytes": guess} if guess == other else None)
    out = np.empty(len(raw), dtype=AUDIO_EVENT_DTYPE)
    if timestamp_tick_us == 1.0:
        out["t"] = raw["t"]
    else:
        out["t"] = np.floor(raw["t"].astype(np.float64) * timestamp_tick_us)
    out["unit"] = raw["a"].astype(np.int64).astype(np.int32)  # 4-byte addresses keep their bit pattern
    return out


def read_aedat2(path: PathLike, chip: str = "dvs128") -> np.ndarray:
    """Read the DVS events of an AEDAT 2.0 (jAER) file into an EVENT_DTYPE array.

    ``chip`` ("dvs128", "davis240", "davis346") selects the address layout (module docstring). External
    events and APS/IMU samples are not pixel events: they are skipped with a ``UserWarning`` counting them.
    """
    check_choice("chip", chip, tuple(CHIPS))
    fields, off = parse_aedat_header(path)
    if fields["version"] not in ("2.0",):
        raise DataFormatError(f"not an AEDAT 2.0 file (version {fields['version']!r})", path=path, offset=0)
    size = Path(path).stat().st_size
    if (size - off) % 8:
        raise DataFormatError(f"AEDAT 2.0 data length {size - off} is not a whole number of 8-byte records "
                              "(truncated file?)", path=path, offset=size - (size - off) % 8)
    raw = np.fromfile(path, dtype=np.dtype([("a", ">u4"), ("t", ">u4")]), offset=off)
    a = raw["a"].astype(np.int64)
    w, h = CHIPS[chip]
    if chip == "dvs128":
        keep = (a >> 15) & 1 == 0
        x, y, p = (a >> 1) & 0x7F, (a >> 8) & 0x7F, a & 1
    else:
        keep = ((a >> 31) & 1 == 0) & ((a >> 10) & 1 == 0)
        x = (w - 1) - ((a >> 12) & 0x3FF)
        y = (h - 1) - ((a >> 22) & 0x1FF)
        p = (a >> 11) & 1
    idx = np.flatnonzero(keep)
    if len(idx) < len(a):
        warnings.warn(f"{path}: skipped {len(a) - len(idx)} non-DVS records (external events, APS/IMU samples)",
                      UserWarning, stacklevel=2)
    out = np.empty(len(idx), dtype=EVENT_DTYPE)
    out["x"], out["y"], out["p"], out["t"] = x[idx], y[idx], p[idx], raw["t"][idx]
    check_bounds(out, (w, h), path, offsets=lambda i: off + 8 * int(idx[i]))
    return out


def _sensor_from_sources(fields: dict):
    for name in fields["sources"].values():
        for key, size in _SOURCE_SENSORS:
            if key in name.upper():
                return size
    return None


def iter_aedat31(path: PathLike, sensor_size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Stream the polarity events of an AEDAT 3.1 file, one EVENT_DTYPE array per polarity packet.

    The sensor comes from ``sensor_size`` or the header's ``#Source`` line (DVS128, DAVIS240/346, ...);
    events outside it raise DataFormatError with the packet's byte offset.
    """
    fields, pos = parse_aedat_header(path)
    if fields["version"] not in ("3.0", "3.1"):
        raise DataFormatError(f"not an AEDAT 3.x file (version {fields['version']!r})", path=path, offset=0)
    if fields.get("format", "RAW").upper() != "RAW":
        raise DataFormatError(f"AEDAT 3.1 '#Format: {fields['format']}' (compressed) is not supported; only RAW",
                              path=path, offset=0)
    sensor = check_sensor_size(sensor_size, path, declared=_sensor_from_sources(fields))
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        f.seek(pos)
        while pos < size:
            head = f.read(PACKET_HEADER.size)
            if len(head) < PACKET_HEADER.size:
                raise DataFormatError("AEDAT 3.1 file ends inside a packet header (truncated)", path=path, offset=pos)
            etype, _src, esize, tsoff, tsovf, cap, num, _valid = PACKET_HEADER.unpack(head)
            if esize <= 0 or cap < 0 or num < 0 or num > cap or tsoff < 0 or tsoff + 4 > esize or tsovf < 0:
                raise DataFormatError(
                    f"AEDAT 3.1 packet header is inconsistent (type {etype}, size {esize}, ts offset {tsoff}, "
                    f"capacity {cap}, number {num}, overflow {tsovf})", path=path, offset=pos)
            nbytes = cap * esize
            if pos + PACKET_HEADER.size + nbytes > size:
                raise DataFormatError(f"AEDAT 3.1 packet of {nbytes} bytes runs past the end of the file (truncated)",
                                      path=path, offset=pos)
            if etype != POLARITY_EVENT:
                f.seek(nbytes, 1)
                pos += PACKET_HEADER.size + nbytes
                continue
            if esize != 8 or tsoff != 4:
                raise DataFormatError(f"AEDAT 3.1 polarity packet with event size {esize} / ts offset {tsoff} "
                                      "(expected 8 / 4)", path=path, offset=pos)
            raw = np.frombuffer(f.read(nbytes), dtype=np.dtype([("d", "<u4"), ("t", "<i4")]), count=num)
            d = raw["d"]
            valid = np.flatnonzero(d & 1)
            out = np.empty(len(valid), dtype=EVENT_DTYPE)
            dv = d[valid]
            out["x"] = (dv >> 17) & 0x7FFF
            out["y"] = (dv >> 2) & 0x7FFF
            out["p"] = (dv >> 1) & 1
            out["t"] = (np.int64(tsovf) << 31) | raw["t"][valid].astype(np.int64)
            if (raw["t"][valid] < 0).any():
                raise DataFormatError("AEDAT 3.1 polarity event with a negative 31-bit timestamp", path=path, offset=pos)
            if sensor is not None:
                check_bounds(out, sensor, path, offsets=pos + PACKET_HEADER.size + 8 * valid)
            pos += PACKET_HEADER.size + nbytes
            if len(out):
                yield out


def read_aedat31(path: PathLike, sensor_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read every polarity event of an AEDAT 3.1 file into one EVENT_DTYPE array (see :func:`iter_aedat31`)."""
    parts = list(iter_aedat31(path, sensor_size))
    return np.concatenate(parts) if parts else np.empty(0, dtype=EVENT_DTYPE)
