"""``neuromorph export CKPT --to nir|lava [--out FILE] [--check loihi2] [--json]``.

Loads a checkpoint (``neuromorph.train.checkpoint.load_model``), optionally checks it against a hardware
profile (pass/fail table naming each offending layer and what to change) and writes the NIR graph or the
Lava netx HDF5 file. With ``--check``, a failing check writes nothing and exits with status 1.
Heavy imports are lazy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
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
    import warnings

    import torch

    from neuromorph.errors import CheckpointError, ConfigError
    from neuromorph.train import checkpoint as ck
    from neuromorph.train.model_args import loader_options

    model, info = ck.load_model(args.checkpoint, **loader_options(args))
    shape = info.get("input_shape")
    if not shape:
        raise CheckpointError(f"checkpoint {args.checkpoint!r} records no input_shape; cannot build a tracing sample "
                              f"(save the model with neuromorph.save_model(..., input_shape=...))", file=args.checkpoint)
    steps = args.steps if args.steps is not None else int((info.get("data") or {}).get("n_steps", 0) or (info.get("recipe") or {}).get("n_time_bins", 0) or 10)
    if steps < 1:
        raise ConfigError(f"--steps={steps} must be >= 1", field="--steps")
    sample = torch.zeros((steps, 1, *shape))
    dt = args.dt  # None: the neurons' own dt, else 1e-4 s
    ckpt = Path(args.checkpoint)
    out = Path(args.out) if args.out else ckpt.with_suffix(".nir" if args.to == "nir" else ".net.h5")
    result: dict[str, Any] = {"checkpoint": str(ckpt), "to": args.to, "out": str(out), "written": False, "check": None}
    if args.check:
        from neuromorph.errors import HardwareConstraintError
        from neuromorph.export.constraints import check_model

        rep = check_model(model, sample, args.check, dt=dt)
        result["check"] = rep.as_dict()
        if not args.json:
            print(rep.table())
        if not rep.ok:
            bad = rep.violations()
            exc = HardwareConstraintError(
                f"model violates {rep.profile} constraints: " + "; ".join(f"{r['layer']} {r['check']}" for r in bad)
                + "; nothing written", file=str(ckpt), layer=str(bad[0]["layer"]))
            exc.context = {k: v for k, v in result.items() if k != "error"}
            raise exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.to == "nir":
            from neuromorph.export.nir import to_nir, write_nir
            from neuromorph.export.peers import peer_report

            graph = to_nir(model, sample, strict=not args.non_strict, dt=dt)
            write_nir(graph, out)
            result["nodes"] = len(graph.nodes)
            result["peers"] = peer_report(graph)  # what snnTorch/Norse/SpikingJelly/Sinabs cannot do with the file
        else:
            from neuromorph.export.lava import to_lava
            from neuromorph.export.netx import read_netx

            to_lava(model, out, sample, dt=dt)
            result["layers"] = [
                {"name": l.name, "kind": l.kind, "shape": list(l.shape), "weight_exponent": l.weight_exponent,
                 "vThMant": l.v_th_mant, "iDecay": l.i_decay, "vDecay": l.v_decay, "delays": l.delay is not None}
                for l in read_netx(out).layers
            ]
    result["written"] = True
    result["warnings"] = [str(w.message) for w in caught]
    for w in result["warnings"]:
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
