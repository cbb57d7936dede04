"""AEDAT 4.0 and Event Stream readers: real files (exact counts), peers, synthetic files, damage."""

import numpy as np
import pytest

from neuromorph.data.readers.aedat4 import aedat4_streams, iter_aedat4, parse_aedat4_header, read_aedat4
from neuromorph.data.readers.eventstream import iter_es, parse_es_header, read_es
from neuromorph.errors import ConfigError, DataFormatError

from . import aedat4_writer

# aestream_davis.aedat4: (events, first t, last t, ON events), equal to the `aedat` (Rust) decoder.
AEDAT4_FACTS = (117667, 1633953690975950, 1633953691105949, 72363)
# dvs.es: (events, first t, last t, x max, y max, ON events), equal to the slow decoder below.
ES_FACTS = (473225, 0, 999000, 319, 239, 270001)


def test_aedat4_real_file(shared_data):
    path = shared_data / "aedat" / "aestream_davis.aedat4"
    fields, _ = parse_aedat4_header(path)
    assert fields["compression"] == "lz4"
    assert {i: s["type"] for i, s in aedat4_streams(path).items()} == {0: "EVTS", 1: "FRME", 2: "IMUS", 3: "TRIG"}
    ev = read_aedat4(path)
    assert (len(ev), int(ev["t"][0]), int(ev["t"][-1]), int(ev["p"].sum())) == AEDAT4_FACTS
    assert ev["x"].min() >= 0 and ev["x"].max() == 345 and ev["y"].max() == 259
    assert np.all(np.diff(ev["t"]) >= 0)
    assert sum(map(len, iter_aedat4(path))) == len(ev)


def test_aedat4_equals_aedat_package(shared_data):
    aedat = pytest.importorskip("aedat")
    path = shared_data / "aedat" / "aestream_davis.aedat4"
    ref = np.concatenate([p["events"] for p in aedat.Decoder(str(path)) if p["stream_id"] == 0 and "events" in p])
    ev = read_aedat4(path)
    for k in "txy":
        np.testing.assert_array_equal(ev[k], ref[k])
    np.testing.assert_array_equal(ev["p"], ref["on"])


@pytest.mark.parametrize("compression", [0, 1, 2, 3])
def test_aedat4_synthetic_roundtrip(tmp_path, compression):
    if compression == 3:
        pytest.importorskip("zstandard")
    a = [(5, 0, 0, 1), (6, 19, 9, 0)]
    b = [(7, 3, 4, 1)]
    f = aedat4_writer.write(tmp_path / "s.aedat4", [(0, a), (1, []), (0, []), (0, b)], compression=compression)
    assert read_aedat4(f).tolist() == [(x, y, t, p) for t, x, y, p in a + b]


def test_aedat4_damage(tmp_path):
    f = aedat4_writer.write(tmp_path / "d.aedat4", [(0, [(1, 20, 0, 1)])])
    with pytest.raises(DataFormatError, match="outside the declared sensor 20x10"):
        read_aedat4(f)
    good = aedat4_writer.write(tmp_path / "g.aedat4", [(0, [(1, 2, 3, 1)] * 50), (0, [(2, 2, 3, 0)])]).read_bytes()
    t = tmp_path / "t.aedat4"
    t.write_bytes(good[:-5])
    with pytest.raises(DataFormatError, match="truncated") as e:
        read_aedat4(t)
    assert e.value.offset is not None and "t.aedat4" in str(e.value)
    t.write_bytes(b"#!AER-DAT3.1\r\n" + good[14:])
    with pytest.raises(DataFormatError, match="not an AEDAT 4.0") as e:
        read_aedat4(t)
    assert e.value.offset == 0
    # flip bytes inside the first LZ4 frame: must fail in decompression/validation, not crash
    n_hdr = 18 + int.from_bytes(good[14:18], "little")
    bad = bytearray(good)
    bad[n_hdr + 8 + 4 : n_hdr + 8 + 12] = b"\xff" * 8
    t.write_bytes(bytes(bad))
    with pytest.raises(DataFormatError):
        read_aedat4(t)


def _slow_es_dvs(data: bytes):
    """Event Stream DVS state machine, plain Python from sepia.hpp."""
    out, t, i = [], 0, 20
    while i < len(data):
        b = data[i]
        i += 1
        if b == 0xFF:
            t += 127
        elif b != 0xFE:
            t += b >> 1
            x = data[i] | data[i + 1] << 8
            y = data[i + 2] | data[i + 3] << 8
            out.append((x, y, t, b & 1))
            i += 4
    return out


def test_es_real_file(shared_data):
    path = shared_data / "eventstream" / "dvs.es"
    fields, off = parse_es_header(path)
    assert fields == {"version": (2, 0, 0), "event_type": "dvs", "sensor_size": (320, 240)} and off == 20
    ev = read_es(path)
    facts = (len(ev), int(ev["t"][0]), int(ev["t"][-1]), int(ev["x"].max()), int(ev["y"].max()), int(ev["p"].sum()))
    assert facts == ES_FACTS
    assert ev["x"].min() == 0 and ev["y"].min() == 0
    assert np.all(np.diff(ev["t"]) >= 0)  # the format stores time deltas: monotonic by construction
    assert ev.tolist() == _slow_es_dvs(path.read_bytes())
    chunks = list(iter_es(path, chunk_events=10_001))
    np.testing.assert_array_equal(np.concatenate(chunks), ev)


def _es(tmp_path, etype, body, w=10, h=8):
    f = tmp_path / "a.es"
    f.write_bytes(b"Event Stream" + bytes([2, 0, 0, etype]) + w.to_bytes(2, "little") + h.to_bytes(2, "little") + bytes(body))
    return f


def test_es_atis_and_damage(tmp_path):
    # ATIS: overflow byte 0xFD adds 63; then a change-detection event (bit0=0, p=1) and a threshold crossing
    body = [0xFD, (2 << 2) | 0b10, 3, 0, 4, 0, (1 << 2) | 0b01, 9, 0, 7, 0]
    f = _es(tmp_path, 2, body)
    assert read_es(f).tolist() == [(3, 4, 65, 1)]
    assert read_es(f, atis_events="threshold_crossing").tolist() == [(9, 7, 66, 0)]
    with pytest.raises(ConfigError):
        read_es(f, atis_events="both")
    with pytest.raises(DataFormatError, match="truncated") as e:
        read_es(_es(tmp_path, 1, [0xFF, 0x03, 1, 0, 2]))
    assert e.value.offset == 21
    with pytest.raises(DataFormatError, match="10x8") as e:
        read_es(_es(tmp_path, 1, [0x02, 1, 0, 2, 0, 0x02, 10, 0, 2, 0]))
    assert e.value.offset == 25
    with pytest.raises(DataFormatError, match="'generic'"):
        read_es(_es(tmp_path, 0, []))
    g = tmp_path / "b.es"
    g.write_bytes(b"Event Strea")
    with pytest.raises(DataFormatError, match="not an Event Stream"):
        read_es(g)


def test_aedat4_stream_without_declared_height(tmp_path):
    from neuromorph.data import summarize

    f = aedat4_writer.write(tmp_path / "h.aedat4", [(0, [(1, 19, 9, 1)])])
    data = f.read_bytes().replace(b'<attr key="sizeY" type="int">10</attr>', b'<attr key="sizeZ" type="int">10</attr>')
    f.write_bytes(data)  # same length: the header size field stays right
    assert read_aedat4(f).tolist() == [(19, 9, 1, 1)]
    info = summarize(f)
    assert info["sensor_size"] is None and info["events"] == 1
