"""N-MNIST / ATIS 40-bit ``.bin`` files (also DVS128 recordings stored in the same layout).

Format (Orchard et al. 2015, "Converting static image datasets to spiking neuromorphic datasets using
saccades", and their reference reader ``Read_Ndataset.m``): a headerless stream of 5-byte records,

    byte 0: x (8 bit)      byte 1: y (8 bit)
    byte 2: bit 7 = polarity, bits 6..0 = timestamp bits 22..16
    byte 3: timestamp bits 15..8      byte 4: timestamp bits 7..0       (timestamp in µs)

A record with y == 240 is a timestamp-overflow marker, not an event: the reference reader adds
``2**13`` µs to every later timestamp (``timeIncrement = 2^13`` in Read_Ndataset.m; Tonic's
``read_mnist_file`` does the same). We follow that reference exactly so results equal theirs. The
DVS128 files of slayerPytorch use the same layout without overflow markers (slayer's ``read2Dspikes``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numba
import numpy as np

from neuromorph.data.events import EVENT_DTYPE
from neuromorph.data.readers._common import (
    DEFAULT_CHUNK_EVENTS,
    PathLike,
    check_sensor_size,
    read_bytes,
)
from neuromorph.errors import DataFormatError

RECORD_BYTES = 5
OVERFLOW_Y = 240
OVERFLOW_INCREMENT_US = 1 << 13
NMNIST_SENSOR = (34, 34)
DVS128_SENSOR = (128, 128)


@numba.njit(cache=True, nogil=True)
def _decode_atis(buf, x, y, t, p, t_offset, use_overflow, width, height):
    """Decode whole 5-byte records; returns (n_events, t_offset, bad_record) with bad_record=-1 if fine."""
    n_rec = buf.shape[0] // 5
    k = 0
    for i in range(n_rec):
        j = 5 * i
        xi = np.int64(buf[j])
        yi = np.int64(buf[j + 1])
        b2 = np.int64(buf[j + 2])
        if use_overflow and yi == 240:
            t_offset += 8192
            continue
        if width > 0 and (xi >= width or yi >= height):
            return k, t_offset, i
        x[k] = xi
        y[k] = yi
        p[k] = b2 >> 7
        t[k] = (((b2 & 127) << 16) | (np.int64(buf[j + 3]) << 8) | np.int64(buf[j + 4])) + t_offset
        k += 1
    return k, t_offset, -1


def _decode_chunk(buf: np.ndarray, t_offset: int, overflow: bool, sensor, path, base_offset: int):
    n = buf.shape[0] // RECORD_BYTES
    out = np.empty(n, dtype=EVENT_DTYPE)
    w, h = sensor if sensor is not None else (0, 0)
    k, t_offset, bad = _decode_atis(buf, out["x"], out["y"], out["t"], out["p"], t_offset, overflow, w, h)
    if bad >= 0:
        off = base_offset + bad * RECORD_BYTES
        raise DataFormatError(
            f"record {bad + base_offset // RECORD_BYTES} has x={int(buf[bad * 5])}, y={int(buf[bad * 5 + 1])} "
            f"outside the declared sensor {w}x{h}",
            path=path,
            offset=off,
        )
    return out[:k], t_offset


def _check_length(path: PathLike, size: int) -> None:
    if size % RECORD_BYTES:
        whole = size - size % RECORD_BYTES
        raise DataFormatError(
            f"file length {size} is not a whole number of {RECORD_BYTES}-byte ATIS records "
            f"(truncated after {whole // RECORD_BYTES} records?)",
            path=path,
            offset=whole,
        )


def read_atis_bin(path: PathLike, sensor_size: tuple[int, int] | None = None, overflow_markers: bool = True) -> np.ndarray:
    """Read a 40-bit ATIS ``.bin`` file (N-MNIST, N-Caltech101 layout) into an EVENT_DTYPE array.

    ``sensor_size`` = (width, height): every event must lie inside it (else DataFormatError naming the
    record's byte offset). ``overflow_markers``: treat y == 240 records as timestamp overflows
    (+2**13 µs, as Orchard's Read_Ndataset.m); set False for layouts without them (DVS128).
    Raises DataFormatError if the length is not a multiple of 5 bytes.
    """
    sensor = check_sensor_size(sensor_size, path)
    buf = read_bytes(path)
    _check_length(path, buf.shape[0])
    events, _ = _decode_chunk(buf, 0, overflow_markers, sensor, path, 0)
    return events


def iter_atis_bin(
    path: PathLike,
    sensor_size: tuple[int, int] | None = None,
    overflow_markers: bool = True,
    chunk_events: int = DEFAULT_CHUNK_EVENTS,
) -> Iterator[np.ndarray]:
    """Stream a 40-bit ATIS ``.bin`` file in chunks of at most ``chunk_events`` events (bounded memory).

    Same decoding and checks as :func:`read_atis_bin`; concatenating the chunks gives its result.
    """
    sensor = check_sensor_size(sensor_size, path)
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such event file", path=path)
    _check_length(path, p.stat().st_size)
    chunk_bytes = max(1, int(chunk_events)) * RECORD_BYTES
    t_offset = 0
    base = 0
    with open(p, "rb") as f:
        while True:
            data = f.read(chunk_bytes)
            if not data:
                break
            if len(data) % RECORD_BYTES:  # file changed under us
                raise DataFormatError("file ends inside a 5-byte record", path=path, offset=base + len(data))
            buf = np.frombuffer(data, dtype=np.uint8)
            events, t_offset = _decode_chunk(buf, t_offset, overflow_markers, sensor, path, base)
            base += len(data)
            if len(events):
                yield events


def read_nmnist(path: PathLike) -> np.ndarray:
    """Read one N-MNIST sample (40-bit ATIS ``.bin``, 34×34 sensor) into an EVENT_DTYPE array.

    Fields x, y (0..33), t (µs, int64), p (0 = OFF, 1 = ON) in file order. Format and overflow rule:
    Orchard et al. 2015 (Read_Ndataset.m); identical to Tonic's ``read_mnist_file``.
    """
    return read_atis_bin(path, sensor_size=NMNIST_SENSOR, overflow_markers=True)


def read_dvs128_bin(path: PathLike) -> np.ndarray:
    """Read a DVS128 recording stored in the 40-bit layout (slayerPytorch ``read2Dspikes``), 128×128.

    No overflow markers in this layout: a y of 240 is out of the sensor and raises DataFormatError.
    """
    return read_atis_bin(path, sensor_size=DVS128_SENSOR, overflow_markers=False)
