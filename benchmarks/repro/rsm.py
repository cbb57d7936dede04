"""Random Spike Masking (Wang et al., "Masked Spiking Transformer", ICCV 2023; code bic-L/Masked-Spiking-Transformer).

Claim: masking 75 % of the spikes at random (where the released code masks: Q, K and the attention scores)
lowers power by 26.8 % with unchanged accuracy, when the model is trained with the same masking.

Protocol (that of ``benchmarks/rsm.py``, whose single-seed tables are in benchmarks/RESULTS.md, here over several
training seeds): the CPU-sized MST (``neuromorph.models.MaskedSpikingTransformer``: dim 32, 2 blocks, 4 heads,
QCFS L = 16) trained as an ANN on scikit-learn 8x8 digits (fixed split: 1,397 train / 400 test) with masking
ratio r_train ∈ {0, 0.75} (MST's released checkpoints), then converted to soft-reset IF neurons and run for
T = 32 steps with masking ratio r at inference. The curve: SNN test accuracy and energy per inference
(``neuromorph.energy``, cmos45nm fp32, on 64 test images) against r, mean ± std over seeds. The training loop is
``benchmarks/rsm.py``'s (fixed epochs, last epoch kept: no model selection, so the test split is only evaluated).

Sizes against the paper: Swin-T on CIFAR/ImageNet for 300 epochs, T up to 512; here 10 epochs and T = 32
(quick: 2 epochs, T = 8, 3 ratios, 8 energy images).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

import neuromorph.energy as ne
from neuromorph.nn import convert_to_snn

from .common import RunConfig, errorbar, fmt, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rsm as rsm_bench  # noqa: E402  benchmarks/rsm.py: data split, model, training loop, SNN accuracy

RATIOS = (0.0, 0.25, 0.5, 0.75, 0.9)
TRAIN_RATIOS = (0.0, 0.75)


def run(cfg: RunConfig) -> dict[str, Any]:
    epochs, steps, ratios, n_energy = (2, 8, (0.0, 0.5, 0.75), 8) if cfg.quick else (10, 32, RATIOS, 64)
    cfg.params = {"data": "sklearn digits 8x8 (1397 train / 400 test, split seed 0)", "epochs": epochs, "T": steps,
                  "ratios": list(ratios), "train_ratios": list(TRAIN_RATIOS), "energy_samples": n_energy, "hardware": "cmos45nm:fp32",
                  "masks": "Q, K, attention scores (released code)"}
    xtr, ytr, xte, yte = rsm_bench.load_digits_split(0)
    if cfg.quick:
        xtr, ytr, xte, yte = xtr[:256], ytr[:256], xte[:100], yte[:100]
    runs: list[dict[str, Any]] = []
    for seed in cfg.seeds:
        for r_train in TRAIN_RATIOS:
            ann = rsm_bench.train_ann(r_train, xtr, ytr, epochs, seed)
            ann.set_mask_ratio(0.0)
            ann_acc = rsm_bench.ann_accuracy(ann, xte, yte)
            snn = convert_to_snn(ann)
            base = None
            for r in ratios:
                snn.model.set_mask_ratio(r)
                torch.manual_seed(seed + 1)
                acc = rsm_bench.snn_accuracy(snn, xte, yte, steps)
                xs = xte[:n_energy].unsqueeze(0).expand(steps, *xte[:n_energy].shape)
                torch.manual_seed(seed + 2)
                energy = ne.measure(snn, xs, hardware="cmos45nm").total_energy_pj()
                base = energy if base is None else base
                runs.append({"seed": seed, "train_ratio": r_train, "ratio": r, "ann_accuracy": ann_acc, "snn_accuracy": acc,
                             "energy_pj": energy, "energy_vs_r0": energy / base})
                print(f"rsm seed {seed} r_train={r_train} r={r}: SNN {acc:.3f} E/E0 {energy / base:.3f}", flush=True)
    summary = {}
    for r_train in TRAIN_RATIOS:
        for r in ratios:
            sel = [x for x in runs if x["train_ratio"] == r_train and x["ratio"] == r]
            summary[f"r_train={r_train} r={r}"] = {"train_ratio": r_train, "ratio": r,
                                                   **{k: stats([x[k] for x in sel]) for k in ("snn_accuracy", "energy_pj", "energy_vs_r0", "ann_accuracy")}}
    return {"claim": "26.8 % lower power at r = 0.75 with unchanged accuracy (model trained with masking)",
            "runs": runs, "summary": summary}


def table(result: dict[str, Any]) -> str:
    lines = ["| r_train | r | SNN test accuracy (%) | energy / inference (nJ) | E / E(r=0) |", "|---|---|---|---|---|"]
    for s in result["summary"].values():
        lines.append(f"| {s['train_ratio']:g} | {s['ratio']:g} | {fmt(s['snn_accuracy'])} | {fmt(s['energy_pj'], 1e-3, 1)} | "
                     f"{fmt(s['energy_vs_r0'], 1, 3)} |")
    return "\n".join(lines)


def plot(result: dict[str, Any]):
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for rt in sorted({s["train_ratio"] for s in result["summary"].values()}):
        sub = [s for s in result["summary"].values() if s["train_ratio"] == rt]
        xs = [s["ratio"] for s in sub]
        errorbar(a1, xs, [s["snn_accuracy"] for s in sub], f"trained at r={rt:g}")
        errorbar(a2, xs, [s["energy_vs_r0"] for s in sub], f"trained at r={rt:g}", scale=1.0)
    a2.axhline(1 - 0.268, ls="--", c="gray", lw=0.8, label="MST claim at r=0.75 (-26.8 %)")
    a1.set_xlabel("masking ratio r at inference"), a1.set_ylabel("SNN test accuracy (%)")
    a2.set_xlabel("masking ratio r at inference"), a2.set_ylabel("energy / energy at r=0 (cmos45nm)")
    a1.legend(fontsize=8), a2.legend(fontsize=8)
    fig.tight_layout()
    return fig
