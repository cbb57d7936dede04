"""SHD / SSC HDF5 files (Spiking Heidelberg Digits, Spiking Speech Commands).

Source: Cramer et al. 2020, "The Heidelberg spiking data sets for the systematic evaluation of spiking
neural networks" (IEEE TNNLS), and its file description. Layout:

    spikes/times   (N,) variable-length float (float16 in the published files), seconds, per sample
    spikes/units   (N,) variable-length uint16, channel 0..699 of each spike
    labels         (N,) class index
    extra/keys     class names indexed by label (optional), extra/speaker (optional)

Each sample becomes an ``AUDIO_EVENT_DTYPE`` array (``t`` int64 µs, ``unit`` int32). The time
conversion is Tonic's (``tonic.datasets.SHD``): ``floor(float64(times) * 1e6)``; the product is exact
in float64 for float16/float32 inputs, so the floor is well defined. Casting to float64 first matters:
float16 ``times * 1e6`` overflows to inf (tonic issue #321).
"""

from __future__ import annotations

import contextlib
import mmap
from pathlib import Path
from typing import Iterator

import numpy as np

from neuromorph.data.events import AUDIO_EVENT_DTYPE
from neuromorph.data.readers._common import PathLike
from neuromorph.errors import DataFormatError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
SHD_UNITS = 700


@contextlib.contextmanager
def _guard(path: PathLike):
    """Turn h5py's errors on a damaged file (OSError, KeyError, ValueError, ...) into DataFormatError."""
    try:
        yield
    except DataFormatError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError) as exc:
        raise DataFormatError(f"HDF5 file is damaged or not in the SHD/SSC layout: {exc}", path=path) from None


# (path, size, mtime) of files whose global heaps passed _check_global_heaps
_HEAPS_CHECKED: set = set()


def _walk_global_heaps(data, path: PathLike) -> None:
    version = data[8] if len(data) > 8 else -1
    if version in (0, 1) and len(data) > 14:
        size_len = data[14]
    elif version in (2, 3) and len(data) > 10:
        size_len = data[10]
    else:
        raise DataFormatError(f"HDF5 superblock version {version} is not supported", path=path, offset=8)
    if size_len not in (2, 4, 8):
        raise DataFormatError(f"HDF5 superblock gives size-of-lengths {size_len}", path=path, offset=8)
    head = 8 + size_len  # "GCOL" + version + reserved + collection size
    obj_head = 8 + size_len
    pos = data.find(b"GCOL\x01")
    while pos >= 0:
        csize = int.from_bytes(data[pos + 8 : pos + 8 + size_len], "little")
        if csize < head or pos + csize > len(data):
            raise DataFormatError(f"HDF5 global heap collection of {csize} bytes does not fit the file", path=path, offset=pos)
        q = head
        while q < csize:  # the same walk as libhdf5's H5HG__cache_heap_deserialize
            if q + obj_head > csize:
                break  # too small for an object header: trailing free space
            idx = int.from_bytes(data[pos + q : pos + q + 2], "little")
            osize = int.from_bytes(data[pos + q + 8 : pos + q + 8 + size_len], "little")
            # object: header + data padded to 8 bytes; free space (index 0): its size includes the header
            need = obj_head + ((osize + 7) & ~7) if idx else osize
            if need < obj_head or q + need > csize:
                raise DataFormatError(f"HDF5 global heap object {idx} of {osize} bytes does not fit its collection",
                                      path=path, offset=pos + q)
            q += need
        pos = data.find(b"GCOL\x01", pos + 4)


def _check_global_heaps(path: PathLike) -> None:
    """Walk every global heap collection ("GCOL") of the file and check its objects fit inside it.

    Why: variable-length data (``spikes/times``, ``spikes/units``) lives in HDF5 global heap
    collections, and libhdf5 can spin forever on a collection whose object sizes were damaged (found
    by our fuzz tests). Layout (HDF5 File Format Specification, "Global Heap"): "GCOL", version 1,
    3 reserved bytes, collection size (size-of-lengths bytes, from the superblock); then objects of
    index (2), reference count (2), reserved (4), size (size-of-lengths), data padded to 8 bytes; index 0
    is the free space that ends the collection.
    """
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _HEAPS_CHECKED:
        return
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        # mmap: SSC/SHD files reach gigabytes; the scan must not copy them into memory
        _walk_global_heaps(data, path)
    _HEAPS_CHECKED.add(key)


def _open(path: PathLike):
    with _guard(path):
        return _open_unguarded(path)


def _open_unguarded(path: PathLike):
    import h5py

    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such file", path=path)
    with open(p, "rb") as f:
        if f.read(8) != HDF5_MAGIC:
            raise DataFormatError("not an HDF5 file (bad signature)", path=path, offset=0)
    _check_global_heaps(p)
    try:
        h5 = h5py.File(p, "r")
    except Exception as exc:  # h5py raises OSError subclasses with HDF5's own message on damage
        raise DataFormatError(f"HDF5 file cannot be opened: {exc}", path=path) from None
    for name in ("spikes/times", "spikes/units", "labels"):
        if name not in h5:
            h5.close()
            raise DataFormatError(f"HDF5 file lacks dataset {name!r} (SHD/SSC layout)", path=path)
    n, nt, nu = len(h5["labels"]), len(h5["spikes/times"]), len(h5["spikes/units"])
    if nt != n or nu != n:
        h5.close()
        raise DataFormatError(f"spikes/times, spikes/units and labels have different lengths ({nt}, {nu}, {n})", path=path)
    return h5


def _to_events(times, units, index: int, path, n_units: int) -> np.ndarray:
    times = np.asarray(times)
    units = np.asarray(units)
    if times.ndim != 1 or units.ndim != 1 or len(times) != len(units):
        raise DataFormatError(
            f"sample {index}: spikes/times has {times.size} entries but spikes/units has {units.size}", path=path
        )
    t = times.astype(np.float64) * 1e6
    if len(t) and (not np.all(np.isfinite(t)) or t.min() < 0):
        i = int(np.argmax(~np.isfinite(t) | (t < 0)))
        raise DataFormatError(f"sample {index}: spike {i} has time {times[i]!r} s (must be finite, >= 0)", path=path)
    if len(units) and (units.min() < 0 or units.max() >= n_units):
        i = int(np.argmax((units < 0) | (units >= n_units)))
        raise DataFormatError(f"sample {index}: spike {i} has unit {int(units[i])}, outside 0..{n_units - 1}", path=path)
    ev = np.empty(len(t), dtype=AUDIO_EVENT_DTYPE)
    ev["t"] = np.floor(t)
    ev["unit"] = units
    return ev


def _labels(h5, path, index: int | None = None) -> np.ndarray:
    """Every label as int64, or only label ``index`` (one sample need not read all of them)."""
    ds = h5["labels"]
    if ds.ndim != 1 or ds.dtype.kind not in "iu":
        raise DataFormatError(f"labels must be a 1-D integer array, got {ds.dtype} {ds.shape}", path=path)
    return np.asarray(ds[:] if index is None else ds[index]).astype(np.int64)


def shd_info(path: PathLike) -> dict:
    """Sample count, class names (``extra/keys`` if present) and label range of an SHD/SSC file."""
    with _guard(path), _open(path) as h5:
        labels = _labels(h5, path)
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in h5["extra/keys"][:]] if "extra/keys" in h5 else None
        return {"samples": len(labels), "keys": keys, "n_units": SHD_UNITS,
                "labels": (int(labels.min()), int(labels.max())) if len(labels) else None}


def read_shd_sample(path: PathLike, index: int, n_units: int = SHD_UNITS) -> tuple[np.ndarray, int]:
    """Sample ``index`` of an SHD/SSC file: (AUDIO_EVENT_DTYPE events, label)."""
    with _guard(path), _open(path) as h5:
        n = len(h5["labels"])
        if not -n <= index < n:
            raise DataFormatError(f"sample index {index} out of range for {n} samples", path=path)
        index = index % n
        ev = _to_events(h5["spikes/times"][index], h5["spikes/units"][index], index, path, n_units)
        return ev, int(_labels(h5, path, index))


def iter_shd(path: PathLike, n_units: int = SHD_UNITS, block: int = 256) -> Iterator[tuple[np.ndarray, int]]:
    """Yield (events, label) for every sample of an SHD/SSC file, reading ``block`` samples at a time."""
    block = max(1, int(block))  # as the other iter_* readers clamp chunk_events
    with _guard(path), _open(path) as h5:
        labels = _labels(h5, path)
        times_ds, units_ds = h5["spikes/times"], h5["spikes/units"]
        for start in range(0, len(labels), block):
            stop = min(start + block, len(labels))
            times, units = times_ds[start:stop], units_ds[start:stop]
            for j in range(stop - start):
                yield _to_events(times[j], units[j], start + j, path, n_units), int(labels[start + j])


def read_shd(path: PathLike, n_units: int = SHD_UNITS) -> tuple[list[np.ndarray], np.ndarray]:
    """Read every sample of an SHD or SSC HDF5 file: (list of AUDIO_EVENT_DTYPE arrays, int64 labels).

    Spike times become int64 µs as Tonic's SHD class does; units must lie in ``0..n_units-1`` (700
    channels for SHD/SSC), else DataFormatError naming the sample and spike.
    """
    samples, labels = [], []
    for ev, label in iter_shd(path, n_units):
        samples.append(ev)
        labels.append(label)
    return samples, np.asarray(labels, dtype=np.int64)


read_ssc = read_shd
