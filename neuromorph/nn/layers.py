"""Stateless layers that act on each time step of a time-major ``[T, B, ...]`` tensor.

Each is the torch layer itself (``isinstance(m, torch.nn.Conv2d)`` holds, weights and attributes are
torch's), extended so that one extra leading time dimension is folded into the batch and unfolded after:
no reshaping boilerplate. A tensor with exactly the torch layer's own rank passes through unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from neuromorph.errors import ShapeError
from neuromorph.nn.protocol import LayerDecl, Role


def merge_time(module: nn.Module, x: torch.Tensor, sample_dims: int, forward) -> torch.Tensor:
    """Apply ``forward`` (which expects ``sample_dims``-rank input ``[N, ...]``) to every step of ``x``."""
    if x.dim() == sample_dims:
        return forward(x)
    if x.dim() != sample_dims + 1:
        raise ShapeError(f"{type(module).__name__}: expected [T, B, ...] with {sample_dims + 1} dims (or a single "
                         f"step with {sample_dims}), got shape {tuple(x.shape)}")
    T, B = x.shape[:2]
    y = forward(x.reshape(T * B, *x.shape[2:]))
    return y.reshape(T, B, *y.shape[1:])


class TimeDistributed(nn.Module):
    """Wrap any per-sample module so it acts on every step of ``[T, B, ...]`` input."""

    layer_decl = LayerDecl(Role.CONTAINER, "time_distributed")  # the wrapped module is the layer

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.module(x.reshape(T * B, *x.shape[2:]))
        return y.reshape(T, B, *y.shape[1:])


class Linear(nn.Linear):
    """``torch.nn.Linear``; it already acts on the last dimension of ``[T, B, in_features]``."""


class Dropout(nn.Dropout):
    """``torch.nn.Dropout``: an independent mask for every element and time step (see
    :class:`SequenceDropout` for one mask per sequence)."""


class SequenceDropout(nn.Dropout):
    """Dropout with one mask per sequence, shared by all T steps (scaled by 1/(1-p) in training).

    This is SpikingJelly's multi-step ``layer.Dropout`` (mask drawn at the first step and kept until
    reset), which SNN-delays applies to the spikes of each hidden layer. A mask redrawn per step would
    average out over time and regularise far less. Input ``[T, B, ...]``; identity in eval mode.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.dim() < 2:
            raise ShapeError(f"SequenceDropout: input must be [T, B, ...], got shape {list(x.shape)}")
        mask = nn.functional.dropout(torch.ones_like(x[0]), self.p, training=True)
        return x * mask


class Flatten(nn.Flatten):
    """Flatten the features of ``[T, B, ...]`` to ``[T, B, F]`` (``start_dim=2``)."""

    def __init__(self, start_dim: int = 2, end_dim: int = -1):
        super().__init__(start_dim, end_dim)


def _time_distributed(torch_cls: type, sample_dims: int, doc: str) -> type:
    def forward(self, x):
        return merge_time(self, x, sample_dims, super(cls, self).forward)

    cls = type(torch_cls.__name__, (torch_cls,), {"forward": forward, "__doc__": doc, "__module__": __name__})
    return cls


Conv1d = _time_distributed(nn.Conv1d, 3, "``torch.nn.Conv1d`` on ``[T, B, C, L]``.")
Conv2d = _time_distributed(nn.Conv2d, 4, "``torch.nn.Conv2d`` on ``[T, B, C, H, W]``.")
Conv3d = _time_distributed(nn.Conv3d, 5, "``torch.nn.Conv3d`` on ``[T, B, C, D, H, W]``.")
MaxPool1d = _time_distributed(nn.MaxPool1d, 3, "``torch.nn.MaxPool1d`` on ``[T, B, C, L]``.")
MaxPool2d = _time_distributed(nn.MaxPool2d, 4, "``torch.nn.MaxPool2d`` on ``[T, B, C, H, W]``.")
AvgPool1d = _time_distributed(nn.AvgPool1d, 3, "``torch.nn.AvgPool1d`` on ``[T, B, C, L]``.")
AvgPool2d = _time_distributed(nn.AvgPool2d, 4, "``torch.nn.AvgPool2d`` on ``[T, B, C, H, W]``.")
AdaptiveAvgPool2d = _time_distributed(nn.AdaptiveAvgPool2d, 4, "``torch.nn.AdaptiveAvgPool2d`` on ``[T, B, C, H, W]``.")
BatchNorm2d = _time_distributed(
    nn.BatchNorm2d, 4, "``torch.nn.BatchNorm2d`` on ``[T, B, C, H, W]``; statistics pooled over T·B·H·W (tdBN style).")


class BatchNorm1d(nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` on ``[T, B, C]`` or ``[T, B, C, L]``; statistics pooled over T·B (·L).

    Unlike torch, a 3-D input is read as time-major ``[T, B, C]`` (as everywhere in neuromorph), not as
    ``[N, C, L]``; a 2-D ``[N, C]`` input is plain batch norm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        if x.dim() not in (3, 4):
            raise ShapeError(f"BatchNorm1d: expected [T, B, C] or [T, B, C, L], got shape {tuple(x.shape)}")
        T, B = x.shape[:2]
        y = super().forward(x.reshape(T * B, *x.shape[2:]))
        return y.reshape(x.shape)
