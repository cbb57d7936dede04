"""Accuracy benchmarks of the training recipes on real data (../shared/data), with baselines and ablations.

Tasks (each trains with ``neuromorph.train.fit`` and evaluates best.pt on the test split, which is never
used for training or model selection: best.pt is chosen on a validation part held out of train):

- ``nmnist``: the N-MNIST conv SNN recipe on the real N-MNIST subset (train: nmnist/Train, 1000
  samples; test: nmnist/Test, 100 samples). Target >= 97 %.
- ``shd-fsdd``: the DCLS delay SNN recipe (Hammouamri et al., ICLR 2024) on shd_fsdd (FSDD spoken digits through the
  SHD cochlea model; not the real SHD), against non-spiking baselines trained by this script on the
  same count bins (a GRU and a 1-D CNN), and against the same network with no delays and with fixed
  random delays, each over several seeds (mean ± std).
- ``digits-dvs``: the default recipe, as the README's main job runs it.

Usage::

    python benchmarks/accuracy.py --task nmnist
    python benchmarks/accuracy.py --task shd-fsdd --seeds 0 1 2 --epochs 150 --variants learned fixed no
    python benchmarks/accuracy.py --task shd-fsdd --seeds 0 1 2 --epochs 40 --variants 1d gru
    python benchmarks/accuracy.py --task digits-dvs

Each variant and seed of shd-fsdd is an independent run; to use both cores, run them as separate
processes (``--variants learned --seeds 1``) with ``--threads 1``.

The last line of stdout is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from neuromorph.train import checkpoint as ck
from neuromorph.train.data import load_data
from neuromorph.train.delay_hooks import DelayHooks
from neuromorph.train.loop import Hooks, fit
from neuromorph.train.recipes import get_recipe

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --------------------------------------------------------------------------------------------------
# non-spiking baselines on the same count bins [T, B, channels]


class GRUBaseline(torch.nn.Module):
    """2-layer GRU over the count bins; class scores from its hidden states averaged over time.

    Not the last state: samples are zero-padded at the end to the longest one (up to 3x the median
    length), and after that many silent steps the state no longer depends on the input.
    """

    def __init__(self, n_inputs: int = 140, n_classes: int = 10, hidden: int = 128):
        super().__init__()
        self.gru = torch.nn.GRU(n_inputs, hidden, num_layers=2, dropout=0.1)
        self.out = torch.nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(torch.log1p(x))
        return self.out(h.mean(0))


class CNNBaseline(torch.nn.Module):
    """1-D CNN over time (3 x conv5-BN-ReLU-maxpool2), global average over time, linear classifier."""

    def __init__(self, n_inputs: int = 140, n_classes: int = 10, width: int = 128):
        super().__init__()
        layers: list[torch.nn.Module] = []
        c = n_inputs
        for _ in range(3):
            layers += [torch.nn.Conv1d(c, width, 5, padding=2), torch.nn.BatchNorm1d(width), torch.nn.ReLU(), torch.nn.MaxPool1d(2)]
            c = width
        self.features = torch.nn.Sequential(*layers)
        self.out = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(torch.log1p(x).permute(1, 2, 0))  # [B, C, T]
        return self.out(h.mean(-1))


ck.register_builder("benchmarks.GRUBaseline", GRUBaseline)
ck.register_builder("benchmarks.CNNBaseline", CNNBaseline)


class FixedDelayHooks(DelayHooks):
    """Ablations of the delay net: delays fixed at 0 ("none") or at their random initial positions
    rounded to integers ("random"); positions are never trained and σ never changes."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def prepare(self, model: torch.nn.Module) -> None:
        from neuromorph.nn.delays import delayed_layers

        for layer in delayed_layers(model):
            if self.mode == "none":
                layer.set_delays(torch.zeros_like(layer.positions, dtype=torch.int64))
            layer.round_delays()
            layer.positions.requires_grad_(False)

    def end_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        pass


OUT: Path | None = None  # --out: keep every run's folder (checkpoints, metrics.jsonl) under it


def _run(recipe, data, hooks: Hooks | None = None, quiet: bool = False, tag: str = "run") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = (OUT / f"{tag}-seed{recipe.seed}") if OUT is not None else Path(tmp) / "run"
        t0 = time.perf_counter()
        summary = fit(recipe, folder, data=data, progress=not quiet, hooks=hooks, overwrite=True)
        summary["wall_time_s"] = round(time.perf_counter() - t0, 1)
    return {k: summary[k] for k in ("test_accuracy", "test_loss", "best_epoch", "best_val_accuracy", "mean_firing_rate", "wall_time_s", "n_train", "n_test")}


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}


def _apply_sets(recipe, sets: list[str]):
    """--set KEY=VALUE recipe changes (as ``neuromorph train --set``; model_kwargs.NAME=VALUE for the model)."""
    from neuromorph.train.cli import _parse_sets

    changes = _parse_sets(sets)
    if "model_kwargs" in changes:
        changes["model_kwargs"] = {**recipe.model_kwargs, **changes["model_kwargs"]}
    return recipe.replace(**changes)


def task_nmnist(args) -> dict[str, Any]:
    recipe = get_recipe("nmnist").replace(data_root=str(args.data / "nmnist"), seed=args.seeds[0])
    if args.epochs:
        recipe = recipe.replace(epochs=args.epochs)
    recipe = _apply_sets(recipe, args.set)
    data = load_data(recipe)
    result = _run(recipe, data, quiet=args.quiet, tag="nmnist")
    return {"task": "nmnist", "recipe": recipe.to_dict(), **result}


def task_digits(args) -> dict[str, Any]:
    recipe = get_recipe("digits-dvs").replace(seed=args.seeds[0])
    if args.epochs:
        recipe = recipe.replace(epochs=args.epochs)
    t0 = time.perf_counter()
    data = load_data(recipe)
    load_s = time.perf_counter() - t0
    result = _run(recipe, data, quiet=args.quiet, tag="digits-dvs")
    return {"task": "digits-dvs", "recipe": recipe.to_dict(), "data_load_s": round(load_s, 1), **result}


def task_shd(args) -> dict[str, Any]:
    base = get_recipe("shd").replace(data_root=str(args.data / "shd_fsdd"), dt_us=args.dt_ms * 1000, batch_size=args.batch_size)
    if args.epochs:
        base = base.replace(epochs=args.epochs)
    if args.max_steps:
        base = base.replace(max_steps=args.max_steps)
    data = load_data(base)
    out: dict[str, Any] = {"task": "shd-fsdd", "dt_ms": args.dt_ms, "n_steps": data.info["n_steps"], "epochs": base.epochs,
                           "n_train": len(data.train), "n_val": len(data.val) if data.val else 0, "n_test": len(data.test)}
    variants = {
        "learned delays": lambda r: (r, None),
        "fixed random delays": lambda r: (r, FixedDelayHooks("random")),
        "no delays": lambda r: (r, FixedDelayHooks("none")),
        "GRU (non-spiking)": lambda r: (r.replace(model="benchmarks.GRUBaseline", model_kwargs={}, hooks="standard", optimizer="adam",
                                                  schedule="cosine", readout="mean", lr=2e-3, weight_decay=0.0), Hooks()),
        "1D CNN (non-spiking)": lambda r: (r.replace(model="benchmarks.CNNBaseline", model_kwargs={}, hooks="standard", optimizer="adam",
                                                     schedule="cosine", readout="mean", lr=2e-3, weight_decay=0.0), Hooks()),
    }
    chosen = [v for v in variants if any(v.lower().startswith(c) for c in args.variants)] if args.variants else list(variants)
    results: dict[str, Any] = {}
    for name in chosen:
        runs = []
        for seed in args.seeds:
            recipe, hooks = variants[name](base.replace(seed=seed))
            r = _run(recipe, data, hooks, quiet=args.quiet, tag=name.split(" ")[0].lower())
            print(f"{name} seed {seed}: test accuracy {r['test_accuracy']:.4f} ({r['wall_time_s']:.0f} s)", flush=True)
            runs.append(r)
        results[name] = {"test_accuracy": _stats([r["test_accuracy"] for r in runs]), "runs": runs}
    out["results"] = results
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("nmnist", "shd-fsdd", "digits-dvs"), default="digits-dvs")
    p.add_argument("--data", type=Path, default=DATA, help="the shared real-data folder")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variants", nargs="*", help="shd-fsdd: subset of 'learned', 'fixed', 'no', 'gru', '1d' (default all)")
    p.add_argument("--dt-ms", type=int, default=10, help="shd-fsdd: count-bin width (Hammouamri et al.: 10 ms)")
    p.add_argument("--batch-size", type=int, default=64, help="shd-fsdd: batch (the SHD recipe's 256 is for 8k samples)")
    p.add_argument("--max-steps", type=int, help="shd-fsdd: pad/crop to this many bins")
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="nmnist: recipe changes, e.g. "
                   "--set n_time_bins=5 --set 'model_kwargs.channels=[32, 64]'")
    p.add_argument("--out", type=Path, help="keep each run's folder (checkpoints, metrics.jsonl) under this folder")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    global OUT
    OUT = args.out
    if args.threads:
        torch.set_num_threads(args.threads)
    args.variants = [v.lower() for v in args.variants] if args.variants else None
    task = {"nmnist": task_nmnist, "shd-fsdd": task_shd, "digits-dvs": task_digits}[args.task]
    result = task(args)
    result.update({"torch": torch.__version__, "threads": torch.get_num_threads()})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
