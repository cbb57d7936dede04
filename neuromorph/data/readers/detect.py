"""``read(path)``: pick the reader from the file's header (magic bytes), then its extension.

Signatures checked, in order (first bytes of the file):
``#!AER-DAT4.0`` AEDAT4 · ``#!AER-DAT3.`` AEDAT 3.1 · ``#!AER-DAT2.0`` AEDAT 2.0 · ``#!AER-DAT1.0``
AEDAT 1.0 · ``Event Stream`` .es · ``\\x89HDF`` SHD/SSC HDF5 · ``%`` lines with ``evt 2.0``/``evt 3.0`` or
``format EVT2/EVT3`` Prophesee RAW, other ``%`` headers with a ``.dat`` name Prophesee DAT. Headerless
formats go by extension: ``.bin`` is the 40-bit ATIS layout (N-MNIST, DVS128 crops).
Anything else raises DataFormatError at offset 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from neuromorph.data.readers import aedat, aedat4, atis, eventstream, hdf5_spikes, prophesee
from neuromorph.data.readers._common import PathLike
from neuromorph.errors import DataFormatError, check_choice

FORMATS = ("atis_bin", "nmnist", "dvs128_bin", "evt2", "evt3", "dat", "es", "aedat_addresses", "aedat2",
           "aedat31", "aedat4", "shd")


def detect_format(path: PathLike) -> str:
    """Name of the format of ``path`` (one of ``FORMATS``), from its first bytes and extension."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such event file", path=path)
    with open(p, "rb") as f:
        head = f.read(4096)
    suffix = p.suffix.lower()
    if head.startswith(aedat4.MAGIC[:12]):
        return "aedat4"
    if head.startswith(b"#!AER-DAT3."):
        return "aedat31"
    if head.startswith(b"#!AER-DAT2.0"):
        return "aedat2"
    if head.startswith(b"#!AER-DAT1.0"):
        return "aedat_addresses"
    if head.startswith(eventstream.MAGIC):
        return "es"
    if head.startswith(hdf5_spikes.HDF5_MAGIC):
        return "shd"
    if head.startswith(b"%"):
        text = head.decode("latin-1").lower()
        if re.search(r"^% *evt *2\.0", text, re.M) or re.search(r"^% *format *evt2", text, re.M):
            return "evt2"
        if re.search(r"^% *evt *3\.0", text, re.M) or re.search(r"^% *format *evt3", text, re.M):
            return "evt3"
        if suffix == ".dat":
            return "dat"
        raise DataFormatError("'%' header names no EVT 2.0/3.0 format and the file is not a .dat", path=path, offset=0)
    if suffix == ".bin":
        return "atis_bin"
    if suffix == ".aedat":
        raise DataFormatError("headerless jAER .aedat file: call read_aedat_addresses(path, address_bytes=2 or 4)",
                              path=path, offset=0)
    raise DataFormatError("unknown event file format (no known header, extension "
                          f"{suffix or 'none'!r})", path=path, offset=0)


def _aedat2_chip(path: PathLike) -> str:
    fields, _ = aedat.parse_aedat_header(path)
    text = "\n".join(fields["lines"]).upper()
    for key, chip in (("DVS128", "dvs128"), ("TMPDIFF128", "dvs128"), ("DAVIS346", "davis346"), ("DAVIS240", "davis240")):
        if key in text:
            return chip
    raise DataFormatError("AEDAT 2.0 header names no known chip (DVS128, DAVIS240, DAVIS346): call "
                          "read_aedat2(path, chip=...)", path=path, offset=0)


def read(path: PathLike, format: str | None = None, **options) -> "np.ndarray | tuple[list[np.ndarray], np.ndarray]":
    """Read any supported event file; ``format`` (see ``FORMATS``) overrides detection.

    Returns an EVENT_DTYPE array (x, y, t µs, p) for vision formats, an AUDIO_EVENT_DTYPE array for
    AEDAT 1.0 address streams, and ``(samples, labels)`` for multi-sample SHD/SSC HDF5 files.
    ``options`` go to the format's reader (e.g. ``sensor_size=``, ``chip=``, ``stream_id=``).
    """
    fmt = detect_format(path) if format is None else format
    check_choice("format", fmt, FORMATS)
    if fmt == "aedat2" and "chip" not in options:
        options["chip"] = _aedat2_chip(path)
    readers = {
        "atis_bin": atis.read_atis_bin, "nmnist": atis.read_nmnist, "dvs128_bin": atis.read_dvs128_bin,
        "evt2": prophesee.read_evt2, "evt3": prophesee.read_evt3, "dat": prophesee.read_dat,
        "es": eventstream.read_es, "aedat_addresses": aedat.read_aedat_addresses, "aedat2": aedat.read_aedat2,
        "aedat31": aedat.read_aedat31, "aedat4": aedat4.read_aedat4, "shd": hdf5_spikes.read_shd,
    }
    return readers[fmt](path, **options)


def declared_sensor_size(path: PathLike, fmt: str) -> tuple[int, ...] | None:
    """The sensor size a file declares in its header ((width, height); (units,) for SHD), or None."""
    if fmt in ("evt2", "evt3"):
        return prophesee.parse_raw_header(path)[0].get("sensor_size")
    if fmt == "dat":
        return prophesee.parse_dat_header(path)[0].get("sensor_size")
    if fmt == "es":
        return eventstream.parse_es_header(path)[0]["sensor_size"]
    if fmt == "aedat4":
        s = aedat4.aedat4_streams(path)
        ids = sorted(i for i, v in s.items() if v.get("type") == "EVTS")
        info = s[ids[0]] if ids else {}
        return (info["sizeX"], info["sizeY"]) if "sizeX" in info and "sizeY" in info else None
    if fmt == "aedat31":
        return aedat._sensor_from_sources(aedat.parse_aedat_header(path)[0])
    if fmt == "aedat2":
        return aedat.CHIPS[_aedat2_chip(path)]
    if fmt == "nmnist":
        return atis.NMNIST_SENSOR
    if fmt == "dvs128_bin":
        return atis.DVS128_SENSOR
    if fmt == "shd":
        return (hdf5_spikes.SHD_UNITS,)
    return None


def summarize(path: PathLike, format: str | None = None, **options) -> dict:
    """Format, event count, declared sensor size, coordinate and time ranges of one file (for the CLI).

    ``options`` go to the reader, as in :func:`read`.
    """
    fmt = detect_format(path) if format is None else format
    data = read(path, format=fmt, **options)
    info: dict = {"path": str(path), "format": fmt, "sensor_size": declared_sensor_size(path, fmt)}
    if fmt == "shd":
        samples, labels = data
        n = [len(s) for s in samples]
        info.update(samples=len(samples), events=int(sum(n)),
                    classes=int(labels.max()) + 1 if len(labels) else 0,
                    t_first_us=min((int(s["t"][0]) for s in samples if len(s)), default=None),
                    t_last_us=max((int(s["t"][-1]) for s in samples if len(s)), default=None))
        return info
    ev: np.ndarray = data
    info["events"] = int(len(ev))
    if len(ev):
        info["t_first_us"], info["t_last_us"] = int(ev["t"].min()), int(ev["t"].max())
        info["duration_us"] = info["t_last_us"] - info["t_first_us"]
        for k in ("x", "y", "unit"):
            if k in ev.dtype.names:
                info[f"{k}_range"] = [int(ev[k].min()), int(ev[k].max())]
        if "p" in ev.dtype.names:
            info["on_events"] = int((ev["p"] > 0).sum())
    return info
