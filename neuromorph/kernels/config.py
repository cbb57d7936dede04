"""What every backend receives: the dynamics configuration, its tensor parameters and the state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import torch

from neuromorph.errors import ConfigError, check_choice
from neuromorph.functional.surrogate import Surrogate

RESET_MODES = ("soft", "hard", "none")
RESET_IDS = {"none": 0, "soft": 1, "hard": 2}


@dataclass(frozen=True)
class DynamicsConfig:
    """Static (non-tensor) description of one neuron model's multi-step dynamics.

    Per step (time in steps; METHODS.md §1, SpikingJelly/Loihi conventions)::

        i_t = α i_{t-1} + x_t                       (cuba; else i_t := x_t)
        h_t = β v_{t-1} + (1 - β) v_rest + c i_t    c = 1 - β if decay_input else 1
        θ_t = θ + a_{t-1}                           (alif; else θ_t := θ)
        s_t = H(h_t - θ_t)   or  H(φ(h_t) - θ_t) with mpr
        v_t = h_t - s̃_t R_t                         soft, R_t = θ_t (or reset_amount)
        v_t = h_t (1 - s̃_t) + v_reset s̃_t           hard
        v_t = h_t                                   none
        a_t = ρ a_{t-1} + b s_t                     (alif)

    with s̃ = sg(s) when ``detach_reset``. Without ``fire`` (leaky integrator) there are no spikes and
    v_t = h_t is the output.
    """

    reset: str = "soft"
    v_reset: float = 0.0
    v_rest: float = 0.0
    decay_input: bool = True
    detach_reset: bool = False
    surrogate: Surrogate = field(default_factory=Surrogate)
    mpr: bool = False
    mpr_k: float = 3.0
    reset_amount: Optional[float] = None
    cuba: bool = False
    alif: bool = False
    fire: bool = True

    def __post_init__(self):
        check_choice("reset", self.reset, RESET_MODES)
        if self.reset_amount is not None and self.reset != "soft":
            raise ConfigError("reset_amount applies only to reset='soft'")


class DynamicsParams(NamedTuple):
    """Tensor parameters, each broadcastable to the feature shape ``x.shape[2:]``."""

    beta: torch.Tensor  # membrane decay (1 - 1/tau); 1 for IF
    threshold: torch.Tensor
    alpha: Optional[torch.Tensor] = None  # synaptic current decay (cuba)
    rho: Optional[torch.Tensor] = None  # adaptation decay (alif)
    adapt: Optional[torch.Tensor] = None  # threshold increment per spike (alif)


class NeuronState(NamedTuple):
    """Per-neuron state ``[B, *features]``; unused parts are None."""

    v: torch.Tensor
    i: Optional[torch.Tensor] = None
    a: Optional[torch.Tensor] = None


def initial_state(x: torch.Tensor, cfg: DynamicsConfig) -> NeuronState:
    """The resting state for a sequence ``x`` of shape ``[T, B, ...]``: v = v_rest, i = a = 0."""
    shape = x.shape[1:]
    v = torch.full(shape, cfg.v_rest, dtype=x.dtype, device=x.device)
    i = torch.zeros(shape, dtype=x.dtype, device=x.device) if cfg.cuba else None
    a = torch.zeros(shape, dtype=x.dtype, device=x.device) if cfg.alif else None
    return NeuronState(v, i, a)


def flat_param(p: Optional[torch.Tensor], state_shape, ref: torch.Tensor) -> torch.Tensor:
    """A parameter broadcast to the state shape ``[B, *F]`` and flattened to ``[M]`` (a 1-element zero
    placeholder for an unused one), as the fused and Triton kernels index it."""
    if p is None:
        return ref.new_zeros(1)
    return torch.broadcast_to(p.to(ref.dtype), state_shape).reshape(-1).contiguous()


def backward_outputs(ctx, cfg: DynamicsConfig, gx, param_grads, dv, di, da):
    """Shape the kernels' flat gradients into what ``Function.backward`` returns for the inputs
    ``(x, beta, threshold, alpha, rho, adapt, v0, i0, a0, ...)``: per-element parameter gradients are
    summed to each parameter's own (broadcast) shape, and only requested gradients are returned."""
    state_shape = ctx.shape[1:]
    need = ctx.needs_input_grad
    grads = []
    for n, g in enumerate(param_grads):
        shape = ctx.param_shapes[n]
        grads.append(None if shape is None or not need[1 + n] else g.view(state_shape).sum_to_size(shape))
    return (gx.view(ctx.shape), *grads, dv.view(state_shape) if need[6] else None,
            di.view(state_shape) if (need[7] and cfg.cuba) else None,
            da.view(state_shape) if (need[8] and cfg.alif) else None)
