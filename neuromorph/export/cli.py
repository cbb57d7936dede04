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
    from neuromorph.train.model_args import add_loader_arguments  # light: argparse only

    add_loader_arguments(p, recipe=False)
    p.set_defaults(func=_cmd_export)


def _run(args) -> dict[str, Any]:
    # the same function as the automatic export after `neuromorph train` (one path, one verdict)
    from neuromorph.errors import HardwareConstraintError
    from neuromorph.export.pipeline import export_checkpoint
    from neuromorph.train.model_args import loader_options

    res = export_checkpoint(args.checkpoint, args.to, args.out, check=args.check, dt=args.dt, steps=args.steps,
                            strict=not args.non_strict, **loader_options(args))
    result = {"checkpoint": str(args.checkpoint), **res.as_dict()}
    if res.check is not None and not args.json:
        print(res.check.table())
    if not res.written:
        bad = res.check.violations() if res.check is not None else []
        exc = HardwareConstraintError(f"{res.error}; nothing written", file=str(args.checkpoint),
                                      layer=str(bad[0]["layer"]) if bad else None)
        exc.context = {k: v for k, v in result.items() if k != "error"}
        raise exc
    for note in res.notes:
        print(f"neuromorph export: note: {note}", file=sys.stderr)
    for w in res.warnings:
        print(f"neuromorph export: warning: {w}", file=sys.stderr)
    return result


def _cmd_export(args) -> int:
    # errors go to neuromorph.cli.main, which reports them per the CLI error contract
    result = _run(args)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(f"wrote {result['out']}")
        if result.get("peers"):
            from neuromorph.export.peers import format_peer_report

            print(format_peer_report(result["peers"]))
    return 0
