"""Shared runner of the paper reproductions: data, seeded training through the package loop, statistics, output.

Every method module (``benchmarks/repro/<method>.py``) defines ``run(cfg) -> dict`` and ``plot(result) -> Figure``;
``benchmarks/reproductions.py`` calls them. Conventions that hold for every method:

- Training goes through :func:`neuromorph.train.fit` (seeded model construction, seeded batch order,
  ``best.pt`` chosen on a validation part held out of the training split); the test split is evaluated
  once, on the selected model, for the final number.
- A method and its ablations get the same budget (epochs, batch, optimiser, data), per seed.
- ``mean ± std`` over seeds (sample standard deviation).
- ``DIR/<method>.json`` holds the configuration, per-seed values and the summary; ``DIR/<method>.png``
  the plot; ``DIR/<method>.config.json`` the configuration alone.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from neuromorph._atomic import atomic_path, atomic_write_bytes
from neuromorph.errors import DatasetError
from neuromorph.train import checkpoint as ck
from neuromorph.train.data import EVAL_SUBSET_SEED, DataBundle, Split, split_validation, stratified_indices
from neuromorph.train.loop import Hooks, fit
from neuromorph.train.recipes import Recipe


@dataclass
class RunConfig:
    """What one invocation of a method runs (written next to its result)."""

    method: str
    seeds: list[int]
    quick: bool
    threads: int
    out: str
    data: str | None
    params: dict[str, Any] = field(default_factory=dict)  # the method's own sizes (epochs, widths, T ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# data


def digits_static(seed: int, quick: bool = False, val_fraction: float = 0.15) -> DataBundle:
    """scikit-learn's 8x8 digits as a one-step sequence ``x`` ``[N, 1, 1, 8, 8]`` (pixels / 16).

    The test split is a fixed class-stratified 360 images (the same for every seed); ``val_fraction`` of the
    rest is held out per seed (class-stratified) for model selection. ``quick`` keeps 300 training images.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).reshape(-1, 1, 1, 8, 8) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    test_idx = stratified_indices(y, 360, EVAL_SUBSET_SEED)
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[test_idx] = False
    rest = torch.nonzero(keep).reshape(-1)
    train = Split(x[rest], y[rest])
    if quick:
        train = train.subset(stratified_indices(train.y, 300, seed))
    train, val = split_validation(train, val_fraction, seed)
    test = Split(x[test_idx], y[test_idx])
    if quick:
        test = test.subset(stratified_indices(test.y, 100, EVAL_SUBSET_SEED))
    info = {"dataset": "sklearn-digits 8x8", "n_train": len(train), "n_val": len(val) if val else 0, "n_test": len(test)}
    return DataBundle(train, val, test, 10, (1, 8, 8), info)


def data_root(cfg: RunConfig, name: str) -> Path:
    """``DATA/name`` (``--data`` or ``$NEUROMORPH_TEST_DATA``), with a clear error when it is missing."""
    base = cfg.data or os.environ.get("NEUROMORPH_TEST_DATA")
    if not base:
        raise DatasetError(f"method {cfg.method!r} needs the real data folder: pass --data DIR (DIR/{name} must exist) "
                           "or set NEUROMORPH_TEST_DATA")
    root = Path(base) / name
    if not root.is_dir():
        raise DatasetError(f"method {cfg.method!r}: data folder {str(root)!r} does not exist")
    return root


# --------------------------------------------------------------------------------------------------
# training


def recipe_for(name: str, builder: Callable[..., torch.nn.Module], kwargs: dict[str, Any], seed: int, **changes: Any) -> Recipe:
    """A recipe whose model is ``builder(**kwargs)`` (registered under ``benchmarks.repro.<name>``).

    The ``dataset`` field is only a label here: the data are passed to ``fit`` directly.
    """
    key = f"benchmarks.repro.{name}"
    ck.register_builder(key, builder)
    base = dict(name=name, dataset="digits-dvs", model=key, model_kwargs=dict(kwargs), seed=seed, epochs=10, batch_size=32,
                lr=2e-3, schedule="cosine", readout="mean", val_fraction=0.0)
    base.update(changes)
    return Recipe(**base)


def train(recipe: Recipe, data: DataBundle, hooks: Hooks | None = None, out: Path | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fit ``recipe`` on ``data`` with the package loop; returns (the model with ``best.pt`` loaded, eval mode; summary).

    ``summary`` holds ``test_accuracy`` (best.pt on the test split), ``best_epoch``, ``best_val_accuracy``,
    ``wall_time_s``, ``cpu_time_s``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out) if out is not None else Path(tmp) / "run"
        t0, c0 = time.perf_counter(), time.process_time()
        summary = fit(recipe, folder, data=data, progress=False, hooks=hooks, overwrite=True)
        summary["wall_time_s"] = round(time.perf_counter() - t0, 2)
        summary["cpu_time_s"] = round(time.process_time() - c0, 2)
        best = ck.load_checkpoint(folder / "best.pt")
    builder = ck.resolve_builder(recipe.model)
    model = builder(**recipe.model_kwargs)
    model.load_state_dict(best["state_dict"])
    keep = ("test_accuracy", "best_epoch", "best_val_accuracy", "mean_firing_rate", "wall_time_s", "cpu_time_s", "n_train", "n_val", "n_test")
    return model.eval(), {k: summary.get(k) for k in keep}


@torch.no_grad()
def predict(model: torch.nn.Module, split: Split, batch: int = 256, readout: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Predicted classes of ``model`` (eval mode) on every sample of ``split``; default readout: mean over time."""
    model.eval()
    preds = []
    for idx in torch.arange(len(split)).split(batch):
        x, _ = split.batch(idx)
        out = model(x)
        scores = readout(out) if readout is not None else (out.mean(0) if out.dim() == 3 else out)
        preds.append(scores.argmax(-1))
    return torch.cat(preds)


def accuracy(model: torch.nn.Module, split: Split, **kw: Any) -> float:
    return float((predict(model, split, **kw) == split.y).float().mean())


# --------------------------------------------------------------------------------------------------
# statistics and output


def stats(values: list[float]) -> dict[str, Any]:
    """mean, sample std (0 for one value) and the values themselves (None values are skipped)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "values": []}
    return {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "values": vals}


def fmt(s: dict[str, Any], scale: float = 100.0, digits: int = 1) -> str:
    """``mean ± std`` (as percent by default)."""
    if s.get("mean") is None:
        return "n/a"
    return f"{s['mean'] * scale:.{digits}f} ± {s['std'] * scale:.{digits}f}"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_outputs(cfg: RunConfig, result: dict[str, Any], plot: Callable[[dict[str, Any]], Any]) -> dict[str, Path]:
    """Write ``<method>.json`` (config + result), ``<method>.config.json`` and ``<method>.png`` into ``cfg.out``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{cfg.method}.json", "config": out / f"{cfg.method}.config.json", "png": out / f"{cfg.method}.png"}
    payload = _jsonable({"method": cfg.method, "config": cfg.to_dict(), "torch": torch.__version__,
                         "threads": torch.get_num_threads(), **result})
    atomic_write_bytes(paths["config"], json.dumps(_jsonable(cfg.to_dict()), indent=2).encode())
    atomic_write_bytes(paths["json"], json.dumps(payload, indent=2).encode())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plot(payload)
    with atomic_path(paths["png"], suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return paths


def errorbar(ax, xs, summaries: list[dict[str, Any]], label: str, scale: float = 100.0, **kw: Any) -> None:
    """Plot mean ± std of ``summaries`` (from :func:`stats`) at ``xs``."""
    pts = [(x, s["mean"] * scale, s["std"] * scale) for x, s in zip(xs, summaries) if s.get("mean") is not None]
    if pts:
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3, label=label, **kw)


_DVS_CACHE: dict[tuple[int, bool], DataBundle] = {}


def digits_dvs(seed: int, steps: int, quick: bool = False, val_fraction: float = 0.1) -> DataBundle:
    """neuromorph's digits-dvs event set binned into ``steps`` frames ``[N, steps, 2, 32, 32]`` (the recipe's
    32x32 centre crop); test: the set's own test split (364 clips; quick: 100), validation: ``val_fraction`` of
    train held out per seed (class-stratified). ``quick`` keeps 220 training clips."""
    from neuromorph.train.data import load_data
    from neuromorph.train.recipes import get_recipe

    key = (steps, quick)
    if key not in _DVS_CACHE:
        recipe = get_recipe("digits-dvs").replace(n_time_bins=steps, val_fraction=0.0,
                                                  **({"train_limit": 260, "test_limit": 100} if quick else {}))
        _DVS_CACHE[key] = load_data(recipe)
    full = _DVS_CACHE[key]
    train, val = split_validation(full.train, val_fraction, seed)
    info = {**full.info, "dataset": f"digits-dvs, {steps} frames", "n_train": len(train), "n_val": len(val) if val else 0}
    return DataBundle(train, val, full.test, full.n_classes, full.input_shape, info)
