"""``neuromorph train | eval | plot``: thin argparse wiring over neuromorph.train (heavy imports are lazy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def register(subparsers) -> None:
    """Add the ``train``, ``eval`` and ``plot`` subcommands."""
    from neuromorph.train.model_args import add_loader_arguments  # light: argparse only
    from neuromorph.train.recipes import RECIPES  # light: dataclasses only

    names = ", ".join(sorted(RECIPES))
    p = subparsers.add_parser(
        "train", help="train a named recipe", description=f"Train a recipe ({names}); writes OUT/best.pt, OUT/last.pt, "
        "OUT/metrics.jsonl, OUT/summary.json. Works under torchrun (DistributedDataParallel).")
    p.add_argument("recipe", nargs="?", help=f"recipe name: {names} (or recipe= in --config)")
    p.add_argument("--config", help="TOML file with recipe options (top-level keys, [model_kwargs] table)")
    p.add_argument("--data-root", help="data folder (not needed for digits-dvs)")
    p.add_argument("--out", help="output folder (default runs/RECIPE)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size (split over torchrun processes)")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--backend", help="neuron kernel backend passed to the model (auto, reference, fused, triton)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other recipe option (TOML value syntax), e.g. --set train_limit=200 --set model_kwargs.tau=3.0")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt (bitwise identical on CPU)")
    p.add_argument("--overwrite", action="store_true", help="start again even if OUT already holds a run")
    p.add_argument("--plots", metavar="DIR", help="also write the run's PNG plots into DIR")
    p.add_argument("--no-report", action="store_true", help="skip the energy report and the NIR/Lava export after training")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON summary object on stdout")
    p.set_defaults(func=_cmd_train)

    e = subparsers.add_parser("eval", help="evaluate a checkpoint", description="Accuracy, loss, per-class accuracy and "
                              "firing rate per layer of a checkpoint (it knows its recipe and data set).")
    e.add_argument("checkpoint")
    e.add_argument("--data-root", "--data", dest="data_root", help="data folder (default: the one used in training)")
    e.add_argument("--split", default="test", help="test (default), val or train")
    e.add_argument("--device", default="cpu")
    e.add_argument("--batch-size", type=int)
    e.add_argument("--plots", metavar="DIR", help="also write confusion/firing-rate/raster PNGs into DIR")
    e.add_argument("--json", action="store_true")
    add_loader_arguments(e)
    e.set_defaults(func=_cmd_eval)

    q = subparsers.add_parser("plot", help="plot a run folder or checkpoint", description="Loss/accuracy curves, confusion "
                              "matrix, firing rate per layer and a spike raster as PNG files.")
    q.add_argument("run", help="run folder (OUT of neuromorph train) or a checkpoint file")
    q.add_argument("--out", help="folder for the PNGs (default RUN/plots)")
    q.add_argument("--data-root", help="data folder (default: the one used in training)")
    q.add_argument("--sample", type=int, default=0, help="test sample for the spike raster")
    q.add_argument("--json", action="store_true")
    add_loader_arguments(q)
    q.set_defaults(func=_cmd_plot)


def _parse_sets(items: list[str]) -> dict[str, Any]:
    from neuromorph._compat import tomllib
    from neuromorph.errors import ConfigError

    changes: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE", field="--set")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # bare words are strings
        if key.startswith("model_kwargs."):
            changes.setdefault("model_kwargs", {})[key.split(".", 1)[1]] = value
        else:
            changes[key.strip()] = value
    return changes


def _cmd_train(args) -> int:
    # errors go to neuromorph.cli.main, which reports them per the CLI error contract
    return _train(args)


def _train(args) -> int:
    from neuromorph.train.recipes import resolve_recipe

    sets = _parse_sets(args.set)
    if args.resume:
        return _resume(args, sets)
    config_kwargs = sets.pop("model_kwargs", None)
    flags = dict(data_root=args.data_root, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                 backend=args.backend, device=args.device)
    # --set may name an option that also has a flag (--set lr=...): the explicit flag wins
    overrides = {**sets, **{k: v for k, v in flags.items() if v is not None}}
    recipe = resolve_recipe(args.recipe, args.config, **overrides)
    if config_kwargs:
        recipe = recipe.replace(model_kwargs={**recipe.model_kwargs, **config_kwargs})
    return _fit_and_report(args, recipe, Path(args.out or f"runs/{recipe.name}"))


def _resume(args, sets: dict[str, Any]) -> int:
    """--resume: the run continues with the recipe stored in OUT/last.pt; options that would change
    the result are refused rather than silently ignored."""
    from neuromorph.errors import ConfigError
    from neuromorph.train.checkpoint import load_checkpoint
    from neuromorph.train.recipes import Recipe

    changing = [f"--{k.replace('_', '-')}" for k in ("epochs", "batch_size", "lr", "seed", "config") if getattr(args, k) is not None]
    changing += [f"--set {k}" for k in sets]
    if changing:
        raise ConfigError(f"--resume continues the stored recipe; these options cannot change it: {', '.join(changing)} "
                          "(only --device, --backend and --data-root may)")
    if args.out is None and args.recipe is None:
        raise ConfigError("--resume needs --out (the run folder) or the recipe name (for runs/RECIPE)")
    out = Path(args.out or f"runs/{args.recipe}")
    stored = Recipe.from_dict(load_checkpoint(out / "last.pt")["info"]["recipe"])
    if args.recipe is not None and args.recipe != stored.name:
        raise ConfigError(f"--resume: {str(out)!r} holds a {stored.name!r} run, not {args.recipe!r}")
    changes = {k: v for k, v in (("device", args.device), ("backend", args.backend), ("data_root", args.data_root)) if v is not None}
    return _fit_and_report(args, stored.replace(**changes), out)


def _fit_and_report(args, recipe, out: Path) -> int:
    import os

    from neuromorph.train import distributed as dd
    from neuromorph.train.loop import fit

    try:
        summary = fit(recipe, out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    finally:
        if dd.dist.is_initialized():  # joined under torchrun: leave the process group cleanly
            dd.dist.destroy_process_group()
    is_main = int(os.environ.get("RANK", "0")) == 0
    if summary["status"] == "completed" and is_main:
        if not args.no_report:
            summary["report"] = _report(out)
        if args.plots:
            from neuromorph.train.evaluation import make_plots

            summary["plots"] = [str(p) for p in make_plots(out, args.plots, data_root=recipe.data_root)]
        from neuromorph.train.metrics import write_json_atomic

        write_json_atomic(out / "summary.json", summary)
    if is_main:
        _print_summary(summary, args.json)
    return 130 if summary["status"] == "interrupted" else 0


def _report(out: Path) -> dict[str, Any]:
    """Energy report and NIR / Lava export of best.pt (the main job's last steps).

    Each step is independent: one that is not available or fails (e.g. a layer the exporter cannot
    map) is recorded with its reason and the others still run; the training result is already saved.
    """
    import torch

    from neuromorph.export.pipeline import DEFAULT_PROFILE
    from neuromorph.train import checkpoint as ck
    from neuromorph.train.data import load_split
    from neuromorph.train.evaluation import checkpoint_recipe

    model, info = ck.load_model(out / "best.pt")
    recipe = checkpoint_recipe(info, out / "best.pt")
    data = load_split(recipe, "test", info.get("data", {}).get("n_steps"))
    x, _ = data.batch(torch.arange(min(64, len(data))))
    steps = {"energy": lambda: _energy(out, model, info, x), "nir": lambda: _export(out, "nir", None),
             "lava": lambda: _export(out, "lava", DEFAULT_PROFILE)}
    report: dict[str, Any] = {}
    for name, step in steps.items():
        try:
            report[name] = step()
        except ImportError as exc:
            report[name] = {"status": "not available", "reason": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # noqa: BLE001 - best effort after training; the reason is recorded
            report[name] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    return report


def _energy(out: Path, model, info: dict[str, Any], x) -> dict[str, Any]:
    from neuromorph.energy import measure
    from neuromorph.export.pipeline import evaluated_form

    # measured in the form the model is evaluated and exported in (e.g. the delay recipe's integer delays),
    # so the energy, the accuracy and the exported files are about one network; allow_missing: an energy a
    # profile does not know (Loihi has no MAC figure for the real-valued first layer) stays unknown
    with evaluated_form(model, info, out / "best.pt") as changed:
        report = measure(model, x, hardware=["loihi", "cmos45nm"], allow_missing=True)
    path = out / "energy.json"
    report.to_json(path)
    notes = [f"measured as evaluated and exported: {n}" for n in changed]
    return {"status": "ok", "file": str(path), "text": report.table(), "notes": notes}


def _export(out: Path, to: str, check: str | None) -> dict[str, Any]:
    # the very function behind `neuromorph export best.pt --to TO --check PROFILE`: same files, same verdict
    from neuromorph.export.pipeline import export_checkpoint

    name = "model.nir" if to == "nir" else "model.net.h5"
    res = export_checkpoint(out / "best.pt", to, out / name, check=check)
    item: dict[str, Any] = {"status": "ok" if res.written else "failed", "file": str(res.out) if res.written else None,
                            "notes": res.notes, "warnings": res.warnings}
    if "peers" in res.details:
        from neuromorph.export.peers import peer_summary

        # what snnTorch/Norse/SpikingJelly/Sinabs can run from the file written (`neuromorph export --to nir`
        # prints the workarounds)
        item["peers"] = res.details["peers"]
        item["peers_summary"] = peer_summary(item["peers"])
    if res.check is not None:
        item["check"] = {"profile": res.check.profile, "ok": res.check.ok, "violations": res.check.violations()}
    if not res.written:
        item["reason"] = res.error
    return item


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in summary.items() if k != "confusion"}, sort_keys=True))
        return
    lines = [f"recipe {summary['recipe']}: {summary['status']} ({summary['epochs_completed']}/{summary['epochs']} epochs, "
             f"{summary['wall_time_s']:.0f} s)"]
    if summary["status"] == "completed":
        if summary.get("best_val_accuracy") is not None:
            lines.append(f"  best epoch {summary['best_epoch']} (validation accuracy {summary['best_val_accuracy']:.4f})")
        lines.append(f"  test accuracy {summary['test_accuracy']:.4f}  loss {summary['test_loss']:.4f}  ({summary['n_test']} samples)")
        if summary.get("mean_firing_rate") is not None:
            rates = ", ".join(f"{k} {v:.3f}" for k, v in summary["firing_rate"].items() if v is not None)
            lines.append(f"  firing rate (spikes/neuron/step): mean {summary['mean_firing_rate']:.3f}; {rates}")
        for name, item in summary.get("report", {}).items():
            check = item.get("check")
            verdict = f" ({check['profile']} check {'passed' if check['ok'] else 'failed'})" if check else ""
            lines.append(f"  {name}: {item.get('status')} {item.get('file') or item.get('reason', '')}{verdict}")
            if item.get("peers_summary"):
                lines.append(f"    {item['peers_summary']} (workarounds: neuromorph export {summary['best_checkpoint']} --to nir)")
            lines.extend(f"    note: {n}" for n in item.get("notes", []))
            if item.get("text"):
                lines.append(item["text"])
        lines.append(f"  checkpoints: {summary['best_checkpoint']}, {summary['last_checkpoint']}")
    else:
        lines.append(f"  stopped; resume with: --resume (checkpoint {summary['last_checkpoint']})")
    print("\n".join(lines))


def _cmd_eval(args) -> int:
    from neuromorph.train.evaluation import evaluate_checkpoint, make_plots

    from neuromorph.train.model_args import loader_options

    opts = {"recipe": args.recipe, **loader_options(args)}
    result = evaluate_checkpoint(args.checkpoint, data_root=args.data_root, split=args.split, device=args.device,
                                 batch_size=args.batch_size, **opts)
    if args.plots:
        result["plots"] = [str(p) for p in make_plots(args.checkpoint, args.plots, data_root=args.data_root, **opts)]
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"{result['checkpoint']} on {result['dataset']}/{result['split']} ({result['n']} samples): "
              f"accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}")
        classes = result.get("classes") or [str(i) for i in range(len(result["per_class"]))]
        print("  per class: " + ", ".join(f"{c} {a:.3f}" if a is not None else f"{c} -" for c, a in zip(classes, result["per_class"])))
        for name, rate in result["firing_rate"].items():
            print(f"  firing rate {name}: " + ("-" if rate is None else f"{rate:.4f}"))
    return 0


def _cmd_plot(args) -> int:
    from neuromorph.train.evaluation import make_plots

    from neuromorph.train.model_args import loader_options

    run = Path(args.run)
    out = Path(args.out) if args.out else (run / "plots" if run.is_dir() else run.parent / "plots")
    written = make_plots(run, out, data_root=args.data_root, sample=args.sample, recipe=args.recipe, **loader_options(args))
    if args.json:
        print(json.dumps({"plots": [str(p) for p in written]}))
    else:
        print("\n".join(str(p) for p in written))
    return 0
