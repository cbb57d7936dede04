"""Learnable delays with DCLS (Hammouamri, Khalfaoui-Hassani & Masquelier, "Learning Delays in Spiking Neural
Networks using Dilated Convolutions with Learnable Spacings", ICLR 2024; code Thvnvtos/SNN-delays).

Claims (the paper's ablation): learned delays beat fixed random delays, and the Gaussian σ that starts wide and
shrinks during training (the σ schedule) matters for learning them. Learning positions doubles the synaptic
parameters (a weight and a position per synapse), so the fixed-delay net is compared at equal parameter count
(a wider hidden layer) as well as at equal width.

Protocol: shd_fsdd (FSDD spoken digits through the SHD cochlea model, 10 classes: 2,430 train of which 10 %
held out for model selection, 300 test), a short budget of the SHD recipe: 20 ms count bins of 140 channels
(700 summed in groups of 5), ``SHDDelayNet`` with 2 hidden layers, max delay K = 13 steps (260 ms, the paper's
250 ms), τ = 1.005, dropout 0.4, summed-softmax readout, the recipe's two Adam optimisers (weights OneCycle to
5e-3, positions lr 0.1 cosine), batch 64, evaluation with rounded integer delays. Variants (same epochs):

- ``learned, σ schedule``: the recipe (σ from ⌊K/2⌋ down to 0.23 over the first quarter of the epochs);
- ``learned, σ fixed``: positions learned with σ = 0.23 (σ_eff = 0.5) from the start (schedule off);
- ``fixed random, equal width``: positions frozen at their random initial values, rounded (as in
  ``benchmarks/accuracy.py``);
- ``fixed random, equal params``: the same with a wider hidden layer so that its weights match the learned
  net's weights + positions.

Sizes against the paper: SHD (8,156 training samples, 20 classes), 2x256 neurons, 10 ms bins, 150 epochs; here
2x64 (learned) at 20 ms bins for 8 epochs (quick: 2x16, 1 epoch on 200 samples). The full-size comparison of
learned vs fixed vs no delays (150 epochs) is in benchmarks/RESULTS.md.
"""

from __future__ import annotations

from typing import Any

import torch

from neuromorph.nn.delays import delayed_layers
from neuromorph.train.data import load_data
from neuromorph.train.delay_hooks import DelayHooks
from neuromorph.train.recipes import get_recipe

from .common import RunConfig, data_root, fmt, stats, train

SIGMA_FINAL = 0.23


class FixedSigmaHooks(DelayHooks):
    """The recipe's delay training with σ = 0.23 from the first step (no σ schedule)."""

    def prepare(self, model: torch.nn.Module) -> None:
        for layer in delayed_layers(model):
            layer.set_sigma(SIGMA_FINAL)

    def end_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        pass


class FixedDelayHooks(DelayHooks):
    """Positions frozen at their random initial values, rounded to integers; σ never changes."""

    def prepare(self, model: torch.nn.Module) -> None:
        for layer in delayed_layers(model):
            layer.round_delays()
            layer.positions.requires_grad_(False)

    def end_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        pass


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def n_weights(model: torch.nn.Module) -> int:
    """Parameters other than delay positions (what a fixed-delay net trains)."""
    positions = {id(layer.positions) for layer in delayed_layers(model)}
    return sum(p.numel() for p in model.parameters() if id(p) not in positions)


def equal_param_width(hidden: int, kwargs: dict[str, Any]) -> int:
    """Hidden width whose weights (no positions) best match the learned net's weights + positions."""
    from neuromorph.models.shd import SHDDelayNet

    target = sum(p.numel() for p in SHDDelayNet(hidden=hidden, **kwargs).parameters())
    return min(range(hidden, 3 * hidden), key=lambda w: abs(n_weights(SHDDelayNet(hidden=w, **kwargs)) - target))


def run(cfg: RunConfig) -> dict[str, Any]:
    epochs = 1 if cfg.quick else 8
    hidden = 16 if cfg.quick else 64
    model_kwargs = {"n_inputs": 140, "n_classes": 10, "max_delay": 13}
    wide = equal_param_width(hidden, model_kwargs)
    base = get_recipe("shd").replace(data_root=str(data_root(cfg, "shd_fsdd")), dt_us=20_000, batch_size=64, epochs=epochs,
                                     model_kwargs={**model_kwargs, "hidden": hidden})
    if cfg.quick:
        base = base.replace(train_limit=200, test_limit=60, batch_size=32)
    variants = {
        "learned, σ schedule": (hidden, DelayHooks),
        "learned, σ fixed": (hidden, FixedSigmaHooks),
        "fixed random, equal width": (hidden, FixedDelayHooks),
        "fixed random, equal params": (wide, FixedDelayHooks),
    }
    cfg.params = {"data": "shd_fsdd, 20 ms bins, 140 channels", "epochs": epochs, "batch_size": base.batch_size, "max_delay": 13,
                  "hidden": {k: v[0] for k, v in variants.items()}, "recipe": "shd (two Adam optimisers, OneCycle/cosine)",
                  "train_limit": base.train_limit, "test_limit": base.test_limit}
    runs: list[dict[str, Any]] = []
    for seed in cfg.seeds:
        data = load_data(base.replace(seed=seed))
        for name, (width, hooks_cls) in variants.items():
            recipe = base.replace(seed=seed, model_kwargs={**model_kwargs, "hidden": width})
            hooks = hooks_cls()
            model, summary = train(recipe, data, hooks)
            fixed = hooks_cls is FixedDelayHooks
            params = n_weights(model) if fixed else sum(p.numel() for p in model.parameters())
            runs.append({"seed": seed, "variant": name, "hidden": width, "trained_parameters": params, **summary})
            print(f"dcls seed {seed} {name}: test {summary['test_accuracy']:.3f} ({summary['wall_time_s']:.0f} s)", flush=True)
    summary = {}
    for name in variants:
        sel = [r for r in runs if r["variant"] == name]
        summary[name] = {"variant": name, "hidden": sel[0]["hidden"], "trained_parameters": sel[0]["trained_parameters"],
                         "test_accuracy": stats([r["test_accuracy"] for r in sel]), "best_val_accuracy": stats([r["best_val_accuracy"] for r in sel])}
    acc = {k: v["test_accuracy"]["mean"] for k, v in summary.items()}
    return {"claim": "learned delays beat fixed random delays at equal parameter count; the σ schedule helps",
            "runs": runs, "summary": summary,
            "claim_holds_on_means": {"learned_beats_fixed_equal_params": acc["learned, σ schedule"] > acc["fixed random, equal params"],
                                     "learned_beats_fixed_equal_width": acc["learned, σ schedule"] > acc["fixed random, equal width"],
                                     "schedule_beats_fixed_sigma": acc["learned, σ schedule"] > acc["learned, σ fixed"]}}


def table(result: dict[str, Any]) -> str:
    lines = ["| variant | hidden | trained parameters | test accuracy (%) | best validation (%) |", "|---|---|---|---|---|"]
    for s in result["summary"].values():
        lines.append(f"| {s['variant']} | {s['hidden']} | {s['trained_parameters']} | {fmt(s['test_accuracy'])} | {fmt(s['best_val_accuracy'])} |")
    return "\n".join(lines)


def plot(result: dict[str, Any]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    names = list(result["summary"])
    for i, n in enumerate(names):
        s = result["summary"][n]["test_accuracy"]
        ax.bar([i], [s["mean"] * 100], yerr=[s["std"] * 100], capsize=3)
        ax.scatter([i] * len(s["values"]), [v * 100 for v in s["values"]], c="k", s=8, zorder=3)
    ax.set_xticks(range(len(names)), [n.replace(", ", "\n") for n in names], fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("DCLS delays on shd_fsdd (Hammouamri et al., ICLR 2024)", fontsize=9)
    fig.tight_layout()
    return fig
