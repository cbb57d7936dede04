"""Random Spike Masking study: accuracy, synops and energy against the masking ratio on a trained model.

Claim compared (Masked Spiking Transformer, Wang et al., ICCV 2023, abstract): about 27 %
(26.8 %) lower power at a 75 % masking ratio with unchanged accuracy. MST's power model is not
confirmed; here energy is the package's estimate (``neuromorph.energy``).

Setup (a CPU-sized MST, ``neuromorph.models.MaskedSpikingTransformer``): scikit-learn's 8x8 digits
(1797 images, bundled with scikit-learn, no download; pixels scaled to [0, 1]; fixed split 1397 train /
400 test), patches of 2x2 (16 tokens), dim 32, 2 blocks, 4 heads, QCFS with L = 16. The ANN is trained
with masking ratio r_train (0 and 0.75, the two ratios of MST's released checkpoints), converted to an
SNN of soft-reset IF neurons (``convert_to_snn``), and run for T steps with masking ratio r at inference
(0 .. 0.9). Masks sit where MST's code puts them: on Q, K and the attention-score spikes.

For each (r_train, r): test accuracy of the SNN (logits summed over T), and per inference (mean over
``--energy-samples`` test images): synops, MACs, energy on cmos45nm (fp32) and the ratio to r = 0.

Usage::

    python benchmarks/rsm.py                      # full table (a few minutes on 2 cores)
    python benchmarks/rsm.py --quick              # smaller, for a smoke run
    python benchmarks/rsm.py --out DIR            # also writes DIR/rsm.json and DIR/rsm.png

The last line of stdout is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import neuromorph.energy as ne
from neuromorph.models import MaskedSpikingTransformer
from neuromorph.nn import convert_to_snn


def load_digits_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N, 1, 8, 8] in [0, 1]
    y = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    test, train = perm[:400], perm[400:]
    return x[train], y[train], x[test], y[test]


def build(mask_ratio: float, mask_mlp: bool = False) -> MaskedSpikingTransformer:
    return MaskedSpikingTransformer(in_channels=1, image_size=8, num_classes=10, patch_size=2, dim=32, depth=2,
                                    heads=4, mlp_ratio=2, mask_ratio=mask_ratio, mask_mlp=mask_mlp, levels=16)


def train_ann(mask_ratio: float, xtr, ytr, epochs: int, seed: int, mask_mlp: bool = False) -> MaskedSpikingTransformer:
    torch.manual_seed(seed)
    model = build(mask_ratio, mask_mlp)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(ytr)).split(64):
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def ann_accuracy(model, x, y) -> float:
    return float((model(x).argmax(1) == y).float().mean())


@torch.no_grad()
def snn_accuracy(snn, x, y, steps: int) -> float:
    correct = 0
    for idx in torch.arange(len(y)).split(200):
        correct += int((snn(x[idx], steps).sum(0).argmax(1) == y[idx]).sum())
    return correct / len(y)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--steps", type=int, default=32, help="SNN time steps T")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5, 0.75, 0.9])
    ap.add_argument("--train-ratios", type=float, nargs="+", default=[0.0, 0.75])
    ap.add_argument("--energy-samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mask-mlp", action="store_true",
                    help="also mask the MLP input (paper Fig. 2(e)); default: Q, K and scores only (released code)")
    ap.add_argument("--quick", action="store_true", help="5 epochs, T = 16, 3 ratios")
    ap.add_argument("--out", help="folder for rsm.json and rsm.png")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.steps, args.ratios, args.energy_samples = 5, 16, [0.0, 0.5, 0.75], 16
    torch.set_num_threads(args.threads)
    xtr, ytr, xte, yte = load_digits_split(args.seed)
    rows = []
    for r_train in args.train_ratios:
        t0 = time.perf_counter()
        ann = train_ann(r_train, xtr, ytr, args.epochs, args.seed, args.mask_mlp)
        train_s = time.perf_counter() - t0
        ann.set_mask_ratio(0.0)
        acc_ann = ann_accuracy(ann, xte, yte)
        snn = convert_to_snn(ann)
        base = None
        for r in args.ratios:
            snn.model.set_mask_ratio(r)
            torch.manual_seed(args.seed + 1)
            acc = snn_accuracy(snn, xte, yte, args.steps)
            xs = xte[: args.energy_samples].unsqueeze(0).expand(args.steps, *xte[: args.energy_samples].shape)
            torch.manual_seed(args.seed + 2)
            rep = ne.measure(snn, xs, hardware="cmos45nm")
            t = rep.totals()
            # the operations masking can remove: Q·Kᵀ MACs (the first matmul of each attention forward)
            # and, with --mask-mlp, the synops of the first MLP Linear (softmax makes A·V dense anyway)
            qk_macs = sum(l.macs for l in rep.layers if l.name.endswith("attn/matmul#0")) / rep.samples
            mlp_synops = sum(l.synops for l in rep.layers if l.name.endswith(".mlp.0")) / rep.samples
            row = {"train_ratio": r_train, "ratio": r, "ann_accuracy": acc_ann, "snn_accuracy": acc,
                   "synops": t["synops"], "macs": t["macs"], "neuron_updates": t["neuron_updates"],
                   "energy_pj": rep.total_energy_pj(), "ann_energy_pj": rep.ann_energy_pj,
                   "qk_macs": qk_macs, "mlp_in_synops": mlp_synops, "train_s": train_s,
                   "mask_mlp": args.mask_mlp}
            if base is None:
                base = row
            row["energy_vs_r0"] = row["energy_pj"] / base["energy_pj"]
            row["synops_vs_r0"] = row["synops"] / base["synops"] if base["synops"] else None
            row["qk_macs_vs_r0"] = qk_macs / base["qk_macs"] if base["qk_macs"] else None
            rows.append(row)
            print(f"r_train={r_train:.2f} r={r:.2f}  SNN acc {acc:.3f} (ANN {acc_ann:.3f})  synops {t['synops']:.4g}  "
                  f"MACs {t['macs']:.4g}  E {row['energy_pj'] / 1e3:.4g} nJ  E/E(r=0) {row['energy_vs_r0']:.3f}", flush=True)
    result = {"steps": args.steps, "epochs": args.epochs, "energy_samples": args.energy_samples,
              "hardware": "cmos45nm:fp32", "mask_mlp": args.mask_mlp, "rows": rows}
    print_table(rows)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rsm.json").write_text(json.dumps(result, indent=2))
        plot(rows, out / "rsm.png")
    print(json.dumps(result))
    return result


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\n| r_train | r (inference) | SNN acc | synops/inf | MACs/inf | Q·Kᵀ MACs/inf (vs r=0) | energy/inf (nJ) | E / E(r=0) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        qk = "n/a" if r["qk_macs_vs_r0"] is None else f"{r['qk_macs']:.4g} ({r['qk_macs_vs_r0']:.3f})"
        print(f"| {r['train_ratio']:.2f} | {r['ratio']:.2f} | {r['snn_accuracy']:.3f} | {r['synops']:.4g} | "
              f"{r['macs']:.4g} | {qk} | {r['energy_pj'] / 1e3:.4g} | {r['energy_vs_r0']:.3f} |")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for rt in sorted({r["train_ratio"] for r in rows}):
        sub = [r for r in rows if r["train_ratio"] == rt]
        xs = [r["ratio"] for r in sub]
        a1.plot(xs, [r["snn_accuracy"] for r in sub], "o-", label=f"trained at r={rt:g}")
        a2.plot(xs, [r["energy_vs_r0"] for r in sub], "o-", label=f"trained at r={rt:g}")
    a1.set_xlabel("masking ratio r at inference"), a1.set_ylabel("SNN test accuracy")
    a2.set_xlabel("masking ratio r at inference"), a2.set_ylabel("energy / energy at r=0 (cmos45nm)")
    a2.axhline(1 - 0.268, ls="--", c="gray", lw=0.8, label="MST claim at r=0.75 (-26.8%)")
    a1.legend(fontsize=8), a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
