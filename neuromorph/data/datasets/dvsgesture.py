"""DVS128 Gesture (Amir et al., CVPR 2017) in the per-trial ``.npy`` layout that Tonic publishes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuromorph.data.datasets.base import EventDataset
from neuromorph.data.events import EVENT_DTYPE
from neuromorph.errors import DataFormatError


class DVSGesture(EventDataset):
    """DVS Gesture split: ``ds[i] -> (EVENT_DTYPE events, label 0-10)``; sensor (128, 128, 2).

    ``root`` holds ``ibmGestureTrain/user<NN>_<lighting>/<label>.npy`` (and ``ibmGestureTest``); each file
    is a float array ``[N, 4]`` with columns x, y, p, t in ms, converted to t in µs as Tonic does.
    ``self.users`` and ``self.lighting`` give each sample's subject and lighting condition.
    """

    name = "dvsgesture"

    def _find(self, root: Path) -> Path | None:
        folder = root / self.manifest["splits"][self.split]["folder"]
        return folder if folder.is_dir() and any(folder.glob("user*_*/*.npy")) else None

    def _index(self, location: Path) -> None:
        files = sorted(location.glob("user*_*/*.npy"), key=lambda p: (p.parent.name, int(p.stem)))
        self._items = files
        self.targets = np.array([int(p.stem) for p in files], dtype=np.int64)
        self.users = [int(p.parent.name.split("_", 1)[0][4:]) for p in files]
        self.lighting = [p.parent.name.split("_", 1)[1] for p in files]

    def _read(self, i: int) -> np.ndarray:
        path = self._items[i]
        try:
            raw = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataFormatError(f"not a readable .npy array: {exc}", path=path) from None
        if raw.ndim != 2 or raw.shape[1] != 4 or not np.all(np.isfinite(raw)):
            raise DataFormatError(f"expected a finite [N, 4] array (x, y, p, t ms), got {raw.dtype} {raw.shape}", path=path)
        w, h, _ = self.sensor_size
        x, y, p = raw[:, 0], raw[:, 1], raw[:, 2]
        bad = (x < 0) | (x >= w) | (y < 0) | (y >= h) | ((p != 0) & (p != 1))
        if bad.any():
            j = int(np.argmax(bad))
            raise DataFormatError(f"event {j} (x={x[j]}, y={y[j]}, p={p[j]}) is outside the {w}x{h}x2 sensor", path=path)
        ev = np.empty(len(raw), EVENT_DTYPE)
        ev["x"], ev["y"], ev["p"] = x, y, p
        ev["t"] = np.rint(raw[:, 3] * 1000.0)
        return ev
