"""Hoyer-extremum spiking activation for one-time-step SNNs, and the Hoyer-square regulariser.

Source: Datta, Liu, Beerel, "Hoyer regularizer is all you need for ultra low-latency spiking neural
networks", arXiv 2212.10170; official code ``godatta/Ultra-Low-Latency-SNN@20c7c83``
(``models/self_modules.py``: ``HoyerBiAct``, ``Spike_func``).
Method page: ``docs/methods/hoyer.md`` (equations, defaults, what neuromorph does differently).

    z = u / |v_th|                       v_th trainable (init 1.0)
    z_clip = clip(z, 0, 1)
    E = Σ z_clip² / Σ z_clip             per channel for conv maps (sums over all but the channel
                                         dim), per layer for FC; an all-zero channel gives E = 1
    o = 1[z_clip ≥ s·E]                  s = 1; E detached; training: batch E, eval: EMA of E
    ∂o/∂z = 0.5 · 1[0 < z < 1]           (the code's 0.5·1[0 < z ≤ 2] after its in-place clamp)
    L = CE + λ_H Σ_l H(clip(u_l, 0, sg(|v_th^l|))),   H(x) = ‖x‖₁² / ‖x‖₂²   (λ_H = 1e-8)

Choice: the running E starts at 1.0 (the value the code gives an empty channel), not at 0 as the
code's buffer does, so a layer that never saw training data fires only where z ≥ 1 instead of
everywhere. After a few training batches the two agree up to the EMA's initial bias.
"""

from __future__ import annotations

import math

import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.protocol import LayerDecl, Role

__all__ = ["HoyerSpike", "hoyer_extremum", "hoyer_square", "hoyer_regularizer"]


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def hoyer_extremum(z: torch.Tensor, dims: tuple[int, ...] | None = None) -> torch.Tensor:
    """E(z) = Σ z² / Σ |z| over ``dims`` (all dims if None); 0/0 (an all-zero slice) gives 1.0.

    Equals the point where ∂H/∂z_i = 0 for H = ‖z‖₁²/‖z‖₂² (Datta et al., arXiv 2212.10170); for
    z ≥ 0 it is a self-weighted mean, so mean(z[z > 0]) ≤ E ≤ max(z).
    """
    if dims is None:
        dims = tuple(range(z.dim()))
    e = (z * z).sum(dims) / z.abs().sum(dims)
    return torch.nan_to_num(e, nan=1.0)


def hoyer_square(x: torch.Tensor) -> torch.Tensor:
    """H(x) = ‖x‖₁² / ‖x‖₂² over the whole tensor (scale-invariant, in [1, numel]); 0 for x = 0."""
    l1 = x.abs().sum()
    l2 = (x * x).sum()
    if l2 == 0:
        return l1 * 0.0  # keeps dtype/device and the graph, as the code returns 0 for an empty map
    return l1 * l1 / l2


class _HoyerFire(torch.autograd.Function):
    """o = 1[clip(z, 0, 1) ≥ thr] forward; ∂o/∂z = 0.5·1[0 < z < 1] backward (thr gets none)."""

    @staticmethod
    def forward(ctx, z, thr):
        ctx.save_for_backward(z)
        return (torch.clamp(z, 0.0, 1.0) >= thr).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * 0.5 * ((z > 0) & (z < 1)).to(grad.dtype), None


class HoyerSpike(torch.nn.Module):
    """Spiking activation with the Hoyer-extremum threshold (Datta et al., arXiv 2212.10170).

    Input: the pre-activation ``u`` (e.g. BN(conv(o))) as ``[T, B, C, ...]`` (T = 1 is the method's
    setting); output binary spikes of the same shape. Every time step is thresholded on its own
    (no membrane carries over: the paper's one-step SNN); the threshold statistics pool T and B.

    Args:
        num_features: C for channel-wise thresholds (conv maps; statistics over all dims but dim 2).
            ``None`` gives one threshold for the layer (the code's choice for FC layers).
        v_th: initial trainable clipping scale |v_th|.
        momentum: EMA momentum of the running threshold used in eval mode (0.1).
        scale: s in o = 1[z ≥ s·E] (1.0 in the paper).

    After a training-mode forward, ``self.hoyer_loss`` holds H(clip(u, 0, sg(|v_th|))) for
    :func:`hoyer_regularizer`.

    Layer protocol: a spiking neuron (counted by energy reports, listed in firing rates) without a NIR
    mapping: it compares a clipped input with a running threshold (``>=``), which no NIR neuron does, so
    ``to_nir`` refuses it by name as it refuses ALIF.
    """

    layer_decl = LayerDecl(Role.NEURON, "HoyerSpike", mode_dependent=True)  # batch threshold in training

    def __init__(self, num_features: int | None = None, v_th: float = 1.0, momentum: float = 0.1, scale: float = 1.0) -> None:
        super().__init__()
        if num_features is not None and (not isinstance(num_features, int) or num_features < 1):
            raise ConfigError(f"HoyerSpike: num_features={num_features!r} must be a positive int or None (per-layer)")
        if not _finite(momentum) or not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"HoyerSpike: momentum={momentum!r} must lie in [0, 1]")
        if not _finite(v_th) or float(v_th) == 0.0:
            raise ConfigError(f"HoyerSpike: v_th={v_th!r} must be a finite nonzero number (it divides the pre-activation)")
        if not _finite(scale):
            raise ConfigError(f"HoyerSpike: scale={scale!r} must be a finite number")
        self.num_features = num_features
        self.momentum = float(momentum)
        self.scale = float(scale)
        self.v_th = torch.nn.Parameter(torch.tensor(float(v_th)))
        self.register_buffer("running_threshold", torch.ones(num_features or 1))
        self.hoyer_loss: torch.Tensor | None = None

    def _reduce_dims(self, u: torch.Tensor) -> tuple[int, ...]:
        if self.num_features is None:
            return tuple(range(u.dim()))
        if u.dim() < 3 or u.shape[2] != self.num_features:
            raise ShapeError(
                f"HoyerSpike({self.num_features}): input must be [T, B, {self.num_features}, ...], got {tuple(u.shape)}"
            )
        return tuple(d for d in range(u.dim()) if d != 2)

    def _broadcast(self, e: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if self.num_features is None:
            return e.reshape(())
        return e.view((1, 1, -1) + (1,) * (u.dim() - 3))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        dims = self._reduce_dims(u)
        v_th = self.v_th.abs().to(u.dtype)
        z = u / v_th
        if self.training:
            with torch.no_grad():
                e = hoyer_extremum(torch.clamp(z, 0.0, 1.0), dims)
                e_run = e.reshape(-1).to(self.running_threshold.dtype)
                self.running_threshold.mul_(1 - self.momentum).add_(self.momentum * e_run)
            self.hoyer_loss = hoyer_square(torch.clamp(u, min=0.0).minimum(v_th.detach()))
        else:
            e = self.running_threshold.to(u.dtype)
        thr = self.scale * self._broadcast(e, u)
        return _HoyerFire.apply(z, thr)

    def extra_repr(self) -> str:
        per = f"num_features={self.num_features}" if self.num_features else "per-layer"
        return f"{per}, v_th={float(self.v_th.detach()):.4g}, momentum={self.momentum}, scale={self.scale}"


def hoyer_regularizer(model: torch.nn.Module) -> torch.Tensor:
    """Σ over the model's ``HoyerSpike`` layers of H(clip(u_l, 0, sg(v_th^l))) from the last training forward.

    Multiply by λ_H (1e-8 for VGG/ResNet in the official scripts) and add to the task loss.
    """
    terms = [m.hoyer_loss for m in model.modules() if isinstance(m, HoyerSpike) and m.hoyer_loss is not None]
    if not terms:
        raise ConfigError(
            f"hoyer_regularizer: {type(model).__name__} has no HoyerSpike layer with a training-mode forward to regularise"
        )
    return torch.stack([t.reshape(()) for t in terms]).sum()
