"""Evaluate a checkpoint on a split, and draw a run's plots (what ``neuromorph eval`` / ``plot`` call)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from neuromorph.errors import CheckpointError, ConfigError
from neuromorph.train import checkpoint as ck
from neuromorph.train.data import Split, load_split
from neuromorph.train.loop import evaluate, hooks_for, resolve_device
from neuromorph.train.metrics import read_jsonl
from neuromorph.train.recipes import Recipe


def checkpoint_recipe(info: dict[str, Any], path: str | Path, recipe: str | None = None, **changes: Any) -> Recipe:
    """The recipe a checkpoint recorded (or the named ``recipe``, which wins), with ``changes`` (``None``
    values ignored). A checkpoint without one (a user model saved without ``recipe=``) needs the name."""
    from neuromorph.train.recipes import RECIPES, get_recipe

    if recipe is not None:
        base = get_recipe(recipe)
    elif "recipe" in info:
        base = Recipe.from_dict(info["recipe"])
    else:
        raise CheckpointError(
            f"checkpoint {str(path)!r} records no recipe (which data set, binning and readout to evaluate on): pass "
            f"--recipe NAME ({', '.join(sorted(RECIPES))}) with --data-root, or save the model with "
            f"neuromorph.save_model(..., recipe=NAME)"
        )
    return base.replace(**{k: v for k, v in changes.items() if v is not None})


def evaluate_checkpoint(
    path: str | Path,
    data_root: str | None = None,
    split: str = "test",
    device: str = "cpu",
    batch_size: int | None = None,
    data: Split | None = None,
    recipe: str | None = None,
    trust_builder: ck.Trust = False,
    python_path: Sequence[str] = (),
) -> dict[str, Any]:
    """Accuracy, loss, per-class accuracy, confusion and firing rate per layer of a checkpoint on a split.

    The checkpoint knows its recipe (data set, binning, readout); ``data_root`` overrides where the data
    lives. ``data`` passes a ready split instead (tests, notebooks). ``recipe`` names the recipe whose data
    to use when the checkpoint records none (a user model); ``trust_builder``/``python_path`` allow a model
    builder outside neuromorph (``neuromorph.train.checkpoint.resolve_builder``).
    """
    model, info = ck.load_model(path, trust_builder=trust_builder, python_path=python_path)
    rec = checkpoint_recipe(info, path, recipe, data_root=data_root, device=device, eval_batch_size=batch_size)
    dev = resolve_device(rec.device)
    if data is None:
        data = load_split(rec, split, info.get("data", {}).get("n_steps"))
    n_classes = int(info.get("n_classes") or int(data.y.max()) + 1)
    result = evaluate(model.to(dev), data, rec, n_classes, dev, hooks_for(rec))
    classes = info.get("data", {}).get("classes")
    result.update({"checkpoint": str(path), "recipe": rec.name, "dataset": rec.dataset, "split": split,
                   "epoch": info.get("epoch"), "classes": classes})
    return result


def make_plots(
    run: str | Path,
    out_dir: str | Path,
    data_root: str | None = None,
    sample: int = 0,
    data: Split | None = None,
    recipe: str | None = None,
    trust_builder: ck.Trust = False,
    python_path: Sequence[str] = (),
) -> list[Path]:
    """All plots of a run folder (``OUT`` of ``neuromorph train``) or of a single checkpoint file.

    From a run folder: loss/accuracy curves (metrics.jsonl) and the confusion matrix and firing rates of
    the final test evaluation. From the checkpoint (best.pt of the folder, or the file given): a spike
    raster of test sample ``sample`` (and, for a bare checkpoint, a fresh evaluation for the rest).
    ``recipe``, ``trust_builder``, ``python_path``: as for :func:`evaluate_checkpoint`.
    """
    from neuromorph.train import plots

    run, out_dir = Path(run), Path(out_dir)
    written: list[Path] = []
    final: dict[str, Any] | None = None
    if run.is_dir():
        metrics = run / "metrics.jsonl"
        if not metrics.exists():
            raise ConfigError(f"{str(run)!r} is not a training run folder (no metrics.jsonl)")
        records = read_jsonl(metrics)
        written.append(plots.plot_curves(records, out_dir / "curves.png"))
        finals = [r for r in records if r.get("event") == "final"]
        final = finals[-1] if finals else None
        ckpt_path = run / "best.pt"
    else:
        ckpt_path = run
    model, info = ck.load_model(ckpt_path, trust_builder=trust_builder, python_path=python_path)
    rec = checkpoint_recipe(info, ckpt_path, recipe, data_root=data_root)
    classes = info.get("data", {}).get("classes")
    if data is None:
        data = load_split(rec, "test", info.get("data", {}).get("n_steps"))
    if final is None:
        res = evaluate_checkpoint(ckpt_path, data_root=data_root, data=data, recipe=recipe, trust_builder=trust_builder,
                                  python_path=python_path)
        final = {"test_confusion": res["confusion"], "test_firing_rate": res["firing_rate"]}
    written.append(plots.plot_confusion(final["test_confusion"], out_dir / "confusion.png", classes))
    if any(v is not None for v in final["test_firing_rate"].values()):
        written.append(plots.plot_firing_rates(final["test_firing_rate"], out_dir / "firing_rates.png"))
    if not 0 <= sample < len(data):
        raise ConfigError(f"sample={sample} is outside the test split (0..{len(data) - 1})")
    x, _ = data.batch(torch.tensor([sample]))
    with hooks_for(rec).eval_context(model):
        spikes = plots.record_spikes(model, x)
    if spikes:
        written.append(plots.plot_raster(spikes, out_dir / f"raster_sample{sample}.png"))
    (out_dir / "plots.json").write_text(json.dumps([str(p) for p in written]), encoding="utf-8")
    return written
