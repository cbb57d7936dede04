"""The Triton backend: forward and backward of the multi-step dynamics as Triton kernels.

One program owns a block of neurons and walks all T steps, keeping the state in registers; the model's
flags are ``tl.constexpr`` so each configuration compiles to a branch-free kernel. The recursions and
what is saved for the backward are those of :mod:`neuromorph.kernels.fused` (see its docstring). On a
machine without a GPU the kernels run under the Triton interpreter (``TRITON_INTERPRET=1``), which is
how the CPU test suite checks them against the reference.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from neuromorph.kernels.config import (RESET_IDS, DynamicsConfig, DynamicsParams, NeuronState, backward_outputs,
                                       flat_param, initial_state)

_BLOCK = 256


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
def _cbrt_pos(z):
    # z > 0 here; exp(log(z)/3)
    return tl.exp(tl.log(z) / 3.0)


@triton.jit
def _phi(u, k, tk):
    lo = 1.0 - _cbrt_pos(1.0 - tl.minimum(u, 0.0))
    hi = _cbrt_pos(tl.maximum(u, 1.0))
    mid = 0.5 + _tanh(k * (tl.minimum(tl.maximum(u, 0.0), 1.0) - 0.5)) / (2.0 * tk)
    return tl.where(u < 0, lo, tl.where(u > 1, hi, mid))


@triton.jit
def _phi_grad(u, k, tk):
    lo_b = 1.0 - tl.minimum(u, 0.0)
    lo = (1.0 / 3.0) / (_cbrt_pos(lo_b) * _cbrt_pos(lo_b))
    hi_b = tl.maximum(u, 1.0)
    hi = (1.0 / 3.0) / (_cbrt_pos(hi_b) * _cbrt_pos(hi_b))
    mid = k / (2.0 * tk) * _sech2(k * (tl.minimum(tl.maximum(u, 0.0), 1.0) - 0.5))
    return tl.where(u < 0, lo, tl.where(u > 1, hi, mid))


@triton.jit
def _surrogate(x, a, SID: tl.constexpr):
    if SID == 0:
        z = 0.5 * 3.141592653589793 * a * x
        g = (0.5 * a) / (1.0 + z * z)
    elif SID == 1:
        sg = 1.0 / (1.0 + tl.exp(-a * x))
        g = a * sg * (1.0 - sg)
    elif SID == 2:
        d = 1.0 + a * tl.abs(x)
        g = 1.0 / (d * d)
    elif SID == 3:
        g = tl.maximum(1.0 - tl.abs(x) / a, 0.0) / a
    elif SID == 4:
        g = tl.where(tl.abs(x) < 0.5 * a, 1.0 / a, 0.0)
    else:
        g = tl.where(tl.abs(x) <= 0.5, a / (2.0 * _tanh(0.5 * a)) * _sech2(a * x), 0.0)
    return g


@triton.jit
def _forward_kernel(x_ptr, beta_ptr, thr_ptr, alpha_ptr, rho_ptr, adapt_ptr, v_ptr, i_ptr, a_ptr,
                    out_ptr, h_ptr, mem_ptr, iseq_ptr, aseq_ptr, T, M, v_reset, v_rest, ramount, k, tk,
                    CUBA: tl.constexpr, ALIF: tl.constexpr, FIRE: tl.constexpr, RESET: tl.constexpr,
                    DECAY_INPUT: tl.constexpr, MPR: tl.constexpr, THR_RESET: tl.constexpr, WANT_MEM: tl.constexpr,
                    SAVE_I: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    b = tl.load(beta_ptr + offs, mask=mask, other=0.0)
    th0 = tl.load(thr_ptr + offs, mask=mask, other=1.0)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    one = b * 0.0 + 1.0
    zero = b * 0.0
    i = zero
    al = zero
    a = zero
    rh = zero
    ad = zero
    if CUBA:
        i = tl.load(i_ptr + offs, mask=mask, other=0.0)
        al = tl.load(alpha_ptr + offs, mask=mask, other=0.0)
    if ALIF:
        a = tl.load(a_ptr + offs, mask=mask, other=0.0)
        rh = tl.load(rho_ptr + offs, mask=mask, other=0.0)
        ad = tl.load(adapt_ptr + offs, mask=mask, other=0.0)
    if DECAY_INPUT:
        c = one - b
    else:
        c = one
    for t in range(T):
        y = tl.load(x_ptr + t * M + offs, mask=mask, other=0.0)
        if CUBA:
            i = al * i + y
            y = i
            if SAVE_I:
                tl.store(iseq_ptr + t * M + offs, i, mask=mask)
        h = b * v + (one - b) * v_rest + c * y
        if FIRE:
            tl.store(h_ptr + t * M + offs, h, mask=mask)
            th = th0
            if ALIF:
                tl.store(aseq_ptr + t * M + offs, a, mask=mask)
                th = th0 + a
            if MPR:
                u = _phi(h, k, tk)
            else:
                u = h
            s = tl.where(u - th > 0, one, zero)
            if RESET == 1:
                if THR_RESET:
                    v = h - s * th
                else:
                    v = h - s * ramount
            elif RESET == 2:
                v = h * (one - s) + v_reset * s
            else:
                v = h
            if WANT_MEM:
                tl.store(mem_ptr + t * M + offs, v, mask=mask)
            if ALIF:
                a = rh * a + ad * s
            tl.store(out_ptr + t * M + offs, s, mask=mask)
        else:
            v = h
            tl.store(out_ptr + t * M + offs, h, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    if CUBA:
        tl.store(i_ptr + offs, i, mask=mask)
    if ALIF:
        tl.store(a_ptr + offs, a, mask=mask)


@triton.jit
def _backward_kernel(gout_ptr, gmem_ptr, h_ptr, iseq_ptr, aseq_ptr, x_ptr, beta_ptr, thr_ptr, alpha_ptr, rho_ptr,
                     adapt_ptr, v0_ptr, i0_ptr, gx_ptr, gbeta_ptr, gthr_ptr, galpha_ptr, grho_ptr, gadapt_ptr,
                     dv_ptr, di_ptr, da_ptr, T, M, v_reset, v_rest, ramount, k, tk, salpha,
                     SID: tl.constexpr, CUBA: tl.constexpr, ALIF: tl.constexpr, FIRE: tl.constexpr,
                     RESET: tl.constexpr, DECAY_INPUT: tl.constexpr, MPR: tl.constexpr, THR_RESET: tl.constexpr,
                     DETACH: tl.constexpr, HAVE_GMEM: tl.constexpr, NEED_BETA: tl.constexpr,
                     NEED_ALPHA: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    b = tl.load(beta_ptr + offs, mask=mask, other=0.0)
    th0 = tl.load(thr_ptr + offs, mask=mask, other=1.0)
    dv = tl.load(dv_ptr + offs, mask=mask, other=0.0)
    one = b * 0.0 + 1.0
    zero = b * 0.0
    di = zero
    da = zero
    al = zero
    rh = zero
    ad = zero
    if CUBA:
        di = tl.load(di_ptr + offs, mask=mask, other=0.0)
        al = tl.load(alpha_ptr + offs, mask=mask, other=0.0)
    if ALIF:
        da = tl.load(da_ptr + offs, mask=mask, other=0.0)
        rh = tl.load(rho_ptr + offs, mask=mask, other=0.0)
        ad = tl.load(adapt_ptr + offs, mask=mask, other=0.0)
    if DECAY_INPUT:
        c = one - b
    else:
        c = one
    gbeta = zero
    gthr = zero
    galpha = zero
    grho = zero
    gadapt = zero
    for tt in range(T):
        t = T - 1 - tt
        dvm = dv
        if HAVE_GMEM:
            dvm = dvm + tl.load(gmem_ptr + t * M + offs, mask=mask, other=0.0)
        h = tl.load(h_ptr + t * M + offs, mask=mask, other=0.0)
        if FIRE:
            th = th0
            aprev = zero
            if ALIF:
                aprev = tl.load(aseq_ptr + t * M + offs, mask=mask, other=0.0)
                th = th0 + aprev
            if MPR:
                u = _phi(h, k, tk)
            else:
                u = h
            s = tl.where(u - th > 0, one, zero)
            ds = tl.load(gout_ptr + t * M + offs, mask=mask, other=0.0)
            if ALIF:
                ds = ds + ad * da
            dth = zero
            if RESET == 1:
                dh = dvm
                if THR_RESET:
                    if not DETACH:
                        ds = ds - th * dvm
                    dth = dth - s * dvm
                else:
                    if not DETACH:
                        ds = ds - ramount * dvm
            elif RESET == 2:
                dh = dvm * (one - s)
                if not DETACH:
                    ds = ds + (v_reset - h) * dvm
            else:
                dh = dvm
            if MPR:
                ind = tl.where((u >= 0) & (u <= 1), one, zero)
                dh = dh + ind * _phi_grad(h, k, tk) * ds
                dth = dth - ind * ds
            else:
                g = _surrogate(h - th, salpha, SID)
                dh = dh + g * ds
                dth = dth - g * ds
            gthr = gthr + dth
            if ALIF:
                grho = grho + da * aprev
                gadapt = gadapt + da * s
                da = rh * da + dth
        else:
            dh = dvm + tl.load(gout_ptr + t * M + offs, mask=mask, other=0.0)
        if NEED_BETA:
            if t == 0:
                vprev = tl.load(v0_ptr + offs, mask=mask, other=0.0)
            else:
                hp = tl.load(h_ptr + (t - 1) * M + offs, mask=mask, other=0.0)
                if FIRE:
                    thp = th0
                    if ALIF:
                        thp = th0 + tl.load(aseq_ptr + (t - 1) * M + offs, mask=mask, other=0.0)
                    if MPR:
                        up = _phi(hp, k, tk)
                    else:
                        up = hp
                    sp = tl.where(up - thp > 0, one, zero)
                    if RESET == 1:
                        if THR_RESET:
                            vprev = hp - sp * thp
                        else:
                            vprev = hp - sp * ramount
                    elif RESET == 2:
                        vprev = hp * (one - sp) + v_reset * sp
                    else:
                        vprev = hp
                else:
                    vprev = hp
            dterm = vprev - v_rest
            if DECAY_INPUT:
                if CUBA:
                    dterm = dterm - tl.load(iseq_ptr + t * M + offs, mask=mask, other=0.0)
                else:
                    dterm = dterm - tl.load(x_ptr + t * M + offs, mask=mask, other=0.0)
            gbeta = gbeta + dh * dterm
        dv = b * dh
        dy = c * dh
        if CUBA:
            dii = dy + di
            if NEED_ALPHA:
                if t == 0:
                    ip = tl.load(i0_ptr + offs, mask=mask, other=0.0)
                else:
                    ip = tl.load(iseq_ptr + (t - 1) * M + offs, mask=mask, other=0.0)
                galpha = galpha + dii * ip
            di = al * dii
            tl.store(gx_ptr + t * M + offs, dii, mask=mask)
        else:
            tl.store(gx_ptr + t * M + offs, dy, mask=mask)
    tl.store(dv_ptr + offs, dv, mask=mask)
    tl.store(gbeta_ptr + offs, gbeta, mask=mask)
    tl.store(gthr_ptr + offs, gthr, mask=mask)
    if CUBA:
        tl.store(di_ptr + offs, di, mask=mask)
        tl.store(galpha_ptr + offs, galpha, mask=mask)
    if ALIF:
        tl.store(da_ptr + offs, da, mask=mask)
        tl.store(grho_ptr + offs, grho, mask=mask)
        tl.store(gadapt_ptr + offs, gadapt, mask=mask)


def _consts(cfg: DynamicsConfig):
    import math

    return (float(cfg.v_reset), float(cfg.v_rest), float(cfg.reset_amount or 0.0), float(cfg.mpr_k),
            math.tanh(cfg.mpr_k / 2))


class _TritonFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, threshold, alpha, rho, adapt, v0, i0, a0, cfg, want_mem):
        T = x.shape[0]
        shape = x.shape[1:]
        M = v0.numel()
        xf = x.reshape(T, M).contiguous()
        P = [flat_param(q, shape, x) for q in (beta, threshold, alpha, rho, adapt)]
        need = ctx.needs_input_grad
        need_beta, need_alpha = bool(need[1]), bool(need[3])
        save_i = cfg.cuba and (need_alpha or (need_beta and cfg.decay_input))
        want_mem = want_mem and cfg.fire
        v = v0.reshape(M).contiguous().clone()
        i = i0.reshape(M).contiguous().clone() if cfg.cuba else x.new_zeros(1)
        a = a0.reshape(M).contiguous().clone() if cfg.alif else x.new_zeros(1)
        out = torch.empty_like(xf)
        hseq = torch.empty_like(xf) if cfg.fire else out
        mem = torch.empty_like(xf) if want_mem else x.new_zeros(1)
        iseq = torch.empty_like(xf) if save_i else x.new_zeros(1)
        aseq = torch.empty_like(xf) if cfg.alif else x.new_zeros(1)
        grid = (triton.cdiv(M, _BLOCK),)
        _forward_kernel[grid](xf, *P, v, i, a, out, hseq, mem, iseq, aseq, T, M, *_consts(cfg),
                              CUBA=cfg.cuba, ALIF=cfg.alif, FIRE=cfg.fire, RESET=RESET_IDS[cfg.reset],
                              DECAY_INPUT=cfg.decay_input, MPR=cfg.mpr, THR_RESET=cfg.reset_amount is None,
                              WANT_MEM=want_mem, SAVE_I=save_i, BLOCK=_BLOCK)
        keep_x = xf if (need_beta and cfg.decay_input and not cfg.cuba) else None
        v0f = v0.reshape(M).contiguous()
        i0f = i0.reshape(M).contiguous() if cfg.cuba else x.new_zeros(1)
        ctx.save_for_backward(hseq, iseq if save_i else None, aseq if cfg.alif else None, keep_x, *P, v0f, i0f)
        ctx.cfg, ctx.shape, ctx.want_mem = cfg, x.shape, want_mem
        ctx.need_beta, ctx.need_alpha = need_beta, need_alpha
        ctx.param_shapes = [None if q is None else q.shape for q in (beta, threshold, alpha, rho, adapt)]
        return (out.view(x.shape), mem.view(x.shape) if want_mem else None, v.view(shape),
                i.view(shape) if cfg.cuba else None, a.view(shape) if cfg.alif else None)

    @staticmethod
    def backward(ctx, gout, gmem, gvT, giT, gaT):
        hseq, iseq, aseq, xf, beta, thr, alpha, rho, adapt, v0f, i0f = ctx.saved_tensors
        cfg = ctx.cfg
        T = ctx.shape[0]
        M = v0f.numel()
        z2 = hseq.new_zeros(1)
        gout = hseq.new_zeros(T, M) if gout is None else gout.reshape(T, M).contiguous()
        have_gmem = ctx.want_mem and gmem is not None
        gmem = gmem.reshape(T, M).contiguous() if have_gmem else z2
        vec = lambda g: hseq.new_zeros(M) if g is None else g.reshape(M).contiguous().clone()  # noqa: E731
        dv, di, da = vec(gvT), vec(giT), vec(gaT)
        gx = torch.empty_like(gout)
        grads = [hseq.new_zeros(M) for _ in range(5)]
        grid = (triton.cdiv(M, _BLOCK),)
        _backward_kernel[grid](gout, gmem, hseq, iseq if iseq is not None else z2, aseq if aseq is not None else z2,
                               xf if xf is not None else z2, beta, thr, alpha, rho, adapt, v0f, i0f, gx, *grads,
                               dv, di, da, T, M, *_consts(cfg), float(cfg.surrogate.alpha), SID=cfg.surrogate.id,
                               CUBA=cfg.cuba, ALIF=cfg.alif, FIRE=cfg.fire, RESET=RESET_IDS[cfg.reset],
                               DECAY_INPUT=cfg.decay_input, MPR=cfg.mpr, THR_RESET=cfg.reset_amount is None,
                               DETACH=cfg.detach_reset, HAVE_GMEM=have_gmem, NEED_BETA=ctx.need_beta,
                               NEED_ALPHA=ctx.need_alpha, BLOCK=_BLOCK)
        return (*backward_outputs(ctx, cfg, gx, grads, dv, di, da), None, None)


def run(x: torch.Tensor, params: DynamicsParams, cfg: DynamicsConfig, state: Optional[NeuronState] = None,
        return_membrane: bool = False):
    """Triton multi-step dynamics; same contract as :func:`neuromorph.kernels.reference.run`."""
    if state is None:
        state = initial_state(x, cfg)
    as_t = lambda q: None if q is None else torch.as_tensor(q, dtype=x.dtype, device=x.device)  # noqa: E731
    out, mem, vT, iT, aT = _TritonFn.apply(
        x, as_t(params.beta), as_t(params.threshold), as_t(params.alpha), as_t(params.rho), as_t(params.adapt),
        state.v, state.i, state.a, cfg, bool(return_membrane))
    if return_membrane and not cfg.fire:
        mem = out
    return out, mem, NeuronState(vT, iT, aT)
