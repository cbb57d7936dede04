"""digits-dvs: the embedded default data set (sklearn digits -> three saccades -> DVS emulator)."""

import numpy as np
import pytest

from neuromorph.data import DigitsDVS, ToFrame, digits_dvs
from neuromorph.data.events import EVENT_DTYPE
from neuromorph.errors import ConfigError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits_dvs")
    digits_dvs.load(root)  # generates and caches once for the module
    return root


def test_splits_are_disjoint_stratified_and_complete(root):
    train, test = DigitsDVS(root, "train"), DigitsDVS(root, "test")
    assert len(train) + len(test) == 1797 and not set(train.indices) & set(test.indices)
    assert len(test) == 364 and np.all(np.abs(np.bincount(test.targets, minlength=10) - 36.4) < 2)
    assert DigitsDVS.sensor_size == (34, 34, 2) and DigitsDVS.classes == [str(d) for d in range(10)]


def test_samples_look_like_nmnist(root):
    ds = DigitsDVS(root, "train")
    counts = []
    for i in range(0, len(ds), 97):
        ev, label = ds[i]
        assert ev.dtype == EVENT_DTYPE and 0 <= label <= 9
        assert ev["x"].min() >= 0 and ev["x"].max() < 34 and ev["y"].min() >= 0 and ev["y"].max() < 34
        assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].max() <= 300_000
        assert set(np.unique(ev["p"])) == {0, 1}
        # three saccades of 100 ms each: every one of them produces a good share of the events
        thirds = np.bincount(np.minimum(ev["t"] // 100_000, 2), minlength=3)
        assert thirds.min() > 0.15 * len(ev)
        counts.append(len(ev))
    # N-MNIST has 1,069-7,152 events per sample (median 4,163); this set is built to match that scale
    assert 2000 < np.median(counts) < 7000


def test_generation_is_deterministic_and_the_cache_is_exact(root):
    events, offsets, labels = digits_dvs.load(root)
    ev2, off2, lab2 = digits_dvs.generate(indices=[5, 1000])
    np.testing.assert_array_equal(lab2, labels[[5, 1000]])
    np.testing.assert_array_equal(ev2[: off2[1]], events[offsets[5] : offsets[6]])
    np.testing.assert_array_equal(ev2[off2[1] :], events[offsets[1000] : offsets[1001]])


def test_classes_are_separable(root):
    """A nearest-class-mean classifier on event-count images must beat chance by far."""
    to_img = ToFrame(DigitsDVS.sensor_size, n_time_bins=1)
    train, test = DigitsDVS(root, "train", transform=to_img), DigitsDVS(root, "test", transform=to_img)
    xtr = np.stack([train[i][0].ravel() for i in range(len(train))]).astype(float)
    means = np.stack([xtr[train.targets == c].mean(0) for c in range(10)])
    xte = np.stack([test[i][0].ravel() for i in range(len(test))]).astype(float)
    pred = np.argmin(((xte[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == test.targets).mean() > 0.6


def test_damaged_or_stale_cache_is_rebuilt(tmp_path, monkeypatch):
    calls = []
    fake = (np.zeros(3, EVENT_DTYPE), np.array([0, 1, 3], np.int64), np.array([4, 2], np.int64))

    def fake_generate(indices=None):
        calls.append(1)
        return fake

    monkeypatch.setattr(digits_dvs, "generate", fake_generate)
    digits_dvs.load(tmp_path)
    path = digits_dvs._cache_file(tmp_path)
    assert path.exists() and len(calls) == 1 and not list(tmp_path.glob("*.tmp"))
    digits_dvs.load(tmp_path)
    assert len(calls) == 1  # second load comes from the cache
    path.write_bytes(path.read_bytes()[:100])  # truncated
    ev, off, lab = digits_dvs.load(tmp_path)
    assert len(calls) == 2 and np.array_equal(lab, fake[2])
    monkeypatch.setattr(digits_dvs, "_params_key", lambda: "other-parameters")  # stale key: rebuilt
    digits_dvs.load(tmp_path)
    assert len(calls) == 3


def test_bad_arguments(root):
    with pytest.raises(ConfigError, match="split"):
        DigitsDVS(root, "valid")
    with pytest.raises(IndexError):
        DigitsDVS(root, "test")[364]
