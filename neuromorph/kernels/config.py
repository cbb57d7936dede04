"""What every backend receives (the dynamics configuration, its tensor parameters, the state; all defined
in :mod:`neuromorph.functional.dynamics`) and the autograd Function the compiled backends share.

``fused`` and ``triton`` differ only in the engine that walks time over flat ``[T, M]`` arrays (numba, torch
operations or Triton); flattening, what is saved for the backward and the shaping of the gradients are
done once here, in :class:`MultiStep`.
"""

from __future__ import annotations

import os
from typing import Optional, Protocol

import torch

from neuromorph.functional.dynamics import (RESET_IDS, RESET_MODES, DynamicsConfig, DynamicsParams, NeuronState,
                                            static_flags)

__all__ = ["RESET_IDS", "RESET_MODES", "DynamicsConfig", "DynamicsParams", "NeuronState", "static_flags",
           "initial_state", "carries_i", "carries_a", "has_compact_backward", "Engine", "MultiStep", "run_engine", "NUMBA_CACHE"]

#: whether every numba kernel of the package (fused neurons, recurrent layer, event-driven synapses) is cached
#: on disk; ``NEUROMORPH_NUMBA_CACHE=0`` turns it off (read-only installs, debugging a kernel)
NUMBA_CACHE = os.environ.get("NEUROMORPH_NUMBA_CACHE", "1") != "0"


def initial_state(x: torch.Tensor, cfg: DynamicsConfig) -> NeuronState:
    """The resting state for a sequence ``x`` of shape ``[T, B, ...]``: v = v_rest, i = a = 0."""
    shape = x.shape[1:]
    v = torch.full(shape, cfg.v_rest, dtype=x.dtype, device=x.device)
    i = torch.zeros(shape, dtype=x.dtype, device=x.device) if carries_i(cfg) else None
    a = torch.zeros(shape, dtype=x.dtype, device=x.device) if carries_a(cfg) else None
    return NeuronState(v, i, a)


def carries_i(cfg: DynamicsConfig) -> bool:
    """Whether the state slot ``i`` is used (CubaLIF's current, EF-adLIF's previous spike)."""
    return bool(cfg.cuba) or cfg.adlif == "ef"


def has_compact_backward(cfg: DynamicsConfig) -> bool:
    """Whether ∂L/∂s reaches the membrane only inside a bounded window around the threshold (a firing
    neuron whose surrogate has compact support, or the MPR, whose φ′ is gated to 0 ≤ φ(h) ≤ 1). The one
    statement of when the sparse input gradient applies: the fused kernel and the neuron layers'
    ``sparse_backward=True`` check both ask it."""
    return cfg.fire and (cfg.mpr or cfg.surrogate.compact)


def carries_a(cfg: DynamicsConfig) -> bool:
    """Whether the state slot ``a`` is used (ALIF's threshold adaptation, adLIF's adaptation current)."""
    return bool(cfg.alif) or cfg.adlif is not None


def flat_param(p: Optional[torch.Tensor], state_shape, ref: torch.Tensor) -> torch.Tensor:
    """A parameter broadcast to the state shape ``[B, *F]`` and flattened to ``[M]`` (a 1-element zero
    placeholder for an unused one), as the engines index it."""
    if p is None:
        return _placeholder(ref)
    return torch.broadcast_to(p.to(ref.dtype), state_shape).reshape(-1).contiguous()


_PLACEHOLDERS: dict = {}


def _placeholder(ref: torch.Tensor) -> torch.Tensor:
    """The 1-element zero standing in for an unused parameter (one per dtype and device: the engines
    only read it, and a layer call would otherwise allocate one per unused slot)."""
    key = (ref.dtype, ref.device)
    z = _PLACEHOLDERS.get(key)
    if z is None:
        _PLACEHOLDERS[key] = z = torch.zeros(1, dtype=ref.dtype, device=ref.device)
    return z


class Engine(Protocol):
    """Walks the dynamics over flat arrays ``[T, M]`` (M = batch × features); see :class:`MultiStep`."""

    def forward(self, cfg, xf, P, v, i, a, want_mem, save_i, save_h=True):
        """Return ``(out, hseq, mem, iseq, aseq, vT, iT, aT)``: the outputs, the pre-reset membranes (``out``
        itself without firing), the membranes if ``want_mem`` (else None), i_t if ``save_i`` and a_{t−1}
        (alif, adlif) for the backward, and the final state (``i``/``a`` are 1-element placeholders when unused).
        With ``save_h`` False no backward will run: an engine may then skip h_t and a_{t−1} (return None)."""

    def backward(self, cfg, gout, gmem, hseq, iseq, aseq, xf, P, v0, i0, need_beta, need_alpha, dv, di, da):
        """Return ``(gx, [dβ, dθ, dκ, dρ, db, dA], dv, di, da)``, the parameter gradients per element ``[M]``."""


class MultiStep(torch.autograd.Function):
    """The dynamics over all T steps as one autograd node, computed by an :class:`Engine`.

    The forward keeps only what the backward needs: the pre-reset membrane h_t of every step (the spikes
    and every reset are recomputed from it, EF-adLIF's carried spike s_{t−1} too), plus the synaptic current
    (CubaLIF, when its decay or a decayed input needs a gradient), the input (when β needs a gradient with
    ``decay_input``) and a_{t−1} (ALIF, adLIF).
    """

    @staticmethod
    def forward(ctx, x, beta, threshold, syn_decay, rho, adapt, couple, v0, i0, a0, cfg, want_mem, engine,
                save_h=True):
        T = x.shape[0]
        shape = x.shape[1:]
        M = v0.numel()
        xf = x.reshape(T, M).contiguous()
        params = (beta, threshold, syn_decay, rho, adapt, couple)
        P = [flat_param(q, shape, x) for q in params]
        need = ctx.needs_input_grad
        need_beta, need_alpha = bool(need[1]), bool(need[3])
        save_i = cfg.cuba and (need_alpha or (need_beta and cfg.decay_input))
        want_mem = want_mem and cfg.fire
        ci, ca = carries_i(cfg), carries_a(cfg)
        v0f = v0.reshape(M).contiguous()
        i0f = i0.reshape(M).contiguous() if ci else x.new_zeros(1)
        a0f = a0.reshape(M).contiguous() if ca else x.new_zeros(1)
        out, hseq, mem, iseq, aseq, vT, iT, aT = engine.forward(cfg, xf, P, v0f.clone(), i0f.clone(), a0f.clone(),
                                                               want_mem, save_i, save_h)
        keep_x = xf if (need_beta and cfg.decay_input and not cfg.cuba) else None
        ctx.save_for_backward(hseq, iseq, aseq, keep_x, *P, v0f, i0f)
        ctx.cfg, ctx.shape, ctx.want_mem, ctx.engine = cfg, x.shape, want_mem, engine
        ctx.need_beta, ctx.need_alpha = need_beta, need_alpha
        ctx.param_shapes = [None if q is None else q.shape for q in params]
        return (out.view(x.shape), mem.view(x.shape) if want_mem else None, vT.view(shape),
                iT.view(shape) if ci else None, aT.view(shape) if ca else None)

    @staticmethod
    def backward(ctx, gout, gmem, gvT, giT, gaT):
        hseq, iseq, aseq, xf, *P, v0f, i0f = ctx.saved_tensors
        cfg = ctx.cfg
        T = ctx.shape[0]
        M = v0f.numel()
        gout = hseq.new_zeros(T, M) if gout is None else gout.reshape(T, M).contiguous()
        gmem = gmem.reshape(T, M).contiguous() if (ctx.want_mem and gmem is not None) else None
        vec = lambda g: hseq.new_zeros(M) if g is None else g.reshape(M).contiguous().clone()  # noqa: E731
        gx, grads, dv, di, da = ctx.engine.backward(cfg, gout, gmem, hseq, iseq, aseq, xf, P, v0f, i0f,
                                                    ctx.need_beta, ctx.need_alpha, vec(gvT), vec(giT), vec(gaT))
        state_shape = ctx.shape[1:]
        need = ctx.needs_input_grad
        pgrads = []
        for n, g in enumerate(grads):
            shape = ctx.param_shapes[n]
            pgrads.append(None if shape is None or not need[1 + n] else g.view(state_shape).sum_to_size(shape))
        return (gx.view(ctx.shape), *pgrads, dv.view(state_shape) if need[7] else None,
                di.view(state_shape) if (need[8] and carries_i(cfg)) else None,
                da.view(state_shape) if (need[9] and carries_a(cfg)) else None, None, None, None, None)


def run_engine(engine: Engine, x: torch.Tensor, params: DynamicsParams, cfg: DynamicsConfig,
               state: Optional[NeuronState] = None, return_membrane: bool = False):
    """Run ``engine`` over ``x`` ``[T, B, ...]``; same contract as :func:`neuromorph.kernels.reference.run`."""
    if state is None:
        state = initial_state(x, cfg)
    as_t = lambda q: None if q is None else torch.as_tensor(q, dtype=x.dtype, device=x.device)  # noqa: E731
    tensors = (x, as_t(params.beta), as_t(params.threshold), as_t(params.syn_decay), as_t(params.rho),
               as_t(params.adapt), as_t(params.couple), state.v, state.i, state.a)
    # in inference (no gradient can flow) the trace the backward reads is not kept: one [T, M] array less
    save_h = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    out, mem, vT, iT, aT = MultiStep.apply(*tensors, cfg, bool(return_membrane), engine, save_h)
    if return_membrane and not cfg.fire:
        mem = out
    return out, mem, NeuronState(vT, iT, aT)
