"""Validation of what a neuron receives: time-major sequences, time constants, thresholds.

Time constants are in time steps (divide a physical τ by ``dt`` first). The membrane decay is the Euler
form β = 1 − 1/τ of SpikingJelly and of the official code of Guo et al. (ECCV 2022) and Hammouamri et al.
(ICLR 2024); the dynamics themselves
are defined in :mod:`neuromorph.functional.dynamics` and run by :func:`neuromorph.kernels.run`.
"""

from __future__ import annotations

from typing import Union

import torch

from neuromorph.errors import ConfigError, NonFiniteError, ShapeError

Number = Union[float, torch.Tensor]


def check_sequence(x: torch.Tensor, name: str = "input", check_finite: bool = False) -> None:
    """Validate a time-major ``[T, B, ...]`` floating tensor; raise ShapeError/NonFiniteError naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name}: expected a torch.Tensor [T, B, ...], got {type(x).__name__}")
    if not x.is_floating_point():
        raise ShapeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}; convert with x.float()")
    if x.dim() < 3:
        raise ShapeError(
            f"{name}: expected a time-major tensor [T, B, features...] with at least 3 dims, got shape "
            f"{tuple(x.shape)}. Pass the whole sequence at once; a layer forgets its state between calls, so "
            f"to feed one step at a time build it with streaming=True and carry the state: "
            f"out, state = layer(x_t[None], state)")
    if x.shape[0] == 0:
        raise ShapeError(f"{name}: the sequence has no time steps (T = 0)")
    if check_finite and not torch.isfinite(x).all():
        raise NonFiniteError(f"{name}: contains NaN or Inf (check_finite=True)")


def tau_to_decay(tau: Number, name: str = "tau") -> torch.Tensor:
    """β = 1 − 1/τ for τ in steps, validated (τ ≥ 1 so that 0 ≤ β < 1)."""
    tau = torch.as_tensor(tau, dtype=torch.get_default_dtype()) if not isinstance(tau, torch.Tensor) else tau
    with torch.no_grad():
        if not torch.isfinite(tau).all() or (tau <= 0).any():
            raise ConfigError(f"{name} must be positive and finite (in time steps), got {_show(tau)}")
        if (tau < 1).any():
            raise ConfigError(f"{name} is in time steps and must be >= 1 so that the decay 1 - 1/{name} lies in "
                              f"[0, 1); got {_show(tau)} (pass dt= to give it in seconds)")
    return 1 - 1 / tau


def _show(t: torch.Tensor) -> str:
    return f"{t.item():g}" if t.numel() == 1 else f"a tensor with min {t.min().item():g}"


def check_threshold(threshold: Number, name: str = "threshold") -> torch.Tensor:
    """A firing threshold as a tensor, validated (positive and finite)."""
    threshold = torch.as_tensor(threshold, dtype=torch.get_default_dtype()) if not isinstance(
        threshold, torch.Tensor) else threshold
    with torch.no_grad():
        if not torch.isfinite(threshold).all() or (threshold <= 0).any():
            raise ConfigError(f"{name} must be positive and finite, got {_show(threshold)}")
    return threshold
