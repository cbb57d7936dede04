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

from neuromorph.data.events import EventArray
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
        guess = aedat.guess_address_bytes(path, 0)
        raise DataFormatError("headerless jAER .aedat file: its record layout (address size) must be given",
                              path=path, offset=0,
                              options={"format": "aedat_addresses", "address_bytes": guess or (2, 4)})
    raise DataFormatError("unknown event file format (no known header, extension "
                          f"{suffix or 'none'!r})", path=path, offset=0)


def _aedat2_chip(path: PathLike) -> str:
    fields, _ = aedat.parse_aedat_header(path)
    text = "\n".join(fields["lines"]).upper()
    for key, chip in (("DVS128", "dvs128"), ("TMPDIFF128", "dvs128"), ("DAVIS346", "davis346"), ("DAVIS240", "davis240")):
        if key in text:
            return chip
    raise DataFormatError("AEDAT 2.0 header names no known chip (DVS128, DAVIS240, DAVIS346): the address layout "
                          "must be given", path=path, offset=0,
                          options={"format": "aedat2", "chip": tuple(aedat.CHIPS)})


def read(path: PathLike, format: str | None = None, **options) -> "EventArray | tuple[list[np.ndarray], np.ndarray]":
    """Read any supported event file; ``format`` (see ``FORMATS``) overrides detection.

    Returns an :class:`~neuromorph.data.events.EventArray`: the EVENT_DTYPE array (x, y, t µs, p) of a
    vision format or the AUDIO_EVENT_DTYPE array of an AEDAT 1.0 address stream, with the file's
    ``sensor_size`` (width, height) as its header declares it, its ``format`` and ``header`` fields and
    ``path``. Multi-sample SHD/SSC HDF5 files give ``(samples, labels)``.
    ``options`` go to the format's reader (e.g. ``sensor_size=``, ``chip=``, ``stream_id=``,
    ``address_bytes=``); a file the options do not fit raises DataFormatError advising the ones that do.
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
    data = readers[fmt](path, **options)
    if fmt == "shd":
        return data
    sensor, header = _file_info(path, fmt, options)
    return EventArray.of(data, sensor_size=sensor, format=fmt, header=header, path=path)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _file_info(path: PathLike, fmt: str, options: dict) -> tuple[tuple[int, ...] | None, dict]:
    """(sensor size, header fields) of a file read as ``fmt`` with the reader ``options``.

    The sensor is (width, height) as the header declares it or the format implies it ((units,) for
    SHD); a ``sensor_size``/``chip`` option given to the reader wins, since the events were checked
    against it.
    """
    header: dict = {}
    sensor = None
    if fmt in ("evt2", "evt3"):
        header = prophesee.parse_raw_header(path)[0]
        sensor = header.get("sensor_size")
    elif fmt == "dat":
        header = prophesee.parse_dat_header(path)[0]
        sensor = header.get("sensor_size")
    elif fmt == "es":
        header = eventstream.parse_es_header(path)[0]
        sensor = header["sensor_size"]
    elif fmt == "aedat4":
        header = aedat4.parse_aedat4_header(path)[0]
        s = header["streams"]
        sid = options.get("stream_id")
        if sid is None:
            ids = sorted(i for i, v in s.items() if v.get("type") == "EVTS")
            sid = ids[0] if ids else None
        info = s.get(sid, {})
        sensor = (info["sizeX"], info["sizeY"]) if "sizeX" in info and "sizeY" in info else None
    elif fmt in ("aedat31", "aedat2", "aedat_addresses"):
        header = aedat.parse_aedat_header(path)[0]
        if fmt == "aedat31":
            sensor = aedat._sensor_from_sources(header)
        elif fmt == "aedat2":
            sensor = aedat.CHIPS[options.get("chip") or _aedat2_chip(path)]
    elif fmt == "nmnist":
        sensor = atis.NMNIST_SENSOR
    elif fmt == "dvs128_bin":
        sensor = atis.DVS128_SENSOR
    elif fmt == "shd":
        sensor = (hdf5_spikes.SHD_UNITS,)
    if options.get("sensor_size") is not None:
        sensor = tuple(int(v) for v in options["sensor_size"])[:2]
    header.pop("sensor_size", None)  # said once, as the sensor_size attribute
    return (None if sensor is None else tuple(int(v) for v in sensor)), _jsonable(header)


def declared_sensor_size(path: PathLike, fmt: str, **options) -> tuple[int, ...] | None:
    """The sensor size a file declares in its header ((width, height); (units,) for SHD), or None."""
    return _file_info(path, fmt, options)[0]


def summarize(path: PathLike, format: str | None = None, **options) -> dict:
    """Format, event count, sensor size, header fields, coordinate and time ranges of one file (for the CLI).

    ``options`` go to the reader, as in :func:`read`.
    """
    fmt = detect_format(path) if format is None else format
    data = read(path, format=fmt, **options)
    if fmt == "shd":
        info: dict = {"path": str(path), "format": fmt, "sensor_size": declared_sensor_size(path, fmt)}
        samples, labels = data
        n = [len(s) for s in samples]
        info.update(samples=len(samples), events=int(sum(n)),
                    classes=int(labels.max()) + 1 if len(labels) else 0,
                    t_first_us=min((int(s["t"][0]) for s in samples if len(s)), default=None),
                    t_last_us=max((int(s["t"][-1]) for s in samples if len(s)), default=None))
        return info
    ev: EventArray = data
    info = {"path": str(path), "format": fmt, "sensor_size": ev.sensor_size, "header": ev.header,
            "events": int(len(ev))}
    if len(ev):
        info["t_first_us"], info["t_last_us"] = int(ev["t"].min()), int(ev["t"].max())
        info["duration_us"] = info["t_last_us"] - info["t_first_us"]
        for k in ("x", "y", "unit"):
            if k in ev.dtype.names:
                info[f"{k}_range"] = [int(ev[k].min()), int(ev[k].max())]
        if "p" in ev.dtype.names:
            info["on_events"] = int((ev["p"] > 0).sum())
    return info
