"""Property tests (hypothesis) of the frame binning and filters on random event streams."""

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from neuromorph.data import functional as F
from neuromorph.errors import NeuromorphError

tonic_functional = pytest.importorskip("tonic.functional")

DT = np.dtype([("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i1")])
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def streams(draw, w=9, h=7, max_events=300):
    n = draw(st.integers(1, max_events))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ev = np.empty(n, DT)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, draw(st.integers(1, 100_000)), n))
    return ev


slicing = st.one_of(
    st.builds(dict, time_window=st.integers(1, 30_000), include_incomplete=st.booleans()),
    st.builds(dict, n_time_bins=st.integers(1, 50)),
    st.builds(dict, event_count=st.integers(1, 400), include_incomplete=st.booleans()),
)


@FAST
@given(streams(), slicing)
def test_to_frame_equals_tonic_on_random_streams(ev, kw):
    ours = F.to_frame(ev, (9, 7, 2), **kw)
    theirs = tonic_functional.to_frame_numpy(ev.copy(), (9, 7, 2), **kw)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.sum() <= len(ev)


@FAST
@given(streams(), st.integers(1, 20_000))
def test_time_window_frames_partition_the_covered_events(ev, window):
    fr = F.to_frame(ev, (9, 7, 2), time_window=window, include_incomplete=True)
    covered = ev["t"] < ev["t"][0] + fr.shape[0] * window
    assert fr.sum() == covered.sum()
    # per-pixel totals equal a plain histogram of the covered events
    hist = np.zeros((2, 7, 9), int)
    np.add.at(hist, (ev["p"][covered], ev["y"][covered], ev["x"][covered]), 1)
    np.testing.assert_array_equal(fr.sum(0), hist)


@FAST
@given(streams(w=40, h=40), st.integers(1, 20_000))
def test_filters_only_remove_events_and_keep_order(ev, period):
    for out in (F.refractory_period(ev, period), F.denoise(ev, period)):
        assert len(out) <= len(ev) and np.isin(out, ev).all() and np.all(np.diff(out["t"]) >= 0)


_EXTREME = np.zeros(2, DT)
_EXTREME["t"] = [-(10**18), 10**18]
_HUGE = np.zeros(2, DT)
_HUGE["t"] = [0, 10**12]


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=400), st.sampled_from(["tw", "bins", "count", "counts"]))
@example(_EXTREME.tobytes(), "tw")
@example(_HUGE.tobytes(), "tw")
@example(_HUGE.tobytes(), "counts")
def test_garbage_events_raise_only_our_errors(raw, mode):
    ev = np.frombuffer(raw[: len(raw) // DT.itemsize * DT.itemsize], DT).copy()
    ev.sort(order="t")
    try:
        if mode == "tw":
            F.to_frame(ev, (34, 34, 2), time_window=1000)
        elif mode == "bins":
            F.to_frame(ev, (34, 34, 2), n_time_bins=3)
        elif mode == "count":
            F.to_frame(ev, (34, 34, 2), event_count=7)
        else:
            audio = np.empty(len(ev), [("t", "i8"), ("x", "i8"), ("p", "i8")])  # Tonic's SHD dtype
            audio["t"], audio["x"], audio["p"] = ev["t"] - (ev["t"].min() if len(ev) else 0), ev["x"], 1
            F.to_spike_counts(audio, 700, 10_000, 5)
    except NeuromorphError:
        pass


def test_filters_refuse_absurd_coordinates():
    ev = np.zeros(2, DT)
    ev["x"], ev["y"] = [0, 32_000], [0, 32_000]
    for fn in (F.denoise, F.refractory_period):
        with pytest.raises(NeuromorphError, match="pixel grid"):
            fn(ev, 100)
