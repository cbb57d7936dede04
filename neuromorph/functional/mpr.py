"""Membrane Potential Rectifier (Guo et al., "Reducing Information Loss for Spiking Neural Networks", ECCV 2022).

Method page: ``docs/methods/mpr.md``.

φ(u) = 1 − (1 − u)^{1/3}                        for u < 0
φ(u) = ½ + tanh(k(u − ½)) / (2 tanh(k/2))       for 0 ≤ u ≤ 1
φ(u) = u^{1/3}                                  for u > 1

φ is continuous, strictly increasing, with φ(0)=0, φ(½)=½, φ(1)=1. It feeds only the threshold test: the
stored membrane and the reset use the raw u. The fire step is o = H(φ(u) − θ) with a straight-through
gradient through a clamp to [0, 1], so ∂o/∂u = φ′(u)·1[0 ≤ φ(u) ≤ 1] and ∂o/∂θ = −1[0 ≤ φ(u) ≤ 1]
(the released code, threshold ½; for θ = ½ this equals the ``mpr`` surrogate and never changes which
neurons fire).
"""

from __future__ import annotations

import torch

from neuromorph.functional.dynamics import POINTWISE_FLAGS, torch_definitions

_DEFS = torch_definitions(POINTWISE_FLAGS)


def mpr(u: torch.Tensor, k: float = 3.0) -> torch.Tensor:
    """The rectifier φ(u) (differentiable; :func:`neuromorph.functional.dynamics.phi` on tensors)."""
    return _DEFS.phi(u, k, torch.ones((), dtype=u.dtype, device=u.device))


def mpr_grad(u: torch.Tensor, k: float = 3.0) -> torch.Tensor:
    """φ′(u) (:func:`neuromorph.functional.dynamics.phi_grad`)."""
    return _DEFS.phi_grad(u, k, torch.ones((), dtype=u.dtype, device=u.device))


class _MPRFire(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, threshold, k):
        phi = mpr(u, k)
        ctx.save_for_backward(u, phi)
        ctx.k = k
        ctx.threshold_shape = threshold.shape
        return (phi > threshold).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        u, phi = ctx.saved_tensors
        g = grad_out * ((phi >= 0) & (phi <= 1)).to(u.dtype)
        gth = None
        if ctx.needs_input_grad[1]:
            gth = (-g).sum_to_size(ctx.threshold_shape)
        return g * mpr_grad(u, ctx.k), gth, None


def mpr_fire(u: torch.Tensor, threshold: torch.Tensor, k: float = 3.0) -> torch.Tensor:
    """o = H(φ(u) − θ) with the clamp straight-through gradient of the released code."""
    threshold = torch.as_tensor(threshold, dtype=u.dtype, device=u.device)
    return _MPRFire.apply(u, threshold, k)
