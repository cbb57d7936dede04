"""SHD and SSC (Cramer et al., IEEE TNNLS 2020): one HDF5 file per split, samples read lazily."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuromorph.data.datasets.base import EventDataset
from neuromorph.data.readers import read_shd_sample, shd_info
from neuromorph.errors import DatasetError


class _HDF5Spikes(EventDataset):
    folder = ""

    def _find(self, root: Path) -> Path | None:
        fname = self.manifest["splits"][self.split]["file"]
        for cand in (root / fname, root / self.folder / fname):
            if cand.is_file():
                return cand
        # a file in the same HDF5 layout under another prefix (e.g. shd_fsdd_train.h5) when it is the only one
        others = sorted(root.glob(f"*_{self.split}.h5"))
        return others[0] if len(others) == 1 else None

    def _index(self, location: Path) -> None:
        info = shd_info(location)
        self._items = range(info["samples"])
        import h5py  # labels are small; read them once

        with h5py.File(location, "r") as h5:
            self.targets = np.asarray(h5["labels"][:], dtype=np.int64)
        if info["keys"]:  # the file's own class names win: a file in SHD's layout may hold other classes
            self.classes = list(info["keys"])
        if len(self.targets) and self.classes and self.targets.max() >= len(self.classes):
            raise DatasetError(
                f"{location}: label {int(self.targets.max())} but the data set declares {len(self.classes)} classes"
            )

    def _read(self, i: int) -> np.ndarray:
        return read_shd_sample(self.location, i, int(self.manifest["n_units"]))[0]


class SHD(_HDF5Spikes):
    """Spiking Heidelberg Digits split: ``ds[i] -> (AUDIO_EVENT_DTYPE events (t µs, unit), label)``.

    ``root`` holds ``shd_train.h5`` / ``shd_test.h5`` (or ``root/SHD/...``, or a single ``*_train.h5`` /
    ``*_test.h5`` in SHD's layout, such as shd_fsdd). 700 units; the classes are the file's ``extra/keys``
    when it has them (20 for SHD), else the manifest's.
    For the delay network use ``transform=ToSpikeCounts(700, 10_000, 5)`` (Hammouamri et al., ICLR 2024:
    10 ms bins, 700 channels in groups of 5).
    """

    name = "shd"
    folder = "SHD"


class SSC(_HDF5Spikes):
    """Spiking Speech Commands split ("train", "valid", "test"); 35 classes named by the file's ``extra/keys``."""

    name = "ssc"
    folder = "SSC"
