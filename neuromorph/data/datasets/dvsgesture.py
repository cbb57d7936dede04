"""DVS128 Gesture (Amir et al., CVPR 2017): IBM's official AEDAT 3.1 layout or Tonic's per-trial ``.npy``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from neuromorph.data.datasets.base import EventDataset
from neuromorph.data.events import EVENT_DTYPE
from neuromorph.data.readers import read_aedat31
from neuromorph.errors import DataFormatError


class DVSGesture(EventDataset):
    """DVS Gesture split: ``ds[i] -> (EVENT_DTYPE events, label 0-10)``; sensor (128, 128, 2).

    Two layouts under ``root`` are recognised, the official one first:

    - IBM's release (``DvsGesture.tar.gz``): ``DvsGesture/trials_to_{train,test}.txt`` list the AEDAT 3.1
      recordings ``user<NN>_<lighting>.aedat``; each has ``user<NN>_<lighting>_labels.csv`` with rows
      ``class (1-11), startTime_usec, endTime_usec``. A sample is one labelled gesture: the events with
      ``start <= t < end``, timestamps as recorded (SpikingJelly's ``DVS128Gesture`` cuts them the same
      way), label ``class - 1``.
    - Tonic's figshare archives: ``ibmGestureTrain/user<NN>_<lighting>/<label>.npy``, float ``[N, 4]``
      with columns x, y, p, t in ms, converted to µs as Tonic does.

    ``self.users`` and ``self.lighting`` give each sample's subject and lighting condition.
    """

    name = "dvsgesture"

    def _official(self, root: Path) -> Path | None:
        for folder in (root / "DvsGesture", root):
            if (folder / f"trials_to_{self.split}.txt").is_file():
                return folder
        return None

    def _find(self, root: Path) -> Path | None:
        official = self._official(root)
        if official is not None:
            return official
        folder = root / self.manifest["splits"][self.split]["folder"]
        return folder if folder.is_dir() and any(folder.glob("user*_*/*.npy")) else None

    def _index(self, location: Path) -> None:
        self._recording = (None, None)  # the last AEDAT file read: samples of one trial are adjacent
        if (location / f"trials_to_{self.split}.txt").is_file():
            self._index_official(location)
        else:
            files = sorted(location.glob("user*_*/*.npy"), key=lambda p: (p.parent.name, int(p.stem)))
            self._items = files
            self.targets = np.array([int(p.stem) for p in files], dtype=np.int64)
            trials = [p.parent.name for p in files]
            self.users = [int(t.split("_", 1)[0][4:]) for t in trials]
            self.lighting = [t.split("_", 1)[1] for t in trials]

    def _index_official(self, location: Path) -> None:
        listing = location / f"trials_to_{self.split}.txt"
        items, targets, users, lighting = [], [], [], []
        for line in listing.read_text().split():
            aedat = location / line.strip()
            labels = aedat.with_name(aedat.stem + "_labels.csv")
            if not aedat.is_file() or not labels.is_file():
                raise DataFormatError(f"{listing.name} lists {line!r} but {aedat.name} or {labels.name} is missing",
                                      path=location)
            with open(labels, newline="") as fh:
                rows = list(csv.reader(fh))
            for k, row in enumerate(rows[1:], start=2):  # the first row is the column header
                if not any(v.strip() for v in row):
                    continue  # a blank line (as np.loadtxt, which SpikingJelly uses, skips them)
                try:
                    cls, start, end = (int(v) for v in row[:3])
                except ValueError:
                    raise DataFormatError(f"line {k}: expected class,startTime_usec,endTime_usec, got {row}", path=labels) from None
                if not 1 <= cls <= len(self.classes) or end <= start:
                    raise DataFormatError(f"line {k}: class {cls} (1-{len(self.classes)}) or times {start}..{end} invalid",
                                          path=labels)
                items.append((aedat, start, end))
                targets.append(cls - 1)
                user, light = aedat.stem.split("_", 1)
                users.append(int(user[4:]))
                lighting.append(light)
        self._items, self.targets, self.users, self.lighting = items, np.array(targets, np.int64), users, lighting

    def _read(self, i: int) -> np.ndarray:
        item = self._items[i]
        if isinstance(item, tuple):
            aedat, start, end = item
            if self._recording[0] != aedat:
                self._recording = (aedat, read_aedat31(aedat, sensor_size=self.sensor_size[:2]))
            ev = self._recording[1]
            return ev[(ev["t"] >= start) & (ev["t"] < end)]
        return self._read_npy(item)

    def _read_npy(self, path: Path) -> np.ndarray:
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
