"""QCFS ANN-to-SNN conversion (Bu et al., "Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency
Spiking Neural Networks", ICLR 2022; the activation and conversion of the Masked Spiking Transformer code,
bic-L/Masked-Spiking-Transformer).

Claim (the shape of the paper's accuracy-vs-T curve): an ANN trained with the quantisation-clip-floor-shift
activation converts to an SNN of soft-reset IF neurons that is near the ANN's accuracy after few steps (about L
steps), where the plain conversion of a ReLU network needs far more steps.

Protocol: scikit-learn 8x8 digits. ANN conv3x3(1→16)-BN-act, conv3x3(16→32)-BN-act, 2x2 average pool,
linear(512→10), trained with the package loop (Adam 2e-3, cosine, batch 32, same epochs for all), with
``act`` = QCFS (L = 4 and L = 16, λ trainable, init 2) or ReLU. Conversion and evaluation on the test split,
image presented at every step, logits averaged over the first T steps:

- ``QCFS L=…``: ``neuromorph.nn.convert_to_snn`` (IF on x/λ, threshold 1, soft reset, initial membrane ½);
- ``ReLU`` (the ablation, "plain" conversion as in Rueckauer et al. 2017): each ReLU becomes the same IF neuron
  with λ = the 99.9th percentile of that layer's activations on the training split and initial membrane 0;
- ``ReLU + shift``: the same with initial membrane ½ (QCFS's shift alone, without its training).

Sizes against the paper: CIFAR-10/100 and ImageNet VGG-16/ResNet (300 epochs, L = 4 or 8); here 1,221 training
images of 8x8, 20 epochs (quick: 2 epochs, 255 images).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

import neuromorph.nn as snn
from neuromorph.nn.qcfs import ConvertedSNN, QCFSNeuron

from .common import RunConfig, digits_static, errorbar, fmt, recipe_for, stats, train

STEPS = (1, 2, 4, 8, 16, 32, 64)
EPOCHS = 20


class DigitsANN(torch.nn.Module):
    """ANN ``[B, 1, 8, 8] → [B, 10]`` (``self.ann``); ``forward`` takes the loop's ``[1, B, ...]`` input."""

    def __init__(self, act: str = "qcfs", levels: int = 4, width: int = 16) -> None:
        super().__init__()

        def a() -> torch.nn.Module:
            return snn.QCFS(levels) if act == "qcfs" else torch.nn.ReLU()

        self.ann = torch.nn.Sequential(
            torch.nn.Conv2d(1, width, 3, padding=1, bias=False), torch.nn.BatchNorm2d(width), a(),
            torch.nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), torch.nn.BatchNorm2d(2 * width), a(),
            torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(2 * width * 16, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ann(x[0]).unsqueeze(0)


class InitIF(QCFSNeuron):
    """The conversion's soft-reset IF neuron with a chosen initial membrane (0: plain conversion)."""

    def __init__(self, lam: float, v_init: float) -> None:
        super().__init__(lam)
        self.v_init = v_init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.v is None:
            self.v = torch.full_like(x, self.v_init)
        return super().forward(x)


@torch.no_grad()
def convert_relu(ann: torch.nn.Sequential, x_train: torch.Tensor, v_init: float, percentile: float = 99.9) -> ConvertedSNN:
    """Replace every ReLU of ``ann`` by an IF neuron with λ = the ``percentile`` of its activations on ``x_train``."""
    outs: list[torch.Tensor] = []
    relus = [m for m in ann if isinstance(m, torch.nn.ReLU)]
    hooks = [m.register_forward_hook(lambda mod, inp, out: outs.append(out.flatten())) for m in relus]
    try:
        ann.eval()(x_train)
    finally:
        for h in hooks:
            h.remove()
    lams = [float(torch.quantile(o[:2_000_000], percentile / 100)) for o in outs]
    snn_model = copy.deepcopy(ann)
    k = 0
    for i, m in enumerate(snn_model):
        if isinstance(m, torch.nn.ReLU):
            snn_model[i] = InitIF(max(lams[k], 1e-6), v_init)
            k += 1
    return ConvertedSNN(snn_model).eval()


@torch.no_grad()
def accuracy_vs_T(converted: ConvertedSNN, x: torch.Tensor, y: torch.Tensor, steps: tuple[int, ...]) -> dict[int, float]:
    out = converted(x, max(steps))  # [T, B, 10]
    mean = out.cumsum(0) / torch.arange(1, out.shape[0] + 1).view(-1, 1, 1)
    return {T: float((mean[T - 1].argmax(-1) == y).float().mean()) for T in steps}


def run(cfg: RunConfig) -> dict[str, Any]:
    epochs = 2 if cfg.quick else EPOCHS
    steps = STEPS[:4] if cfg.quick else STEPS
    trained = [("QCFS L=4", "qcfs", 4), ("QCFS L=16", "qcfs", 16), ("ReLU", "relu", 4)]
    cfg.params = {"data": "sklearn digits 8x8", "epochs": epochs, "batch_size": 32, "optimizer": "adam 2e-3 cosine", "width": 16,
                  "T": list(steps), "relu_percentile": 99.9}
    runs: list[dict[str, Any]] = []
    for seed in cfg.seeds:
        data = digits_static(seed, cfg.quick)
        xt, yt = data.test.x[:, 0], data.test.y
        xtr = data.train.x[:, 0]
        for name, act, levels in trained:
            recipe = recipe_for(f"qcfs-{act}-{levels}", DigitsANN, {"act": act, "levels": levels}, seed, epochs=epochs)
            model, summary = train(recipe, data)
            ann_acc = float((model.ann(xt).argmax(-1) == yt).float().mean())
            if act == "qcfs":
                curves = {name: accuracy_vs_T(snn.convert_to_snn(model.ann), xt, yt, steps)}
            else:
                curves = {"ReLU": accuracy_vs_T(convert_relu(model.ann, xtr, 0.0), xt, yt, steps),
                          "ReLU + shift": accuracy_vs_T(convert_relu(model.ann, xtr, 0.5), xt, yt, steps)}
            for cname, curve in curves.items():
                runs.append({"seed": seed, "variant": cname, "ann_accuracy": ann_acc, "snn_accuracy": curve, **summary})
                print(f"qcfs seed {seed} {cname}: ANN {ann_acc:.3f} SNN " + " ".join(f"T{T}:{a:.3f}" for T, a in curve.items()), flush=True)
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    summary = {}
    for v in variants:
        sel = [r for r in runs if r["variant"] == v]
        summary[v] = {"variant": v, "ann_accuracy": stats([r["ann_accuracy"] for r in sel]),
                      "snn_accuracy": {T: stats([r["snn_accuracy"][T] for r in sel]) for T in steps}}
    return {"claim": "QCFS-converted SNNs are near the ANN after few steps; plain ReLU conversion needs many more",
            "steps": list(steps), "runs": runs, "summary": summary}


def table(result: dict[str, Any]) -> str:
    steps = result["steps"]
    lines = ["| variant | ANN (%) | " + " | ".join(f"T={T}" for T in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for s in result["summary"].values():
        acc = s["snn_accuracy"]
        lines.append(f"| {s['variant']} | {fmt(s['ann_accuracy'])} | " + " | ".join(fmt(acc[T] if T in acc else acc[str(T)]) for T in steps) + " |")
    return "\n".join(lines)


def plot(result: dict[str, Any]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    steps = result["steps"]
    for s in result["summary"].values():
        acc = s["snn_accuracy"]
        errorbar(ax, steps, [acc[str(T)] if str(T) in acc else acc[T] for T in steps], s["variant"])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("time steps T"), ax.set_ylabel("converted SNN test accuracy (%)")
    ax.set_title("QCFS conversion (Bu et al., ICLR 2022) vs plain ReLU conversion", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
