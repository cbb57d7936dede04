"""SHD/SSC HDF5 reader on shd_fsdd: exact totals, equality with Tonic's SHD class, damage."""

import numpy as np
import pytest

from neuromorph.data import AUDIO_EVENT_DTYPE
from neuromorph.data.readers.hdf5_spikes import iter_shd, read_shd, read_shd_sample, shd_info
from neuromorph.errors import DataFormatError

# (samples, total spikes, min/sample, max/sample, last spike µs max); totals as measured independently
# in shd_fsdd/README.md (10,953,170 / 1,220,384 spikes; last spike 2.279 s / 1.146 s).
FACTS = {"train": (2700, 10953170, 477, 8826, 2279296), "test": (300, 1220384, 1341, 7969, 1146484)}


@pytest.mark.parametrize("split", ["train", "test"])
def test_shd_fsdd_exact(shared_data, split):
    path = shared_data / "shd_fsdd" / f"shd_fsdd_{split}.h5"
    samples, labels = read_shd(path)
    n = [len(s) for s in samples]
    assert (len(samples), sum(n), min(n), max(n), max(int(s["t"][-1]) for s in samples)) == FACTS[split]
    assert samples[0].dtype == AUDIO_EVENT_DTYPE
    assert np.bincount(labels).tolist() == [FACTS[split][0] // 10] * 10
    for s in samples:
        assert np.all(np.diff(s["t"]) >= 0)  # SHD stores each sample's spikes sorted by time
        assert s["unit"].min() >= 0 and s["unit"].max() <= 699
    info = shd_info(path)
    assert info["keys"][0] == "zero" and info["samples"] == FACTS[split][0]
    ev, label = read_shd_sample(path, 7)
    np.testing.assert_array_equal(ev, samples[7])
    assert label == labels[7]
    assert [lab for _, lab in iter_shd(path, block=0)] == labels.tolist()  # block clamped to 1


def test_shd_equals_tonic(shared_data, tmp_path):
    tonic = pytest.importorskip("tonic")
    src = shared_data / "shd_fsdd" / "shd_fsdd_test.h5"
    (tmp_path / "SHD").mkdir()
    (tmp_path / "SHD" / "shd_test.h5").symlink_to(src)
    (tmp_path / "SHD" / "shd_test.h5.zip").touch()  # Tonic only checks that the archive exists
    ds = tonic.datasets.SHD(save_to=str(tmp_path), train=False)
    assert len(ds) == 300
    for i, (ev, label) in enumerate(iter_shd(src)):
        ref, ref_label = ds[i]
        np.testing.assert_array_equal(ev["t"], ref["t"])
        np.testing.assert_array_equal(ev["unit"], ref["x"])
        assert label == ref_label


def _h5(path, times, units, labels):
    import h5py

    with h5py.File(path, "w") as f:
        vf = h5py.vlen_dtype(np.float16)
        vu = h5py.vlen_dtype(np.uint16)
        t = f.create_dataset("spikes/times", (len(times),), dtype=vf)
        u = f.create_dataset("spikes/units", (len(units),), dtype=vu)
        for i, (a, b) in enumerate(zip(times, units)):
            t[i] = np.asarray(a, np.float16)
            u[i] = np.asarray(b, np.uint16)
        f["labels"] = np.asarray(labels, np.uint16)
    return path


def test_shd_damage(tmp_path):
    ok = _h5(tmp_path / "ok.h5", [[0.5, 1.0]], [[3, 699]], [4])
    samples, labels = read_shd(ok)
    assert samples[0].tolist() == [(500000, 3), (1000000, 699)] and labels.tolist() == [4]
    with pytest.raises(DataFormatError, match="unit 700"):
        read_shd(_h5(tmp_path / "u.h5", [[0.5]], [[700]], [0]))
    with pytest.raises(DataFormatError, match="2 entries but spikes/units has 1"):
        read_shd(_h5(tmp_path / "l.h5", [[0.5, 0.6]], [[1]], [0]))
    with pytest.raises(DataFormatError, match="must be finite"):
        read_shd(_h5(tmp_path / "n.h5", [[np.inf]], [[1]], [0]))
    with pytest.raises(DataFormatError, match="different lengths"):
        read_shd(_h5(tmp_path / "d.h5", [[0.1]], [[1]], [0, 1]))
    trunc = tmp_path / "t.h5"
    trunc.write_bytes(ok.read_bytes()[:1500])
    with pytest.raises(DataFormatError, match="t.h5"):
        read_shd(trunc)
    bad = tmp_path / "b.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(DataFormatError, match="not an HDF5 file") as e:
        read_shd(bad)
    assert e.value.offset == 0
