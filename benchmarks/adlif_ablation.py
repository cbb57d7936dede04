"""The adaptive-LIF ablation on shd_fsdd: recurrent LIF vs EF-adLIF vs SE-adLIF vs SE-adLIF + learned delays.

Every variant is the ``shd-adlif`` recipe (``shd-adlif-delays`` for the delays) at the same budget: the same
4 ms bins of 140 channel groups, network shape, epochs, batch and seed; best.pt is chosen on 20 % of the
training file and the test split is evaluated once, at the end. Variants:

- ``lif-rec``: ``model_kwargs neuron="lif"`` (recurrent LIF, exp decay, learned τ, no adaptation); at the
  recipe's constant lr 0.01 its BPTT gradient explodes after a few epochs (norms to 1e21, clipped to the
  recipe's 1.5; validation collapse): a property of the baseline, not of the kernel (docs/methods/se-adlif.md);
- ``ef``: ``neuron="ef"`` (EF-adLIF, q = 60); ``se``: SE-adLIF (q = 120);
- ``se-delays``: SE-adLIF with learned DCLS delays on every input synapse (recipe ``shd-adlif-delays``).

Full ablation (3 seeds, the recipe's 300 epochs; batch 64 because shd_fsdd has 2430 training samples;
each variant and seed as its own process to use several cores)::

    python benchmarks/adlif_ablation.py --variants lif-rec ef se se-delays --seeds 0 1 2 --epochs 300 \\
        --batch-size 64 --threads 1 --out runs/adlif

Short runs (what benchmarks/RESULTS.md records as partial): ``--epochs 3 --hidden 128 --train-limit 800``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "shd_fsdd"
VARIANTS = {"lif-rec": ("shd-adlif", {"neuron": "lif"}), "ef": ("shd-adlif", {"neuron": "ef"}),
            "se": ("shd-adlif", {"neuron": "se"}), "se-delays": ("shd-adlif-delays", {"neuron": "se"})}


def run_one(variant: str, seed: int, args) -> dict:
    from neuromorph.train.loop import fit
    from neuromorph.train.recipes import resolve_recipe

    name, kwargs = VARIANTS[variant]
    kwargs = {**kwargs, "hidden": args.hidden}
    changes = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": seed, "data_root": str(args.data),
               "train_limit": args.train_limit, "test_limit": args.test_limit, "schedule": args.schedule,
               "label_smoothing": args.label_smoothing}
    recipe = resolve_recipe(name, **{k: v for k, v in changes.items() if v is not None})
    recipe = recipe.replace(model_kwargs={**recipe.model_kwargs, **kwargs})
    out = args.out / f"{variant}-s{seed}"
    t0, c0 = time.perf_counter(), time.process_time()
    summary = fit(recipe, out, overwrite=True, progress=not args.quiet)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    from neuromorph.train import checkpoint as ck

    model = ck.load_model(out / "best.pt")
    model = model[0] if isinstance(model, tuple) else model
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    positions = sum(p.numel() for n, p in model.named_parameters() if n.endswith("positions"))
    return {"variant": variant, "seed": seed, "epochs": args.epochs, "hidden": args.hidden,
            "schedule": recipe.schedule, "label_smoothing": recipe.label_smoothing,
            "test_accuracy": summary.get("test_accuracy"), "best_val_accuracy": summary.get("best_val_accuracy"),
            "best_epoch": summary.get("best_epoch"), "n_train": summary.get("n_train"), "n_val": summary.get("n_val"),
            "n_test": summary.get("n_test"), "trainable_parameters": n_params, "delay_positions": positions,
            "mean_firing_rate": summary.get("mean_firing_rate"), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--hidden", type=int, default=360)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-limit", type=int)
    p.add_argument("--test-limit", type=int)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/adlif"))
    p.add_argument("--quiet", action="store_true")
    # off the paper's recipe (constant lr, no smoothing): the regularised variant chosen on validation
    p.add_argument("--schedule", choices=["none", "cosine"], help="lr schedule (recipe: none)")
    p.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing (recipe: 0)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    for variant in args.variants:
        for seed in args.seeds:
            row = run_one(variant, seed, args)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
