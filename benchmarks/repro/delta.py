"""Delta activation layer (Yousefzadeh & Sifalakis, "Training for temporal sparsity in deep neural networks,
application in video processing", arXiv 2107.07305).

Claim: quantising activations with a trainable step and penalising the L1 norm of their frame-to-frame changes
makes the changes (deltas) sparse: at inference only nonzero deltas are sent on, so a layer's work scales with
them. The paper reports about 3x more activation sparsity on UCF101, with an accuracy loss recoverable by
longer training; the trade is accuracy vs the fraction of nonzero deltas, set by the penalty weight λ.

Protocol: the digits-dvs event set (neuromorph's embedded set: scikit-learn digits moved as saccades in front
of a simulated DVS; 8 frames of 2x32x32 event counts per sample), run as a frame-by-frame network (the delta
network's setting: video frames). Network per frame: 2x2 average pool (16x16), conv3x3(2→16)-BN-2x2 max pool
-act, conv3x3(16→32)-BN-2x2 max pool-act, linear(512→10), logits averaged over frames. ``act`` is ReLU for
the dense baseline, else ``DeltaActivation`` (channel-wise θ, init 0.1) with penalty weight λ ∈ the sweep below
(λ = 0: quantisation only). The fan-out n_out of each delta layer is the MACs one nonzero delta triggers: 32·9
for the first (into a 3x3 conv), 10 for the second (into the linear layer).

Reported on the test split with the selected model:
- nonzero-delta fraction: nnz(Δ_t) / numel over both delta layers and all frames (Δ_1 = q_1);
- activation density: nnz(q_t) / numel (what an ordinary sparse, non-delta engine would send);
- synop saving against the dense layer: 1 − Σ_l nnz(Δ_l)·n_out,l / Σ_l numel(q_l)·n_out,l, the fraction of the
  next layers' multiply-accumulates that delta inference skips (for the ReLU baseline the same count on its
  unquantised activations, whose deltas are nonzero wherever the activation changes at all).

Same budget for every setting (Adam 2e-3, cosine, batch 32). Sizes against the paper: UCF101 with ResNet-50 /
MobileNet; here 1,290 training clips of 8 frames, 6 epochs (quick: 220 clips, 2 epochs).
"""

from __future__ import annotations

from typing import Any

import torch

import neuromorph.nn as snn
from neuromorph.train.data import load_data
from neuromorph.train.loop import Hooks
from neuromorph.train.recipes import get_recipe

from .common import RunConfig, errorbar, fmt, recipe_for, stats, train

RATES = (0.0, 1e-2, 1e-1)


class DeltaHooks(Hooks):
    """Adds the delta layers' sparsity penalties Σ λ·n_out·mean|Δ| of the last forward to the loss."""

    def regularizer(self, model: torch.nn.Module) -> torch.Tensor:
        return snn.delta_penalty(model)


class FrameDeltaNet(torch.nn.Module):
    """Frames ``[T, B, 2, 32, 32]`` → logits ``[T, B, 10]``; ``sp_rate=None`` is the dense ReLU baseline."""

    def __init__(self, sp_rate: float | None = 0.0, width: int = 16) -> None:
        super().__init__()

        def act(c: int, fan_out: int) -> torch.nn.Module:
            return torch.nn.ReLU() if sp_rate is None else snn.DeltaActivation(c, sp_rate=sp_rate, fan_out=fan_out)

        self.fan_outs = [2 * width * 9, 10]
        self.net = torch.nn.Sequential(
            snn.AvgPool2d(2),
            snn.Conv2d(2, width, 3, padding=1, bias=False), snn.BatchNorm2d(width), snn.MaxPool2d(2), act(width, self.fan_outs[0]),
            snn.Conv2d(width, 2 * width, 3, padding=1, bias=False), snn.BatchNorm2d(2 * width), snn.MaxPool2d(2),
            act(2 * width, self.fan_outs[1]),
            snn.Flatten(), snn.Linear(2 * width * 16, 10),
        )

    def activations(self) -> list[torch.nn.Module]:
        return [m for m in self.net if isinstance(m, (torch.nn.ReLU, snn.DeltaActivation))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.no_grad()
def delta_statistics(model: FrameDeltaNet, split, batch: int = 128) -> dict[str, float]:
    """Nonzero-delta fraction, activation density and synop saving over ``split`` (see the module docstring)."""
    acts = model.activations()
    nnz_delta = [0.0] * len(acts)
    nnz_q = [0.0] * len(acts)
    numel = [0.0] * len(acts)
    store: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, i=i: store.__setitem__(i, out)) for i, m in enumerate(acts)]
    try:
        model.eval()
        for idx in torch.arange(len(split)).split(batch):
            x, _ = split.batch(idx)
            model(x)
            for i in range(len(acts)):
                q = store[i]
                delta = torch.cat([q[:1], q[1:] - q[:-1]], 0)
                nnz_delta[i] += float((delta != 0).sum())
                nnz_q[i] += float((q != 0).sum())
                numel[i] += q.numel()
    finally:
        for h in hooks:
            h.remove()
    ops_delta = sum(n * f for n, f in zip(nnz_delta, model.fan_outs))
    ops_dense = sum(n * f for n, f in zip(numel, model.fan_outs))
    return {"nonzero_delta_fraction": sum(nnz_delta) / sum(numel), "activation_density": sum(nnz_q) / sum(numel),
            "synop_saving": 1.0 - ops_delta / ops_dense,
            "nonzero_delta_fraction_per_layer": [a / b for a, b in zip(nnz_delta, numel)]}


def run(cfg: RunConfig) -> dict[str, Any]:
    epochs = 2 if cfg.quick else 6
    settings: list[tuple[str, float | None]] = [("ReLU (dense)", None)] + [(f"delta λ={r:g}", r) for r in RATES]
    if cfg.quick:
        settings = settings[:1] + settings[2:4]
    cfg.params = {"data": "digits-dvs (8 frames, 32x32 crop, pooled to 16x16)", "epochs": epochs, "batch_size": 32,
                  "optimizer": "adam 2e-3 cosine", "width": 16, "sp_rates": [s[1] for s in settings], "theta_init": 0.1}
    runs: list[dict[str, Any]] = []
    for seed in cfg.seeds:
        recipe0 = get_recipe("digits-dvs").replace(seed=seed, **({"train_limit": 220, "test_limit": 100} if cfg.quick else {}))
        data = load_data(recipe0)
        for name, rate in settings:
            recipe = recipe_for(f"delta-{rate}", FrameDeltaNet, {"sp_rate": rate}, seed, epochs=epochs)
            model, summary = train(recipe, data, DeltaHooks() if rate is not None else None)
            st = delta_statistics(model, data.test)
            theta = [float(m.theta.detach().abs().mean()) for m in model.activations() if isinstance(m, snn.DeltaActivation)]
            runs.append({"seed": seed, "setting": name, "sp_rate": rate, **summary, **st, "mean_theta": theta})
            print(f"delta seed {seed} {name}: test {summary['test_accuracy']:.3f} nonzero deltas {st['nonzero_delta_fraction']:.3f} "
                  f"saving {st['synop_saving']:.3f} ({summary['wall_time_s']:.0f} s)", flush=True)
    summary = {}
    for name, rate in settings:
        sel = [r for r in runs if r["setting"] == name]
        summary[name] = {"setting": name, "sp_rate": rate, **{k: stats([r[k] for r in sel]) for k in
                         ("test_accuracy", "nonzero_delta_fraction", "activation_density", "synop_saving")}}
    return {"claim": "the delta penalty trades accuracy for sparse frame-to-frame changes; synops saved vs the dense layer",
            "runs": runs, "summary": summary}


def table(result: dict[str, Any]) -> str:
    lines = ["| setting | test accuracy (%) | nonzero deltas (%) | activation density (%) | synop saving vs dense (%) |", "|---|---|---|---|---|"]
    for s in result["summary"].values():
        lines.append(f"| {s['setting']} | {fmt(s['test_accuracy'])} | {fmt(s['nonzero_delta_fraction'])} | "
                     f"{fmt(s['activation_density'])} | {fmt(s['synop_saving'])} |")
    return "\n".join(lines)


def plot(result: dict[str, Any]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for s in result["summary"].values():
        a, d = s["test_accuracy"], s["nonzero_delta_fraction"]
        ax.errorbar([d["mean"] * 100], [a["mean"] * 100], xerr=[d["std"] * 100], yerr=[a["std"] * 100], marker="o", capsize=3,
                    label=s["setting"])
    ax.set_xlabel("nonzero deltas (% of activations)"), ax.set_ylabel("test accuracy (%)")
    ax.set_title("Delta activation layer (Yousefzadeh & Sifalakis), digits-dvs", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
