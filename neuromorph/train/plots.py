"""PNG plots of a run: loss/accuracy curves, confusion matrix, firing rate per layer, spike raster.

matplotlib (the ``plot`` extra) is imported lazily, with the non-interactive Agg backend.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch

from neuromorph._plot import pyplot, save_png
from neuromorph.errors import ConfigError
from neuromorph.nn.protocol import Role, layers


def plot_curves(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Training/validation loss and accuracy per epoch from metrics.jsonl records."""
    plt = pyplot()
    epochs = [r for r in records if "train_loss" in r]
    if not epochs:
        raise ConfigError("no epoch records to plot (metrics.jsonl is empty)")
    x = [r["epoch"] for r in epochs]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(x, [r["train_loss"] for r in epochs], "o-", label="train")
    ax2.plot(x, [r["train_accuracy"] for r in epochs], "o-", label="train")
    if any("val_loss" in r for r in epochs):
        ax1.plot(x, [r.get("val_loss") for r in epochs], "s-", label="validation")
        ax2.plot(x, [r.get("val_accuracy") for r in epochs], "s-", label="validation")
    final = [r for r in records if r.get("event") == "final"]
    if final:
        ax2.axhline(final[-1]["test_accuracy"], color="k", ls="--", lw=1, label=f"test (best.pt) {final[-1]['test_accuracy']:.3f}")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers: no 0.5 ticks
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion(confusion: Sequence[Sequence[int]], path: str | Path, classes: Sequence[str] | None = None) -> Path:
    """Confusion matrix (rows: true class, columns: predicted), counts annotated."""
    plt = pyplot()
    cm = torch.as_tensor(confusion)
    n = cm.shape[0]
    classes = list(classes) if classes else [str(i) for i in range(n)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n))
    ax.imshow(cm.numpy(), cmap="Blues")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=classes, yticklabels=classes, xlabel="predicted", ylabel="true",
           title=f"confusion (accuracy {float(cm.diag().sum() / cm.sum().clamp(min=1)):.3f})")
    return _save(fig, path)


def plot_firing_rates(rates: dict[str, float | None], path: str | Path) -> Path:
    """Mean firing rate (spikes per neuron per step) of each spiking layer."""
    plt = pyplot()
    # JSON summaries store the layers with sorted keys: a natural sort ("net.2" < "net.10") restores the
    # order of the model's (numbered) submodules
    natural = lambda name: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name)]  # noqa: E731
    names = sorted((k for k, v in rates.items() if v is not None), key=natural)
    if not names:
        raise ConfigError("the model has no spiking layers to plot firing rates for")
    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * len(names), 3.2))
    ax.bar(range(len(names)), [rates[k] for k in names])
    ax.set(xticks=range(len(names)), ylabel="spikes / neuron / step", title="firing rate per layer")
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    return _save(fig, path)


def raster_rows(spikes: torch.Tensor, max_neurons: int = 256) -> tuple[torch.Tensor, str]:
    """Which neurons a raster shows, and how to say so: the neurons that fired at least once (the most
    active first when more than ``max_neurons`` fired, then in index order), so that a layer of many
    mostly silent neurons shows its activity instead of empty rows. ``spikes``: ``[T, N]``."""
    events = (spikes != 0).sum(0)
    active = torch.nonzero(events > 0).flatten()
    n = spikes.shape[1]
    if len(active) > max_neurons:
        top = active[torch.argsort(events[active], descending=True, stable=True)[:max_neurons]]
        return top.sort().values, f"the {max_neurons} most active of {len(active)} active neurons (of {n})"
    return active, f"{len(active)} active neurons of {n}"


def plot_raster(spikes: dict[str, torch.Tensor], path: str | Path, max_neurons: int = 256) -> Path:
    """Spike raster of one sample: one panel per layer, x = time step, y = the active neurons
    (:func:`raster_rows`; their indices label the axis when few), the selection stated in the title."""
    plt = pyplot()
    if not spikes:
        raise ConfigError("no spiking layers recorded for the raster")
    fig, axes = plt.subplots(len(spikes), 1, figsize=(7, 1.8 * len(spikes)), squeeze=False)
    for ax, (name, s) in zip(axes[:, 0], spikes.items()):
        full = s.reshape(s.shape[0], -1)
        rows, shown = raster_rows(full, max_neurons)
        t, n = torch.nonzero(full[:, rows] != 0, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=2, marker="|", color="k")
        ax.set(xlim=(-0.5, full.shape[0] - 0.5), ylim=(-0.5, max(len(rows), 1) - 0.5), ylabel="active neuron")
        if 0 < len(rows) <= 16:
            ax.set_yticks(range(len(rows)), [str(int(i)) for i in rows], fontsize=6)
        ax.set_title(f"{name}: {int((full != 0).sum())} spikes, rate {float((full != 0).double().mean()):.3f}; "
                     f"showing {shown}", fontsize=8)
    axes[-1, 0].set_xlabel("time step")
    return _save(fig, path)


def record_spikes(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Spikes ``[T, ...]`` of every spiking layer (role ``neuron`` in the layer protocol) for the single
    sample ``x`` (``[T, 1, ...]``); a neuron run one step per call contributes one row per call."""
    recorded: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, module, decl in layers(model):
        if decl.role is not Role.NEURON:
            continue

        def hook(mod, inp, out, name=name, stepwise=decl.stepwise):
            out = (out[0] if isinstance(out, tuple) else out).detach().cpu()
            if stepwise:  # [B, ...] per call
                recorded.setdefault(name, []).append(out[0].unsqueeze(0))
            else:  # [T, B, ...]
                recorded[name] = [out[:, 0]]

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(parts) for name, parts in recorded.items()}


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    return save_png(fig, path)
