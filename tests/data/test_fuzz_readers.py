"""Fuzzing every reader: random bytes and mutated real files give a valid result or the package's own
DataFormatError, never another exception, a crash or a hang (pytest-timeout guards each test).

A result that does come back must still be sound: the right dtype, coordinates inside the sensor the
file declares, polarity 0/1. HDF5 (SHD/SSC) is fuzzed with random bytes, truncation and damage to its
global heap (spike data); libhdf5 itself is not hardened against arbitrary damage to its object
headers (it can crash), which no reader built on it can fix.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuromorph.data import EVENT_DTYPE, read, summarize
from neuromorph.data.readers import aedat, aedat4, atis, eventstream, hdf5_spikes, prophesee
from neuromorph.data.readers.detect import declared_sensor_size
from neuromorph.errors import DataFormatError

from . import aedat4_writer

# NEUROMORPH_FUZZ_EXAMPLES=500 runs a longer campaign; the default keeps the suite fast
EXAMPLES = int(os.environ.get("NEUROMORPH_FUZZ_EXAMPLES", "25"))
# a hang guard, not a speed claim: generous for a loaded 2-core machine, scaled with the campaign
HANG_GUARD = pytest.mark.timeout(240 * max(1, EXAMPLES // 25))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])



def _declared(fmt):
    """The sensor a (possibly damaged) file declares, read back from the file that was decoded."""
    return lambda path: declared_sensor_size(path, fmt)


# name: (reader, sensor (w, h) the file declares: a tuple or a function of the path, bytes every file
# of the format starts with)
READERS = {
    "nmnist": (atis.read_nmnist, (34, 34), b""),
    "dvs128_bin": (atis.read_dvs128_bin, (128, 128), b""),
    "evt2": (prophesee.read_evt2, _declared("evt2"), b"% evt 2.0\n% geometry 640x480\n"),
    "evt3": (prophesee.read_evt3, _declared("evt3"), b"% evt 3.0\n% format EVT3;height=720;width=1280\n"),
    "dat": (prophesee.read_dat, _declared("dat"), b"% Version 2\n% Width 640\n% Height 480\n\x0c\x08"),
    "es": (eventstream.read_es, _declared("es"), b"Event Stream\x02\x00\x00\x01\x40\x01\xf0\x00"),
    "aedat2": (lambda p: aedat.read_aedat2(p, chip="davis346"), (346, 260), b"#!AER-DAT2.0\r\n"),
    "aedat31": (aedat.read_aedat31, _declared("aedat31"), b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"),
    "aedat4": (aedat4.read_aedat4, _declared("aedat4"), aedat4_writer.MAGIC),
}


def _check_result(ev, sensor, path=None):
    if callable(sensor):
        sensor = sensor(path)
    assert ev.dtype == EVENT_DTYPE
    if len(ev):
        assert set(np.unique(ev["p"]).tolist()) <= {0, 1}
        assert ev["x"].min() >= 0 and ev["y"].min() >= 0
        if sensor is not None:
            assert ev["x"].max() < sensor[0] and ev["y"].max() < sensor[1]


def _run(reader, path, sensor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # skipped-record notices are expected here
        try:
            ev = reader(path)
        except DataFormatError as exc:
            assert str(path) in str(exc)  # the error names the file
            return
    _check_result(ev, sensor, path)


@pytest.fixture(scope="module")
def seeds(shared_data, tmp_path_factory) -> dict:
    """A small valid file per format: prefixes of the real recordings where the format allows."""
    d = tmp_path_factory.mktemp("seeds")
    out = {}

    def prefix(name, src, n):
        out[name] = src.read_bytes()[:n]

    prefix("nmnist", shared_data / "nmnist" / "Train" / "0" / "00002.bin", 5 * 400)
    prefix("dvs128_bin", shared_data / "dvs128" / "01.bin", 5 * 400)
    _, off2 = prophesee.parse_raw_header(shared_data / "prophesee" / "faery_evt2.raw")
    prefix("evt2", shared_data / "prophesee" / "faery_evt2.raw", off2 + 4 * 600)
    _, off3 = prophesee.parse_raw_header(shared_data / "prophesee" / "expelliarmus_evt3_sample.raw")
    prefix("evt3", shared_data / "prophesee" / "expelliarmus_evt3_sample.raw", off3 + 2 * 1200)
    prefix("es", shared_data / "eventstream" / "dvs.es", 20 + 5 * 400)
    raw = np.zeros(50, dtype=[("t", "<u4"), ("d", "<u4")])
    raw["t"] = np.arange(50)
    raw["d"] = (np.arange(50) % 640) | ((np.arange(50) % 480) << 14) | ((np.arange(50) % 2) << 28)
    out["dat"] = READERS["dat"][2] + raw.tobytes()
    out["aedat2"] = READERS["aedat2"][2] + b"".join(
        int(a).to_bytes(4, "big") + int(t).to_bytes(4, "big") for a, t in zip(np.arange(60) << 12, range(60)))
    import struct

    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | 1, x) for x, y in zip(range(40), range(40)))
    out["aedat31"] = READERS["aedat31"][2] + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 40, 40, 40) + body
    out["aedat4"] = aedat4_writer.write(d / "s.aedat4", [(0, [(i, i % 20, i % 10, i % 2) for i in range(30)]),
                                                          (1, []), (0, [(40, 1, 1, 1)])]).read_bytes()
    for name, data in out.items():  # every seed decodes cleanly
        f = d / f"seed_{name}"
        f.write_bytes(data)
        _check_result(READERS[name][0](f), READERS[name][1], f)
    return out


@HANG_GUARD
@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(tail=st.binary(max_size=400))
def test_random_bytes_after_valid_header(tmp_path, name, tail):
    reader, sensor, head = READERS[name]
    f = tmp_path / f"r_{name}"
    f.write_bytes(head + tail)
    _run(reader, f, sensor)


MUTATION = st.tuples(
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    st.one_of(st.none(), st.floats(0, 1)),  # truncate at this fraction
    st.one_of(st.none(), st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=7))),  # insert bytes
)


def _mutate(data: bytes, mutation) -> bytes:
    flips, cut, insert = mutation
    b = bytearray(data)
    for frac, value in flips:
        b[int(frac * len(b))] = value
    if insert is not None:
        i = int(insert[0] * len(b))
        b[i:i] = insert[1]
    if cut is not None:
        b = b[: int(cut * len(b))]
    return bytes(b)


@HANG_GUARD
@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(mutation=MUTATION)
def test_mutated_real_files(tmp_path, seeds, name, mutation):
    reader, sensor, _ = READERS[name]
    f = tmp_path / f"m_{name}"
    f.write_bytes(_mutate(seeds[name], mutation))
    _run(reader, f, sensor)


@HANG_GUARD
@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".bin", ".raw", ".dat", ".es", ".aedat", ".aedat4",
                                                             ".h5", ".txt", ""]))
def test_read_detects_or_refuses_random_files(tmp_path, data, suffix):
    f = tmp_path / f"any{suffix}"
    f.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            out = read(f)
            info = summarize(f)  # what `neuromorph data read` prints
        except DataFormatError as exc:
            assert str(f) in str(exc)
            return
    if isinstance(out, np.ndarray) and "x" in out.dtype.names:
        _check_result(out, info["sensor_size"])
        assert info["events"] == len(out)


def _small_shd(path: Path) -> bytes:
    import h5py

    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (3,), dtype=h5py.vlen_dtype(np.float16))
        u = f.create_dataset("spikes/units", (3,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(3):
            t[i] = np.arange(5, dtype=np.float16) / 10
            u[i] = np.arange(5, dtype=np.uint16) + 100 * i
        f["labels"] = np.arange(3, dtype=np.uint16)
    return path.read_bytes()


@HANG_GUARD
@FUZZ
@given(mutation=MUTATION, region=st.sampled_from(["heap", "truncate", "random"]))
def test_shd_damage_never_crashes_or_hangs(tmp_path, mutation, region):
    data = _small_shd(tmp_path / "ok.h5")
    f = tmp_path / "m.h5"
    if region == "heap":  # damage confined to the global heap collections (the spike data)
        start = data.find(b"GCOL\x01")
        size = int.from_bytes(data[start + 8 : start + 16], "little")
        f.write_bytes(data[:start] + _mutate(data[start : start + size], (mutation[0], None, None)) + data[start + size :])
    elif region == "truncate":
        f.write_bytes(data[: int((mutation[1] or 0.5) * len(data))])
    else:
        f.write_bytes(hdf5_spikes.HDF5_MAGIC + bytes(v for _, v in mutation[0]) * 10)
    try:
        samples, labels = hdf5_spikes.read_shd(f)
    except DataFormatError as exc:
        assert str(f) in str(exc)
        return
    assert len(samples) == len(labels) == 3
    for s in samples:
        assert s["unit"].min() >= 0 and s["unit"].max() < 700


STREAMING = {  # name: (whole-file reader, chunked reader with tiny chunks)
    "nmnist": (atis.read_nmnist, lambda p: atis.iter_atis_bin(p, (34, 34), chunk_events=7)),
    "evt2": (prophesee.read_evt2, lambda p: prophesee.iter_evt2(p, chunk_events=7)),
    "evt3": (prophesee.read_evt3, lambda p: prophesee.iter_evt3(p, chunk_events=7)),
    "dat": (prophesee.read_dat, lambda p: prophesee.iter_dat(p, chunk_events=7)),
    "es": (eventstream.read_es, lambda p: eventstream.iter_es(p, chunk_events=7)),
    "aedat31": (aedat.read_aedat31, aedat.iter_aedat31),
    "aedat4": (aedat4.read_aedat4, aedat4.iter_aedat4),
}


@HANG_GUARD
@pytest.mark.parametrize("name", sorted(STREAMING))
@FUZZ
@given(mutation=MUTATION)
def test_streaming_equals_whole_file_on_damaged_input(tmp_path, seeds, name, mutation):
    """Chunked readers see the same file the same way: equal events, or the same error at the same offset."""
    whole, chunked = STREAMING[name]
    f = tmp_path / f"s_{name}"
    f.write_bytes(_mutate(seeds[name], mutation))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            ref = whole(f)
        except DataFormatError as exc:
            with pytest.raises(DataFormatError) as got:
                list(chunked(f))
            assert got.value.offset == exc.offset
            return
        parts = list(chunked(f))
    np.testing.assert_array_equal(np.concatenate(parts) if parts else ref[:0], ref)
