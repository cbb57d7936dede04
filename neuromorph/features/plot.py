"""PNG figures of the feature extractors: FEAST kernels and threshold trajectories, HD-SNN kernels.

matplotlib is imported lazily (the ``plot`` extra); every figure is written atomically (temp file in
the target folder, then ``os.replace``) so an interrupted run never leaves a truncated PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuromorph._plot import pyplot, save_png
from neuromorph.errors import ConfigError


def _save(fig, path) -> Path:
    if Path(path).suffix.lower() != ".png":
        pyplot().close(fig)
        raise ConfigError(f"path={str(path)!r} must end in .png")
    return save_png(fig, path, bbox_inches="tight")


def _grid(n: int) -> tuple[int, int]:
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def plot_feast_kernels(layer, path) -> Path:
    """One panel per neuron and input channel: its unit-norm weights over (dx, dy), y up."""
    plt = pyplot()
    w = layer.weights  # [N, C, side, side]
    n, c = w.shape[:2]
    rows, cols = _grid(n)
    fig, axes = plt.subplots(rows, cols * c, figsize=(1.3 * cols * c, 1.3 * rows), squeeze=False)
    vmax = float(w.max())
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        for ch in range(c):
            ax = axes[i // cols, (i % cols) * c + ch]
            ax.imshow(w[i, ch].T, origin="lower", cmap="viridis", vmin=0, vmax=vmax)
            ax.set_title(f"n{i}" + (f" c{ch}" if c > 1 else ""), fontsize=7)
    fig.suptitle(f"FEAST kernels (N={n}, C={c}, R={layer.radius}, tau={layer.tau:g} us)", fontsize=9)
    return _save(fig, path)


def plot_threshold_trajectories(trace, path, delta_open: float | None = None,
                                delta_close: float | None = None) -> Path:
    """Thresholds of every neuron and the windowed miss rate against events seen (a FeastTrace).

    Given the layer's steps, the steady-state miss rate 1 / (1 + N · delta_open / delta_close) is drawn.
    """
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    ax1.plot(trace.event_index + 1, trace.thresholds, lw=0.7)
    ax1.set_ylabel("threshold θ_i")
    ax2.plot(trace.event_index + 1, trace.miss_rate, color="k", lw=0.8)
    if delta_open and delta_close:
        n = trace.thresholds.shape[1]
        ax2.axhline(1.0 / (1.0 + n * delta_open / delta_close), color="r", ls="--", lw=0.8,
                    label="steady state 1/(1+N·Δopen/Δclose)")
        ax2.legend(fontsize=7)
    ax2.set_ylabel("miss rate")
    ax2.set_yscale("log")
    ax2.set_xlabel("events")
    fig.suptitle("FEAST convergence", fontsize=9)
    return _save(fig, path)


def plot_hdsnn_kernels(model, path, classes=None, polarity: int = 1) -> Path:
    """Kernel 𝒦(c, polarity, d, δx, δy): one row per class, one column per delay d (y up)."""
    plt = pyplot()
    k = model.kernel.detach().cpu().numpy()
    classes = list(range(k.shape[0])) if classes is None else list(classes)
    n_d = k.shape[2]
    fig, axes = plt.subplots(len(classes), n_d, figsize=(1.1 * n_d, 1.1 * len(classes)), squeeze=False)
    vmax = float(np.abs(k[classes, polarity]).max()) or 1.0
    for r, c in enumerate(classes):
        for d in range(n_d):
            ax = axes[r, d]
            ax.imshow(k[c, polarity, d].T, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"d={d}", fontsize=7)
            if d == 0:
                ax.set_ylabel(f"class {c}", fontsize=7)
    fig.suptitle(f"HD-SNN kernels, polarity {polarity} (rows: class, columns: delay)", fontsize=9)
    return _save(fig, path)
