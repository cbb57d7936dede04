"""N-MNIST (Orchard et al., Front. Neurosci. 2015): 40-bit ATIS ``.bin`` files, one per sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuromorph.data.datasets.base import EventDataset
from neuromorph.data.readers import read_nmnist


class NMNIST(EventDataset):
    """N-MNIST split: ``ds[i] -> (EVENT_DTYPE events, label)``; sensor (34, 34, 2), classes "0".."9".

    ``root`` holds ``Train/<label>/<id>.bin`` and ``Test/...`` (the official archives' layout; also
    found under ``root/NMNIST``). Samples are ordered by label, then file name.
    """

    name = "nmnist"

    def _find(self, root: Path) -> Path | None:
        folder = self.manifest["splits"][self.split]["folder"]
        for cand in (root / folder, root / "NMNIST" / folder):
            if cand.is_dir() and any(cand.glob("[0-9]/*.bin")):
                return cand
        return None

    def _index(self, location: Path) -> None:
        files = sorted(location.glob("[0-9]/*.bin"), key=lambda p: (int(p.parent.name), p.name))
        self._items = files
        self.targets = np.array([int(p.parent.name) for p in files], dtype=np.int64)

    def _read(self, i: int) -> np.ndarray:
        return read_nmnist(self._items[i])
