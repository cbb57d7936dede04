"""Delta activation layer: trainable quantisation plus an L1 penalty on frame-to-frame changes.

Source: Yousefzadeh & Sifalakis, "Training for temporal sparsity in deep neural networks, application
in video processing", arXiv 2107.07305 (2021); TF-Keras code by the author (``custom_layers.py``,
class ``delta_activation``).
Method page: ``docs/methods/delta.md`` (equations, defaults, what neuromorph does differently).

    q_t = Q_θ(relu(a_t)),  Q_θ(x) = θ · round(x / θ),  θ = |θ_param| (per channel by default, init 0.1)
    Δ_t = q_t − q_{t−1}   (Δ_1 = q_1, i.e. the first frame is taken against zero)
    L_sp = λ · n_out · mean |Δ_t|   over batch × (T − 1) × neurons (t ≥ 2)

Gradients (as the code): round is straight-through; x/θ passes no gradient to θ; the outer product
by θ passes its gradient to θ with **inverted sign**, so the sparsity penalty enlarges θ (coarser steps,
more zero deltas) instead of shrinking it. Delta inference: W q_t = W q_{t−1} + W Δ_t, so a linear layer
fed the deltas and accumulating its outputs gives the dense result with work ∝ nnz(Δ_t).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from neuromorph.errors import ConfigError, ShapeError, check_choice
from neuromorph.nn.protocol import LayerDecl, Role

__all__ = ["DeltaActivation", "delta_penalty"]


class _QuantizeInvertedTheta(torch.autograd.Function):
    """θ·round(x/θ) with ∂/∂x = 1 (straight-through) and ∂/∂θ = −round(x/θ) (sign-inverted)."""

    @staticmethod
    def forward(ctx, x, theta):
        levels = torch.round(x / theta)
        ctx.save_for_backward(levels)
        ctx.theta_shape = theta.shape
        return theta * levels

    @staticmethod
    def backward(ctx, grad):
        (levels,) = ctx.saved_tensors
        g_theta = None
        if ctx.needs_input_grad[1]:
            g_theta = (-(grad * levels)).sum_to_size(ctx.theta_shape)
        return grad, g_theta


class DeltaActivation(torch.nn.Module):
    """ReLU, trainable quantisation and temporal-delta sparsity penalty (Yousefzadeh & Sifalakis, §9).

    Input ``[T, B, C, ...]`` (frames in time). Output ``q`` (``mode="dense"``) or the deltas ``Δ``
    (``mode="delta"``); both carry the same information (Σ_{t≤τ} Δ_t = q_τ).

    Args:
        num_features: C (channel granularity) or the full feature shape (neuron granularity).
        granularity: ``"channel"`` (default), ``"neuron"`` (one θ per feature element) or ``"layer"``.
        theta: initial step size θ (0.1).
        sp_rate: λ, the penalty weight (the class default in the code is 1.0; its ResNet-50 uses 1e-5).
        fan_out: n_out, the MACs one nonzero delta triggers downstream (e.g. C_next·k²).
        mode: ``"dense"`` or ``"delta"``.

    After each forward ``self.penalty`` holds L_sp (a differentiable scalar); :func:`delta_penalty`
    sums it over a model.

    Layer protocol: a neuron with graded output (one quantisation per neuron per step, as a sigma-delta
    neuron); its events are the nonzero outputs. No NIR mapping.
    """

    layer_decl = LayerDecl(Role.NEURON, "delta", mixes_time=True)  # a delta of consecutive steps within one call

    def __init__(
        self,
        num_features: int | Sequence[int] | None = None,
        granularity: str = "channel",
        theta: float = 0.1,
        sp_rate: float = 1.0,
        fan_out: int = 1,
        mode: str = "dense",
    ) -> None:
        super().__init__()
        check_choice("DeltaActivation granularity", granularity, ("channel", "neuron", "layer"))
        check_choice("DeltaActivation mode", mode, ("dense", "delta"))
        def number(v) -> float:
            try:
                return float(v)
            except (TypeError, ValueError):
                return math.nan

        if not (math.isfinite(number(theta)) and number(theta) > 0):
            raise ConfigError(f"DeltaActivation: theta={theta!r} must be a finite number > 0 (the quantisation step)")
        if not (math.isfinite(number(sp_rate)) and number(sp_rate) >= 0 and math.isfinite(number(fan_out)) and number(fan_out) >= 0):
            raise ConfigError(f"DeltaActivation: sp_rate={sp_rate!r} and fan_out={fan_out!r} must be finite numbers >= 0")
        if granularity == "layer":
            shape: tuple[int, ...] = ()
        else:
            if num_features is None:
                raise ConfigError(f"DeltaActivation: granularity={granularity!r} needs num_features")
            shape = (num_features,) if isinstance(num_features, int) else tuple(num_features)
            if not shape or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in shape):
                raise ConfigError(f"DeltaActivation: num_features={num_features!r} must be positive integers")
            if granularity == "channel" and len(shape) != 1:
                raise ConfigError(f"DeltaActivation: granularity='channel' takes the channel count, got {num_features!r}")
        self.granularity = granularity
        self.mode = mode
        self.sp_rate = float(sp_rate)
        self.fan_out = fan_out
        self.theta = torch.nn.Parameter(torch.full(shape, float(theta)))
        self.penalty: torch.Tensor | None = None

    def step_size(self, x: torch.Tensor) -> torch.Tensor:
        """θ = |θ_param| shaped to broadcast over ``x`` ``[T, B, C, ...]``."""
        theta = self.theta.abs().to(x.dtype)
        if self.granularity == "layer":
            return theta
        if self.granularity == "channel":
            if x.dim() < 3 or x.shape[2] != theta.shape[0]:
                raise ShapeError(f"DeltaActivation({theta.shape[0]}): input must be [T, B, {theta.shape[0]}, ...], got {tuple(x.shape)}")
            return theta.view((-1,) + (1,) * (x.dim() - 3))
        if tuple(x.shape[2:]) != tuple(theta.shape):
            raise ShapeError(f"DeltaActivation: input features {tuple(x.shape[2:])} differ from theta's {tuple(theta.shape)}")
        return theta

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """q = Q_θ(relu(x)) for ``x`` ``[T, B, C, ...]``."""
        return _QuantizeInvertedTheta.apply(torch.relu(x), self.step_size(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ShapeError(f"DeltaActivation: input must be [T, B, features...], got shape {tuple(x.shape)}")
        q = self.quantize(x)
        delta = torch.cat([q[:1], q[1:] - q[:-1]], dim=0)
        if q.shape[0] > 1:
            self.penalty = self.sp_rate * self.fan_out * delta[1:].abs().mean()
        else:
            self.penalty = q.sum() * 0.0
        return delta if self.mode == "delta" else q

    def extra_repr(self) -> str:
        return f"granularity={self.granularity!r}, theta_shape={tuple(self.theta.shape)}, mode={self.mode!r}, sp_rate={self.sp_rate}, fan_out={self.fan_out}"


def delta_penalty(model: torch.nn.Module) -> torch.Tensor:
    """Σ_layers L_sp of the model's ``DeltaActivation`` layers from their last forward."""
    terms = [m.penalty for m in model.modules() if isinstance(m, DeltaActivation) and m.penalty is not None]
    if not terms:
        raise ConfigError(f"delta_penalty: {type(model).__name__} has no DeltaActivation layer that has run a forward")
    return torch.stack([t.reshape(()) for t in terms]).sum()
