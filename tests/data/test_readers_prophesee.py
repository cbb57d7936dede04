"""Prophesee EVT 2.0 / EVT 3.0 / DAT readers: real files, reference arrays, differential and damage tests."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuromorph.data.readers.prophesee import (
    iter_evt2,
    iter_dat,
    iter_evt3,
    parse_raw_header,
    read_dat,
    read_evt2,
    read_evt3,
)
from neuromorph.errors import DataFormatError

from . import slow_decoders

# (events, first t, last t, x min, x max, y min, y max, ON events); counts, x, y, p equal to expelliarmus
# 1.x's C decoder (its EVT 2 timestamps agree with ours too), confirmed by the slow decoder below.
EVT2_FILES = {
    "expelliarmus_evt2_sample.raw": (539481, 1317888, 1367888, 60, 599, 18, 475, 367855),
    "faery_evt2.raw": (521252, 913716224, 913812095, 0, 639, 0, 479, 185861),
}
EVT3_FILE = "expelliarmus_evt3_sample.raw"
# 219,596 events over 8,801 µs (PROVENANCE: true span 8.8 ms; expelliarmus' times go wrong after 20,121)
EVT3_FACTS = (219596, 11718656, 11727457, 0, 1279, 0, 719, 115532)


def _facts(ev):
    return (len(ev), int(ev["t"][0]), int(ev["t"][-1]), int(ev["x"].min()), int(ev["x"].max()),
            int(ev["y"].min()), int(ev["y"].max()), int(ev["p"].sum()))


def _words(path, offset, dtype):
    return np.fromfile(path, dtype=np.uint8)[offset:].view(dtype)


@pytest.mark.parametrize("name", sorted(EVT2_FILES))
def test_evt2_real_files(shared_data, name):
    path = shared_data / "prophesee" / name
    fields, off = parse_raw_header(path)
    assert fields["format"] == "evt2" and fields["sensor_size"] == (640, 480)
    ev = read_evt2(path)
    assert _facts(ev) == EVT2_FILES[name]
    assert np.all(np.diff(ev["t"]) >= 0)  # EVT 2.0 streams are time-ordered
    ref = np.array(slow_decoders.evt2_words(_words(path, off, "<u4").tolist()))
    for i, k in enumerate("xytp"):
        np.testing.assert_array_equal(ev[k], ref[:, i])
    chunks = list(iter_evt2(path, chunk_events=50_000))
    assert len(chunks) > 5 and max(map(len, chunks)) <= 50_000
    np.testing.assert_array_equal(np.concatenate(chunks), ev)


def test_evt3_real_file_matches_reference_arrays(shared_data):
    path = shared_data / "prophesee" / EVT3_FILE
    fields, off = parse_raw_header(path)
    assert fields["format"] == "evt3" and fields["sensor_size"] == (1280, 720)
    ev = read_evt3(path)
    assert _facts(ev) == EVT3_FACTS
    ref = np.load(shared_data / "prophesee" / "expelliarmus_evt3_sample_xyp.npz")
    for k in "xyp":
        np.testing.assert_array_equal(ev[k], ref[k])
    assert np.all(np.diff(ev["t"]) >= 0)
    slow = np.array(slow_decoders.evt3_words(_words(path, off, "<u2").tolist()))
    np.testing.assert_array_equal(ev["t"], slow[:, 2])
    chunks = list(iter_evt3(path, chunk_events=4000))
    np.testing.assert_array_equal(np.concatenate(chunks), ev)


def _raw(tmp_path, name, header, words, dtype):
    f = tmp_path / name
    f.write_bytes(header + np.asarray(words, dtype=dtype).tobytes())
    return f


EVT2_WORD = st.one_of(
    st.builds(lambda h: (8 << 28) | h, st.integers(0, 2**28 - 1)),
    st.builds(lambda ty, lo, x, y: (ty << 28) | (lo << 22) | (x << 11) | y,
              st.integers(0, 1), st.integers(0, 63), st.integers(0, 2047), st.integers(0, 2047)),
    st.builds(lambda ty, r: (ty << 28) | r, st.sampled_from([0xA, 0xE, 0xF]), st.integers(0, 2**28 - 1)),
)
EVT3_WORD = st.builds(lambda ty, r: (ty << 12) | r, st.sampled_from([0, 2, 3, 4, 5, 6, 7, 8, 0xA, 0xE, 0xF]),
                      st.integers(0, 4095))


@settings(max_examples=60, deadline=None)
@given(st.lists(EVT2_WORD, max_size=200))
def test_evt2_matches_slow_decoder(tmp_path_factory, words):
    # "% end" closes the header as Metavision writes it: without it, random data words whose first bytes
    # read as a text line ("%\n...") are indistinguishable from header lines
    f = _raw(tmp_path_factory.mktemp("e2"), "a.raw", b"% evt 2.0\n% end\n", words, "<u4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ev = read_evt2(f)
    assert ev.tolist() == [(x, y, t, p) for x, y, t, p in slow_decoders.evt2_words(words)]


@settings(max_examples=60, deadline=None)
@given(st.lists(EVT3_WORD, max_size=300))
def test_evt3_matches_slow_decoder(tmp_path_factory, words):
    # "% end" closes the header as Metavision writes it: without it, random data words whose first bytes
    # read as a text line ("%\n...") are indistinguishable from header lines
    f = _raw(tmp_path_factory.mktemp("e3"), "a.raw", b"% evt 3.0\n% end\n", words, "<u2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ev = read_evt3(f)
        chunked = list(iter_evt3(f, chunk_events=6))
    assert ev.tolist() == [(x, y, t, p) for x, y, t, p in slow_decoders.evt3_words(words)]
    if chunked:
        np.testing.assert_array_equal(np.concatenate(chunked), ev)


def test_evt3_timestamp_loop_and_vectors(tmp_path):
    # TIME_HIGH 0xFFF then wraps to 0x001: 24-bit loop, time must keep increasing
    words = [0x8FFF, 0x6FFE, 0x0005, 0x3800 | 10, 0x4000 | 0b101, 0x5000 | 0b1, 0x8001, 0x6002, 0x2000 | 7]
    ev = read_evt3(_raw(tmp_path, "l.raw", b"% evt 3.0\n", words, "<u2"))
    t0 = (0xFFF << 12) + 0xFFE
    assert ev.tolist() == [(10, 5, t0, 1), (12, 5, t0, 1), (22, 5, t0, 1), (7, 5, (1 << 24) + (1 << 12) + 2, 0)]


def test_events_before_first_time_high_warn(tmp_path):
    f = _raw(tmp_path, "w.raw", b"% evt 2.0\n", [(1 << 28) | (3 << 11) | 4, (8 << 28) | 1, (4 << 11) | 5], "<u4")
    with pytest.warns(UserWarning, match="skipped 1 CD events"):
        ev = read_evt2(f)
    assert ev.tolist() == [(4, 5, 64, 0)]


def test_raw_damage(tmp_path, shared_data):
    data = (shared_data / "prophesee" / "faery_evt2.raw").read_bytes()
    _, off = parse_raw_header(shared_data / "prophesee" / "faery_evt2.raw")
    f = tmp_path / "t.raw"
    f.write_bytes(data[: off + 4 * 1000 + 3])
    with pytest.raises(DataFormatError) as e:
        read_evt2(f)
    assert e.value.offset == off + 4000 and "t.raw" in str(e.value)
    # undefined word type 0x5 at word 10
    words = np.frombuffer(data[off : off + 400], "<u4").copy()
    words[10] = 0x5 << 28
    f.write_bytes(data[:off] + words.tobytes())
    with pytest.raises(DataFormatError, match="undefined event type 0x5") as e:
        read_evt2(f)
    assert e.value.offset == off + 40
    # x beyond the declared 640x480 sensor
    words[10] = (1 << 28) | (700 << 11) | 3
    f.write_bytes(data[:off] + words.tobytes())
    with pytest.raises(DataFormatError, match="outside the declared sensor 640x480") as e:
        read_evt2(f)
    assert e.value.offset == off + 40
    # EVT3 reader on an EVT2 file: header says otherwise
    with pytest.raises(DataFormatError, match="evt2"):
        read_evt3(shared_data / "prophesee" / "faery_evt2.raw")
    g = _raw(tmp_path, "v.raw", b"% format EVT3;height=10;width=20\n", [0x8000, 0x0003, 0x3000 | 15, 0x4000 | 0x3F], "<u2")
    with pytest.raises(DataFormatError, match="20x10") as e:
        read_evt3(g)
    assert e.value.offset == len(b"% format EVT3;height=10;width=20\n") + 6


def _dat(tmp_path, events, header=b"% Data file containing CD events.\n% Version 2\n% Width 640\n% Height 480\n"):
    raw = np.zeros(len(events), dtype=[("t", "<u4"), ("d", "<u4")])
    for i, (x, y, t, p) in enumerate(events):
        raw[i] = (t, x | (y << 14) | (p << 28))
    f = tmp_path / "a.dat"
    f.write_bytes(header + bytes([12, 8]) + raw.tobytes())
    return f


def test_dat_roundtrip_and_damage(tmp_path):
    evs = [(0, 0, 5, 1), (639, 479, 6, 0), (17, 300, 2**32 - 1, 1)]
    ev = read_dat(_dat(tmp_path, evs))
    assert ev.tolist() == evs
    chunks = list(iter_dat(_dat(tmp_path, evs), chunk_events=2))
    assert [len(c) for c in chunks] == [2, 1] and np.concatenate(chunks).tolist() == evs
    f = _dat(tmp_path, evs + [(640, 1, 9, 0)])
    with pytest.raises(DataFormatError, match="640x480") as e:
        read_dat(f)
    hdr = len(b"% Data file containing CD events.\n% Version 2\n% Width 640\n% Height 480\n") + 2
    assert e.value.offset == hdr + 3 * 8
    with pytest.raises(DataFormatError) as e:
        list(iter_dat(f, chunk_events=2))
    assert e.value.offset == hdr + 3 * 8
    f.write_bytes(f.read_bytes()[:-3])
    with pytest.raises(DataFormatError, match="whole number"):
        read_dat(f)
    f.write_bytes(b"% Version 2\n" + bytes([12, 16]) + bytes(32))
    with pytest.raises(DataFormatError, match="event size 16"):
        read_dat(f)


def test_first_data_word_starting_with_percent_is_data(tmp_path):
    # 0x80000025 is TIME_HIGH 0x25; its first byte on disk is 0x25 = '%', yet it is no header line
    words = [0x80000025, (1 << 28) | (3 << 22) | (5 << 11) | 7]
    f = _raw(tmp_path, "p.raw", b"% evt 2.0\n", words, "<u4")
    assert parse_raw_header(f)[1] == len(b"% evt 2.0\n")
    assert read_evt2(f).tolist() == [(5, 7, (0x25 << 6) + 3, 1)]
    g = tmp_path / "h.raw"
    g.write_bytes(b"% evt 2.0\n% date 2020")  # a text line cut short: truncated header
    with pytest.raises(DataFormatError, match="not terminated") as e:
        read_evt2(g)
    assert e.value.offset == len(b"% evt 2.0\n")
