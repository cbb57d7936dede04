"""Recurrent multi-step dynamics: the neuron's input current at step t is ``y_t = x_t + V s_{t−1}``.

``run(x, V, params, cfg, state=None, backend="auto")`` takes ``x`` ``[T, B, N]`` (the feed-forward current,
bias included), the recurrent weight ``V`` ``[N, N]`` (``[to, from]``, as ``torch.nn.Linear`` stores it) and
the neuron's :class:`~neuromorph.kernels.config.DynamicsConfig`/``DynamicsParams``; it returns
``(spikes [T, B, N], RecurrentState)``. The recurrence couples the neurons, so the per-neuron backends
cannot run it over all T in one call; two ways are offered:

- the **fused recurrent kernel** (CPU, float32/float64, the configurations of
  :mod:`neuromorph.functional.dynamics` whose ``step``/``adjoint`` take the slots known here): one numba
  loop over t for the forward, which adds ``V[:, j]`` for every neuron j that spiked at t−1 (event-driven:
  the cost follows the spike count, not N²), and one for the backward, which walks the adjoint of the
  shared definition back in time and adds ``∂L/∂s_{t−1} = (∂L/∂y_t) V`` with one BLAS product per step;
  ``∂L/∂V = Σ_t (∂L/∂y_t)ᵀ s_{t−1}`` is one matrix product after the loop. The neuron's per-element step
  and adjoint are bound from the one definition (:func:`neuromorph.functional.dynamics.bind`), as the fused
  backend does; this module only walks time and adds the product.
- the **step loop** (any other case: reference or Triton backends, other devices, a neuron with its own
  forward): a torch loop that runs the neuron's backend one step at a time with its state carried
  (autograd through the steps). ``reference`` used this way is the ground truth the kernel is tested against.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Callable, NamedTuple, Optional

import numba
import numpy as np
import torch

from neuromorph.functional import dynamics
from neuromorph.functional.dynamics import SOURCE_HASH, bind, static_flags
from neuromorph.kernels import fused as _fused
from neuromorph.kernels.config import (DynamicsConfig, DynamicsParams, NeuronState, carries_a, carries_i,
                                       flat_param, initial_state)
from neuromorph.kernels.sparse import compile_loop

__all__ = ["RecurrentState", "run", "run_steps", "fused_supported"]


class RecurrentState(NamedTuple):
    """The state a recurrent layer carries between calls: the neuron's state and its last spikes s_{t−1}."""

    neuron: NeuronState
    s: torch.Tensor


# ----------------------------------------------------------------------------------------------------------
# the step loop (any backend, any neuron callable)
# ----------------------------------------------------------------------------------------------------------
def run_steps(x: torch.Tensor, V: torch.Tensor, step_fn: Callable, state: Optional[RecurrentState] = None,
              initial: Optional[Callable[[torch.Tensor], object]] = None):
    """The recurrence as a torch loop: ``step_fn(y [1, B, N], neuron_state) -> (spikes [1, B, N], state)``
    runs one step of any neuron (its own backend); autograd carries the gradients through the steps."""
    T, B, N = x.shape
    if state is None:
        nstate, s = (initial(x) if initial is not None else None), x.new_zeros(B, N)
    else:
        nstate, s = state
    outs = []
    Vt = V.t()
    for t in range(T):
        y = torch.addmm(x[t], s, Vt)
        o, nstate = step_fn(y.unsqueeze(0), nstate)
        s = o[0]
        outs.append(s)
    return torch.stack(outs), RecurrentState(nstate, s)


# ----------------------------------------------------------------------------------------------------------
# the fused recurrent kernel (numba)
# ----------------------------------------------------------------------------------------------------------
# The per-element code (slots, the definition's step/adjoint, gradient sums) is the fused backend's
# element helpers, spliced in (kernels.fused.splice); iseq and aseq (and in the backward hseq and yseq) come
# as [T, B·N] views, which the helpers index by m = b·N + n.
def _forward_loop(x, VT, s0, beta, thr, syn, rho, adapt, couple, consts, out, hseq, yseq, iseq, aseq, vT, iT,
                  aT):  # pragma: no cover - compiled by numba
    T, B, N = x.shape
    v_reset, v_rest, ramount, k, one, zero = consts[0], consts[1], consts[2], consts[3], consts[4], consts[5]
    for t in range(T):
        for b in range(B):
            y = yseq[t, b]
            for n in range(N):
                y[n] = x[t, b, n]
            # the recurrent current, event-driven: add column j of V for every neuron j that spiked at t-1
            for j in range(N):
                sj = s0[b, j] if t == 0 else out[t - 1, b, j]
                if sj != zero:
                    for n in range(N):
                        y[n] += sj * VT[j, n]
            for n in range(N):
                m = b * N + n
                xv = y[n]
                o, h, v = step_element(xv, t, m, beta, thr, syn, rho, adapt, couple, SAVE_I, SAVE_H,  # noqa: F821
                                       iseq, aseq, vT, iT, aT, v_rest, v_reset, ramount, k, one, zero)
                out[t, b, n] = o
                hseq[t, b, n] = h


def _backward_loop(gout, hseq, yseq, iseq, aseq, V, beta, thr, syn, rho, adapt, couple, v0, i0, consts, salpha,
                   sscale, gy, gbeta, gthr, gsyn, grho, gadapt, gcouple, dv, di, da, ds,
                   out, s0, event_dv, gVT):  # pragma: no cover - compiled by numba
    T, B, N = gout.shape
    v_reset, v_rest, ramount, k, one, zero = consts[0], consts[1], consts[2], consts[3], consts[4], consts[5]
    for t in np.arange(T - 1, -1, -1):  # read from an array: see kernels.fused._backward_loop
        for b in range(B):
            for n in range(N):
                m = b * N + n
                gs = gout[t, b, n] + ds[b, n]
                dvm = dv[m]
                dx, dvn = adjoint_element(gs, dvm, t, m, hseq, iseq, aseq, yseq, beta, thr, syn, rho,  # noqa: F821
                                          adapt, couple, v0, i0, NEED_BETA, NEED_ALPHA, gbeta, gthr,  # noqa: F821
                                          gsyn, grho, gadapt, gcouple, di, da, v_reset, v_rest, ramount, k, salpha,
                                          sscale, SID, one, zero)  # noqa: F821
                gy[t, b, n] = dx
                dv[m] = dvn
        # dL/ds_{t-1} through y_t = x_t + V s_{t-1}: one BLAS product per step
        ds[:, :] = np.dot(gy[t], V)
        if event_dv:  # dL/dV[:, j] += dL/dy_t[b] for every spike s_{t-1}[b, j] (sparse spikes: cheaper than a product)
            for b in range(B):
                for j in range(N):
                    sj = s0[b, j] if t == 0 else out[t - 1, b, j]
                    if sj != zero:
                        for n in range(N):
                            gVT[j, n] += sj * gy[t, b, n]


#: the per-element signatures the loops above call; another signature (a model with more state or
#: parameter slots) runs through the step loop instead of a wrong kernel
_STEP_ARGS = ("y", "v", "i", "a", "beta", "th0", "syn_decay", "rho", "adapt", "couple", "v_rest", "v_reset",
              "ramount", "k", "one", "zero")
_ADJOINT_ARGS = ("gs", "dv", "di", "da", "h", "aprev", "dterm", "iprev", "vprev", "beta", "th0", "syn_decay", "rho",
                 "adapt", "couple", "v_reset", "ramount", "k", "salpha", "sscale", "sid", "one", "zero")
_KNOWN_FLAGS = frozenset(static_flags(DynamicsConfig()))

_fused.remember_source(_forward_loop, _backward_loop)  # see fused._SOURCES
_COMPILED: dict = {}
_BLAS: list = []
#: at most this fraction of nonzero spikes, dV is accumulated spike by spike in the backward loop (cost ∝ spikes·N)
#: instead of one dense product (cost T·B·N², at BLAS speed)
_EVENT_DV_RATE = 0.15


def _one_blas_thread():
    """A context that runs the BLAS numba calls (scipy's OpenBLAS) on one thread: the per-step products
    are small ([B, N] x [N, N]), and OpenBLAS's default thread pool makes them many times slower, the more
    so on a shared machine. The controller is built once (it scans the loaded libraries)."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except ImportError:  # scikit-learn brings threadpoolctl; without it, BLAS keeps its own setting
            _BLAS.append(None)
    return contextlib.nullcontext() if _BLAS[0] is None else _BLAS[0].limit(limits=1, user_api="blas")


def fused_supported(x: torch.Tensor, params: DynamicsParams, cfg: DynamicsConfig) -> bool:
    """Whether the fused recurrent kernel runs this case (else :func:`run` takes the step loop)."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and cfg.fire
            and type(params) is DynamicsParams and len(params) == 6 and len(NeuronState._fields) == 3
            and set(static_flags(cfg)) == _KNOWN_FLAGS
            and tuple(inspect.signature(dynamics.step).parameters) == _STEP_ARGS
            and tuple(inspect.signature(dynamics.adjoint).parameters) == _ADJOINT_ARGS)


def _compiled(cfg: DynamicsConfig, adjoint: bool, dtype=np.float32, **switches):
    """The numba loop for ``cfg`` on ``dtype`` data and the call's ``switches`` (forward: ``save_i``;
    backward: ``need_beta``, ``need_alpha``), compiled on first use and cached on disk; every branch of
    the element code is a compile-time constant and the literals have the data's type, as in the fused
    backend (kernels.fused._compiled)."""
    flags = static_flags(cfg, adjoint)
    if adjoint:
        flags["SID"] = cfg.surrogate.id
    flags.update(_fused._switches(cfg, adjoint, False, switches))
    dtype = np.dtype(dtype)
    key = (adjoint, dtype.name, tuple(sorted(flags.items())))
    if key not in _COMPILED:
        ns = bind(_fused.numba_ops(dtype), flags, wrap=numba.njit(inline="always"), module=__name__,
                  extra={"np": np}, literal=_fused._literal(dtype))
        loop = _backward_loop if adjoint else _forward_loop
        fn = _fused.splice(loop, ns)
        fn.__qualname__ = "_".join(["rec", loop.__name__, dtype.name, *(f"{k}{int(v)}" for k, v in key[2]),
                                    SOURCE_HASH, _fused.ELEMENT_HASH])
        _COMPILED[key] = compile_loop(fn, error_model="numpy")
    return _COMPILED[key]


class RecurrentMultiStep(torch.autograd.Function):
    """The recurrent dynamics over all T steps as one autograd node (forward and adjoint in numba).

    Saved for the backward: the pre-reset membranes h_t (spikes, resets and EF-adLIF's carried spike are
    recomputed from them), the input currents y_t (for ∂β with ``decay_input``), the spikes (for ∂V), i_t
    (CubaLIF) and a_{t−1} (ALIF, adLIF).
    """

    @staticmethod
    def forward(ctx, x, V, beta, threshold, syn_decay, rho, adapt, couple, v0, i0, a0, s0, cfg):
        T, B, N = x.shape
        M = B * N
        xf = x.contiguous()
        params = (beta, threshold, syn_decay, rho, adapt, couple)
        P = [flat_param(q, (B, N), x) for q in params]
        need = ctx.needs_input_grad
        need_beta, need_alpha = bool(need[2]), bool(need[4])
        save_i = cfg.cuba and (need_alpha or (need_beta and cfg.decay_input))
        ci, ca = carries_i(cfg), carries_a(cfg)
        Vd = V.detach().to(x.dtype).contiguous()
        out = torch.empty_like(xf)
        hseq = torch.empty_like(xf)
        yseq = torch.empty_like(xf)
        dummy = xf.new_zeros(1, 1, 1)
        iseq = torch.empty_like(xf) if save_i else dummy
        aseq = torch.empty_like(xf) if ca else dummy
        flat = lambda q: q.view(q.shape[0], -1).numpy()  # noqa: E731  ([T, B·N] for the element helpers)
        v = v0.reshape(M).clone()
        i = i0.reshape(M).clone() if ci else xf.new_zeros(1)
        a = a0.reshape(M).clone() if ca else xf.new_zeros(1)
        s0c = s0.detach().to(x.dtype).reshape(B, N).contiguous()
        consts = _fused._consts(cfg, xf.numpy().dtype)
        _compiled(cfg, False, xf.numpy().dtype, save_i=save_i)(
            xf.detach().numpy(), Vd.t().contiguous().numpy(), s0c.numpy(), *(q.detach().numpy() for q in P), consts,
            out.numpy(), hseq.numpy(), yseq.numpy(), flat(iseq), flat(aseq), v.numpy(), i.numpy(), a.numpy())
        ctx.save_for_backward(hseq, yseq, iseq if save_i else None, aseq if ca else None, out, s0c, Vd, *P,
                              v0.reshape(M).contiguous(), i0.reshape(M).contiguous() if ci else xf.new_zeros(1))
        ctx.cfg, ctx.need_beta, ctx.need_alpha = cfg, need_beta, need_alpha
        ctx.param_shapes = [None if q is None else q.shape for q in params]
        ctx.v_dtype = V.dtype
        return out, v.view(B, N), i.view(B, N) if ci else None, a.view(B, N) if ca else None

    @staticmethod
    def backward(ctx, gout, gvT, giT, gaT):
        hseq, yseq, iseq, aseq, out, s0, V, *rest = ctx.saved_tensors
        P, v0, i0 = rest[:6], rest[6], rest[7]
        cfg = ctx.cfg
        ci, ca = carries_i(cfg), carries_a(cfg)
        T, B, N = hseq.shape
        M = B * N
        gout = hseq.new_zeros(T, B, N) if gout is None else gout.contiguous()
        vec = lambda g: hseq.new_zeros(M) if g is None else g.reshape(M).contiguous().clone()  # noqa: E731
        dv, di, da = vec(gvT), vec(giT) if ci else hseq.new_zeros(1), vec(gaT) if ca else hseq.new_zeros(1)
        gy = torch.empty_like(hseq)
        ds = hseq.new_zeros(B, N)
        grads = [hseq.new_zeros(M) for _ in range(6)]
        dummy = hseq.new_zeros(1, 1, 1)
        arr = lambda q: (dummy.view(1, 1) if q is None else q.view(T, M)).numpy()  # noqa: E731  ([T, B·N])
        need = ctx.needs_input_grad
        # dV event-driven inside the loop when spikes are sparse, else one product after it
        event_dv = bool(need[1]) and int(torch.count_nonzero(out)) <= _EVENT_DV_RATE * out.numel()
        gVT = hseq.new_zeros(N, N) if event_dv else hseq.new_zeros(1, 1)
        dt = hseq.numpy().dtype
        kernel = _compiled(cfg, True, dt, need_beta=ctx.need_beta, need_alpha=ctx.need_alpha)
        with _one_blas_thread():
            kernel(gout.numpy(), arr(hseq), arr(yseq), arr(iseq), arr(aseq), V.numpy(),
                   *(q.numpy() for q in P), v0.numpy(), i0.numpy(), _fused._consts(cfg, dt),
                   dt.type(cfg.surrogate.alpha), dt.type(cfg.surrogate.scale), gy.numpy(),
                   *(g.numpy() for g in grads), dv.numpy(), di.numpy(), da.numpy(), ds.numpy(), out.numpy(),
                   s0.numpy(), event_dv, gVT.numpy())
        gV = None
        if event_dv:
            gV = gVT.t().to(ctx.v_dtype)
        elif need[1]:  # dL/dV = sum_t (dL/dy_t)^T s_{t-1}: one product over all steps
            sprev = torch.cat([s0.unsqueeze(0), out[:-1]]).reshape(T * B, N)
            gV = gy.reshape(T * B, N).t().mm(sprev).to(ctx.v_dtype)
        pgrads = []
        for n, g in enumerate(grads):
            shape = ctx.param_shapes[n]
            pgrads.append(None if shape is None or not need[2 + n] else g.view(B, N).sum_to_size(shape))
        return (gy, gV, *pgrads, dv.view(B, N) if need[8] else None,
                di.view(B, N) if (need[9] and ci) else None, da.view(B, N) if (need[10] and ca) else None,
                ds if need[11] else None, None)


def run(x: torch.Tensor, V: torch.Tensor, params: DynamicsParams, cfg: DynamicsConfig,
        state: Optional[RecurrentState] = None, backend: str = "auto"):
    """The recurrent dynamics over ``x`` ``[T, B, N]`` with ``V`` ``[N, N]``; returns ``(spikes, final state)``.

    ``backend`` as for :func:`neuromorph.kernels.run`; ``fused``/``auto`` on the CPU take the fused
    recurrent kernel when :func:`fused_supported`, every other case the step loop over that backend.
    """
    from neuromorph import kernels  # the dispatcher imports this module's siblings

    name = kernels.resolve_backend(backend, x)
    if name == "fused" and fused_supported(x, params, cfg):
        if state is None:
            nstate, s0 = initial_state(x, cfg), x.new_zeros(x.shape[1:])
        else:
            nstate, s0 = state
        as_t = lambda q: None if q is None else torch.as_tensor(q, dtype=x.dtype, device=x.device)  # noqa: E731
        out, vT, iT, aT = RecurrentMultiStep.apply(
            x, V, as_t(params.beta), as_t(params.threshold), as_t(params.syn_decay), as_t(params.rho),
            as_t(params.adapt), as_t(params.couple), nstate.v, nstate.i, nstate.a, s0, cfg)
        return out, RecurrentState(NeuronState(vT, iT, aT), out[-1])

    def step_fn(y, st):
        o, _, st = kernels.run(y, params, cfg, st, False, name)
        return o, st

    return run_steps(x, V, step_fn, state, lambda x_: initial_state(x_, cfg))
