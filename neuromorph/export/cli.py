"""``neuromorph export CKPT --to nir|lava [--out FILE] [--check loihi2] [--json]``.

Loads a checkpoint (``neuromorph.train.checkpoint.load_model``), optionally checks it against a hardware
profile (pass/fail table naming each offending layer and what to change) and writes the NIR graph or the
Lava netx HDF5 file. With ``--check``, a failing check writes nothing and exits with status 1.
Heavy imports are lazy.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to NIR or Lava/Loihi netx, with hardware constraint checks",
        description="Export a trained checkpoint to a NIR graph (--to nir) or a lava-dl netx HDF5 file in Loihi fixed point "
        "(--to lava). --check PROFILE (loihi, loihi2 or a .toml path) prints a pass/fail table of the hardware constraints.",
    )
    p.add_argument("checkpoint", help="a checkpoint written by neuromorph train (best.pt / last.pt)")
    p.add_argument("--to", required=True, choices=("nir", "lava"), help="target format")
    p.add_argument("--out", metavar="FILE", help="output file (default: next to the checkpoint, .nir or .net.h5)")
    p.add_argument("--check", metavar="PROFILE", help="hardware profile to check against (loihi, loihi2, or a .toml file)")
    p.add_argument("--dt", type=float, default=None, help="seconds per time step for NIR time constants (default: the neurons' dt, else 1e-4)")
    p.add_argument("--steps", type=int, default=None, help="time steps of the tracing sample (default: the recipe's)")
    p.add_argument("--non-strict", action="store_true",
                   help="NIR only: export soft-reset neurons with a warning instead of an error")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_cmd_export)


def _run(args) -> tuple[dict[str, Any], int]:
    # the same function as the automatic export after `neuromorph train` (one path, one verdict)
    from neuromorph.export.pipeline import export_checkpoint

    res = export_checkpoint(args.checkpoint, args.to, args.out, check=args.check, dt=args.dt, steps=args.steps,
                            strict=not args.non_strict)
    result = {"checkpoint": str(args.checkpoint), **res.as_dict()}
    if res.check is not None and not args.json:
        print(res.check.table())
    for note in res.notes:
        print(f"neuromorph export: note: {note}", file=sys.stderr)
    for w in res.warnings:
        print(f"neuromorph export: warning: {w}", file=sys.stderr)
    return result, 0 if res.written else 1


def _cmd_export(args) -> int:
    from neuromorph.errors import NeuromorphError

    try:
        result, status = _run(args)
    except (NeuromorphError, OSError) as exc:
        if args.json:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "written": False}))
        else:
            print(f"neuromorph export: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, default=str))
    else:
        if result["written"]:
            print(f"wrote {result['out']}")
        elif "error" in result:
            print(f"neuromorph export: {result['error']}; nothing written", file=sys.stderr)
    return status
