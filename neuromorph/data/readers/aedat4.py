"""AEDAT 4.0 files (iniVation DV): LZ4/zstd-compressed FlatBuffers packets.

Source: iniVation's "AEDAT 4.0" file-format documentation and the dv-processing FlatBuffers schemas
(``IOHeader.fbs``, ``FileDataTable.fbs``, ``EventPacket.fbs``). Layout:

    "#!AER-DAT4.0\\r\\n" | int32 n | IOHeader FlatBuffer (n bytes, identifier "IOHE":
        0 compression: int32 enum NONE=0, LZ4=1, LZ4_HIGH=2, ZSTD=3, ZSTD_HIGH=4
        1 dataTablePosition: int64 (file offset of the "FTAB" table, -1 if none)
        2 infoNode: string, XML describing each stream: typeIdentifier "EVTS" for polarity events,
          info/sizeX, info/sizeY)
    then packets until dataTablePosition / end of file: int32 stream id | int32 size | size bytes,
    compressed as one LZ4 (or zstd) frame holding a size-prefixed FlatBuffer. An "EVTS" packet's root
    table has field 0 = vector of ``struct Event {int64 timestamp; int16 x; int16 y; bool polarity;}``
    (16 bytes with padding), timestamps in µs.

The FlatBuffers tables are small, so we read them directly (uoffset/soffset/vtable rules of the
FlatBuffers binary format, flatbuffers.dev "Internals"), with a bounds check on every offset.
Frames, IMU samples and triggers are other streams, not events; :func:`aedat4_streams` lists them.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

import numpy as np

from neuromorph.data.events import EVENT_DTYPE
from neuromorph.data.readers._common import PathLike
from neuromorph.errors import DataFormatError

MAGIC = b"#!AER-DAT4.0\r\n"
_COMPRESSION = {0: "none", 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}
_EVENT_STRUCT = np.dtype({"names": ["t", "x", "y", "p"], "formats": ["<i8", "<i2", "<i2", "u1"],
                          "offsets": [0, 8, 10, 12], "itemsize": 16})
# a compressed packet never expands more than this (LZ4 max ratio is ~255); guards against bombs
_MAX_EXPANSION = 1024


class _FlatBuffer:
    """Just enough of the FlatBuffers binary format to read tables, scalars, strings and vectors."""

    def __init__(self, buf: bytes, path, base_offset: int | None, what: str):
        self.buf, self.path, self.base, self.what = buf, path, base_offset, what

    def _fail(self, msg: str, pos: int):
        off = None if self.base is None else self.base + pos
        raise DataFormatError(f"{self.what}: {msg}", path=self.path, offset=off)

    def _u(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.buf):
            self._fail(f"offset {pos} points outside the {len(self.buf)}-byte buffer", max(0, min(pos, len(self.buf))))
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def root(self, identifier: bytes) -> int:
        if len(self.buf) < 8 or self.buf[4:8] != identifier:
            self._fail(f"FlatBuffer identifier is {bytes(self.buf[4:8])!r}, expected {identifier!r}", 4)
        return self._u("<I", 0)

    def field_pos(self, table: int, index: int) -> int | None:
        vtable = table - self._u("<i", table)
        vsize = self._u("<H", vtable)
        if vsize < 4 or vsize % 2:
            self._fail(f"bad vtable size {vsize}", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vsize:
            return None
        rel = self._u("<H", vtable + slot)
        return None if rel == 0 else table + rel

    def scalar(self, table: int, index: int, fmt: str, default):
        pos = self.field_pos(table, index)
        return default if pos is None else self._u(fmt, pos)

    def vector(self, table: int, index: int, elem_size: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) if absent."""
        pos = self.field_pos(table, index)
        if pos is None:
            return 0, 0
        vec = pos + self._u("<I", pos)
        n = self._u("<I", vec)
        if vec + 4 + n * elem_size > len(self.buf):
            self._fail(f"vector of {n} x {elem_size} bytes runs past the end of the buffer", vec)
        return vec + 4, n

    def string(self, table: int, index: int) -> str:
        start, n = self.vector(table, index, 1)
        return bytes(self.buf[start : start + n]).decode("utf-8", errors="replace")


def _parse_info(xml_text: str, path) -> dict[int, dict]:
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DataFormatError(f"AEDAT4 infoNode XML is malformed: {exc}", path=path) from None
    streams: dict[int, dict] = {}
    for node in root.iter("node"):
        name = node.get("name", "")
        if not name.isdigit() or "outInfo" not in node.get("path", ""):
            continue
        info: dict = {}
        for attr in node.iter("attr"):
            key, text = attr.get("key"), (attr.text or "").strip()
            if key == "typeIdentifier":
                info["type"] = text
            elif key in ("sizeX", "sizeY"):
                try:
                    info[key] = int(text)
                except ValueError:
                    raise DataFormatError(f"AEDAT4 stream {name}: {key}={text!r} is not an integer", path=path) from None
        streams[int(name)] = info
    return streams


def parse_aedat4_header(path: PathLike) -> tuple[dict, int]:
    """Read the AEDAT4 header: ({"compression", "data_table_position", "streams"}, first packet offset).

    ``streams`` maps stream id -> {"type": "EVTS"|"FRME"|"IMUS"|"TRIG"|..., "sizeX", "sizeY"}.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such event file", path=path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(18)
        if head[:14] != MAGIC:
            raise DataFormatError("not an AEDAT 4.0 file: missing '#!AER-DAT4.0\\r\\n'", path=path, offset=0)
        if len(head) < 18:
            raise DataFormatError("AEDAT4 header truncated", path=path, offset=len(head))
        n = struct.unpack_from("<i", head, 14)[0]
        if n < 8 or 18 + n > size:
            raise DataFormatError(f"AEDAT4 IOHeader size {n} does not fit the {size}-byte file", path=path, offset=14)
        fb = _FlatBuffer(f.read(n), path, 18, "AEDAT4 IOHeader")
    table = fb.root(b"IOHE")
    code = fb.scalar(table, 0, "<i", 0)
    if code not in _COMPRESSION:
        raise DataFormatError(f"AEDAT4 compression code {code} is unknown", path=path, offset=18 + table)
    fields = {
        "compression": _COMPRESSION[code],
        "data_table_position": fb.scalar(table, 1, "<q", -1),
        "streams": _parse_info(fb.string(table, 2), path),
    }
    return fields, 18 + n


def aedat4_streams(path: PathLike) -> dict[int, dict]:
    """The streams an AEDAT4 file declares: id -> {"type", "sizeX", "sizeY"}."""
    return parse_aedat4_header(path)[0]["streams"]


def _decompress(data: bytes, method: str, path, offset: int) -> bytes:
    try:
        if method == "none":
            return data
        if method == "lz4":
            import lz4.frame

            out = lz4.frame.decompress(data)
        else:
            try:
                import zstandard
            except ImportError:
                raise DataFormatError("AEDAT4 file is zstd-compressed: install the 'zstandard' package "
                                      "(pip install neuromorph[zstd])", path=path, offset=offset) from None
            out = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except DataFormatError:
        raise
    except Exception as exc:  # lz4/zstd raise their own RuntimeError/ZstdError types on corrupt frames
        raise DataFormatError(f"AEDAT4 packet does not decompress ({method}): {exc}", path=path, offset=offset) from None
    if len(out) > _MAX_EXPANSION * max(len(data), 64):
        raise DataFormatError("AEDAT4 packet decompresses to an implausible size", path=path, offset=offset)
    return out


def _iter_packets(path: PathLike, stream_id: int | None) -> Iterator[np.ndarray]:
    """Yield each event packet's elements as a checked view (dtype ``_EVENT_STRUCT``) of its buffer."""
    fields, pos = parse_aedat4_header(path)
    streams = fields["streams"]
    event_ids = sorted(i for i, s in streams.items() if s.get("type") == "EVTS")
    if stream_id is None:
        if not event_ids:
            raise DataFormatError("AEDAT4 file declares no event (EVTS) stream", path=path, offset=18)
        stream_id = event_ids[0]
    elif stream_id not in event_ids:
        raise DataFormatError(f"AEDAT4 stream {stream_id} is not an event stream; event streams: {event_ids}", path=path)
    info = streams[stream_id]
    # no declared size: only the int16 range applies
    w, h = info.get("sizeX", 1 << 15), info.get("sizeY", 1 << 15)
    size = Path(path).stat().st_size
    end = fields["data_table_position"]
    end = size if end is None or end < 0 else end
    if end > size or end < pos:
        raise DataFormatError(f"AEDAT4 data table position {end} lies outside the file", path=path, offset=18)
    with open(path, "rb") as f:
        f.seek(pos)
        while pos < end:
            head = f.read(8)
            if len(head) < 8 or pos + 8 > end:
                raise DataFormatError("AEDAT4 file ends inside a packet header (truncated)", path=path, offset=pos)
            sid, n = struct.unpack("<ii", head)
            if n < 0 or pos + 8 + n > end:
                raise DataFormatError(f"AEDAT4 packet of {n} bytes runs past the end of the data (truncated)", path=path, offset=pos)
            if sid != stream_id:
                if sid not in streams:
                    raise DataFormatError(f"AEDAT4 packet names undeclared stream {sid}", path=path, offset=pos)
                f.seek(n, 1)
                pos += 8 + n
                continue
            raw = _decompress(f.read(n), fields["compression"], path, pos + 8)
            if len(raw) < 4 or struct.unpack_from("<I", raw, 0)[0] != len(raw) - 4:
                raise DataFormatError("AEDAT4 event packet: FlatBuffer size prefix does not match", path=path, offset=pos + 8)
            fb = _FlatBuffer(memoryview(raw)[4:], path, None, f"AEDAT4 event packet at byte offset {pos}")
            start, count = fb.vector(fb.root(b"EVTS"), 0, _EVENT_STRUCT.itemsize)
            el = np.frombuffer(raw, dtype=_EVENT_STRUCT, count=count, offset=4 + start)
            if count:
                x, y = el["x"], el["y"]
                bad = (el["p"] > 1) | (x < 0) | (x >= w) | (y < 0) | (y >= h)
                if bad.any():
                    i = int(np.argmax(bad))
                    raise DataFormatError(
                        f"AEDAT4 event {i} of the packet (x={int(x[i])}, y={int(y[i])}, polarity byte "
                        f"{int(el['p'][i])}) lies outside the declared sensor {w}x{h}", path=path, offset=pos)
                yield el
            pos += 8 + n


def _to_events(el: np.ndarray) -> np.ndarray:
    out = np.empty(len(el), dtype=EVENT_DTYPE)
    out["t"], out["x"], out["y"], out["p"] = el["t"], el["x"], el["y"], el["p"]
    return out


def iter_aedat4(path: PathLike, stream_id: int | None = None) -> Iterator[np.ndarray]:
    """Stream the polarity events of an AEDAT 4.0 file, one array (EVENT_DTYPE) per packet.

    ``stream_id``: which "EVTS" stream (default: the lowest id, as Tonic's ``read_aedat4``). Events
    outside the stream's declared sizeX × sizeY raise DataFormatError with the packet's file offset.
    """
    for el in _iter_packets(path, stream_id):
        yield _to_events(el)


def read_aedat4(path: PathLike, stream_id: int | None = None) -> np.ndarray:
    """Read the polarity events of an AEDAT 4.0 file into one EVENT_DTYPE array (t in µs).

    See :func:`iter_aedat4`; the result equals ``aedat.Decoder`` (used by Tonic's ``read_aedat4``).
    """
    parts = list(_iter_packets(path, stream_id))
    # fill one output array packet by packet: no intermediate concatenation of the 16-byte structs
    out = np.empty(sum(len(el) for el in parts), dtype=EVENT_DTYPE)
    i = 0
    for el in parts:
        j = i + len(el)
        out["t"][i:j], out["x"][i:j], out["y"][i:j], out["p"][i:j] = el["t"], el["x"], el["y"], el["p"]
        i = j
    return out
