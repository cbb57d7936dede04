"""The Triton backend: forward and backward of the multi-step dynamics as Triton kernels.

One program owns a block of neurons and walks all T steps, keeping the state in registers. The kernels
only load, store and walk time; the step and its adjoint are the definitions of
:mod:`neuromorph.functional.dynamics`, ``triton.jit``-ed with block primitives and with the static flags as
``tl.constexpr``, so each configuration compiles to a branch-free kernel. On a machine without a GPU the
kernels run under the Triton interpreter (``TRITON_INTERPRET=1``), which is how the CPU test suite checks
them against the reference.
"""

from __future__ import annotations

import types
from typing import Optional

import torch
import triton
import triton.language as tl

from neuromorph.functional.dynamics import bind, static_flags
from neuromorph.kernels.config import DynamicsConfig, DynamicsParams, NeuronState, carries_a, run_engine

_BLOCK = 256


@triton.jit
def _where(c, a, b):
    return tl.where(c, a, b)


@triton.jit
def _exp(z):
    return tl.exp(z)


@triton.jit
def _abs(z):
    return tl.abs(z)


@triton.jit
def _tanh(z):
    e = tl.exp(-2.0 * tl.abs(z))
    r = (1.0 - e) / (1.0 + e)
    return tl.where(z < 0, -r, r)


@triton.jit
def _sech2(z):
    e = tl.exp(-2.0 * tl.abs(z))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


@triton.jit
def _cbrt(z):
    # z >= 1 wherever the definitions take a cube root
    return tl.exp(tl.log(z) / 3.0)


@triton.jit
def _minimum(z, c):
    return tl.minimum(z, c)


@triton.jit
def _maximum(z, c):
    return tl.maximum(z, c)


_TRITON_OPS = {"where": _where, "exp": _exp, "absv": _abs, "tanh": _tanh, "sech2": _sech2, "cbrt": _cbrt,
               "minimum": _minimum, "maximum": _maximum}


# The two kernels; the capitalised flags and the definitions are bound per configuration by `_compiled`.
def _load_block(beta_ptr, thr_ptr, syn_ptr, rho_ptr, adapt_ptr, couple_ptr, v_ptr, i_ptr, a_ptr, offs, mask):
    """A block's parameters and its state v, i, a (or their adjoints), zero where the model has none."""
    b = tl.load(beta_ptr + offs, mask=mask, other=0.0)
    th0 = tl.load(thr_ptr + offs, mask=mask, other=1.0)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    one = b * 0.0 + 1.0
    zero = b * 0.0
    kappa = zero
    rh = zero
    ad = zero
    cp = zero
    i = zero
    a = zero
    if CARRY_I:  # noqa: F821
        i = tl.load(i_ptr + offs, mask=mask, other=0.0)
    if CUBA:  # noqa: F821
        kappa = tl.load(syn_ptr + offs, mask=mask, other=0.0)
    if CARRY_A:  # noqa: F821
        a = tl.load(a_ptr + offs, mask=mask, other=0.0)
        rh = tl.load(rho_ptr + offs, mask=mask, other=0.0)
        ad = tl.load(adapt_ptr + offs, mask=mask, other=0.0)
    if ADLIF:  # noqa: F821
        cp = tl.load(couple_ptr + offs, mask=mask, other=0.0)
    return b, th0, kappa, rh, ad, cp, v, i, a, one, zero


def _forward_kernel(x_ptr, beta_ptr, thr_ptr, syn_ptr, rho_ptr, adapt_ptr, couple_ptr, v_ptr, i_ptr, a_ptr, out_ptr,
                    h_ptr, mem_ptr, iseq_ptr, aseq_ptr, T, M, v_reset, v_rest, ramount, k,
                    WANT_MEM: tl.constexpr, SAVE_I: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    b, th0, kappa, rh, ad, cp, v, i, a, one, zero = _load_block(beta_ptr, thr_ptr, syn_ptr, rho_ptr, adapt_ptr,
                                                                couple_ptr, v_ptr, i_ptr, a_ptr, offs, mask)
    for t in range(T):
        y = tl.load(x_ptr + t * M + offs, mask=mask, other=0.0)
        if CARRY_A:  # noqa: F821
            tl.store(aseq_ptr + t * M + offs, a, mask=mask)
        o, h, v, i, a = step(y, v, i, a, b, th0, kappa, rh, ad, cp, v_rest, v_reset, ramount, k, one,  # noqa: F821
                             zero)
        tl.store(out_ptr + t * M + offs, o, mask=mask)
        if FIRE:  # noqa: F821
            tl.store(h_ptr + t * M + offs, h, mask=mask)
            if WANT_MEM:
                tl.store(mem_ptr + t * M + offs, v, mask=mask)
        if CARRY_I:  # noqa: F821
            if SAVE_I:
                tl.store(iseq_ptr + t * M + offs, i, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    if CARRY_I:  # noqa: F821
        tl.store(i_ptr + offs, i, mask=mask)
    if CARRY_A:  # noqa: F821
        tl.store(a_ptr + offs, a, mask=mask)


def _backward_kernel(gout_ptr, gmem_ptr, h_ptr, iseq_ptr, aseq_ptr, x_ptr, beta_ptr, thr_ptr, syn_ptr, rho_ptr,
                     adapt_ptr, couple_ptr, v0_ptr, i0_ptr, gx_ptr, gbeta_ptr, gthr_ptr, gsyn_ptr, grho_ptr,
                     gadapt_ptr, gcouple_ptr, dv_ptr, di_ptr, da_ptr, T, M, v_reset, v_rest, ramount, k, salpha,
                     sscale, SID: tl.constexpr, HAVE_GMEM: tl.constexpr, NEED_BETA: tl.constexpr,
                     NEED_ALPHA: tl.constexpr, NEED_IPREV: tl.constexpr, NEED_VPREV: tl.constexpr,
                     BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    b, th0, kappa, rh, ad, cp, dv, di, da, one, zero = _load_block(beta_ptr, thr_ptr, syn_ptr, rho_ptr, adapt_ptr,
                                                                   couple_ptr, dv_ptr, di_ptr, da_ptr, offs, mask)
    gbeta = zero
    gthr = zero
    gsyn = zero
    grho = zero
    gadapt = zero
    gcouple = zero
    for tt in range(T):
        t = T - 1 - tt
        dvm = dv
        if HAVE_GMEM:
            dvm = dvm + tl.load(gmem_ptr + t * M + offs, mask=mask, other=0.0)
        h = tl.load(h_ptr + t * M + offs, mask=mask, other=0.0)
        gs = tl.load(gout_ptr + t * M + offs, mask=mask, other=0.0)
        aprev = zero
        if CARRY_A:  # noqa: F821
            aprev = tl.load(aseq_ptr + t * M + offs, mask=mask, other=0.0)
        iprev = zero
        if NEED_IPREV:
            if t == 0:
                iprev = tl.load(i0_ptr + offs, mask=mask, other=0.0)
            else:
                iprev = tl.load(iseq_ptr + (t - 1) * M + offs, mask=mask, other=0.0)
        dterm = zero
        vprev = zero
        if NEED_VPREV:
            if t == 0:
                vprev = tl.load(v0_ptr + offs, mask=mask, other=0.0)
                if ADLIF == 2:  # noqa: F821
                    iprev = tl.load(i0_ptr + offs, mask=mask, other=0.0)
            else:
                ap = zero
                if ALIF:  # noqa: F821
                    ap = tl.load(aseq_ptr + (t - 1) * M + offs, mask=mask, other=0.0)
                hp = tl.load(h_ptr + (t - 1) * M + offs, mask=mask, other=0.0)
                th = threshold(th0, ap)  # noqa: F821
                vprev = membrane_after(hp, th, k, v_reset, ramount, one, zero)  # noqa: F821
                if ADLIF == 2:  # noqa: F821  EF-adLIF's carried spike s_{t-1}, fired again from h_{t-1}
                    u, iprev = fire(hp, th, k, one, zero)  # noqa: F821
        if NEED_BETA:
            y = zero
            if DECAY_INPUT:  # noqa: F821
                if CUBA:  # noqa: F821
                    y = tl.load(iseq_ptr + t * M + offs, mask=mask, other=0.0)
                else:
                    y = tl.load(x_ptr + t * M + offs, mask=mask, other=0.0)
            dterm = beta_term(vprev, y, aprev, v_rest)  # noqa: F821
        dx, dv, di, da, gb, gth, gsy, grh, gad, gcp = adjoint(gs, dvm, di, da, h, aprev, dterm, iprev,  # noqa: F821
                                                              vprev, b, th0, kappa, rh, ad, cp, v_reset, ramount,
                                                              k, salpha, sscale, SID, one, zero)
        tl.store(gx_ptr + t * M + offs, dx, mask=mask)
        gbeta = gbeta + gb
        gthr = gthr + gth
        gsyn = gsyn + gsy
        grho = grho + grh
        gadapt = gadapt + gad
        gcouple = gcouple + gcp
    tl.store(dv_ptr + offs, dv, mask=mask)
    tl.store(gbeta_ptr + offs, gbeta, mask=mask)
    tl.store(gthr_ptr + offs, gthr, mask=mask)
    if CARRY_I:  # noqa: F821
        tl.store(di_ptr + offs, di, mask=mask)
    if CUBA:  # noqa: F821
        tl.store(gsyn_ptr + offs, gsyn, mask=mask)
    if CARRY_A:  # noqa: F821
        tl.store(da_ptr + offs, da, mask=mask)
        tl.store(grho_ptr + offs, grho, mask=mask)
        tl.store(gadapt_ptr + offs, gadapt, mask=mask)
    if ADLIF:  # noqa: F821
        tl.store(gcouple_ptr + offs, gcouple, mask=mask)


_COMPILED: dict = {}


def _compiled(cfg: DynamicsConfig, adjoint: bool):
    """The Triton kernel for ``cfg`` (forward, or backward with ``adjoint``). Triton keys its compile cache
    on the constexpr globals, and each configuration also gets its own kernel name."""
    flags = static_flags(cfg, adjoint)
    key = (adjoint, tuple(sorted(flags.items())))
    if key not in _COMPILED:
        ns = bind(_TRITON_OPS, flags, wrap=triton.jit, const=tl.constexpr, module=__name__, extra={"tl": tl})
        ns["_load_block"] = triton.jit(types.FunctionType(_load_block.__code__, ns, "_load_block"))
        kernel = _backward_kernel if adjoint else _forward_kernel
        fn = types.FunctionType(kernel.__code__, ns, kernel.__name__)
        fn.__qualname__ = "_".join([kernel.__name__, *(f"{k}{int(v)}" for k, v in key[1])])
        _COMPILED[key] = triton.jit(fn)
    return _COMPILED[key]


def _consts(cfg: DynamicsConfig):
    return float(cfg.v_reset), float(cfg.v_rest), float(cfg.reset_amount or 0.0), float(cfg.mpr_k)


class _Triton:
    @staticmethod
    def forward(cfg, xf, P, v, i, a, want_mem, save_i, save_h=True):  # keeps h_t and a_{t-1} either way
        T, M = xf.shape
        out = torch.empty_like(xf)
        hseq = torch.empty_like(xf) if cfg.fire else out
        dummy = xf.new_zeros(1)
        mem = torch.empty_like(xf) if want_mem else dummy
        iseq = torch.empty_like(xf) if save_i else dummy
        aseq = torch.empty_like(xf) if carries_a(cfg) else dummy
        _compiled(cfg, False)[(triton.cdiv(M, _BLOCK),)](
            xf, *P, v, i, a, out, hseq, mem, iseq, aseq, T, M, *_consts(cfg), WANT_MEM=want_mem, SAVE_I=save_i,
            BLOCK=_BLOCK)
        return (out, hseq, mem if want_mem else None, iseq if save_i else None, aseq if carries_a(cfg) else None, v,
                i, a)

    @staticmethod
    def backward(cfg, gout, gmem, hseq, iseq, aseq, xf, P, v0, i0, need_beta, need_alpha, dv, di, da):
        T, M = gout.shape
        dummy = hseq.new_zeros(1)
        gx = torch.empty_like(gout)
        grads = [hseq.new_zeros(M) for _ in range(6)]
        orz = lambda q: dummy if q is None else q  # noqa: E731
        ef = cfg.adlif == "ef"
        _compiled(cfg, True)[(triton.cdiv(M, _BLOCK),)](
            gout, orz(gmem), hseq, orz(iseq), orz(aseq), orz(xf), *P, v0, i0, gx, *grads, dv, di, da, T, M,
            *_consts(cfg), float(cfg.surrogate.alpha), float(cfg.surrogate.scale), SID=cfg.surrogate.id,
            HAVE_GMEM=gmem is not None, NEED_BETA=need_beta, NEED_ALPHA=need_alpha,
            NEED_IPREV=cfg.cuba and need_alpha, NEED_VPREV=need_beta or ef, BLOCK=_BLOCK)
        return gx, grads, dv, di, da


def run(x: torch.Tensor, params: DynamicsParams, cfg: DynamicsConfig, state: Optional[NeuronState] = None,
        return_membrane: bool = False):
    """Triton multi-step dynamics; same contract as :func:`neuromorph.kernels.reference.run`."""
    return run_engine(_Triton, x, params, cfg, state, return_membrane)

