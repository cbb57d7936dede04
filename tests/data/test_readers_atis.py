"""N-MNIST / DVS128 40-bit .bin reader: exact equality with Tonic, exact counts, damage detection."""

import numpy as np
import pytest

from neuromorph.data import EVENT_DTYPE, iter_atis_bin, read_atis_bin, read_dvs128_bin, read_nmnist
from neuromorph.errors import DataFormatError

# Counts and ranges computed once with Tonic 1.7.0's read_mnist_file (an independent decoder).
NMNIST_TOTALS = {  # split: (files, events, min events, max events, min last t, max last t, ON events)
    "Train": (1000, 4133231, 1112, 7152, 296841, 315109, 2059426),
    "Test": (100, 385596, 1069, 6326, 301809, 336040, 190652),
}
DVS128 = {  # file: (events, first t, last t, ON events)
    "01.bin": (63471, 28, 1449996, 32164), "02.bin": (84260, 45, 1449969, 43472),
    "03.bin": (113063, 2, 1449994, 55396), "04.bin": (151879, 3, 1449993, 77731),
    "05.bin": (181179, 8, 1449984, 93262), "06.bin": (124244, 6, 1449995, 61259),
    "07.bin": (159617, 10, 1449997, 77603), "08.bin": (101288, 10, 1449984, 50762),
    "09.bin": (141773, 25, 1449993, 70469), "10.bin": (85936, 24, 1449982, 47461),
}


def _record(x, y, p, t):
    return bytes([x, y, (p << 7) | ((t >> 16) & 127), (t >> 8) & 255, t & 255])


@pytest.mark.parametrize("split", ["Train", "Test"])
def test_nmnist_exact_counts_ranges_and_tonic(shared_data, split):
    tonic_io = pytest.importorskip("tonic.io")
    files = sorted((shared_data / "nmnist" / split).glob("*/*.bin"))
    n_files, total, lo, hi, tmin, tmax, on = NMNIST_TOTALS[split]
    assert len(files) == n_files
    counts, lasts, n_on = [], [], 0
    for f in files:
        ev = read_nmnist(f)
        assert ev.dtype == EVENT_DTYPE
        ref = tonic_io.read_mnist_file(str(f), dtype=EVENT_DTYPE)
        for k in "xytp":
            np.testing.assert_array_equal(ev[k], ref[k])
        assert np.all(np.diff(ev["t"]) >= 0)  # N-MNIST timestamps are non-decreasing
        assert ev["x"].min() >= 0 and ev["x"].max() <= 33 and ev["y"].max() <= 33
        assert set(np.unique(ev["p"])) <= {0, 1}
        counts.append(len(ev))
        lasts.append(int(ev["t"][-1]))
        n_on += int(ev["p"].sum())
    assert (sum(counts), min(counts), max(counts)) == (total, lo, hi)
    assert (min(lasts), max(lasts), n_on) == (tmin, tmax, on)


def test_dvs128_exact(shared_data):
    for name, (n, t0, t1, on) in DVS128.items():
        ev = read_dvs128_bin(shared_data / "dvs128" / name)
        assert len(ev) == n and int(ev["t"][0]) == t0 and int(ev["t"][-1]) == t1 and int(ev["p"].sum()) == on
        assert np.all(np.diff(ev["t"]) >= 0)
        assert ev["x"].max() == 127 and ev["y"].max() == 127 and ev["x"].min() == 0 and ev["y"].min() == 0


def test_chunked_equals_whole(shared_data):
    f = shared_data / "dvs128" / "01.bin"
    whole = read_dvs128_bin(f)
    chunks = list(iter_atis_bin(f, sensor_size=(128, 128), overflow_markers=False, chunk_events=7777))
    assert max(len(c) for c in chunks) <= 7777
    np.testing.assert_array_equal(np.concatenate(chunks), whole)


def test_decodes_bit_fields_and_overflow_marker(tmp_path):
    f = tmp_path / "s.bin"
    f.write_bytes(_record(3, 4, 1, 0x7FFFFF) + _record(0, 240, 0, 0) + _record(33, 33, 0, 5))
    ev = read_nmnist(f)
    assert ev.tolist() == [(3, 4, 0x7FFFFF, 1), (33, 33, 5 + 8192, 0)]
    # chunked reading carries the overflow across chunk borders
    chunks = list(iter_atis_bin(f, sensor_size=(34, 34), chunk_events=1))
    np.testing.assert_array_equal(np.concatenate(chunks), ev)


def test_damage_raises_with_offset(tmp_path, shared_data):
    data = (shared_data / "nmnist" / "Train" / "0" / "00002.bin").read_bytes()
    bad = tmp_path / "trunc.bin"
    bad.write_bytes(data[:-2])
    with pytest.raises(DataFormatError) as e:
        read_nmnist(bad)
    assert e.value.offset == len(data) - 5 and "trunc.bin" in str(e.value)
    with pytest.raises(DataFormatError):
        list(iter_atis_bin(bad))
    out = tmp_path / "out.bin"
    out.write_bytes(data[:50] + _record(34, 0, 0, 10) + data[50:])
    with pytest.raises(DataFormatError) as e:
        read_nmnist(out)
    assert e.value.offset == 50 and "34x34" in str(e.value)
    # the DVS128 layout has no overflow markers: y = 240 is damage, not dropped
    ovf = tmp_path / "ovf.bin"
    ovf.write_bytes(_record(1, 1, 0, 1) + _record(0, 240, 0, 2))
    with pytest.raises(DataFormatError) as e:
        read_dvs128_bin(ovf)
    assert e.value.offset == 5
    with pytest.raises(DataFormatError):
        read_atis_bin(tmp_path / "missing.bin")


def test_bad_sensor_size_argument_is_a_config_error(shared_data):
    from neuromorph.errors import ConfigError

    f = shared_data / "dvs128" / "01.bin"
    for bad in [(0, 128), (128,), "128x128", (-1, 5)]:
        with pytest.raises(ConfigError, match="sensor_size"):
            read_atis_bin(f, sensor_size=bad)
    with pytest.raises(DataFormatError, match="100x100") as e:
        read_atis_bin(f, sensor_size=(100, 100), overflow_markers=False)
    assert e.value.offset % 5 == 0
