"""Download with checksum verification, resume of partial files and atomic rename; safe extraction.

A download goes to ``<dest>.part``; an interrupted run leaves that file, and the next run asks the
server for the remaining bytes (HTTP ``Range``; a server that ignores it gets the whole file again).
Only after the checksum matches is the file renamed to ``dest`` (``os.replace``: atomic on one file
system), so ``dest`` either does not exist or is complete and verified.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from neuromorph.errors import DatasetError

_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: str | os.PathLike, sha256: str | None = None, md5: str | None = None) -> None:
    """Raise ``DatasetError`` naming the file and both digests unless it matches every given checksum."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_digest(path, algorithm)
            if actual.lower() != expected.lower():
                raise DatasetError(f"{path}: {algorithm} is {actual}, expected {expected} (corrupt or wrong file)")


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    md5: str | None = None,
    opener: Callable | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``), verify it, then rename it into place.

    ``opener(request, timeout=...)`` returns a file-like response (``urllib.request.urlopen`` when None,
    looked up at call time; tests pass their own). An existing ``dest`` that verifies is kept; one that does not is fetched again.
    A checksum mismatch deletes the partial file and raises ``DatasetError``.
    """
    dest = Path(dest)
    opener = opener or urllib.request.urlopen
    if dest.exists():
        try:
            verify(dest, sha256, md5)
            return dest
        except DatasetError:
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = opener(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range beyond the end: the partial file is already complete
            response = None
        else:
            raise DatasetError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DatasetError(f"download of {url} failed: {exc}") from exc
    if response is not None:
        with response:
            status = getattr(response, "status", None) or getattr(response, "code", None)
            # 206 Partial Content: append; anything else is the whole file from byte 0
            mode = "ab" if have and status == 206 else "wb"
            try:
                with open(part, mode) as fh:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        fh.write(block)
            except OSError as exc:
                raise DatasetError(f"download of {url} interrupted ({exc}); rerun to resume from {part}") from exc
    try:
        verify(part, sha256, md5)
    except DatasetError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def extract(archive: str | os.PathLike, into: str | os.PathLike) -> None:
    """Unpack a zip, tar or single-file gzip archive into ``into``, refusing members that would land outside it."""
    archive, into = Path(archive), Path(into).resolve()
    into.mkdir(parents=True, exist_ok=True)

    def safe(name: str, root: Path = into) -> None:
        target = (root / name).resolve()
        if root != target and root not in target.parents:
            raise DatasetError(f"{archive}: member {name!r} would be written outside {into}")

    if zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive):
        # unpack into a staging folder beside the target, then rename each top-level entry into place:
        # an interrupted or failed run leaves only the staging folder, never a half-filled Train/ that
        # passes the layout check
        stage = (into / f".{archive.name}.extracting").resolve()
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir()
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    for name in zf.namelist():
                        safe(name, stage)
                    zf.extractall(stage)
            else:
                with tarfile.open(archive) as tf:
                    for member in tf.getmembers():
                        safe(member.name, stage)
                        if member.issym() or member.islnk():
                            raise DatasetError(f"{archive}: member {member.name!r} is a link; refusing to extract")
                    tf.extractall(stage)
            for entry in sorted(stage.iterdir()):
                target = into / entry.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)  # an earlier, possibly partial unpacking of this same archive
                os.replace(entry, target)
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as exc:
            raise DatasetError(f"{archive}: cannot be unpacked into {into} ({exc})") from exc
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    elif archive.suffix == ".gz":  # a single gzipped file (zenkelab's shd_train.h5.gz)
        # via a temporary name: an interrupted run must not leave a truncated file that looks unpacked
        target, tmp = into / archive.stem, into / (archive.stem + ".part")
        try:
            with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            os.replace(tmp, target)
        except (OSError, EOFError) as exc:
            raise DatasetError(f"{archive}: damaged gzip file ({exc})") from exc
        finally:
            if tmp.exists():
                tmp.unlink()
    else:
        raise DatasetError(f"{archive}: neither a zip, tar nor gzip archive")
