"""``neuromorph data ...`` commands: ``data read FILE [--format F] [--json]``.

``data read`` prints the detected format, event count, declared sensor size and time span of one event
file (see :func:`neuromorph.data.readers.detect.summarize`; ``--json`` adds the header's fields). Errors
advise the flags that would read the file (``--address-bytes 2``), never the readers' Python keywords.
Heavy imports stay inside the handler so ``neuromorph --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json

#: the reader option each ``data read`` flag sets: one table for parsing and for naming the flags in errors
#: (readers advise their own option names, e.g. ``address_bytes=2``; the CLI shows ``--address-bytes 2``)
FLAGS = {"format": "--format", "address_bytes": "--address-bytes", "timestamp_tick_us": "--tick-us", "chip": "--chip"}


def _flag(option: str) -> str:
    return FLAGS.get(option, f"--{option.replace('_', '-')}")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def register(subparsers) -> None:
    """Add the ``data`` command and its subcommands to the top-level parser."""
    p = subparsers.add_parser("data", help="inspect event data files", description="Inspect event data files.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    r = sub.add_parser("read", help="read one event file and summarise it",
                       description="Read an event file (N-MNIST/ATIS .bin, Prophesee EVT2/EVT3/DAT, AEDAT 1.0-4.0, "
                                   "Event Stream .es, SHD/SSC HDF5) and print its format, event count, sensor size "
                                   "and time span. Damaged files exit with status 1 and name the byte offset.")
    r.add_argument("file", help="path of the event file")
    r.add_argument(FLAGS["format"], dest="format", default=None,
                   help="skip detection and use this reader (e.g. nmnist, dvs128_bin, evt3)")
    r.add_argument(FLAGS["address_bytes"], dest="address_bytes", type=int, choices=(2, 4), default=None,
                   help="headerless jAER .aedat (with --format aedat_addresses): bytes per address")
    r.add_argument(FLAGS["timestamp_tick_us"], dest="tick_us", type=_positive_float, default=None,
                   help="with --format aedat_addresses: timestamp tick in µs (default 1; FPGA cochleas: 0.2)")
    r.add_argument(FLAGS["chip"], dest="chip", default=None, choices=("dvs128", "davis240", "davis346"),
                   help="with --format aedat2 (AEDAT 2.0 whose header names no known chip): the address layout")
    r.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    r.set_defaults(func=_cmd_read)
    p.set_defaults(func=lambda args: p.error("choose a subcommand: read"))


def _summarize(path: str, format: str | None, options: dict) -> dict:
    """``summarize`` for the CLI: a DataFormatError's advice names this command's flags, not reader keywords."""
    from neuromorph.data.readers.detect import summarize
    from neuromorph.errors import DataFormatError

    try:
        return summarize(path, format=format, **options)
    except DataFormatError as exc:
        exc.respell(_flag)
        raise


def _cmd_read(args) -> int:
    # errors go to neuromorph.cli.main, which reports them per the CLI error contract
    from neuromorph.data.readers.detect import FORMATS
    from neuromorph.errors import UsageError

    if args.format is not None and args.format not in FORMATS:
        raise UsageError(f"--format {args.format!r} is not one of {', '.join(FORMATS)}", field="--format")
    options = {}
    if args.address_bytes is not None or args.tick_us is not None:
        if args.format != "aedat_addresses":
            raise UsageError("--address-bytes/--tick-us apply to --format aedat_addresses",
                             field="--address-bytes" if args.address_bytes is not None else "--tick-us")
        if args.address_bytes is not None:
            options["address_bytes"] = args.address_bytes
        if args.tick_us is not None:
            options["timestamp_tick_us"] = args.tick_us
    if args.chip is not None:
        if args.format != "aedat2":
            raise UsageError("--chip applies to --format aedat2", field="--chip")
        options["chip"] = args.chip
    info = _summarize(args.file, args.format, options)
    if args.json:
        print(json.dumps(info))
        return 0
    size = "x".join(map(str, info["sensor_size"])) if info.get("sensor_size") else "not declared"
    lines = [f"file:        {info['path']}", f"format:      {info['format']}", f"events:      {info['events']:,}",
             f"sensor size: {size}"]
    if "samples" in info:
        lines.append(f"samples:     {info['samples']:,} ({info['classes']} classes)")
    if info.get("t_first_us") is not None:
        span = info["t_last_us"] - info["t_first_us"]
        lines.append(f"time:        {info['t_first_us']} .. {info['t_last_us']} µs (span {span / 1e3:.3f} ms)")
    for k in ("x_range", "y_range", "unit_range"):
        if k in info:
            lines.append(f"{k.replace('_', ' ') + ':':<13}{info[k][0]} .. {info[k][1]}")
    print("\n".join(lines))
    return 0
