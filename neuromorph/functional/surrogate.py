"""Surrogate spike functions: Heaviside forward, smooth stand-in derivative backward.

Method page: ``docs/methods/surrogates.md``.

Every surrogate is a function of ``x = u - threshold``; forward is ``H(x) = 1[x > 0]`` (strict, as in
snnTorch, Norse and Guo et al.'s MPR code). ``alpha`` is the slope (atan, sigmoid, fast_sigmoid, mpr) or the
width (triangle, rectangular) of the backward shape:

=============== ========================================================== ========= ===============================
name            dH/dx used in backward                                      default   source
=============== ========================================================== ========= ===============================
``atan``        (α/2) / (1 + (π α x / 2)²)                                 α = 2     Fang et al. 2021 (SpikingJelly)
``sigmoid``     α σ(αx) (1 − σ(αx))                                        α = 4     SpikingJelly ``Sigmoid``
``fast_sigmoid`` 1 / (1 + α|x|)²  (SuperSpike)                              α = 25    Zenke & Ganguli 2018; snnTorch
``triangle``    max(0, 1 − |x|/α) / α   (unit area, half-width α)          α = 1     Bellec et al. 2018
``rectangular`` 1[|x| < α/2] / α   (straight-through in a window)           α = 1     Wu et al. 2018
``mpr``         k/(2 tanh(k/2)) sech²(k x) on |x| ≤ ½, else 0   (α = k)    k = 3     Guo et al., ECCV 2022
``slayer_exp``  (c α / 2) exp(−α |x|)   (c = ``scale``)                    α = 5,    Shrestha & Orchard 2018
                                                                           c = 0.4   (SLAYER); SE-adLIF
=============== ========================================================== ========= ===============================

``mpr`` is the Membrane Potential Rectifier's effective surrogate: with threshold ½ it equals φ′(u)·1[0≤u≤1].
Every surrogate's derivative is multiplied by its ``scale`` (default 1); ``slayer_exp`` defaults to c = 0.4,
so that with α = 5 its peak is 1. It has no compact support (every neuron gets some gradient).

``triangle``, ``rectangular`` and ``mpr`` have compact support (``Surrogate.compact``): the derivative is
zero outside a window around the threshold, so only the neurons near threshold pass gradient and the
backward can skip the others exactly (``docs/methods/sparse.md``). ``truncate=B`` gives any shape that
property by cutting it at ``|x| = B``; this changes the gradient (it is a different surrogate).

The derivatives are written once, in :func:`neuromorph.functional.dynamics.surrogate_grad`, which every
backend compiles; ``Surrogate.grad`` evaluates it on tensors.
"""

from __future__ import annotations

import torch

from neuromorph.errors import ConfigError, check_choice
from neuromorph.functional.dynamics import SURROGATE_IDS, Surrogate

DEFAULT_ALPHA = {"atan": 2.0, "sigmoid": 4.0, "fast_sigmoid": 25.0, "triangle": 1.0, "rectangular": 1.0, "mpr": 3.0,
                 "slayer_exp": 5.0}
DEFAULT_SCALE = {"slayer_exp": 0.4}  # the others: 1
_ALIASES = {"superspike": "fast_sigmoid", "ste": "rectangular", "straight_through": "rectangular", "arctan": "atan",
            "slayer": "slayer_exp"}

__all__ = ["DEFAULT_ALPHA", "DEFAULT_SCALE", "SURROGATE_IDS", "Surrogate", "get_surrogate", "spike_fn"]


def get_surrogate(surrogate: str | Surrogate = "atan", alpha: float | None = None,
                  scale: float | None = None, truncate: float | None = None) -> Surrogate:
    """Resolve a surrogate by name (or pass one through), with its default ``alpha`` and ``scale`` (the
    derivative's height factor, SLAYER's ``c``) unless given. ``truncate=B`` cuts the derivative to zero
    where ``|u − θ| ≥ B`` (rounded to a multiple of 2⁻²⁰): σ'·1[|x| < B], the surrogate that Sparse Spiking
    Gradient Descent trains with, which gives any shape the compact support the sparse backward needs."""
    if isinstance(surrogate, Surrogate):
        if alpha is None and scale is None and truncate is None:
            return surrogate
        return Surrogate(surrogate.name, float(surrogate.alpha if alpha is None else alpha),
                         float(surrogate.scale if scale is None else scale),
                         surrogate.truncate if truncate is None else truncate)
    if not isinstance(surrogate, str):
        raise ConfigError(f"surrogate must be a name or Surrogate, got {type(surrogate).__name__}")
    name = _ALIASES.get(surrogate.lower(), surrogate.lower())
    check_choice("surrogate", name, SURROGATE_IDS)
    return Surrogate(name, float(DEFAULT_ALPHA[name] if alpha is None else alpha),
                     float(DEFAULT_SCALE.get(name, 1.0) if scale is None else scale), truncate)


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


def spike_fn(x: torch.Tensor, surrogate: str | Surrogate = "atan", alpha: float | None = None) -> torch.Tensor:
    """Heaviside ``1[x > 0]`` forward with the named surrogate derivative backward."""
    return _SpikeFn.apply(x, get_surrogate(surrogate, alpha))
