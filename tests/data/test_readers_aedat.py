"""AEDAT 1.0/2.0/3.1 readers: real cochlea recordings, synthetic files vs Tonic / a slow decoder, damage."""

import struct

import numpy as np
import pytest

from neuromorph.data.readers.aedat import (
    iter_aedat31,
    parse_aedat_header,
    read_aedat2,
    read_aedat31,
    read_aedat_addresses,
)
from neuromorph.errors import ConfigError, DataFormatError

from . import slow_decoders

# file: (address bytes, tick µs, records, max address, first t µs, last t µs)
COCHLEA = {
    "130Hz_mono_64ch_ONOFF_addr2b_ts02.aedat": (2, 0.2, 331949, 125, 0, 496680),
    "enun_stereo_64ch_ONOFF_addr4b_ts1.aedat": (4, 1.0, 428635, 253, 0, 13741184),
    "sound_mono_32ch_ONOFF_addr2b_ts02.aedat": (2, 0.2, 49864, 63, 114602, 1259341),
}


@pytest.mark.parametrize("name", sorted(COCHLEA))
def test_cochlea_recordings(shared_data, name):
    ab, tick, n, amax, t0, t1 = COCHLEA[name]
    path = shared_data / "cochlea_sensor" / name
    ev = read_aedat_addresses(path, address_bytes=ab, timestamp_tick_us=tick)
    assert (len(ev), int(ev["unit"].max()), int(ev["t"][0]), int(ev["t"][-1])) == (n, amax, t0, t1)
    assert ev["unit"].min() == 0 and np.all(np.diff(ev["t"]) >= 0)
    # independent decode: struct, big-endian, as pyNAVIS' loadAERDATA
    fmt = ">HI" if ab == 2 else ">II"
    ref = list(struct.iter_unpack(fmt, path.read_bytes()))
    assert ev["unit"].tolist() == [a for a, _ in ref]
    assert ev["t"].tolist() == [int(np.floor(t * tick)) for _, t in ref]
    # the other address size never reads as garbage: its records do not fit the length, or their timestamps
    # run backwards; either way the error names the file and the size that fits
    with pytest.raises(DataFormatError, match="whole number of|run backwards") as e:
        read_aedat_addresses(path, address_bytes=6 - ab)
    assert e.value.options == {"address_bytes": ab} and e.value.path == path
    assert str(e.value).endswith(f"; pass address_bytes={ab}") and name in str(e.value)
    with pytest.raises(DataFormatError, match="address size must be given") as e:
        read_aedat_addresses(path)  # headerless: the record size must be given; the one that fits is advised
    assert e.value.options == {"address_bytes": ab}
    for bad in (0, float("inf"), "0.2"):  # a bad argument is the caller's ConfigError, not a damaged file
        with pytest.raises(ConfigError, match="timestamp_tick_us"):
            read_aedat_addresses(path, address_bytes=ab, timestamp_tick_us=bad)


def test_wrong_address_size_with_whole_records_is_refused(shared_data):
    # 49,864 6-byte records are also 37,398 whole 8-byte records: read as 4-byte addresses they used to give
    # garbage (units up to 2**31, t up to 71 minutes) without a word; their timestamps run backwards
    path = shared_data / "cochlea_sensor" / "sound_mono_32ch_ONOFF_addr2b_ts02.aedat"
    assert path.stat().st_size % 8 == 0
    with pytest.raises(DataFormatError, match=r"backwards at 13,330 of 37,397 steps.*not 4-byte addresses") as e:
        read_aedat_addresses(path, address_bytes=4, timestamp_tick_us=0.2)
    assert e.value.offset == 8 and e.value.options == {"address_bytes": 2}


def test_address_stream_with_a_timestamp_wrap_still_reads(tmp_path):
    # a 32-bit wrap steps back once: a real stream, not a wrong record size
    t = [2**32 - 30, 2**32 - 20, 2**32 - 10, 5, 15, 25, 35]
    f = tmp_path / "wrap.aedat"
    f.write_bytes(b"#!AER-DAT1.0\r\n" + b"".join(struct.pack(">HI", i % 4, v) for i, v in enumerate(t)))
    ev = read_aedat_addresses(f)
    assert ev["unit"].tolist() == [0, 1, 2, 3, 0, 1, 2] and ev["t"].tolist() == t


def _aedat2(tmp_path, records, header=b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n"):
    f = tmp_path / "a.aedat"
    f.write_bytes(header + b"".join(struct.pack(">II", a, t) for a, t in records))
    return f


def test_aedat2_davis346_equals_tonic(tmp_path):
    tonic_io = pytest.importorskip("tonic.io")
    rng = np.random.default_rng(0)
    x, y, p = rng.integers(0, 346, 200), rng.integers(0, 260, 200), rng.integers(0, 2, 200)
    addr = (y << 22) | (x << 12) | (p << 11)
    t = np.sort(rng.integers(0, 10**6, 200))
    f = _aedat2(tmp_path, zip(addr.tolist(), t.tolist()))
    ev = read_aedat2(f, chip="davis346")
    _, _, ref = tonic_io.read_davis_346(str(f))
    for k in "xytp":
        np.testing.assert_array_equal(ev[k], ref[k])
    assert ev["x"].tolist() == (345 - x).tolist() and ev["y"].tolist() == (259 - y).tolist()


def test_aedat2_dvs128_layout_and_special_events(tmp_path):
    f = _aedat2(tmp_path, [((5 << 8) | (7 << 1) | 1, 10), (1 << 15, 11), ((127 << 8) | (127 << 1), 12)])
    with pytest.warns(UserWarning, match="skipped 1 non-DVS"):
        ev = read_aedat2(f, chip="dvs128")
    assert ev.tolist() == [(7, 5, 10, 1), (127, 127, 12, 0)]
    assert parse_aedat_header(f)[0]["version"] == "2.0"
    with pytest.raises(ConfigError):
        read_aedat2(f, chip="dvs129")
    g = tmp_path / "t.aedat"
    g.write_bytes(f.read_bytes()[:-3])
    with pytest.raises(DataFormatError, match="truncated") as e:
        read_aedat2(g)
    assert e.value.offset == len(b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n") + 16
    # DAVIS: x beyond the sensor after the flip cannot happen, but y bits beyond 259 can
    h = _aedat2(tmp_path, [(300 << 22, 1)])
    with pytest.raises(DataFormatError, match="346x260"):
        read_aedat2(h, chip="davis346")


HEADER31 = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def _packet(etype, events, tsovf=0, cap=None, esize=8):
    body = b"".join(struct.pack("<Ii", d, t) for d, t in events)
    cap = len(events) if cap is None else cap
    body += bytes((cap - len(events)) * esize)
    return struct.pack("<hhiiiiii", etype, 1, esize, 4, tsovf, cap, len(events), len(events)) + body


def _pol(x, y, p, valid=1):
    return (x << 17) | (y << 2) | (p << 1) | valid


def test_aedat31_packets(tmp_path):
    packets = [
        _packet(1, [(_pol(1, 2, 1), 5), (_pol(3, 4, 0, valid=0), 6), (_pol(127, 127, 0), 7)]),
        _packet(0, [(0x123, 8)]),  # special event packet: no polarity events
        _packet(1, [(_pol(9, 9, 1), 3)], tsovf=2, cap=4),  # capacity > number: padding skipped
    ]
    f = tmp_path / "a.aedat"
    data = HEADER31 + b"".join(packets)
    f.write_bytes(data)
    fields, off = parse_aedat_header(f)
    assert fields["version"] == "3.1" and fields["sources"] == {1: "DVS128"} and off == len(HEADER31)
    ev = read_aedat31(f)
    assert ev.tolist() == [(1, 2, 5, 1), (127, 127, 7, 0), (9, 9, (2 << 31) | 3, 1)]
    assert ev.tolist() == slow_decoders.aedat31_polarity_packets(data, off)
    assert len(list(iter_aedat31(f))) == 2
    f.write_bytes(HEADER31 + _packet(1, [(_pol(128, 0, 1), 1)]))
    with pytest.raises(DataFormatError, match="128x128") as e:
        read_aedat31(f)
    assert e.value.offset == len(HEADER31) + 28
    f.write_bytes(data[:-5])
    with pytest.raises(DataFormatError, match="truncated"):
        read_aedat31(f)
    f.write_bytes(HEADER31 + _packet(1, [(_pol(1, 1, 1), 1)])[:20])
    with pytest.raises(DataFormatError, match="inside a packet header") as e:
        read_aedat31(f)
    assert e.value.offset == len(HEADER31)
    bad = bytearray(HEADER31 + _packet(1, [(_pol(1, 1, 1), 1)]))
    bad[len(HEADER31) + 20 : len(HEADER31) + 24] = struct.pack("<i", 5)  # number > capacity
    f.write_bytes(bytes(bad))
    with pytest.raises(DataFormatError, match="inconsistent"):
        read_aedat31(f)
    with pytest.raises(DataFormatError, match="not an AEDAT 3"):
        read_aedat31(_aedat2(tmp_path, [(1, 1)]))
    f.write_bytes(b"#!AER-DAT9.9\r\n")
    with pytest.raises(DataFormatError, match="9.9"):
        read_aedat31(f)
