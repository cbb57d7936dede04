"""Data sets: official layouts with no network, offline errors, download (checksum, resume, atomic
rename) against local files, and the disk cache keyed by transform parameters."""

import hashlib
import io
import os
import urllib.error
import urllib.request
import zipfile

import h5py
import numpy as np
import pytest

from neuromorph.data import NMNIST, SHD, SSC, DVSGesture, Denoise, DropEvent, ToFrame, ToSpikeCounts
from neuromorph.data.datasets import base as ds_base
from neuromorph.data.datasets.download import download, extract, verify
from neuromorph.data.readers import read_nmnist
from neuromorph.errors import ConfigError, DataFormatError, DatasetError


# -- official layouts on the real files ------------------------------------------------------------


def test_nmnist_reads_the_official_layout(shared_data):
    tonic_io = pytest.importorskip("tonic.io")
    train, test = NMNIST(shared_data / "nmnist", "train"), NMNIST(shared_data / "nmnist", "test")
    assert len(train) == 1000 and len(test) == 100
    assert np.array_equal(np.bincount(test.targets), [8, 14, 8, 11, 14, 7, 10, 15, 2, 11])  # PROVENANCE.md
    assert train.sensor_size == (34, 34, 2) and train.classes == [str(d) for d in range(10)]
    for i in (0, 517, 999):
        ev, label = train[i]
        path = train._items[i]
        assert label == int(path.parent.name)
        np.testing.assert_array_equal(ev, read_nmnist(path))
        theirs = tonic_io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
        for f in "xytp":
            np.testing.assert_array_equal(ev[f], theirs[f])


def test_nmnist_found_under_an_nmnist_subfolder(shared_data, tmp_path):
    (tmp_path / "NMNIST").symlink_to(shared_data / "nmnist", target_is_directory=True)
    ds = NMNIST(tmp_path, "test", transform=ToFrame((34, 34, 2), n_time_bins=4))
    frames, label = ds[3]
    assert frames.shape == (4, 2, 34, 34) and label == ds.targets[3]


def test_shd_layout_file_reads_like_tonic(shared_data):
    ds = SHD(shared_data / "shd_fsdd", "test")
    assert len(ds) == 300 and ds.classes[:2] == ["zero", "one"] and ds.sensor_size == (700, 1, 1)
    with h5py.File(shared_data / "shd_fsdd" / "shd_fsdd_test.h5", "r") as h5:
        for i in (0, 150, 299):
            ev, label = ds[i]
            assert label == int(h5["labels"][i])
            # Tonic's SHD: t = times (float64) * 1e6, units as x
            np.testing.assert_array_equal(ev["t"], (h5["spikes/times"][i].astype(np.float64) * 1e6).astype(np.int64))
            np.testing.assert_array_equal(ev["unit"], h5["spikes/units"][i])
    counts, _ = SHD(shared_data / "shd_fsdd", "test", transform=ToSpikeCounts(700, 10_000, 5))[0]
    assert counts.shape[1] == 140 and counts.sum() == len(ds[0][0])


# -- offline errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, split", [(NMNIST, "train"), (SHD, "test"), (SSC, "valid"), (DVSGesture, "test")])
def test_missing_data_names_urls_and_layout(tmp_path, cls, split):
    with pytest.raises(DatasetError) as info:
        cls(tmp_path, split)
    msg = str(info.value)
    manifest = ds_base.load_manifest(cls.name)
    for f in manifest["splits"][split]["files"]:
        assert f["url"] in msg and f["filename"] in msg
    assert manifest["layout"].strip().splitlines()[0] in msg and str(tmp_path) in msg


def test_no_root_and_bad_split_are_config_errors(shared_data):
    with pytest.raises(ConfigError, match="root"):
        NMNIST(None)
    with pytest.raises(ConfigError, match="split"):
        NMNIST(shared_data / "nmnist", "validation")


def test_download_failure_offline_is_a_dataset_error(tmp_path, monkeypatch):
    def offline(request, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError, match="data.mendeley.com"):
        NMNIST(tmp_path, "test", download=True)


# -- download mechanics ----------------------------------------------------------------------------


def _payload(n=3_000_000):
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_download_file_url_verifies_and_renames_atomically(tmp_path):
    data = _payload()
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    good = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DatasetError, match="sha256"):
        download(src.as_uri(), dest, sha256="0" * 64)
    assert not dest.exists() and not dest.with_name("file.bin.part").exists()
    download(src.as_uri(), dest, sha256=good, md5=hashlib.md5(data).hexdigest())
    assert dest.read_bytes() == data and not dest.with_name("file.bin.part").exists()
    # a verified file is kept; a damaged one is fetched again
    dest.write_bytes(b"damaged")
    download(src.as_uri(), dest, sha256=good)
    assert dest.read_bytes() == data


class _Server:
    """An opener standing in for an HTTP server that honours Range requests (206) or not (200)."""

    def __init__(self, data, honour_range=True, fail_after=None):
        self.data, self.honour_range, self.fail_after, self.ranges = data, honour_range, fail_after, []

    def __call__(self, request, timeout=None):
        rng = request.get_header("Range")
        self.ranges.append(rng)
        start = int(rng[len("bytes=") : -1]) if rng and self.honour_range else 0
        body = io.BytesIO(self.data[start:])
        server = self

        class Response:
            status = 206 if start else 200

            def read(self, n):
                if server.fail_after is not None and body.tell() >= server.fail_after:
                    raise ConnectionResetError("connection dropped")
                return body.read(n)

            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

        return Response()


def test_interrupted_download_resumes_from_the_partial_file(tmp_path):
    data = _payload()
    sha = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "a.zip"
    part = tmp_path / "a.zip.part"
    with pytest.raises(DatasetError, match="resume"):
        download("https://example.invalid/a.zip", dest, sha256=sha, opener=_Server(data, fail_after=1 << 20))
    assert not dest.exists() and part.stat().st_size == 1 << 20
    server = _Server(data)
    download("https://example.invalid/a.zip", dest, sha256=sha, opener=server)
    assert server.ranges == [f"bytes={1 << 20}-"] and dest.read_bytes() == data and not part.exists()
    # a server that ignores Range sends everything again: the partial file is overwritten, not appended to
    part.write_bytes(data[:1000])
    dest.unlink()
    download("https://example.invalid/a.zip", dest, sha256=sha, opener=_Server(data, honour_range=False))
    assert dest.read_bytes() == data


def test_dataset_download_extracts_the_official_archive(shared_data, tmp_path, monkeypatch):
    # an archive in the official test.zip layout, made from the real files
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted((shared_data / "nmnist" / "Test").glob("*/*.bin"))[:12]:
            zf.write(p, f"Test/{p.parent.name}/{p.name}")
    data = archive.getvalue()
    manifest = ds_base.load_manifest("nmnist")
    manifest["splits"]["test"]["files"][0].update(sha256=hashlib.sha256(data).hexdigest(), md5="")
    monkeypatch.setattr(ds_base, "load_manifest", lambda name: manifest)
    server = _Server(data)
    monkeypatch.setattr(urllib.request, "urlopen", server)
    ds = NMNIST(tmp_path, "test", download=True)
    assert len(ds) == 12 and (tmp_path / "test.zip").exists() and server.ranges == [None]
    ref = read_nmnist(sorted((shared_data / "nmnist" / "Test").glob("*/*.bin"))[0])
    np.testing.assert_array_equal(ds[0][0], ref)


def test_extract_refuses_paths_outside_the_target(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DatasetError, match="outside"):
        extract(bad, tmp_path / "into")
    assert not (tmp_path / "escape.txt").exists()
    (tmp_path / "junk.bin").write_bytes(b"123")
    with pytest.raises(DatasetError, match="neither"):
        extract(tmp_path / "junk.bin", tmp_path / "into")
    with pytest.raises(DatasetError, match="md5"):
        verify(tmp_path / "junk.bin", md5="0" * 32)


def test_extract_zip_is_all_or_nothing(shared_data, tmp_path):
    files = sorted((shared_data / "nmnist" / "Test").glob("*/*.bin"))[:6]
    good = tmp_path / "test.zip"
    with zipfile.ZipFile(good, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.write(p, f"Test/{p.parent.name}/{p.name}")
    # damage the last member's compressed bytes: the first five unpack fine, then the CRC check fails
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        last = zf.infolist()[-1]
        start = last.header_offset + 30 + len(last.filename.encode()) + len(last.extra)
    raw[start + 5 : start + 25] = bytes(20)
    bad = tmp_path / "bad" / "test.zip"
    bad.parent.mkdir()
    bad.write_bytes(bytes(raw))
    into = tmp_path / "root"
    with pytest.raises(DatasetError, match="cannot be unpacked"):
        extract(bad, into)
    assert list(into.iterdir()) == []  # no half-filled Test/ that would pass the layout check
    # a partial Test/ from an earlier interrupted run is replaced by the complete one
    (into / "Test" / "0").mkdir(parents=True)
    (into / "Test" / "0" / "stale.bin").write_bytes(b"x")
    extract(good, into)
    assert sorted(p.relative_to(into / "Test").as_posix() for p in (into / "Test").glob("*/*.bin")) == [
        f"{p.parent.name}/{p.name}" for p in files
    ]
    assert [p.name for p in into.iterdir()] == ["Test"]


def test_extract_single_gzip_file_is_atomic(tmp_path):
    import gzip

    payload = bytes(range(256)) * 4000
    good = tmp_path / "shd_test.h5.gz"
    good.write_bytes(gzip.compress(payload))
    extract(good, tmp_path / "into")
    assert (tmp_path / "into" / "shd_test.h5").read_bytes() == payload
    cut = tmp_path / "cut" / "shd_train.h5.gz"
    cut.parent.mkdir()
    cut.write_bytes(gzip.compress(payload)[:-2000])  # truncated download: no half-unpacked file may remain
    with pytest.raises(DatasetError, match="damaged gzip"):
        extract(cut, tmp_path / "into")
    assert sorted(p.name for p in (tmp_path / "into").iterdir()) == ["shd_test.h5"]


# -- disk cache ------------------------------------------------------------------------------------


def test_disk_cache_keyed_by_transform_and_rebuilt_when_damaged(shared_data, tmp_path):
    t1 = ToFrame((34, 34, 2), time_window=10_000)
    t2 = ToFrame((34, 34, 2), time_window=20_000)
    plain = NMNIST(shared_data / "nmnist", "test", transform=t1)
    cached = NMNIST(shared_data / "nmnist", "test", transform=t1, cache=tmp_path)
    x, y = cached[5]
    np.testing.assert_array_equal(x, plain[5][0])
    assert y == plain[5][1]
    entries = list(tmp_path.rglob("*.npy"))
    assert entries == [cached.cache_path / "5.npy"]
    other = NMNIST(shared_data / "nmnist", "test", transform=t2, cache=tmp_path)
    assert other[5][0].shape != x.shape and len(list(tmp_path.rglob("*.npy"))) == 2
    # damage the first entry: detected by its checksum, recomputed and rewritten
    raw = bytearray(entries[0].read_bytes())
    raw[-1] ^= 0xFF
    entries[0].write_bytes(bytes(raw))
    np.testing.assert_array_equal(cached[5][0], x)
    assert entries[0].read_bytes()[-1] == bytes(raw)[-1] ^ 0xFF
    entries[0].write_bytes(b"")
    np.testing.assert_array_equal(NMNIST(shared_data / "nmnist", "test", transform=t1, cache=tmp_path)[5][0], x)
    with pytest.raises(ConfigError, match="deterministic"):
        NMNIST(shared_data / "nmnist", "test", transform=DropEvent(), cache=tmp_path)
    assert NMNIST(shared_data / "nmnist", "test", transform=Denoise(), cache=tmp_path)[0][0].dtype.names


def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


def _mini_nmnist(root, shared_data, ids):
    """An N-MNIST layout with the given test files (label, name) copied from the real set."""
    for label, name in ids:
        (root / "Test" / label).mkdir(parents=True, exist_ok=True)
        (root / "Test" / label / name).write_bytes((shared_data / "nmnist" / "Test" / label / name).read_bytes())
    return root


def test_cache_true_goes_to_the_user_cache_never_into_the_data_root(shared_data, tmp_path, monkeypatch):
    # tests run as root, for whom chmod does not make a folder read-only: assert that nothing is written there
    real = sorted((shared_data / "nmnist" / "Test").glob("[0-9]/*.bin"))[:4]
    ids = [(p.parent.name, p.name) for p in real]
    root_a = _mini_nmnist(tmp_path / "a", shared_data, ids[:2])
    root_b = _mini_nmnist(tmp_path / "b", shared_data, ids[2:])  # same layout and indices, other samples
    before = _tree(tmp_path)
    monkeypatch.delenv("NEUROMORPH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    t = ToFrame((34, 34, 2), time_window=50_000)
    a, b = NMNIST(root_a, "test", transform=t, cache=True), NMNIST(root_b, "test", transform=t, cache=True)
    assert a.cache_path.is_relative_to(tmp_path / "xdg" / "neuromorph" / "datasets")
    assert a.cache_path != b.cache_path  # two data roots never share entries
    for ds, files in ((a, real[:2]), (b, real[2:])):
        for i, f in enumerate(files):
            np.testing.assert_array_equal(ds[i][0], t(read_nmnist(f)))
            np.testing.assert_array_equal(ds[i][0], ds[i][0])  # the second read comes from the cache
    assert len(list((tmp_path / "xdg").rglob("*.npy"))) == 4
    assert [e for e in _tree(tmp_path) if not e[0].startswith("xdg")] == before  # the data roots are untouched
    # $NEUROMORPH_CACHE_DIR moves every neuromorph cache; a fresh object reuses the stored entries
    monkeypatch.setenv("NEUROMORPH_CACHE_DIR", str(tmp_path / "scratch"))
    c = NMNIST(root_a, "test", transform=t, cache=True)
    assert c.cache_path.is_relative_to(tmp_path / "scratch")
    np.testing.assert_array_equal(c[1][0], t(read_nmnist(real[1])))
    assert len(list((tmp_path / "scratch").rglob("*.npy"))) == 1


def test_unwritable_cache_warns_once_and_samples_stay_right(shared_data, tmp_path):
    blocker = tmp_path / "file"  # a cache "folder" below a plain file cannot be created, even by root
    blocker.write_bytes(b"")
    t = ToFrame((34, 34, 2), time_window=50_000)
    ds = NMNIST(shared_data / "nmnist", "test", transform=t, cache=blocker / "cache")
    with pytest.warns(UserWarning, match="cannot write the sample cache"):
        x = ds[3][0]
    np.testing.assert_array_equal(x, t(read_nmnist(ds._items[3])))
    assert ds.cache_path is None
    np.testing.assert_array_equal(ds[4][0], t(read_nmnist(ds._items[4])))


# -- DVS Gesture (Tonic's per-trial .npy layout) ----------------------------------------------------


def test_dvsgesture_layout_and_conversion(tmp_path):
    folder = tmp_path / "ibmGestureTest" / "user24_led"
    folder.mkdir(parents=True)
    raw = np.array([[1, 2, 0, 0.5], [127, 0, 1, 1.25], [3, 4, 1, 2.0]])
    np.save(folder / "3.npy", raw)
    np.save(folder / "10.npy", raw[:1])
    ds = DVSGesture(tmp_path, "test")
    assert len(ds) == 2 and list(ds.targets) == [3, 10] and ds.users == [24, 24] and ds.lighting == ["led", "led"]
    ev, label = ds[0]
    assert label == 3 and list(ev["t"]) == [500, 1250, 2000] and list(ev["x"]) == [1, 127, 3] and list(ev["p"]) == [0, 1, 1]
    np.save(folder / "10.npy", np.array([[128.0, 0, 0, 1.0]]))
    with pytest.raises(DataFormatError, match="10.npy"):
        ds[1]


def _aedat31(path, events):
    """A minimal AEDAT 3.1 file (cAER RAW format) with one polarity packet: events = [(x, y, t, p)]."""
    import struct

    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | 1, t) for x, y, t, p in events)
    n = len(events)
    path.write_bytes(header + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, n, n, n) + body)


def test_dvsgesture_official_ibm_layout(tmp_path):
    root = tmp_path / "DvsGesture"
    root.mkdir()
    events = [(1, 2, 100, 1), (3, 4, 150, 0), (127, 5, 200, 1), (6, 7, 260, 0), (8, 9, 400, 1)]
    _aedat31(root / "user02_led.aedat", events)
    (root / "user02_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n3,100,201\n11,250,400\n\n")  # blank line skipped
    (root / "trials_to_test.txt").write_text("user02_led.aedat\n")
    ds = DVSGesture(tmp_path, "test")
    assert len(ds) == 2 and list(ds.targets) == [2, 10] and ds.users == [2, 2] and ds.lighting == ["led", "led"]
    ev, label = ds[0]
    assert label == 2 and ev[["x", "y", "t", "p"]].tolist() == [(1, 2, 100, 1), (3, 4, 150, 0), (127, 5, 200, 1)]
    ev, label = ds[1]
    assert label == 10 and ev.tolist() == [(6, 7, 260, 0)]  # end time is exclusive
    (root / "user02_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n12,100,201\n")
    with pytest.raises(DataFormatError, match="labels.csv"):
        DVSGesture(tmp_path, "test")
    (root / "trials_to_test.txt").write_text("user03_led.aedat\n")
    with pytest.raises(DataFormatError, match="user03_led"):
        DVSGesture(tmp_path, "test")
