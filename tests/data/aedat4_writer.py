"""A minimal AEDAT 4.0 writer for tests: hand-laid FlatBuffers (IOHeader, EVTS packets)."""

import struct

import lz4.frame

MAGIC = b"#!AER-DAT4.0\r\n"

INFO = """<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">
<node name="0" path="/mainloop/Recorder/outInfo/0/"><attr key="typeIdentifier" type="string">EVTS</attr>
<node name="info" path="/mainloop/Recorder/outInfo/0/info/"><attr key="sizeX" type="int">{w}</attr>
<attr key="sizeY" type="int">{h}</attr></node></node>
<node name="1" path="/mainloop/Recorder/outInfo/1/"><attr key="typeIdentifier" type="string">TRIG</attr></node>
</node></dv>"""


def io_header(compression: int, info: str, table_pos: int = -1) -> bytes:
    s = info.encode()
    # vtable slots: 0 compression (table+4), 1 dataTablePosition (table+12), 2 infoNode (table+8)
    buf = struct.pack("<I", 20) + b"IOHE" + struct.pack("<HHHHH", 10, 20, 4, 12, 8) + b"\0\0"
    buf += struct.pack("<iiIq", 12, compression, 40 - 28, table_pos)
    buf += struct.pack("<I", len(s)) + s + b"\0"
    return buf


def evts_packet(events) -> bytes:
    """events: iterable of (t, x, y, p); returns the size-prefixed FlatBuffer."""
    body = b"".join(struct.pack("<qhh?3x", t, x, y, bool(p)) for t, x, y, p in events)
    n = len(body) // 16
    buf = struct.pack("<I", 16) + b"EVTS" + struct.pack("<HHH", 6, 8, 4) + b"\0\0"
    buf += struct.pack("<iII", 8, 4, n) + body
    return struct.pack("<I", len(buf)) + buf


def write(path, packets, compression=1, size=(20, 10), table_pos=-1, compress=None):
    """packets: list of (stream id, events)."""
    if compress is None:
        compress = {0: lambda b: b, 1: lz4.frame.compress, 2: lz4.frame.compress}.get(compression)
        if compress is None:
            import zstandard

            compress = zstandard.ZstdCompressor().compress
    hdr = io_header(compression, INFO.format(w=size[0], h=size[1]), table_pos)
    out = MAGIC + struct.pack("<i", len(hdr)) + hdr
    for sid, events in packets:
        data = compress(evts_packet(events)) if sid == 0 else compress(b"\x08\0\0\0" + bytes(8))
        out += struct.pack("<ii", sid, len(data)) + data
    path.write_bytes(out)
    return path
