"""Atomic file writes, shared by everything the package saves (checkpoints, exports, reports, caches).

The data goes to a temporary file in the target's folder, which is renamed onto the target only when
writing succeeded (``os.replace`` is atomic within one file system on POSIX and Windows). A crash,
an exception or Ctrl-C leaves the previous file untouched and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_write_bytes", "current_umask"]

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc), else by setting and
    restoring it under a lock (POSIX has no read-only call)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", fsync: bool = False) -> Iterator[Path]:
    """Yield a new empty temporary file beside ``path``; write it inside the ``with`` block.

    On a clean exit the file gets the permissions of a plainly created one (mkstemp makes it 0600), is
    optionally fsynced, and replaces ``path``; on any exception it is removed. ``suffix`` matters to
    writers that pick the format from the name (matplotlib's ``savefig``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)
