"""Base class of the downloadable event data sets: manifest, local layout, download, disk cache.

Each data set declares its metadata in a manifest ``manifests/<name>.toml`` beside this module (package
data of ``neuromorph.data.datasets``): sensor size, classes, homepage, the expected folder layout and, per split,
the official files with URL and checksum (``sha256`` and/or ``md5``). A data set object

- finds the split under ``root`` in the documented layout and needs no network when it is there;
- otherwise, with ``download=True``, fetches the archives (checksum, resume, atomic rename; see
  ``download.py``), unpacks them into ``root`` and checks the layout again;
- otherwise raises ``DatasetError`` listing the URLs and the exact layout to place the files in.

With ``cache=True`` every transformed sample is stored in the per-user cache
(:func:`neuromorph.data.cache.cache_dir`: ``$NEUROMORPH_CACHE_DIR``, else ``$XDG_CACHE_HOME/neuromorph``,
else ``~/.cache/neuromorph``), under ``datasets/<name>-<split>-<source>/<key>/``; ``cache=<folder>`` puts
the same tree under ``<folder>`` instead. Nothing is written into ``root``, which may be read-only or
shared. ``source`` hashes the resolved path of the split's data and its list of samples, so two data
roots (or a root whose files changed) never share entries; ``key = cache_key(transform)`` hashes the
transform's class names and parameters, so a different transform never reuses another's samples. The
folder in use is ``ds.cache_path`` (also logged at INFO level on ``neuromorph.data``). Each entry
records the sha256 of its payload; an entry that is missing, truncated or altered is recomputed and
rewritten (atomically). A cache folder that cannot be written is reported once with a ``UserWarning``
and the samples are then computed without caching.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from neuromorph._atomic import atomic_write_bytes
from neuromorph._compat import tomllib
from neuromorph.data.cache import CACHE_ENV, cache_dir
from neuromorph.data.datasets.download import download, extract
from neuromorph.data.transforms import cache_key
from neuromorph.errors import ConfigError, DatasetError, check_choice

log = logging.getLogger("neuromorph.data")


def manifests_dir() -> Path:
    """The folder of dataset manifests (``manifests/*.toml``, package data of ``neuromorph.data.datasets``)."""
    return Path(__file__).resolve().parent / "manifests"


def load_manifest(name: str) -> dict:
    """Parse ``<name>.toml`` from ``manifests_dir()``."""
    path = manifests_dir() / f"{name}.toml"
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise DatasetError(f"no dataset manifest {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DatasetError(f"dataset manifest {path} is not valid TOML: {exc}") from exc


class EventDataset:
    """A split of a manifest-declared data set: ``ds[i] -> (sample, label)``.

    Subclasses set ``name`` and implement ``_find(root) -> Path | None`` (the split's data inside
    ``root``, or None), ``_index(location)`` (fills ``self._items`` and ``self.targets``) and
    ``_read(i)`` (the raw events of item i).

    ``cache``: False (default); True to keep every transformed sample in the per-user cache
    (``$NEUROMORPH_CACHE_DIR``, else ``$XDG_CACHE_HOME/neuromorph``, else ``~/.cache/neuromorph``), or a
    folder to keep them there; never inside ``root``. ``self.cache_path`` says where (module docstring).
    """

    name: str = ""

    def __init__(self, root, split: str = "train", transform=None, download: bool = False,
                 cache: bool | str | os.PathLike = False):
        self.manifest = load_manifest(self.name)
        check_choice("split", split, tuple(self.manifest["splits"]))
        if transform is not None and not callable(transform):
            raise ConfigError(f"transform must be callable, got {transform!r}")
        if root is None:
            raise ConfigError(f"{type(self).__name__} needs root: the folder holding the data set\n{self._help()}")
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.sensor_size = tuple(self.manifest["sensor_size"])
        self.classes = list(self.manifest["classes"])
        location = self._find(self.root)
        if location is None and download:
            self.download()
            location = self._find(self.root)
        if location is None:
            raise DatasetError(f"{self.manifest['title']} {split!r} split not found under {self.root}.\n{self._help()}")
        self.location = location
        self._index(location)
        self.cache_path: Path | None = None
        if cache:
            if transform is not None and getattr(transform, "random", True):
                raise ConfigError("cache=True needs a deterministic transform (random augmentation must not be cached)")
            key = cache_key(transform) if transform is not None else "raw"
            base = cache_dir() / "datasets" if cache is True else Path(cache).expanduser()
            self.cache_path = base / f"{self.name}-{split}-{self._source_key()}" / key
            log.info("%s(%r): caching transformed samples in %s", type(self).__name__, split, self.cache_path)

    def _source_key(self) -> str:
        """Hash of where this split's data lives and which samples it lists (so two roots never collide)."""
        loc = Path(self.location).resolve()
        stat = loc.stat()
        # a single file (SHD's HDF5) can be replaced in place: its size and mtime count; a folder's listing does
        ident = {"location": str(loc), "items": [str(it) for it in self._items],
                 "file": [stat.st_size, stat.st_mtime_ns] if loc.is_file() else None}
        return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]

    # -- what the user sees -------------------------------------------------------------------------

    def _help(self) -> str:
        spec = self.manifest["splits"][self.split] if hasattr(self, "split") else None
        lines = [f"Expected layout:{self.manifest['layout']}"]
        splits = [spec] if spec is not None else list(self.manifest["splits"].values())
        lines.append("Official files (download them, or pass download=True with network access):")
        for s in splits:
            for f in s["files"]:
                lines.append(f"  {f['url']}  ->  {f['filename']}")
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {type(self).__name__}({self.split!r}) of {len(self)} samples")
        i = i % len(self)
        label = int(self.targets[i])
        if self.cache_path is not None:
            return self._cached(i), label
        events = self._read(i)
        return (self.transform(events) if self.transform is not None else events), label

    # -- download ---------------------------------------------------------------------------------

    def download(self, opener=None) -> None:
        """Fetch and unpack this split's official files into ``root`` (checksums verified)."""
        kwargs = {} if opener is None else {"opener": opener}
        for f in self.manifest["splits"][self.split]["files"]:
            archive = download(f["url"], self.root / f["filename"], f.get("sha256") or None, f.get("md5") or None, **kwargs)
            extract(archive, self.root)

    # -- disk cache -------------------------------------------------------------------------------

    def _cached(self, i: int):
        path = self.cache_path / f"{i}.npy"
        sample = _load_entry(path)
        if sample is None:
            events = self._read(i)
            sample = self.transform(events) if self.transform is not None else events
            try:
                _save_entry(path, np.asarray(sample))
            except OSError as exc:  # a full or read-only cache must not stop training: go on uncached
                warnings.warn(f"cannot write the sample cache {self.cache_path} ({exc}); continuing without "
                              f"caching (set {CACHE_ENV} or pass cache=<folder> to move it)", UserWarning, stacklevel=3)
                self.cache_path = None
        return sample

    # -- subclass hooks ---------------------------------------------------------------------------

    def _find(self, root: Path) -> Path | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _index(self, location: Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self, i: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


# cache entry: 32-byte sha256 of the .npy payload, then the payload (np.save format, no pickles)


def _save_entry(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    payload = buf.getvalue()
    atomic_write_bytes(path, hashlib.sha256(payload).digest() + payload)


def _load_entry(path: Path) -> np.ndarray | None:
    """The cached array, or None when missing or damaged (its checksum then fails, and it is rebuilt)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    digest, payload = data[:32], data[32:]
    if len(data) < 32 or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        return np.load(io.BytesIO(payload), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
