"""Data for training: build a recipe's splits once as dense time-major tensors, and batch them.

Event streams are binned once (frames ``[T, P, H, W]`` for cameras, spike counts ``[T, units]`` for
audio) and held in memory as ``[N, T, ...]`` tensors. Every epoch then only indexes tensors: no worker
processes, no per-epoch decoding, and a batch order that is a pure function of (seed, epoch), which is
what makes ``--resume`` bitwise exact and lets DDP ranks agree on the global batch without talking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from neuromorph.errors import ConfigError, DatasetError
from neuromorph.train.recipes import Recipe

# What a data root must look like, shown whenever a root is missing or malformed.
LAYOUTS: dict[str, str] = {
    "digits-dvs": "generated from scikit-learn's digits on first use and cached; --data-root is an optional cache folder",
    "nmnist": "DATA_ROOT/Train/<label 0-9>/<id>.bin and DATA_ROOT/Test/<label 0-9>/<id>.bin (N-MNIST 40-bit ATIS files)",
    "shd": "DATA_ROOT/shd_train.h5 and DATA_ROOT/shd_test.h5 (SHD HDF5: spikes/times, spikes/units, labels); "
    "a folder with *_train.h5 and *_test.h5 in the same layout (e.g. shd_fsdd) also works",
    "ssc": "DATA_ROOT/ssc_train.h5, DATA_ROOT/ssc_valid.h5 and DATA_ROOT/ssc_test.h5 (SSC HDF5, same layout as SHD)",
}


@dataclass
class Split:
    """One split as tensors: ``x`` ``[N, T, ...]`` (uint8 counts or float32), ``y`` ``[N]`` int64.

    ``lengths`` ``[N]`` holds each sample's own length in steps (up to its last non-zero step) when
    batches are padded per batch (``Recipe.pad = "batch"``); ``None`` means every batch keeps all T steps.
    """

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def steps_for(self, index: torch.Tensor) -> int:
        """Steps a batch of the samples at ``index`` keeps: the longest of them (or all T)."""
        if self.lengths is None or index.numel() == 0:
            return int(self.x.shape[1])
        return max(1, int(self.lengths[index].max()))

    def batch(self, index: torch.Tensor, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at ``index`` as a time-major float batch ``[T, B, ...]`` and labels ``[B]``.

        With ``lengths`` the batch is cut to its longest sample (``steps`` overrides that, e.g. the longest
        sample of the whole global batch under DDP), as SNN-delays' ``pad_sequence_collate`` pads.
        """
        steps = self.steps_for(index) if steps is None else steps
        x = self.x[index, :steps].to(torch.float32).transpose(0, 1).contiguous()
        return x, self.y[index]

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(self.x[index], self.y[index], None if self.lengths is None else self.lengths[index])

    def with_lengths(self) -> "Split":
        """This split with per-sample lengths: last step with any non-zero input, plus one (at least 1)."""
        active = self.x.reshape(self.x.shape[0], self.x.shape[1], -1).ne(0).any(-1)  # [N, T]
        steps = torch.arange(1, self.x.shape[1] + 1).expand_as(active)
        lengths = torch.where(active, steps, torch.zeros_like(steps)).amax(1).clamp_min(1)
        return Split(self.x, self.y, lengths)


@dataclass
class DataBundle:
    train: Split
    val: Split | None
    test: Split
    n_classes: int
    input_shape: tuple[int, ...]  # per time step
    info: dict[str, Any]


def _stack(samples: Sequence[np.ndarray], max_steps: int | None) -> torch.Tensor:
    """Pad (zeros at the end) or crop along time so that all samples have the same length, then stack."""
    length = max_steps if max_steps is not None else max(int(s.shape[0]) for s in samples)
    first = np.asarray(samples[0])
    out = np.zeros((len(samples), length) + first.shape[1:], dtype=np.float32)
    for i, s in enumerate(samples):
        s = np.asarray(s)[:length]
        out[i, : s.shape[0]] = s
    tensor = torch.from_numpy(out)
    # counts are small non-negative integers: uint8 storage is 4x smaller and converts back exactly
    if out.size and out.min() >= 0 and out.max() <= 255 and np.array_equal(out, np.round(out)):
        return tensor.to(torch.uint8)
    return tensor


# seed of the test subset (``test_limit``) and of a limited own validation split: fixed, so that runs with
# different training seeds are evaluated on the same samples
EVAL_SUBSET_SEED = 0


def stratified_indices(labels: Sequence[int] | np.ndarray | torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``n`` indices into ``labels``, every class in proportion to its frequency, drawn at random per class.

    Each class gets ``n * n_c / N`` samples rounded by largest remainder (so the counts add up to ``n``);
    the samples of a class are a permutation seeded by ``seed`` (the same indices for the same seed). A
    label-sorted data set (N-MNIST's folders, SHD's files) therefore still gives every class, where the
    first ``n`` samples would give only the first classes. Returned sorted.
    """
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64).reshape(-1)
    total = int(y.numel())
    if not 0 <= n <= total:
        raise ConfigError(f"cannot take {n} samples of a split of {total}")
    if n == total:
        return torch.arange(total)
    classes, counts = torch.unique(y, return_counts=True)
    exact = counts.double() * n / total
    quota = exact.floor().long()
    left = n - int(quota.sum())
    if left:  # largest remainders first; ties go to the larger class, then the smaller label
        order = sorted(range(len(classes)), key=lambda i: (-(float(exact[i] - quota[i])), -int(counts[i]), int(classes[i])))
        for i in order[:left]:
            quota[i] += 1
    gen = torch.Generator().manual_seed(int(seed))
    chosen = []
    for c, k in zip(classes.tolist(), quota.tolist()):
        members = torch.nonzero(y == c).reshape(-1)
        chosen.append(members[torch.randperm(members.numel(), generator=gen)[:k]])
    return torch.cat(chosen).sort().values


def _labels(dataset: Any) -> np.ndarray | None:
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    targets = np.asarray(targets)
    return targets if targets.shape == (len(dataset),) else None


def materialize(dataset: Any, limit: int | None = None, max_steps: int | None = None, seed: int = 0) -> Split:
    """Read every ``(sample, label)`` of ``dataset`` (already transformed to ``[T, ...]`` arrays) into a Split.

    ``limit`` keeps a class-stratified subset of that many samples chosen with ``seed``
    (:func:`stratified_indices`, from the data set's ``targets``; a data set without ``targets`` gets a
    seeded random subset), never the first ``limit`` samples of a possibly label-sorted data set.
    """
    if limit is None or limit >= len(dataset):
        indices = range(len(dataset))
    else:
        if limit < 1:
            raise ConfigError(f"limit={limit} must be at least 1")
        labels = _labels(dataset)
        if labels is not None:
            indices = stratified_indices(labels, limit, seed).tolist()
        else:
            gen = torch.Generator().manual_seed(int(seed))
            indices = torch.randperm(len(dataset), generator=gen)[:limit].sort().values.tolist()
    xs, ys = [], []
    for i in indices:
        x, y = dataset[i]
        xs.append(np.asarray(x))
        ys.append(int(y))
    if not xs:
        raise DatasetError(f"data set {type(dataset).__name__} is empty")
    return Split(_stack(xs, max_steps), torch.tensor(ys, dtype=torch.int64))


def split_validation(train: Split, fraction: float, seed: int) -> tuple[Split, Split | None]:
    """Hold out ``fraction`` of the training split for model selection: a class-stratified subset drawn
    with ``seed`` (every class in proportion, as in :func:`stratified_indices`)."""
    n_val = int(round(len(train) * fraction))
    if n_val == 0:
        return train, None
    val_idx = stratified_indices(train.y, n_val, seed + 7919)
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_idx] = False
    return train.subset(torch.nonzero(keep).reshape(-1)), train.subset(val_idx)


def _missing_root(recipe: Recipe) -> DatasetError:
    return DatasetError(
        f"data root {recipe.data_root!r} for data set {recipe.dataset!r} is missing or has the wrong layout; "
        f"expected: {LAYOUTS[recipe.dataset]}"
    )


def _open_splits(recipe: Recipe) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The data set objects (from neuromorph.data) for train, the data set's own validation split (SSC's
    ``valid``; ``None`` for data sets without one) and test, with the recipe's transform."""
    import neuromorph.data as nd

    ds = recipe.dataset
    if ds != "digits-dvs":
        if recipe.data_root is None:
            raise DatasetError(f"data set {ds!r} needs --data-root; expected layout: {LAYOUTS[ds]}")
        if not Path(recipe.data_root).is_dir():
            raise _missing_root(recipe)
    try:
        if ds in ("digits-dvs", "nmnist"):
            cls = nd.DigitsDVS if ds == "digits-dvs" else nd.NMNIST
            probe = cls(root=recipe.data_root, split="train")  # no transform: only for sensor_size/classes
            sensor = tuple(probe.sensor_size)
            transform = nd.ToFrame(sensor, n_time_bins=recipe.n_time_bins)
            if recipe.crop is not None:
                if recipe.crop > min(sensor[0], sensor[1]):
                    raise ConfigError(f"crop={recipe.crop} is larger than the {sensor[0]}x{sensor[1]} sensor of {ds!r}")
                size = (recipe.crop, recipe.crop)
                transform = nd.Compose((nd.CenterCrop(sensor, size), nd.ToFrame((*size, sensor[2]), n_time_bins=recipe.n_time_bins)))
            train = cls(root=recipe.data_root, split="train", transform=transform)
            test = cls(root=recipe.data_root, split="test", transform=transform)
            valid = None
            info = {"sensor_size": list(probe.sensor_size), "classes": list(map(str, probe.classes))}
        else:
            cls = nd.SHD if ds == "shd" else nd.SSC
            transform = nd.ToSpikeCounts(n_units=700, dt_us=recipe.dt_us, group=recipe.channel_group)
            train = cls(root=recipe.data_root, split="train", transform=transform)
            test = cls(root=recipe.data_root, split="test", transform=transform)
            # SSC ships a validation file (SNN-delays selects its SSC model on it); SHD has none
            valid = cls(root=recipe.data_root, split="valid", transform=transform) if ds == "ssc" else None
            info = {"classes": list(map(str, train.classes))}
    except DatasetError as exc:
        raise DatasetError(f"{exc}; expected layout for {ds!r}: {LAYOUTS[ds]}") from exc
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise _missing_root(recipe) from exc
    return train, valid, test, info


def _padded(split: Split, recipe: Recipe) -> Split:
    """The split with per-sample lengths when the recipe pads per batch."""
    return split.with_lengths() if recipe.pad == "batch" else split


def load_data(recipe: Recipe) -> DataBundle:
    """Build the recipe's train/val/test tensors.

    val is the data set's own validation split where it has one (SSC), else ``val_fraction`` of train held
    out; it is never taken from test.
    """
    train_ds, valid_ds, test_ds, info = _open_splits(recipe)
    train = materialize(train_ds, recipe.train_limit, recipe.max_steps, recipe.seed)
    max_steps = recipe.max_steps if recipe.max_steps is not None else int(train.x.shape[1])
    test = materialize(test_ds, recipe.test_limit, max_steps, EVAL_SUBSET_SEED)
    if test.x.shape[2:] != train.x.shape[2:]:
        raise DatasetError(f"train and test samples differ in shape: {tuple(train.x.shape[2:])} vs {tuple(test.x.shape[2:])}")
    val = materialize(valid_ds, recipe.test_limit, max_steps, EVAL_SUBSET_SEED) if valid_ds is not None else None
    train, test = _padded(train, recipe), _padded(test, recipe)
    val = _padded(val, recipe) if val is not None else None
    if val is None:
        train, val = split_validation(train, recipe.val_fraction, recipe.seed)
    n_classes = len(info.get("classes", [])) or int(max(train.y.max(), test.y.max())) + 1
    info.update({"n_train": len(train), "n_val": 0 if val is None else len(val), "n_test": len(test), "n_steps": int(train.x.shape[1])})
    return DataBundle(train, val, test, n_classes, tuple(train.x.shape[2:]), info)


def epoch_batches(n: int, global_batch: int, seed: int, epoch: int, shuffle: bool = True) -> list[torch.Tensor]:
    """The global batches of one epoch: a permutation that depends only on (seed, epoch).

    The last incomplete batch is dropped in training, so that every step has exactly ``global_batch``
    samples and splitting it over DDP ranks gives the same mean gradient as one process.
    """
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    else:
        order = torch.arange(n)
    n_full = n // global_batch
    if n_full == 0:
        raise ConfigError(f"batch_size={global_batch} is larger than the training split ({n} samples)")
    return [order[i * global_batch : (i + 1) * global_batch] for i in range(n_full)]


def shard(index: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's contiguous part of a global batch (the DistributedSampler role, without its padding)."""
    if index.numel() % world:
        raise ConfigError(f"global batch of {index.numel()} does not split evenly over {world} processes")
    per = index.numel() // world
    return index[rank * per : (rank + 1) * per]


def load_split(recipe: Recipe, split: str, n_steps: int | None = None) -> Split:
    """One split of the recipe's data: ``train``, ``val`` (as in training: the data set's validation split,
    or the part held out of train) or ``test``.

    ``n_steps`` pads/crops time to the length the model was trained with (checkpoint info).
    """
    from neuromorph.errors import check_choice

    check_choice("split", split, ("train", "val", "test"))
    if split == "test":
        _, _, test_ds, _ = _open_splits(recipe)
        return _padded(materialize(test_ds, recipe.test_limit, recipe.max_steps or n_steps, EVAL_SUBSET_SEED), recipe)
    bundle = load_data(recipe)
    if split == "val":
        if bundle.val is None:
            raise ConfigError(f"recipe {recipe.name!r} has no validation data (val_fraction=0 and the data set has no validation split)")
        return bundle.val
    return bundle.train
