"""Event filters, geometry, random augmentation, composition, cache keys and collation."""

import numpy as np
import pytest
import torch

from neuromorph.data import (
    CenterCrop, Compose, Crop, Denoise, Downsample, DropEvent, RandomFlipLR, RandomFlipPolarity, RandomFlipUD,
    RandomRotation, RefractoryPeriod, TimeJitter, TimeSkew, ToFrame, cache_key, collate_time_major, pad_time_major,
)
from neuromorph.data import functional as F
from neuromorph.data.readers import read_dvs128_bin, read_nmnist
from neuromorph.errors import ConfigError, ShapeError

tonic_functional = pytest.importorskip("tonic.functional")
tonic_transforms = pytest.importorskip("tonic.transforms")


@pytest.fixture(scope="module")
def nmnist(shared_data):
    return [read_nmnist(p) for p in sorted((shared_data / "nmnist" / "Train").glob("*/*.bin"))[::100]]


def _ref_denoise(ev, filter_time):
    """Straight loop over the definition: keep if a 4-neighbour fired in (t - filter_time, t]."""
    last = {}
    keep = []
    for e in ev:
        x, y, t = int(e["x"]), int(e["y"]), int(e["t"])
        last[(x, y)] = t
        keep.append(any(last.get(n, -10**18) + filter_time > t for n in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1))))
    return ev[np.array(keep, bool)]


def test_denoise_equals_tonic_once_its_start_quirk_is_excluded(nmnist):
    for ev in nmnist:
        ev = ev.copy()
        ev["t"] += 5000  # Tonic treats never-fired pixels as active until t = filter_time; start later
        np.testing.assert_array_equal(F.denoise(ev, 5000), tonic_functional.denoise_numpy(ev, filter_time=5000))
        np.testing.assert_array_equal(F.denoise(ev, 5000), _ref_denoise(ev, 5000))


def test_denoise_start_differs_from_tonic_by_design():
    ev = np.array([(5, 5, 10, 1), (6, 5, 20, 1)], dtype=[("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i1")])
    # the first event has no active neighbour: dropped here, kept by Tonic's initial memory of filter_time
    np.testing.assert_array_equal(F.denoise(ev, 1000), ev[1:])
    assert len(tonic_functional.denoise_numpy(ev.copy(), filter_time=1000)) == 2


def _ref_refractory(ev, period):
    last, keep = {}, []
    for e in ev:
        k, t = (int(e["x"]), int(e["y"])), int(e["t"])
        ok = k not in last or t - last[k] > period
        keep.append(ok)
        if ok:
            last[k] = t
    return ev[np.array(keep, bool)]


def test_refractory_period_against_definition(shared_data):
    ev = read_dvs128_bin(shared_data / "dvs128" / "02.bin")[:20_000]
    for period in (0, 500, 5000):
        out = RefractoryPeriod(period)(ev)
        np.testing.assert_array_equal(out, _ref_refractory(ev, period))
    # after filtering, no pixel fires twice within the period
    out = F.refractory_period(ev, 5000)
    order = np.lexsort((out["t"], out["y"], out["x"]))
    s = out[order]
    same = (np.diff(s["x"]) == 0) & (np.diff(s["y"]) == 0)
    assert np.all(np.diff(s["t"])[same] > 5000)
    # Tonic measures from the last *seen* event and so keeps a subset of ours
    theirs = tonic_functional.refractory_period_numpy(ev.copy(), 5000)
    assert len(theirs) < len(out)


def test_geometry_matches_tonic(nmnist):
    ev = nmnist[0]
    np.testing.assert_array_equal(Downsample(spatial_factor=0.5)(ev), tonic_transforms.Downsample(spatial_factor=0.5)(ev.copy()))
    np.testing.assert_array_equal(RandomFlipLR((34, 34, 2), p=1.0)(ev), tonic_transforms.RandomFlipLR((34, 34, 2), p=1.0)(ev.copy()))
    np.testing.assert_array_equal(RandomFlipUD((34, 34, 2), p=1.0)(ev), tonic_transforms.RandomFlipUD((34, 34, 2), p=1.0)(ev.copy()))
    np.testing.assert_array_equal(RandomFlipPolarity(p=1.0)(ev), tonic_transforms.RandomFlipPolarity(p=1.0)(ev.copy()))
    np.testing.assert_array_equal(F.time_skew(ev, 1.3, 17), tonic_functional.time_skew_numpy(ev.copy(), 1.3, 17))
    c = CenterCrop((34, 34, 2), (20, 10))(ev)
    assert c["x"].max() < 20 and c["y"].max() < 10
    inside = (ev["x"] >= 7) & (ev["x"] < 27) & (ev["y"] >= 12) & (ev["y"] < 22)
    assert len(c) == inside.sum()
    np.testing.assert_array_equal(c["x"], ev["x"][inside] - 7)
    np.testing.assert_array_equal(Crop((7, 12), (20, 10))(ev), c)
    # the input is never modified
    assert ev is nmnist[0] and ev["x"].max() <= 33


def test_rotation_by_quarter_turn_is_exact(nmnist):
    ev = nmnist[1]
    r = F.rotate(ev, (34, 34, 2), 90.0)
    assert len(r) == len(ev)  # a square sensor rotated by 90° loses nothing
    np.testing.assert_array_equal(r["x"], 33 - ev["y"])
    np.testing.assert_array_equal(r["y"], ev["x"])
    back = F.rotate(F.rotate(r, (34, 34, 2), 90.0), (34, 34, 2), 180.0)
    np.testing.assert_array_equal(back, ev)
    # a 45° turn of a non-square sensor drops corner events, keeps all the rest in range
    r45 = RandomRotation((34, 20, 2), degrees=(45.0, 45.0))(ev[ev["y"] < 20], np.random.default_rng(0))
    assert 0 < len(r45) < (ev["y"] < 20).sum() and r45["y"].max() < 20


def test_random_transforms_are_seeded_and_keep_time_order(nmnist):
    ev = nmnist[2]
    for t in (TimeJitter(std=200.0), DropEvent((0.1, 0.3)), TimeSkew((0.5, 2.0), (0, 100)), RandomFlipLR((34, 34, 2))):
        a = t(ev, np.random.default_rng(7))
        b = t(ev, np.random.default_rng(7))
        np.testing.assert_array_equal(a, b)
        assert np.all(np.diff(a["t"]) >= 0), t
    j = TimeJitter(std=200.0)(ev, np.random.default_rng(1))
    assert len(j) == len(ev) and not np.array_equal(j["t"], ev["t"]) and j["t"].min() >= 0
    assert abs(np.mean(np.sort(j["t"]) - np.sort(ev["t"]))) < 50
    d = F.drop_event(ev, 0.25, np.random.default_rng(0))
    assert len(d) == len(ev) - int(0.25 * len(ev) + 0.5)
    # what remains is a subsequence of the original
    assert np.isin(d, ev).all()


def test_compose_and_cache_key(nmnist):
    ev = nmnist[3]
    pipe = Compose([Denoise(3000), Downsample(0.5), ToFrame((17, 17, 2), n_time_bins=5)])
    np.testing.assert_array_equal(pipe(ev), ToFrame((17, 17, 2), n_time_bins=5)(Downsample(0.5)(Denoise(3000)(ev))))
    assert not pipe.random and Compose([Denoise(), TimeJitter()]).random
    assert cache_key(pipe) == cache_key(Compose([Denoise(3000), Downsample(0.5), ToFrame((17, 17, 2), n_time_bins=5)]))
    assert cache_key(pipe) != cache_key(Compose([Denoise(3001), Downsample(0.5), ToFrame((17, 17, 2), n_time_bins=5)]))
    assert cache_key(ToFrame((34, 34, 2), time_window=1000)) != cache_key(ToFrame((34, 34, 2), event_count=1000))
    with pytest.raises(ConfigError, match="cache"):
        cache_key(lambda e: e)
    with pytest.raises(ConfigError, match="not callable"):
        Compose([3])


def test_collate_time_major_pads_at_the_end():
    a = np.ones((3, 2, 4, 4), np.int16)
    b = 2 * np.ones((5, 2, 4, 4), np.int16)
    x, y = collate_time_major([(a, 1), (b, 7)])
    assert x.shape == (5, 2, 2, 4, 4) and x.dtype == torch.float32
    assert torch.equal(y, torch.tensor([1, 7]))
    assert x[:3, 0].eq(1).all() and x[3:, 0].eq(0).all() and x[:, 1].eq(2).all()
    assert pad_time_major([a, b], length=4).shape == (4, 2, 2, 4, 4)
    with pytest.raises(ShapeError, match="sample 1"):
        pad_time_major([a, np.ones((3, 2, 4, 5))])
    with pytest.raises(ShapeError, match="empty"):
        collate_time_major([])
    with pytest.raises(ShapeError, match="labels must be integers"):
        collate_time_major([(a, "seven")])


def test_filters_reject_bad_parameters(nmnist):
    with pytest.raises(ConfigError):
        F.refractory_period(nmnist[0], -1)
    with pytest.raises(ConfigError):
        F.drop_event(nmnist[0], 1.5, np.random.default_rng())
    with pytest.raises(ConfigError):
        F.time_skew(nmnist[0], -1.0)
    with pytest.raises(ShapeError):
        F.denoise(np.zeros(3, [("t", "i8")]))
    # wrong types and NaN are the package's ConfigError, not a raw TypeError or garbage timestamps
    with pytest.raises(ConfigError, match="std"):
        F.time_jitter(nmnist[0], float("nan"), np.random.default_rng())
    with pytest.raises(ConfigError, match="refractory_period"):
        F.refractory_period(nmnist[0], float("nan"))
    with pytest.raises(ConfigError, match="pairs of integers"):
        F.crop(nmnist[0], (0,), (3, 3))
    with pytest.raises(ConfigError, match="pair of integers"):
        F.center_crop(nmnist[0], (34, 34, 2), (3, 3, 3))
    with pytest.raises(ConfigError, match="offset"):
        F.time_skew(nmnist[0], 1.0, float("nan"))
    with pytest.raises(ConfigError, match="filter_time"):
        F.denoise(nmnist[0], "10ms")
    with pytest.raises(ConfigError, match="time_window"):
        F.to_frame(nmnist[0], (34, 34, 2), time_window="10ms")
    with pytest.raises(ConfigError, match="sensor_size"):
        ToFrame("34x34", time_window=10)
