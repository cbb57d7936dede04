"""Stateless layers that act on each time step of a time-major ``[T, B, ...]`` tensor.

Each is the torch layer itself (``isinstance(m, torch.nn.Conv2d)`` holds, weights and attributes are
torch's), extended so that one extra leading time dimension is folded into the batch and unfolded after:
no reshaping boilerplate. A tensor with exactly the torch layer's own rank passes through unchanged.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from neuromorph.errors import ConfigError, ShapeError, check_choice
from neuromorph.kernels import sparse
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
    """``torch.nn.Linear`` on the last dimension of ``[T, B, in_features]``, event-driven on sparse input.

    When the input is mostly zeros (spikes, binned event counts) the product is computed only for its
    nonzero entries: the forward adds the weight columns of the active inputs and the weight gradient is
    accumulated over them (:mod:`neuromorph.kernels.sparse`); the result equals the dense product to float
    rounding, for any input values. When the input is the spikes of a neuron layer with a compact-support
    surrogate (triangle, rectangular, mpr, or ``truncate``), the input gradient is computed only where that
    layer passes gradient to its membrane (0 elsewhere, entries it never reads), whichever path the forward
    took (not with ``backend="dense"`` or under ``synapse_backend("dense")``: the dense reference
    everywhere). ``backend``:

    - ``"auto"`` (default): counts the nonzero inputs of each call (CPU, float32/float64) and runs the
      event-driven kernels when their fraction is below ``crossover`` (default
      ``neuromorph.kernels.sparse.crossover_for(out_features, training)``, measured on the benchmark
      machine: about 0.29 for a 256-wide layer in training, 0.31 in inference, lower for narrow layers),
      the dense product otherwise and on other devices (GPUs keep the dense product);
    - ``"sparse"`` / ``"dense"``: always that path.

    After a call, ``last_path`` and ``last_density`` say what was chosen and why. The layer is a synapse
    of op ``linear`` for export and energy whatever the path.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None, *,
                 backend: str = "auto", crossover: Optional[float] = None):
        super().__init__(in_features, out_features, bias, device, dtype)
        check_choice("backend", backend, sparse.SYNAPSE_BACKENDS)
        if crossover is not None and not 0.0 <= crossover <= 1.0:
            raise ConfigError(f"Linear: crossover is a density in [0, 1], got {crossover!r}")
        self.backend = backend
        self.crossover = crossover
        self.last_path: Optional[str] = None
        self.last_density: float = float("nan")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        path, rows, density = sparse.choose(x, self.weight, self.backend, self.crossover)
        self.__dict__.update(last_path=path, last_density=density)  # plain attributes: skip Module.__setattr__
        if path == "sparse":
            return sparse.synapse_linear(x, self.weight, self.bias, rows)
        return sparse.dense_linear(x, self.weight, self.bias, self.backend)

    def extra_repr(self) -> str:
        extra = "" if self.backend == "auto" else f", backend={self.backend!r}"
        return super().extra_repr() + extra


class Dropout(nn.Dropout):
    """``torch.nn.Dropout``: an independent mask for every element and time step (see
    :class:`SequenceDropout` for one mask per sequence). Spikes keep their producer's active set (the
    sparse input gradient of the next :class:`Linear` still applies: the mask acts entry by entry)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse.propagate_active(x, super().forward(x))


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
        return sparse.propagate_active(x, x * mask)


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
