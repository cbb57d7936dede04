"""Neuron dynamics over a whole sequence ``[T, B, ...]`` as pure functions.

Time constants are in time steps (divide a physical τ by ``dt`` first). The membrane decay is the Euler
form β = 1 − 1/τ of SpikingJelly and of Guo/Hammouamri's code (METHODS.md §1, §3); the dynamics of each
model are spelled out in :class:`neuromorph.kernels.config.DynamicsConfig`. Every function returns
``(out, membrane, final_state)``; ``membrane`` is None unless ``return_membrane``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

import torch

from neuromorph.errors import ConfigError, NonFiniteError, ShapeError
from neuromorph.functional.surrogate import Surrogate, get_surrogate

# The kernels build on functional.surrogate, so they are imported at call time here: importing them at
# module level would make `neuromorph.functional` and `neuromorph.kernels` import each other.
if TYPE_CHECKING:
    from neuromorph.kernels.config import NeuronState

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
            f"{tuple(x.shape)}; for a single time step use x.unsqueeze(0)")
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
    threshold = torch.as_tensor(threshold, dtype=torch.get_default_dtype()) if not isinstance(
        threshold, torch.Tensor) else threshold
    with torch.no_grad():
        if not torch.isfinite(threshold).all() or (threshold <= 0).any():
            raise ConfigError(f"{name} must be positive and finite, got {_show(threshold)}")
    return threshold


def _run(x, params, cfg, state, return_membrane, backend, check_finite):
    from neuromorph import kernels

    check_sequence(x, check_finite=check_finite)
    return kernels.run(x, params, cfg, state, return_membrane, backend)


def _config(**kw):
    from neuromorph.kernels.config import DynamicsConfig

    return DynamicsConfig(**kw)


def _params(*args):
    from neuromorph.kernels.config import DynamicsParams

    return DynamicsParams(*args)


def lif(x: torch.Tensor, tau: Number = 2.0, threshold: Number = 1.0, reset: str = "soft", v_reset: float = 0.0,
        decay_input: bool = True, detach_reset: bool = False, surrogate: Union[str, Surrogate] = "atan",
        alpha: Optional[float] = None, mpr: bool = False, reset_amount: Optional[float] = None,
        state: Optional[NeuronState] = None, return_membrane: bool = False, backend: str = "auto",
        check_finite: bool = False):
    """Leaky integrate-and-fire: h_t = β v_{t−1} + c x_t (c = 1 − β with ``decay_input``, else 1),
    s_t = H(h_t − θ), then the reset (soft: v = h − s θ; hard: v = h(1 − s) + v_reset s; none: v = h)."""
    cfg = _config(reset=reset, v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                         surrogate=get_surrogate(surrogate, alpha), mpr=mpr, reset_amount=reset_amount)
    params = _params(tau_to_decay(tau), check_threshold(threshold))
    return _run(x, params, cfg, state, return_membrane, backend, check_finite)


def if_(x: torch.Tensor, threshold: Number = 1.0, reset: str = "soft", v_reset: float = 0.0,
        detach_reset: bool = False, surrogate: Union[str, Surrogate] = "atan", alpha: Optional[float] = None,
        mpr: bool = False, reset_amount: Optional[float] = None, state: Optional[NeuronState] = None,
        return_membrane: bool = False, backend: str = "auto", check_finite: bool = False):
    """Integrate-and-fire: h_t = v_{t−1} + x_t, then fire and reset as :func:`lif`."""
    cfg = _config(reset=reset, v_reset=v_reset, decay_input=False, detach_reset=detach_reset,
                         surrogate=get_surrogate(surrogate, alpha), mpr=mpr, reset_amount=reset_amount)
    params = _params(torch.ones((), dtype=x.dtype, device=x.device), check_threshold(threshold))
    return _run(x, params, cfg, state, return_membrane, backend, check_finite)


def alif(x: torch.Tensor, tau: Number = 2.0, tau_adapt: Number = 20.0, adapt_increment: Number = 0.1,
         threshold: Number = 1.0, reset: str = "soft", v_reset: float = 0.0, decay_input: bool = True,
         detach_reset: bool = False, surrogate: Union[str, Surrogate] = "atan", alpha: Optional[float] = None,
         state: Optional[NeuronState] = None, return_membrane: bool = False, backend: str = "auto",
         check_finite: bool = False):
    """Adaptive LIF (Bellec et al. 2018 style): θ_t = θ + a_{t−1}, a_t = (1 − 1/τ_a) a_{t−1} + b s_t."""
    cfg = _config(reset=reset, v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                         surrogate=get_surrogate(surrogate, alpha), alif=True)
    params = _params(tau_to_decay(tau), check_threshold(threshold), None, tau_to_decay(tau_adapt, "tau_adapt"),
                            torch.as_tensor(adapt_increment))
    return _run(x, params, cfg, state, return_membrane, backend, check_finite)


def cuba_lif(x: torch.Tensor, tau_mem: Number = 2.0, tau_syn: Number = 2.0, threshold: Number = 1.0,
             reset: str = "hard", v_reset: float = 0.0, decay_input: bool = False, detach_reset: bool = False,
             surrogate: Union[str, Surrogate] = "atan", alpha: Optional[float] = None,
             state: Optional[NeuronState] = None, return_membrane: bool = False, backend: str = "auto",
             check_finite: bool = False):
    """Current-based LIF, the Loihi neuron: i_t = (1 − 1/τ_syn) i_{t−1} + x_t, h_t = (1 − 1/τ_mem) v_{t−1} + i_t."""
    cfg = _config(reset=reset, v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                         surrogate=get_surrogate(surrogate, alpha), cuba=True)
    params = _params(tau_to_decay(tau_mem, "tau_mem"), check_threshold(threshold),
                            tau_to_decay(tau_syn, "tau_syn"))
    return _run(x, params, cfg, state, return_membrane, backend, check_finite)


def li(x: torch.Tensor, tau: Number = 2.0, decay_input: bool = True, state: Optional[NeuronState] = None,
       backend: str = "auto", check_finite: bool = False):
    """Leaky integrator (non-spiking readout): v_t = β v_{t−1} + c x_t; returns (membrane, None, state)."""
    cfg = _config(reset="none", decay_input=decay_input, fire=False)
    params = _params(tau_to_decay(tau), torch.ones(()))
    return _run(x, params, cfg, state, False, backend, check_finite)
