"""The reference backend: plain autograd, one step at a time. The ground truth for the others.

Deliberately written apart from :mod:`neuromorph.functional.dynamics` (the definition the compiled backends
are built from): its recursion is its own and its gradients come from autograd, so a slip in the shared
definition or its hand-written adjoint shows up as a difference from this backend. It uses only the
pointwise pieces (the surrogate spike function and the MPR), which are tested against closed forms.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from neuromorph.functional.mpr import mpr_fire
from neuromorph.functional.surrogate import spike_fn
from neuromorph.kernels.config import DynamicsConfig, DynamicsParams, NeuronState, initial_state


def fire(h: torch.Tensor, threshold: torch.Tensor, cfg: DynamicsConfig) -> torch.Tensor:
    """s = H(h − θ) with the configured surrogate, or H(φ(h) − θ) with the MPR."""
    if cfg.mpr:
        return mpr_fire(h, threshold, cfg.mpr_k)
    return spike_fn(h - threshold, cfg.surrogate)


def run(
    x: torch.Tensor,
    params: DynamicsParams,
    cfg: DynamicsConfig,
    state: Optional[NeuronState] = None,
    return_membrane: bool = False,
    pre_fire: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None,
):
    """Run the dynamics of ``DynamicsConfig`` over ``x`` ``[T, B, ...]``.

    Returns ``(out, membrane, final_state)``: ``out`` is the spike train (the membrane for a
    non-firing neuron), ``membrane`` the post-reset v_t for every step when ``return_membrane``.
    ``pre_fire(h_t, t)`` (reference only) maps the membrane before the threshold test while the reset
    keeps acting on the raw h_t: the hook MPBN uses (Guo et al., ICCV 2023).
    """
    if state is None:
        state = initial_state(x, cfg)
    if cfg.adlif is not None:
        return _run_adlif(x, params, cfg, state, return_membrane)
    v, i, a = state
    beta, theta = params.beta, params.threshold
    c = (1 - beta) if cfg.decay_input else 1.0
    outs, mems = [], []
    for t in range(x.shape[0]):
        y = x[t]
        if cfg.cuba:
            i = params.syn_decay * i + y
            y = i
        h = beta * v + (1 - beta) * cfg.v_rest + c * y
        if not cfg.fire:
            v = h
            outs.append(h)
            continue
        thr = theta + a if cfg.alif else theta
        s = fire(pre_fire(h, t) if pre_fire is not None else h, thr, cfg)
        sr = s.detach() if cfg.detach_reset else s
        if cfg.reset == "soft":
            v = h - sr * (thr if cfg.reset_amount is None else cfg.reset_amount)
        elif cfg.reset == "hard":
            v = h * (1 - sr) + cfg.v_reset * sr
        else:
            v = h
        if cfg.alif:
            a = params.rho * a + params.adapt * s
        outs.append(s)
        if return_membrane:
            mems.append(v)
    out = torch.stack(outs)
    membrane = (out if not cfg.fire else torch.stack(mems)) if return_membrane else None
    return out, membrane, NeuronState(v, i, a)


def _run_adlif(x: torch.Tensor, params: DynamicsParams, cfg: DynamicsConfig, state: NeuronState,
               return_membrane: bool):
    """Adaptive LIF with the adaptation current w (Baronig et al., Nat Commun 2025), written out on its own:
    u = α u + (1 − α)(I − w) then spike, reset, and w = β w + (1 − β)(A u + B z) with the new u, z
    (symplectic Euler, ``"se"``) or the previous ones (Euler forward, ``"ef"``)."""
    u, z_prev, w = state
    alpha, beta_w = params.beta, params.rho
    A, B = params.couple, params.adapt
    gain = (1 - alpha) if cfg.decay_input else 1.0
    outs, mems = [], []
    for t in range(x.shape[0]):
        u_tilde = alpha * u + (1 - alpha) * cfg.v_rest + gain * (x[t] - w)
        z = fire(u_tilde, params.threshold, cfg)
        zr = z.detach() if cfg.detach_reset else z
        if cfg.reset == "hard":
            u_new = u_tilde * (1 - zr) + cfg.v_reset * zr
        elif cfg.reset == "soft":
            u_new = u_tilde - zr * (params.threshold if cfg.reset_amount is None else cfg.reset_amount)
        else:
            u_new = u_tilde
        if cfg.adlif == "se":
            w = beta_w * w + (1 - beta_w) * (A * u_new + B * z)
        else:
            w = beta_w * w + (1 - beta_w) * (A * u + B * z_prev)
        u, z_prev = u_new, z
        outs.append(z)
        if return_membrane:
            mems.append(u)
    return (torch.stack(outs), torch.stack(mems) if return_membrane else None,
            NeuronState(u, z_prev if cfg.adlif == "ef" else None, w))
