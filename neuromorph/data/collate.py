"""Pad and collate variable-length samples into time-major batches ``[T, B, ...]``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from neuromorph.errors import ShapeError


def pad_time_major(samples: Sequence, length: int | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Stack samples ``[T_i, ...]`` into ``[T, B, ...]``, zero-padding each at the end to ``T``.

    ``T = max_i T_i`` unless ``length`` is given, in which case longer samples are cut to ``length``
    (the zero-padding at the end matches SpikingJelly's ``pad_sequence_collate``, which the SHD delay
    networks use). Every sample must have the same trailing shape.
    """
    if len(samples) == 0:
        raise ShapeError("cannot collate an empty batch")
    tensors = [torch.as_tensor(np.asarray(s) if not isinstance(s, torch.Tensor) else s) for s in samples]
    tail = tensors[0].shape[1:]
    for i, t in enumerate(tensors):
        if t.dim() < 1 or t.shape[1:] != tail:
            raise ShapeError(
                f"sample {i} has shape {tuple(t.shape)}; every sample must be [T_i, {', '.join(map(str, tail))}]"
            )
    T = max(t.shape[0] for t in tensors) if length is None else int(length)
    if T < 0:
        raise ShapeError(f"length must be >= 0, got {length}")
    out = torch.zeros((T, len(tensors), *tail), dtype=dtype)
    for b, t in enumerate(tensors):
        n = min(T, t.shape[0])
        out[:n, b] = t[:n].to(dtype)
    return out


def collate_time_major(batch: Sequence[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
    """``DataLoader`` collate function: ``[(x_i [T_i, ...], y_i)] -> (x [T, B, ...] float32, y [B] int64)``."""
    if len(batch) == 0:
        raise ShapeError("cannot collate an empty batch")
    try:
        xs, ys = zip(*batch)
    except (TypeError, ValueError) as exc:
        raise ShapeError("each batch item must be a pair (sample, label)") from exc
    try:
        labels = np.asarray([int(y) for y in ys])
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"labels must be integers (class indices), got {list(ys)[:4]!r}...") from exc
    return pad_time_major(xs), torch.as_tensor(labels, dtype=torch.long)
