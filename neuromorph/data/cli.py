"""``neuromorph data ...`` commands: ``data read FILE [--format F] [--json]``.

``data read`` prints the detected format, event count, declared sensor size and time span of one event
file (see :func:`neuromorph.data.readers.detect.summarize`). Heavy imports stay inside the handler so
``neuromorph --help`` stays fast.
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    """Add the ``data`` command and its subcommands to the top-level parser."""
    p = subparsers.add_parser("data", help="inspect event data files", description="Inspect event data files.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    r = sub.add_parser("read", help="read one event file and summarise it",
                       description="Read an event file (N-MNIST/ATIS .bin, Prophesee EVT2/EVT3/DAT, AEDAT 1.0-4.0, "
                                   "Event Stream .es, SHD/SSC HDF5) and print its format, event count, sensor size "
                                   "and time span. Damaged files exit with status 1 and name the byte offset.")
    r.add_argument("file", help="path of the event file")
    r.add_argument("--format", default=None, help="skip detection and use this reader (e.g. nmnist, dvs128_bin, evt3)")
    r.add_argument("--address-bytes", type=int, choices=(2, 4), default=None,
                   help="headerless jAER .aedat (with --format aedat_addresses): bytes per address")
    r.add_argument("--tick-us", type=float, default=None,
                   help="with --format aedat_addresses: timestamp tick in µs (default 1; FPGA cochleas: 0.2)")
    r.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    r.set_defaults(func=_cmd_read)
    p.set_defaults(func=lambda args: p.error("choose a subcommand: read"))


def _cmd_read(args) -> int:
    # errors go to neuromorph.cli.main, which reports them per the CLI error contract
    from neuromorph.data.readers.detect import FORMATS, summarize
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
    info = summarize(args.file, format=args.format, **options)
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
