"""HD-SNN pruning experiment: motion-direction accuracy against the number of kept synapses.

Trains one heterogeneous-delay layer (Grimaldi & Perrinet, Biological Cybernetics 2023) as time-invariant
logistic regression on synthetic motion clips (random 1/f² textures translated in ``--directions``
directions, ON/OFF events from a residual threshold; a scaled-down version of the paper's stimuli), then

- prunes: keeps the n largest |weights| for n on a log grid (the paper's pruning curve), and
- shortens: keeps only the shortest delays (the paper's baseline),

and reports test accuracy (fraction of correct time steps after the first D−1 warm-up steps) with
the synaptic operations per clip (event-driven cost: events × nonzero synapses reached). Writes
``result.json``, ``hdsnn_pruning.png`` and ``hdsnn_kernels.png`` to ``--out``.

    python examples/hdsnn_pruning.py [--out runs/hdsnn] [--train 256] [--epochs 20] [--lr 5e-3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuromorph.features.hdsnn import HDSNN, accuracy, evidence_from_events, fit, motion_clips


def synops(model: HDSNN, clips: torch.Tensor, n: int = 8) -> float:
    """Mean synaptic operations per clip, counted event by event on the first ``n`` test clips."""
    return float(np.mean([evidence_from_events(c, model.kernel)[1] for c in clips[:n].double()]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--train", type=int, default=256)
    ap.add_argument("--test", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--directions", type=int, default=8)
    ap.add_argument("--size", type=int, default=20)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--delays", type=int, default=6)
    ap.add_argument("--kernel", type=int, default=7)
    ap.add_argument("--event-threshold", type=float, default=1.0,
                    help="residual threshold of the event emulation, in units of the frames' std")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    stim = dict(size=args.size, n_steps=args.steps, n_directions=args.directions, threshold=args.event_threshold)
    a_train, y_train = motion_clips(args.train, seed=args.seed, **stim)
    a_test, y_test = motion_clips(args.test, seed=args.seed + 10_000, **stim)
    model = HDSNN(args.directions, n_delays=args.delays, kernel_size=(args.kernel, args.kernel), seed=args.seed)
    t0 = time.perf_counter()
    losses = fit(model, a_train, y_train, epochs=args.epochs, lr=args.lr, seed=args.seed).losses
    train_s = time.perf_counter() - t0
    warm = args.delays - 1
    total = model.kernel.numel()

    def evaluate(m: HDSNN) -> dict:
        return {"synapses": m.n_synapses, "accuracy": accuracy(m, a_test, y_test, warmup=warm),
                "accuracy_probability_readout": accuracy(m, a_test, y_test, warmup=warm, mode="probability"),
                "synops_per_clip": synops(m, a_test)}

    full = evaluate(model)
    keep_grid = sorted({int(round(v)) for v in np.logspace(0, np.log10(total), 14)})
    pruning = [dict(n_keep=n, **evaluate(model.pruned(n))) for n in keep_grid]
    shortening = [dict(n_delays_kept=d, **evaluate(model.shortened(d))) for d in range(1, args.delays + 1)]
    result = {"config": vars(args) | {"out": str(args.out)}, "weights": total, "train_seconds": train_s,
              "losses": losses, "chance": 1.0 / args.directions, "full": full, "pruning": pruning,
              "shortening": shortening,
              "input_events_per_clip": float(a_test.sum(dim=(1, 2, 3, 4)).mean())}
    if args.out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from neuromorph.features.plot import _save, plot_hdsnn_kernels

        args.out.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.semilogx([p["synapses"] for p in pruning], [p["accuracy"] for p in pruning], "o-", label="pruning |w|")
        ax.semilogx([s["synapses"] for s in shortening], [s["accuracy"] for s in shortening], "s--",
                    label="shortest delays kept")
        ax.axhline(1.0 / args.directions, color="gray", ls=":", label="chance")
        ax.set_xlabel("kept synapses (nonzero weights)")
        ax.set_ylabel("test accuracy (per time step)")
        ax.legend(fontsize=8)
        ax.set_title(f"HD-SNN, {args.directions} motion directions", fontsize=9)
        _save(fig, args.out / "hdsnn_pruning.png")
        plot_hdsnn_kernels(model, args.out / "hdsnn_kernels.png")
        (args.out / "result.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"full layer: {full['synapses']} synapses, accuracy {full['accuracy']:.3f} "
              f"(probability read-out {full['accuracy_probability_readout']:.3f}), chance {1 / args.directions:.3f}")
        for p in pruning:
            print(f"  keep {p['synapses']:>5}: accuracy {p['accuracy']:.3f} / {p['accuracy_probability_readout']:.3f}, "
                  f"{p['synops_per_clip']:.0f} synops per clip")
        for s in shortening:
            print(f"  delays 0..{s['n_delays_kept'] - 1}: {s['synapses']} synapses, accuracy {s['accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
