"""Frame binning and SHD spike counts: equal to Tonic's to_frame and SpikingJelly's SHD binning on real files."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from neuromorph.data import ToFrame, ToSpikeCounts
from neuromorph.data import functional as F
from neuromorph.data.readers import read_dvs128_bin, read_nmnist, read_shd
from neuromorph.errors import ConfigError, ShapeError

tonic_functional = pytest.importorskip("tonic.functional")

SLICINGS = [
    dict(time_window=1000),
    dict(time_window=10_000, include_incomplete=True),
    dict(time_window=2500.5),
    dict(n_time_bins=7),
    dict(n_time_bins=1),
    dict(event_count=333),
    dict(event_count=1000, include_incomplete=True),
]


@pytest.fixture(scope="module")
def nmnist_files(shared_data):
    files = sorted((shared_data / "nmnist" / "Train").glob("*/*.bin"))
    return files[::50] + sorted((shared_data / "nmnist" / "Test").glob("*/*.bin"))[::25]


@pytest.mark.parametrize("kw", SLICINGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_to_frame_equals_tonic_on_nmnist(nmnist_files, kw):
    for path in nmnist_files:
        ev = read_nmnist(path)
        ours = ToFrame((34, 34, 2), **kw)(ev)
        theirs = tonic_functional.to_frame_numpy(ev.copy(), (34, 34, 2), **kw)
        assert ours.shape == theirs.shape, path
        np.testing.assert_array_equal(ours, theirs, err_msg=str(path))
        assert ours.dtype == np.int16


def test_to_frame_equals_tonic_on_dvs128(shared_data):
    ev = read_dvs128_bin(shared_data / "dvs128" / "01.bin")
    for kw in (dict(time_window=50_000), dict(n_time_bins=20), dict(event_count=5000)):
        np.testing.assert_array_equal(
            F.to_frame(ev, (128, 128, 2), **kw), tonic_functional.to_frame_numpy(ev.copy(), (128, 128, 2), **kw)
        )


def test_tonic_dtype_arrays_work_unchanged(nmnist_files):
    """Tonic's NMNIST dtype: int64 fields in another order; also bool polarity."""
    ev = read_nmnist(nmnist_files[0])
    tonic_ev = np.empty(len(ev), np.dtype([("x", int), ("y", int), ("p", int), ("t", int)]))
    for f in "xytp":
        tonic_ev[f] = ev[f]
    np.testing.assert_array_equal(F.to_frame(tonic_ev, (34, 34, 2), time_window=5000), F.to_frame(ev, (34, 34, 2), time_window=5000))
    bool_ev = np.empty(len(ev), np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)]))
    for f in "xyt":
        bool_ev[f] = ev[f]
    bool_ev["p"] = ev["p"].astype(bool)
    np.testing.assert_array_equal(F.to_frame(bool_ev, (34, 34, 2), n_time_bins=3), F.to_frame(ev, (34, 34, 2), n_time_bins=3))


def test_frame_counts_by_hand():
    ev = np.array([(0, 0, 0, 1), (1, 0, 5, 0), (1, 0, 9, 0), (2, 1, 10, 1), (2, 1, 25, 1)],
                  dtype=[("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i1")])
    fr = F.to_frame(ev, (3, 2, 2), time_window=10, include_incomplete=True)
    assert fr.shape == (3, 2, 2, 3)  # windows [0,10) [10,20) [20,30)
    expect = np.zeros((3, 2, 2, 3), np.int16)
    expect[0, 1, 0, 0] = 1
    expect[0, 0, 0, 1] = 2
    expect[1, 1, 1, 2] = 1
    expect[2, 1, 1, 2] = 1
    np.testing.assert_array_equal(fr, expect)
    # without include_incomplete the partial last window is dropped, as in Tonic
    assert F.to_frame(ev, (3, 2, 2), time_window=10).shape[0] == 2


def test_audio_events_without_y_and_single_polarity():
    ev = np.array([(0, 3), (4, 3), (7, 1)], dtype=[("t", "i8"), ("unit", "i4")])
    fr = F.to_frame(ev, (5, 1, 1), time_window=5, include_incomplete=True)
    assert fr.shape == (2, 1, 5)
    np.testing.assert_array_equal(fr[:, 0], [[0, 0, 0, 2, 0], [0, 1, 0, 0, 0]])
    tonic_ev = np.array([(0, 3, 1), (4, 3, 1), (7, 1, 1)], dtype=[("t", int), ("x", int), ("p", int)])
    np.testing.assert_array_equal(
        F.to_frame(tonic_ev, (5, 1, 1), time_window=5, include_incomplete=True),
        tonic_functional.to_frame_numpy(tonic_ev.copy(), (5, 1, 1), time_window=5, include_incomplete=True),
    )


def test_bad_frame_input_raises_own_errors():
    ev = np.array([(40, 0, 0, 1)], dtype=[("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i1")])
    with pytest.raises(ShapeError, match="event 0 .*x=40"):
        F.to_frame(ev, (34, 34, 2), time_window=10)
    ev["x"] = 1
    ev["p"] = 2
    with pytest.raises(ShapeError, match="outside sensor_size"):
        F.to_frame(ev, (34, 34, 2), time_window=10)
    two = np.array([(0, 0, 0, 0), (1, 0, 1, 1)], dtype=ev.dtype)
    with pytest.raises(ShapeError, match="1 polarity"):
        F.to_frame(two, (34, 34, 1), time_window=10)
    with pytest.raises(ConfigError, match="exactly one"):
        ToFrame((34, 34, 2), time_window=10, n_time_bins=3)
    with pytest.raises(ConfigError, match="time_window"):
        F.to_frame(ev, (34, 34, 2), time_window=-1)
    with pytest.raises(ConfigError, match="sensor_size"):
        ToFrame((34, 34), time_window=10)
    with pytest.raises(ShapeError, match="lacks field"):
        F.to_frame(np.zeros(3, [("x", "i2"), ("t", "i8"), ("y", "i2")]), (34, 34, 2), time_window=10)


def test_counts_never_overflow_int16():
    n = 40_000
    ev = np.zeros(n, dtype=[("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i1")])
    ev["t"] = np.arange(n)
    fr = F.to_frame(ev, (1, 1, 1), n_time_bins=1)
    assert fr.dtype == np.int32 and fr[0, 0, 0, 0] == n - 1  # Tonic drops the last event (t = t0 + Δ)


# -- SHD spike counts vs SpikingJelly's own binning function (source loaded without its torchvision import)


def _spikingjelly_binning():
    spikingjelly = pytest.importorskip("spikingjelly")
    src = Path(spikingjelly.__file__).parent / "datasets" / "shd.py"
    tree = ast.parse(src.read_text())
    wanted = {"_integrate_events_segment_to_frame", "_integrate_events_by_fixed_duration"}
    module = ast.Module([n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted], [])
    ns = {"np": np, "math": math}
    exec(compile(module, str(src), "exec"), ns)
    return ns["_integrate_events_by_fixed_duration"]


def test_spike_counts_equal_spikingjelly_and_snn_delays_grouping(shared_data):
    integrate = _spikingjelly_binning()
    samples, _ = read_shd(shared_data / "shd_fsdd" / "shd_fsdd_test.h5")
    for ev in samples[:60]:
        ours = ToSpikeCounts(n_units=700, dt_us=10_000, group=5)(ev)
        # SpikingJelly multiplies t by 1000 (s -> ms) and bins by a duration in the same unit. Feeding it
        # integer µs with the duration in ns keeps its arithmetic exact (with float seconds, spikes that sit
        # exactly on a 10 ms edge can round into the previous bin). SNN-delays then sums groups of 5 channels.
        frames = integrate({"t": ev["t"], "x": ev["unit"]}, 10_000 * 1000, 700)
        ref = frames.reshape(len(frames), 140, 5).sum(-1)
        np.testing.assert_array_equal(ours, ref)
        assert ours.dtype == np.float32 and ours.sum() == len(ev)


def test_spike_counts_by_hand_and_length():
    ev = np.array([(100, 0), (10_099, 4), (10_100, 5), (20_100, 699)], dtype=[("t", "i8"), ("unit", "i4")])
    c = F.to_spike_counts(ev, 700, 10_000, 5)
    # relative to the first spike: 0, 9999, 10000 (edge: joins the last bin, T = ceil(20000/10000) = 2), 20000
    assert c.shape == (2, 140)
    assert c[0, 0] == 2 and c[1, 1] == 1 and c[1, 139] == 1 and c.sum() == 4
    assert F.to_spike_counts(ev, 700, 10_000, 5, n_time_bins=5).shape == (5, 140)
    assert F.to_spike_counts(ev, 700, 10_000, 5, n_time_bins=1).sum() == 2
    with pytest.raises(ShapeError, match="unit=700"):
        F.to_spike_counts(np.array([(0, 700)], dtype=ev.dtype), 700, 10_000, 5)
    with pytest.raises(ConfigError, match="divide"):
        ToSpikeCounts(700, 10_000, 3)
    with pytest.raises(ShapeError, match="sorted"):  # out of order after the first spike, not before it
        F.to_spike_counts(ev[[0, 2, 1, 3]], 700, 10_000, 5)
