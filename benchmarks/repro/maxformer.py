"""Max-Former (Fang et al., "Spiking Neural Networks Need High-Frequency Information", NeurIPS 2025; code
bic-L/MaxFormer).

Claim: a spiking transformer whose patch embeddings max-pool the real-valued BN output (``Embed_Max``) and whose
early token mixers are depth-wise convolutions is more accurate than a Spikformer-style transformer of similar
size, at lower energy (the paper: +7.6 points on ImageNet at about 30 % of Spikformer's energy).

Protocol: scikit-learn 8x8 digits, direct encoding, T = 4, both models built from ``neuromorph.nn.maxformer``:

- ``Max-Former``: stem conv3x3(1→C)-BN on the image; ``EmbedMax`` (8x8 → 4x4); a block with a DWC3 mixer;
  ``EmbedMax`` (4x4 → 2x2); a block with spiking self-attention; head (mean over tokens → LIF → linear);
- ``Spikformer-style``: the same stem, strided-conv patch embeddings (``Embed`` 3x3 stride 2, no max-pool) and
  spiking self-attention in both blocks, width chosen so that the parameter counts are close.

Both with S-MLP ratio 4, 4 heads, LIF τ = 2 (hard reset, detached), Adam 2e-3, cosine, batch 32, same epochs.
Energy: ``neuromorph.energy.measure`` on 64 test images, profile cmos45nm (fp32: MAC 4.6 pJ, AC 0.9 pJ); layers
fed real values (the stem, the membrane shortcuts) are charged MACs, spike-fed layers synops.

Sizes against the paper: ImageNet (224², 200 epochs, 64 M parameters) and CIFAR (D = 384); here 1,221 8x8
training images, C = 32, 10 epochs (quick: 2 epochs, 255 images, C = 8).
"""

from __future__ import annotations

from typing import Any

import torch

import neuromorph.energy as ne
import neuromorph.nn as snn

from .common import RunConfig, digits_static, errorbar, fmt, recipe_for, stats, train

T_STEPS = 4
EPOCHS = 10


class DigitsSpikingTransformer(torch.nn.Module):
    """``kind="maxformer"`` or ``"spikformer"``; input ``[1 or T, B, 1, 8, 8]``, output ``[T, B, 10]``."""

    def __init__(self, kind: str = "maxformer", width: int = 32, heads: int = 4, T: int = T_STEPS) -> None:
        super().__init__()
        self.T = T
        c = width
        self.stem = snn.Embed(1, c, 3, 1, spiking_input=False)
        if kind == "maxformer":
            self.stages = torch.nn.Sequential(snn.EmbedMax(c, c), snn.MaxFormerBlock(c, "dwc", 3),
                                              snn.EmbedMax(c, c), snn.MaxFormerBlock(c, "ssa", heads=heads))
        else:
            self.stages = torch.nn.Sequential(snn.Embed(c, c, 3, 2), snn.MaxFormerBlock(c, "ssa", heads=heads),
                                              snn.Embed(c, c, 3, 2), snn.MaxFormerBlock(c, "ssa", heads=heads))
        self.head_lif = snn.LIF(tau=2.0, threshold=1.0, reset="hard", decay_input=True, detach_reset=True)
        self.head = snn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1 and self.T > 1:
            x = x.expand(self.T, *x.shape[1:]).contiguous()
        h = self.stages(self.stem(x))  # [T, B, C, H, W]
        return self.head(self.head_lif(h.mean((-1, -2))))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_width(width: int, heads: int) -> int:
    """The Spikformer-style width (a multiple of ``heads``) whose parameter count is closest to Max-Former's."""
    target = n_params(DigitsSpikingTransformer("maxformer", width, heads))
    candidates = range(heads, 4 * width + 1, heads)
    return min(candidates, key=lambda w: abs(n_params(DigitsSpikingTransformer("spikformer", w, heads)) - target))


def run(cfg: RunConfig) -> dict[str, Any]:
    epochs = 2 if cfg.quick else EPOCHS
    width, heads = (8, 2) if cfg.quick else (32, 4)
    widths = {"Max-Former": width, "Spikformer-style": matched_width(width, heads)}
    kinds = {"Max-Former": "maxformer", "Spikformer-style": "spikformer"}
    cfg.params = {"data": "sklearn digits 8x8", "T": T_STEPS, "epochs": epochs, "batch_size": 32, "optimizer": "adam 2e-3 cosine",
                  "widths": widths, "heads": heads, "energy_profile": "cmos45nm", "energy_samples": 64}
    runs: list[dict[str, Any]] = []
    for seed in cfg.seeds:
        data = digits_static(seed, cfg.quick)
        xe, _ = data.test.batch(torch.arange(min(64, len(data.test))))
        for name, kind in kinds.items():
            kwargs = {"kind": kind, "width": widths[name], "heads": heads}
            recipe = recipe_for(f"maxformer-{kind}", DigitsSpikingTransformer, kwargs, seed, epochs=epochs)
            model, summary = train(recipe, data)
            rep = ne.measure(model, xe.expand(T_STEPS, *xe.shape[1:]).contiguous(), hardware="cmos45nm")
            tot = rep.totals()
            runs.append({"seed": seed, "model": name, "params": n_params(model), **summary,
                         "energy_pj": rep.total_energy_pj(), "synops": tot["synops"], "macs": tot["macs"], "spikes": tot["spikes"],
                         "ann_energy_pj": rep.ann_energy_pj})
            print(f"maxformer seed {seed} {name}: test {summary['test_accuracy']:.3f} energy {rep.total_energy_pj() / 1e3:.1f} nJ "
                  f"({summary['wall_time_s']:.0f} s)", flush=True)
    summary = {}
    for name in kinds:
        sel = [r for r in runs if r["model"] == name]
        summary[name] = {"model": name, "params": sel[0]["params"], "width": widths[name],
                         **{k: stats([r[k] for r in sel]) for k in ("test_accuracy", "energy_pj", "synops", "macs", "spikes")}}
    mf, sf = summary["Max-Former"], summary["Spikformer-style"]
    return {"claim": "Max-Former is more accurate than a Spikformer-style model of similar size, at lower energy",
            "runs": runs, "summary": summary,
            "accuracy_gain_points": 100 * (mf["test_accuracy"]["mean"] - sf["test_accuracy"]["mean"]),
            "energy_ratio": mf["energy_pj"]["mean"] / sf["energy_pj"]["mean"]}


def table(result: dict[str, Any]) -> str:
    lines = ["| model | width | parameters | test accuracy (%) | energy / inference (nJ, cmos45nm) | synops | MACs |", "|---|---|---|---|---|---|---|"]
    for s in result["summary"].values():
        lines.append(f"| {s['model']} | {s['width']} | {s['params']} | {fmt(s['test_accuracy'])} | {fmt(s['energy_pj'], 1e-3, 2)} | "
                     f"{fmt(s['synops'], 1, 0)} | {fmt(s['macs'], 1, 0)} |")
    lines.append(f"accuracy gain {result['accuracy_gain_points']:.1f} points; energy ratio Max-Former / Spikformer-style "
                 f"{result['energy_ratio']:.2f}")
    return "\n".join(lines)


def plot(result: dict[str, Any]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for s in result["summary"].values():
        a, e = s["test_accuracy"], s["energy_pj"]
        ax.errorbar([e["mean"] / 1e3], [a["mean"] * 100], xerr=[e["std"] / 1e3], yerr=[a["std"] * 100], marker="o", capsize=3,
                    label=f"{s['model']} ({s['params']} params)")
    ax.set_xlabel("energy per inference (nJ, cmos45nm)"), ax.set_ylabel("test accuracy (%)")
    ax.set_title("Max-Former vs Spikformer-style, digits 8x8, T = 4", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
