"""``neuromorph energy CKPT``: per-layer spikes, synops, MACs and energy of a trained checkpoint.

The checkpoint knows its recipe and data set (``neuromorph.train.checkpoint.load_model``); the command
runs the model on the first ``--limit`` samples of a split and prints the per-layer table, or with
``--json`` one JSON object (the :meth:`EnergyReport.to_dict` layout). Heavy imports are lazy.
"""

from __future__ import annotations

import json
from typing import Any


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "energy",
        help="spikes, synaptic operations and energy per layer of a checkpoint",
        description="Count spikes, synaptic operations (exact fan-out), dense MACs and neuron updates per layer "
        "and price them on hardware profiles (hardware/*.toml). Energies are per inference (one sample, all T steps).",
    )
    p.add_argument("checkpoint", nargs="?", help="a checkpoint written by neuromorph train (best.pt / last.pt)")
    p.add_argument("--data-root", "--data", dest="data_root", help="data folder (default: the one used in training)")
    p.add_argument("--inputs", help="instead of the recipe's data: a .pt file holding one tensor [T, B, ...]")
    p.add_argument("--split", default="test", help="test (default), val or train")
    p.add_argument("--limit", type=int, default=64, help="number of samples to measure (default 64)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hardware", default="loihi,cmos45nm",
                   help="comma-separated profile names or .toml paths (default loihi,cmos45nm; 'cmos45nm:int8' picks a precision)")
    p.add_argument("--ann-hardware", default="cmos45nm", help="profile pricing the ANN-equivalent MACs ('none' to skip)")
    p.add_argument("--allow-missing", action="store_true",
                   help="leave out layers a profile cannot price (e.g. MACs on Loihi) instead of failing")
    p.add_argument("--skip-zeros", action="store_true", help="charge real-valued inputs only where nonzero (delta inference)")
    p.add_argument("--counts-as-macs", action="store_true",
                   help="treat integer-valued inputs as real values (dense MACs), not as event counts (synops)")
    p.add_argument("--plot", metavar="PNG", help="write a bar chart of energy per layer")
    p.add_argument("--out", metavar="JSON", help="also write the report as JSON to this file")
    p.add_argument("--list-hardware", action="store_true", help="list the known hardware profiles and exit")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (same as --format json)")
    p.add_argument("--format", choices=("table", "json", "neurobench"), default=None,
                   help="table (default), json, or neurobench: one JSON object with NeuroBench's metric names "
                        "(SynapticOperations: Effective_MACs, Effective_ACs, Dense; ActivationSparsity)")
    from neuromorph.train.model_args import add_loader_arguments  # light: argparse only

    add_loader_arguments(p)
    p.set_defaults(func=_cmd_energy)


def _inputs(args) -> tuple[Any, dict[str, Any], Any]:
    import torch

    from neuromorph.errors import ConfigError, ShapeError
    from neuromorph.train import checkpoint as ck
    from neuromorph.train.model_args import loader_options

    model, info = ck.load_model(args.checkpoint, **loader_options(args))
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit={args.limit} must be at least 1", field="--limit")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size={args.batch_size} must be at least 1", field="--batch-size")
    if args.inputs:
        import pickle
        import zipfile

        from neuromorph.errors import DataFormatError

        try:
            x = torch.load(args.inputs, map_location="cpu", weights_only=True)  # never unpickles code
        except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError) as exc:
            raise DataFormatError(f"--inputs {args.inputs!r} is not a torch tensor file: {exc}", path=args.inputs) from exc
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ShapeError(f"--inputs {args.inputs!r}: expected one tensor [T, B, ...], got {type(x).__name__}",
                             file=args.inputs, field="--inputs")
        x = x[:, : args.limit].to(torch.float32)
        return model, info, [x[:, i : i + args.batch_size] for i in range(0, x.shape[1], args.batch_size)]
    from neuromorph.train.data import load_split
    from neuromorph.train.evaluation import checkpoint_recipe

    recipe = checkpoint_recipe(info, args.checkpoint, args.recipe, data_root=args.data_root)
    data = load_split(recipe, args.split, info.get("data", {}).get("n_steps"))
    n = min(args.limit, len(data))
    batches = (data.batch(torch.arange(i, min(i + args.batch_size, n))) for i in range(0, n, args.batch_size))
    return model, info, batches


def _cmd_energy(args) -> int:
    # errors go to neuromorph.cli.main, which reports them per the CLI error contract
    from neuromorph.energy import list_profiles, measure
    from neuromorph.errors import UsageError

    fmt = args.format or ("json" if args.json else "table")
    args.json = fmt != "table"
    if args.list_hardware:
        names = list_profiles()
        print(json.dumps({"hardware": names}) if args.json else "\n".join(names))
        return 0
    if not args.checkpoint:
        raise UsageError("give a checkpoint (or --list-hardware)", field="checkpoint")
    from neuromorph.export.pipeline import evaluated_form

    model, info, batches = _inputs(args)
    ann = None if str(args.ann_hardware).lower() == "none" else args.ann_hardware
    # the form the recipe evaluates and exports (e.g. integer delays): one network for accuracy, energy, files
    with evaluated_form(model, info, args.checkpoint) as changed:
        report = measure(model, batches, hardware=args.hardware, ann_hardware=ann,
                         skip_zeros=args.skip_zeros, allow_missing=args.allow_missing or fmt == "neurobench",
                         counts_as_spikes=not args.counts_as_macs)
    result = report.to_dict()
    result["notes"] = [f"measured as evaluated and exported: {n}" for n in changed]
    result["checkpoint"] = str(args.checkpoint)
    if args.out:
        report.to_json(args.out)
        result["json_file"] = str(args.out)
    if args.plot:
        result["plot_file"] = str(report.plot(args.plot))
    if fmt == "neurobench":
        result = {**report.neurobench(), "checkpoint": str(args.checkpoint),
                  **{k: result[k] for k in ("json_file", "plot_file") if k in result}}
    if args.json:
        print(json.dumps(result))
    else:
        print(report.table())
        for note in result["notes"]:
            print(f"note: {note}")
        for key in ("json_file", "plot_file"):
            if key in result:
                print(f"wrote {result[key]}")
    return 0
