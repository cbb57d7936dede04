"""``digits-dvs``: the embedded default event data set (no download).

The 1,797 handwritten digits bundled with scikit-learn (``sklearn.datasets.load_digits``: 8×8 images,
16 grey levels, from the UCI "Optical Recognition of Handwritten Digits" set) recorded the way N-MNIST
was (Orchard et al., "Converting static image datasets to spiking neuromorphic datasets using
saccades", Front. Neurosci. 9:437, 2015): the image sits still in front of a DVS sensor that makes three
saccades along an isosceles triangle, 100 ms each, and the sensor's events are recorded on 34×34 pixels
with the N-MNIST dtype (``EVENT_DTYPE``: x, y, t µs, p).

Here the motion is rendered (digit upsampled to 24×24 by bilinear interpolation, moved with sub-pixel
bilinear shifts, one frame every 4 ms; the emulator interpolates between frames) and ``DVSEmulator`` turns the frames into events. Everything is
seeded, so every machine builds the same events; the result is cached on disk (``cache_dir()``) after
the first generation, which takes a few seconds.

Split (stratified, fixed): within each class every 5th sample is a test sample (``test_mask``), which gives
364 test and 1,433 train samples.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from neuromorph._atomic import atomic_path
from neuromorph.data.cache import cache_dir
from neuromorph.data.emulator import DVSEmulator
from neuromorph.data.events import EVENT_DTYPE
from neuromorph.errors import ConfigError, check_choice

#: bump when the generation changes, so old caches are rebuilt instead of reused
VERSION = 1
SENSOR_SIZE = (34, 34, 2)
CLASSES = [str(d) for d in range(10)]
_DIGIT_SIZE = 24
_MARGIN = (34 - _DIGIT_SIZE) // 2
_SACCADE_US = 100_000
_FRAME_US = 4_000
# triangle vertices (dx, dy) in pixels, visited A -> B -> C -> A (N-MNIST's three saccades)
_VERTICES = ((-3.0, 2.0), (3.0, 2.0), (0.0, -3.0))
_EMULATOR = dict(threshold_on=0.4, threshold_off=0.4, threshold_sigma=0.03, refractory_us=1_000,
                 shot_noise_rate_hz=0.2, eps=0.1)


def _params_key() -> str:
    text = json.dumps({"version": VERSION, "vertices": _VERTICES, "emulator": _EMULATOR, "frame_us": _FRAME_US,
                       "saccade_us": _SACCADE_US, "digit": _DIGIT_SIZE}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _offsets_path() -> np.ndarray:
    """Sensor displacement (dx, dy) at each frame time: linear along the triangle's three sides."""
    steps = _SACCADE_US // _FRAME_US
    path = []
    for k in range(3):
        a, b = np.array(_VERTICES[k]), np.array(_VERTICES[(k + 1) % 3])
        f = np.arange(steps)[:, None] / steps
        path.append(a + f * (b - a))
    path.append(np.array(_VERTICES[:1]))
    return np.concatenate(path)  # [3·steps + 1, 2]


def _upsample(images: np.ndarray) -> np.ndarray:
    """Bilinear 8×8 -> 24×24 (half-pixel centres, as ``torch.nn.functional.interpolate``)."""
    n, h, w = images.shape
    s = _DIGIT_SIZE
    c = (np.arange(s) + 0.5) * (h / s) - 0.5
    c = np.clip(c, 0, h - 1)
    i0 = np.floor(c).astype(int)
    i1 = np.minimum(i0 + 1, h - 1)
    f = c - i0
    rows = images[:, i0, :] * (1 - f)[None, :, None] + images[:, i1, :] * f[None, :, None]
    return rows[:, :, i0] * (1 - f)[None, None, :] + rows[:, :, i1] * f[None, None, :]


_PAD = 8


def _canvas(digits: np.ndarray) -> np.ndarray:
    """Digits centred on a zero canvas 34×34 plus a border wide enough for every shift of the path."""
    pad = _PAD
    canvas = np.zeros((digits.shape[0], 34 + 2 * pad, 34 + 2 * pad), np.float32)
    canvas[:, pad + _MARGIN : pad + _MARGIN + _DIGIT_SIZE, pad + _MARGIN : pad + _MARGIN + _DIGIT_SIZE] = digits
    return canvas


def _render(canvas: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The 34×34 views of all canvases shifted by (dx, dy) pixels (bilinear, zero outside)."""
    pad = _PAD
    ix, iy = int(np.floor(dx)), int(np.floor(dy))
    fx, fy = dx - ix, dy - iy
    # output(y, x) = canvas(y - dy, x - dx): combine the four integer shifts around (dx, dy)
    def view(sy, sx):
        return canvas[:, pad - sy : pad - sy + 34, pad - sx : pad - sx + 34]

    return ((1 - fy) * ((1 - fx) * view(iy, ix) + fx * view(iy, ix + 1))
            + fy * ((1 - fx) * view(iy + 1, ix) + fx * view(iy + 1, ix + 1)))


def generate(indices=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build the set (or only the samples ``indices``): ``(events, offsets, labels)``; sample i is
    ``events[offsets[i]:offsets[i+1]]``. Sample j depends only on digit j, so subsets equal the full set's."""
    from sklearn.datasets import load_digits

    data = load_digits()
    ids = np.arange(len(data.target)) if indices is None else np.asarray(indices, dtype=np.int64)
    images = data.images[ids].astype(np.float64) / 16.0
    labels = data.target[ids].astype(np.int64)
    digits = _upsample(images)
    path = _offsets_path()
    times = np.arange(len(path), dtype=np.int64) * _FRAME_US
    chunks = []
    block = 64  # render a few samples at a time: the whole video would take over a gigabyte
    for start in range(0, len(images), block):
        canvas = _canvas(digits[start : start + block])
        video = np.empty((len(canvas), len(path), 34, 34), np.float32)
        for k, (dx, dy) in enumerate(path):
            video[:, k] = _render(canvas, float(dx), float(dy))
        for j in range(len(canvas)):
            chunks.append(DVSEmulator(seed=int(ids[start + j]), **_EMULATOR)(video[j], times))
    offsets = np.zeros(len(chunks) + 1, np.int64)
    offsets[1:] = np.cumsum([len(c) for c in chunks])
    return np.concatenate(chunks), offsets, labels


def _cache_file(root: Path) -> Path:
    return root / f"digits_dvs_v{VERSION}_{_params_key()}.npz"


def _save(path: Path, events: np.ndarray, offsets: np.ndarray, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # one uint32 per event: t (19 bits, < 524 ms) | y (6) | x (6) | p (1), a quarter of EVENT_DTYPE's size
    packed = ((events["t"].astype(np.uint32) << 13) | (events["y"].astype(np.uint32) << 7)
              | (events["x"].astype(np.uint32) << 1) | events["p"].astype(np.uint32))
    arrays = {"events": packed, "offsets": offsets, "labels": labels, "key": np.frombuffer(_params_key().encode(), np.uint8)}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a reader never sees a half-written cache
        np.savez(fh, **arrays)


def _load(path: Path):
    """The cached arrays, or None when the file is missing, foreign or damaged (then it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if bytes(z["key"]).decode() != _params_key():
                return None
            packed, offsets, labels = z["events"], z["offsets"], z["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
        return None
    if packed.dtype != np.uint32 or packed.ndim != 1 or offsets.dtype != np.int64:
        return None
    x, y, t, p = (packed >> 1) & 63, (packed >> 7) & 63, packed >> 13, packed & 1
    n = len(t)
    if not (offsets.ndim == 1 and len(offsets) == len(labels) + 1
            and offsets[0] == 0 and offsets[-1] == n and np.all(np.diff(offsets) >= 0)):
        return None
    if n and (x.max() >= 34 or y.max() >= 34):
        return None
    events = np.empty(n, EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events, offsets, labels


def load(root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full set ``(events, offsets, labels)`` from the cache in ``root`` (default ``cache_dir()``),
    generating and caching it first when the cache is missing, stale or damaged."""
    path = _cache_file(Path(root) if root is not None else cache_dir())
    cached = _load(path) if path.exists() else None
    if cached is None:
        cached = generate()
        _save(path, *cached)
    return cached


def test_mask(labels: np.ndarray) -> np.ndarray:
    """Stratified split: within each class, every 5th sample (in scikit-learn's order) is a test sample."""
    mask = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        mask[np.flatnonzero(labels == c)[::5]] = True
    return mask


class DigitsDVS:
    """The ``digits-dvs`` data set: ``ds[i] -> (events EVENT_DTYPE, label int)``; 34×34×2 sensor, 10 classes.

    ``root``: cache folder (default ``cache_dir()``); ``split``: "train" (1,433) or "test" (364);
    ``transform``: applied to the events (e.g. ``ToFrame(DigitsDVS.sensor_size, time_window=10_000)``).
    """

    sensor_size = SENSOR_SIZE
    classes = CLASSES

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", transform=None):
        check_choice("split", split, ("train", "test"))
        if transform is not None and not callable(transform):
            raise ConfigError(f"transform must be callable, got {transform!r}")
        self.root, self.split, self.transform = root, split, transform
        self._events, self._offsets, labels = load(root)
        test = test_mask(labels)
        self.indices = np.flatnonzero(test if split == "test" else ~test)
        self.targets = labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for DigitsDVS({self.split!r}) of {len(self)} samples")
        j = self.indices[i]
        events = self._events[self._offsets[j] : self._offsets[j + 1]].copy()
        if self.transform is not None:
            events = self.transform(events)
        return events, int(self.targets[i])
