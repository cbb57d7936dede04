"""The fused backend: one ``torch.autograd.Function`` over all T steps with a hand-written backward.

The forward keeps only what the backward needs: the pre-reset membrane h_t of every step (the spikes
and every reset are recomputed from it), plus the synaptic current (CubaLIF, when its decay or a
decayed input needs a gradient) and the adaptation a_{t-1} (ALIF). On the CPU both directions are
numba kernels, parallel over neurons; on other devices the same recursions run as torch operations.

The backward is the adjoint of the recursion in :class:`~neuromorph.kernels.config.DynamicsConfig`,
walked from t = T−1 down to 0 with the adjoints dv (of v_t), di (of i_t) and da (of a_t)::

    ds  = ∂L/∂s_t + b·da                               (alif)
    dh  = dv          (soft/none) ;  dv·(1 − s)        (hard)
    ds += −R·dv       (soft)      ;  (v_reset − h)·dv  (hard)      unless detach_reset
    dθ_t = −s·dv (soft, R = θ_t) − g·ds ;  dh += g·ds              g = surrogate′(h − θ_t)
    da ← ρ·da + dθ_t ; dρ += da·a_{t-1} ; db += da·s_t             (alif)
    dβ += dh·(v_{t-1} − v_rest − [decay_input]·y_t) ; dv ← β·dh ; dy = c·dh
    di = dy + α·di ; dα += di·i_{t-1} ; dx_t = di                 (cuba; else dx_t = dy)
"""

from __future__ import annotations

import math
import os
from typing import Optional

import numba
import numpy as np
import torch

from neuromorph.kernels.config import (RESET_IDS, DynamicsConfig, DynamicsParams, NeuronState, backward_outputs,
                                       flat_param, initial_state)

_CACHE = os.environ.get("NEUROMORPH_NUMBA_CACHE", "1") != "0"


# ----------------------------------------------------------------------------------------------------------
# numba kernels (CPU)
# ----------------------------------------------------------------------------------------------------------
@numba.njit(inline="always", cache=_CACHE)
def _surrogate(sid, a, x):
    if sid == 0:  # atan
        z = 0.5 * math.pi * a * x
        return (0.5 * a) / (1.0 + z * z)
    if sid == 1:  # sigmoid
        sg = 1.0 / (1.0 + math.exp(-a * x))
        return a * sg * (1.0 - sg)
    if sid == 2:  # fast sigmoid (SuperSpike)
        d = 1.0 + a * abs(x)
        return 1.0 / (d * d)
    if sid == 3:  # triangle
        return max(0.0, 1.0 - abs(x) / a) / a
    if sid == 4:  # rectangular
        return 1.0 / a if abs(x) < 0.5 * a else 0.0
    # mpr bump
    if abs(x) > 0.5:
        return 0.0
    c = math.cosh(a * x)
    return a / (2.0 * math.tanh(0.5 * a)) / (c * c)


@numba.njit(inline="always", cache=_CACHE)
def _phi(u, k):
    if u < 0:
        return 1.0 - (1.0 - u) ** (1.0 / 3.0)
    if u > 1:
        return u ** (1.0 / 3.0)
    return 0.5 + math.tanh(k * (u - 0.5)) / (2.0 * math.tanh(0.5 * k))


@numba.njit(inline="always", cache=_CACHE)
def _phi_grad(u, k):
    if u < 0:
        return (1.0 / 3.0) * (1.0 - u) ** (-2.0 / 3.0)
    if u > 1:
        return (1.0 / 3.0) * u ** (-2.0 / 3.0)
    c = math.cosh(k * (u - 0.5))
    return k / (2.0 * math.tanh(0.5 * k)) / (c * c)


# Single-threaded on purpose: the inner loop over all neurons from 0 vectorises (an element costs well under
# a nanosecond), while threads cost more in start-up and in contention with torch's own threads than
# they save at the sizes of a training step.
@numba.njit(cache=_CACHE)
def _forward_cpu(x, beta, thr, alpha, rho, adapt, consts, cuba, alif, fire, reset, decay_input, mpr,
                 thr_reset, want_mem, save_i, out, hseq, mem, iseq, aseq, vT, iT, aT):
    T, M = x.shape
    v_reset, v_rest, ramount, k = consts[0], consts[1], consts[2], consts[3]
    one = consts[4]
    zero = consts[5]
    for t in range(T):
        for m in range(M):
            y = x[t, m]
            if cuba:
                ii = alpha[m] * iT[m] + y
                iT[m] = ii
                if save_i:
                    iseq[t, m] = ii
                y = ii
            b = beta[m]
            c = (one - b) if decay_input else one
            h = b * vT[m] + (one - b) * v_rest + c * y
            if not fire:
                vT[m] = h
                out[t, m] = h
                continue
            hseq[t, m] = h
            th = thr[m]
            if alif:
                aseq[t, m] = aT[m]
                th = th + aT[m]
            u = _phi(h, k) if mpr else h
            s = one if u - th > 0 else zero
            if reset == 1:
                vv = h - s * (th if thr_reset else ramount)
            elif reset == 2:
                vv = h * (one - s) + v_reset * s
            else:
                vv = h
            vT[m] = vv
            if want_mem:
                mem[t, m] = vv
            if alif:
                aT[m] = rho[m] * aT[m] + adapt[m] * s
            out[t, m] = s


@numba.njit(cache=_CACHE)
def _forward_cpu_lif(x, beta, thr, consts, reset, decay_input, thr_reset, want_mem, out, hseq, mem, vT):
    """IF/LIF without synaptic current, adaptation or MPR: the common case, kept branch-light so it
    vectorises; same arithmetic, op for op, as the general kernel."""
    T, M = x.shape
    v_reset, v_rest, ramount = consts[0], consts[1], consts[2]
    one = consts[4]
    zero = consts[5]
    for t in range(T):
        for m in range(M):
            b = beta[m]
            c = (one - b) if decay_input else one
            h = b * vT[m] + (one - b) * v_rest + c * x[t, m]
            hseq[t, m] = h
            th = thr[m]
            s = one if h - th > 0 else zero
            if reset == 1:
                vv = h - s * (th if thr_reset else ramount)
            elif reset == 2:
                vv = h * (one - s) + v_reset * s
            else:
                vv = h
            vT[m] = vv
            out[t, m] = s
        if want_mem:
            mem[t] = vT


@numba.njit(cache=_CACHE)
def _backward_cpu_lif(gout, gmem, hseq, x, beta, thr, v0, consts, sid, salpha, reset, decay_input, thr_reset,
                      detach, have_gmem, need_beta, gx, gbeta, gthr, dv):
    T, M = gout.shape
    v_reset, v_rest, ramount = consts[0], consts[1], consts[2]
    one = consts[4]
    zero = consts[5]
    for t in range(T - 1, -1, -1):
        for m in range(M):
            b = beta[m]
            dvm = dv[m] + gmem[t, m] if have_gmem else dv[m]
            h = hseq[t, m]
            th = thr[m]
            s = one if h - th > 0 else zero
            ds = gout[t, m]
            dth = zero
            if reset == 1:
                dh = dvm
                if not detach:
                    ds -= (th if thr_reset else ramount) * dvm
                if thr_reset:
                    dth -= s * dvm
            elif reset == 2:
                dh = dvm * (one - s)
                if not detach:
                    ds += (v_reset - h) * dvm
            else:
                dh = dvm
            g = _surrogate(sid, salpha, h - th)
            dh += g * ds
            gthr[m] += dth - g * ds
            if need_beta:
                if t == 0:
                    vprev = v0[m]
                else:
                    hp = hseq[t - 1, m]
                    sp = one if hp - th > 0 else zero
                    if reset == 1:
                        vprev = hp - sp * (th if thr_reset else ramount)
                    elif reset == 2:
                        vprev = hp * (one - sp) + v_reset * sp
                    else:
                        vprev = hp
                dterm = vprev - v_rest
                if decay_input:
                    dterm -= x[t, m]
                gbeta[m] += dh * dterm
            dv[m] = b * dh
            gx[t, m] = ((one - b) if decay_input else one) * dh


@numba.njit(inline="always", cache=_CACHE)
def _v_after_reset(h, th, k, mpr, reset, thr_reset, ramount, v_reset, one, zero):
    u = _phi(h, k) if mpr else h
    s = one if u - th > 0 else zero
    if reset == 1:
        return h - s * (th if thr_reset else ramount)
    if reset == 2:
        return h * (one - s) + v_reset * s
    return h


@numba.njit(cache=_CACHE)
def _backward_cpu(gout, gmem, hseq, iseq, aseq, x, beta, thr, alpha, rho, adapt, v0, i0, consts, sid, salpha,
                  cuba, alif, fire, reset, decay_input, mpr, thr_reset, detach, have_gmem, need_beta, need_alpha,
                  gx, gbeta, gthr, galpha, grho, gadapt, dv, di, da):
    T, M = gout.shape
    v_reset, v_rest, ramount, k = consts[0], consts[1], consts[2], consts[3]
    one = consts[4]
    zero = consts[5]
    for t in range(T - 1, -1, -1):
        for m in range(M):
            b = beta[m]
            dvm = dv[m]
            if have_gmem:
                dvm += gmem[t, m]
            h = hseq[t, m]
            if not fire:
                dh = dvm + gout[t, m]
            else:
                th = thr[m]
                aprev = zero
                if alif:
                    aprev = aseq[t, m]
                    th = th + aprev
                u = _phi(h, k) if mpr else h
                s = one if u - th > 0 else zero
                ds = gout[t, m]
                if alif:
                    ds += adapt[m] * da[m]
                dth = zero
                if reset == 1:
                    dh = dvm
                    if not detach:
                        ds -= (th if thr_reset else ramount) * dvm
                    if thr_reset:
                        dth -= s * dvm
                elif reset == 2:
                    dh = dvm * (one - s)
                    if not detach:
                        ds += (v_reset - h) * dvm
                else:
                    dh = dvm
                if mpr:
                    if u >= 0 and u <= 1:
                        dh += _phi_grad(h, k) * ds
                        dth -= ds
                else:
                    g = _surrogate(sid, salpha, h - th)
                    dh += g * ds
                    dth -= g * ds
                gthr[m] += dth
                if alif:
                    grho[m] += da[m] * aprev
                    gadapt[m] += da[m] * s
                    da[m] = rho[m] * da[m] + dth
            if need_beta:
                if t == 0:
                    vprev = v0[m]
                elif not fire:
                    vprev = hseq[t - 1, m]
                else:
                    thp = thr[m]
                    if alif:
                        thp = thp + aseq[t - 1, m]
                    vprev = _v_after_reset(hseq[t - 1, m], thp, k, mpr, reset, thr_reset, ramount, v_reset,
                                           one, zero)
                dterm = vprev - v_rest
                if decay_input:
                    dterm -= iseq[t, m] if cuba else x[t, m]
                gbeta[m] += dh * dterm
            dv[m] = b * dh
            dy = ((one - b) if decay_input else one) * dh
            if cuba:
                dii = dy + di[m]
                if need_alpha:
                    galpha[m] += dii * (i0[m] if t == 0 else iseq[t - 1, m])
                di[m] = alpha[m] * dii
                gx[t, m] = dii
            else:
                gx[t, m] = dy


# ----------------------------------------------------------------------------------------------------------
# torch recursions (any device): the same equations, op for op
# ----------------------------------------------------------------------------------------------------------
def _fire_torch(h, th, cfg):
    if cfg.mpr:
        from neuromorph.functional.mpr import mpr

        return (mpr(h, cfg.mpr_k) > th).to(h.dtype)
    return ((h - th) > 0).to(h.dtype)


def _reset_torch(h, s, th, cfg):
    if cfg.reset == "soft":
        return h - s * (th if cfg.reset_amount is None else cfg.reset_amount)
    if cfg.reset == "hard":
        return h * (1 - s) + cfg.v_reset * s
    return h


def _forward_torch(x, p, cfg, st, want_mem, save_i):
    v, i, a = st
    c = (1 - p.beta) if cfg.decay_input else 1.0
    outs, hs, mems, iseq, aseq = [], [], [], [], []
    for t in range(x.shape[0]):
        y = x[t]
        if cfg.cuba:
            i = p.alpha * i + y
            y = i
            if save_i:
                iseq.append(i)
        h = p.beta * v + (1 - p.beta) * cfg.v_rest + c * y
        if not cfg.fire:
            v = h
            outs.append(h)
            continue
        hs.append(h)
        th = p.threshold
        if cfg.alif:
            aseq.append(a)
            th = th + a
        s = _fire_torch(h, th, cfg)
        v = _reset_torch(h, s, th, cfg)
        if want_mem:
            mems.append(v)
        if cfg.alif:
            a = p.rho * a + p.adapt * s
        outs.append(s)
    stack = lambda seq: torch.stack(seq) if seq else None  # noqa: E731
    return stack(outs), stack(hs), stack(mems), stack(iseq), stack(aseq), NeuronState(v, i, a)


def _backward_torch(gout, gmem, hseq, iseq, aseq, x, p, st0, cfg, need_beta, need_alpha, gstate):
    T = gout.shape[0]
    dv, di, da = gstate
    zeros = torch.zeros_like(gout[0])
    gbeta, gthr, galpha, grho, gadapt = zeros.clone(), zeros.clone(), zeros.clone(), zeros.clone(), zeros.clone()
    gx = torch.empty_like(gout)
    c = (1 - p.beta) if cfg.decay_input else 1.0
    sur = cfg.surrogate
    for t in range(T - 1, -1, -1):
        dvm = dv + gmem[t] if gmem is not None else dv
        h = hseq[t]
        if not cfg.fire:
            dh = dvm + gout[t]
        else:
            th = p.threshold + aseq[t] if cfg.alif else p.threshold
            s = _fire_torch(h, th, cfg)
            ds = gout[t] + p.adapt * da if cfg.alif else gout[t]
            dth = torch.zeros_like(h)
            if cfg.reset == "soft":
                dh = dvm
                if not cfg.detach_reset:
                    ds = ds - (th if cfg.reset_amount is None else cfg.reset_amount) * dvm
                if cfg.reset_amount is None:
                    dth = dth - s * dvm
            elif cfg.reset == "hard":
                dh = dvm * (1 - s)
                if not cfg.detach_reset:
                    ds = ds + (cfg.v_reset - h) * dvm
            else:
                dh = dvm
            if cfg.mpr:
                from neuromorph.functional.mpr import mpr, mpr_grad

                phi = mpr(h, cfg.mpr_k)
                ind = ((phi >= 0) & (phi <= 1)).to(h.dtype)
                dh = dh + ind * mpr_grad(h, cfg.mpr_k) * ds
                dth = dth - ind * ds
            else:
                g = sur.grad(h - th)
                dh = dh + g * ds
                dth = dth - g * ds
            gthr = gthr + dth
            if cfg.alif:
                grho = grho + da * aseq[t]
                gadapt = gadapt + da * s
                da = p.rho * da + dth
        if need_beta:
            if t == 0:
                vprev = st0.v
            elif not cfg.fire:
                vprev = hseq[t - 1]
            else:
                thp = p.threshold + aseq[t - 1] if cfg.alif else p.threshold
                hp = hseq[t - 1]
                vprev = _reset_torch(hp, _fire_torch(hp, thp, cfg), thp, cfg)
            dterm = vprev - cfg.v_rest
            if cfg.decay_input:
                dterm = dterm - (iseq[t] if cfg.cuba else x[t])
            gbeta = gbeta + dh * dterm
        dv = p.beta * dh
        dy = c * dh
        if cfg.cuba:
            dii = dy + di
            if need_alpha:
                galpha = galpha + dii * (st0.i if t == 0 else iseq[t - 1])
            di = p.alpha * dii
            gx[t] = dii
        else:
            gx[t] = dy
    return gx, gbeta, gthr, galpha, grho, gadapt, dv, di, da


# ----------------------------------------------------------------------------------------------------------
# autograd Function
# ----------------------------------------------------------------------------------------------------------
def _is_plain(cfg: DynamicsConfig) -> bool:
    return cfg.fire and not (cfg.cuba or cfg.alif or cfg.mpr)


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, threshold, alpha, rho, adapt, v0, i0, a0, cfg, want_mem, use_numba):
        T = x.shape[0]
        shape = x.shape[1:]
        M = v0.numel()
        xf = x.reshape(T, M).contiguous()
        P = [flat_param(q, shape, x) for q in (beta, threshold, alpha, rho, adapt)]
        need = ctx.needs_input_grad
        need_beta = bool(need[1])
        need_alpha = bool(need[3])
        save_i = cfg.cuba and (need_alpha or (need_beta and cfg.decay_input))
        v0f = v0.reshape(M).contiguous()
        i0f = i0.reshape(M).contiguous() if i0 is not None else x.new_zeros(1)
        a0f = a0.reshape(M).contiguous() if a0 is not None else x.new_zeros(1)
        if use_numba:
            out = torch.empty_like(xf)
            hseq = torch.empty_like(xf) if cfg.fire else out
            mem = torch.empty_like(xf) if want_mem and cfg.fire else x.new_zeros(1, 1)
            iseq = torch.empty_like(xf) if save_i else x.new_zeros(1, 1)
            aseq = torch.empty_like(xf) if cfg.alif else x.new_zeros(1, 1)
            vT, iT, aT = v0f.clone(), i0f.clone(), a0f.clone()
            consts = np.array([cfg.v_reset, cfg.v_rest, cfg.reset_amount or 0.0, cfg.mpr_k, 1.0, 0.0],
                              dtype=xf.numpy().dtype)
            if _is_plain(cfg):
                _forward_cpu_lif(xf.numpy(), P[0].numpy(), P[1].numpy(), consts, RESET_IDS[cfg.reset],
                                 cfg.decay_input, cfg.reset_amount is None, want_mem, out.numpy(), hseq.numpy(),
                                 mem.numpy(), vT.numpy())
            else:
                _forward_cpu(xf.numpy(), *(q.numpy() for q in P), consts, cfg.cuba, cfg.alif, cfg.fire,
                             RESET_IDS[cfg.reset], cfg.decay_input, cfg.mpr, cfg.reset_amount is None, want_mem,
                             save_i, out.numpy(), hseq.numpy(), mem.numpy(), iseq.numpy(), aseq.numpy(),
                             vT.numpy(), iT.numpy(), aT.numpy())
            if not (want_mem and cfg.fire):
                mem = None
        else:
            pt = DynamicsParams(*(q.view(-1) if q.numel() == M else q for q in P))
            st = NeuronState(v0f, i0f if cfg.cuba else None, a0f if cfg.alif else None)
            out, hseq, mem, iseq, aseq, fin = _forward_torch(xf, pt, cfg, st, want_mem and cfg.fire, save_i)
            if hseq is None:
                hseq = out
            vT, iT, aT = fin.v, fin.i if cfg.cuba else x.new_zeros(1), fin.a if cfg.alif else x.new_zeros(1)
        keep_x = xf if (need_beta and cfg.decay_input and not cfg.cuba) else None
        ctx.save_for_backward(hseq, iseq if save_i else None, aseq if cfg.alif else None, keep_x, *P, v0f, i0f)
        ctx.cfg, ctx.shape, ctx.want_mem, ctx.use_numba = cfg, x.shape, want_mem and cfg.fire, use_numba
        ctx.need_beta, ctx.need_alpha = need_beta, need_alpha
        ctx.param_shapes = [None if q is None else q.shape for q in (beta, threshold, alpha, rho, adapt)]
        outs = (out.view(x.shape), mem.view(x.shape) if mem is not None else None, vT.view(shape),
                iT.view(shape) if cfg.cuba else None, aT.view(shape) if cfg.alif else None)
        return outs

    @staticmethod
    def backward(ctx, gout, gmem, gvT, giT, gaT):
        hseq, iseq, aseq, xf, beta, thr, alpha, rho, adapt, v0f, i0f = ctx.saved_tensors
        cfg = ctx.cfg
        T = ctx.shape[0]
        M = v0f.numel()
        like = hseq
        flat = lambda g: like.new_zeros(T, M) if g is None else g.reshape(T, M).contiguous()  # noqa: E731
        vec = lambda g: like.new_zeros(M) if g is None else g.reshape(M).contiguous().clone()  # noqa: E731
        gout = flat(gout)
        have_gmem = ctx.want_mem and gmem is not None
        gmem_f = gmem.reshape(T, M).contiguous() if have_gmem else None
        dv, di, da = vec(gvT), vec(giT), vec(gaT)
        if ctx.use_numba:
            gx = torch.empty_like(gout)
            grads = [torch.zeros(M, dtype=like.dtype) for _ in range(5)]
            dummy = like.new_zeros(1, 1)
            consts = np.array([cfg.v_reset, cfg.v_rest, cfg.reset_amount or 0.0, cfg.mpr_k, 1.0, 0.0],
                              dtype=gout.numpy().dtype)
            if _is_plain(cfg):
                _backward_cpu_lif(gout.numpy(), (gmem_f if have_gmem else dummy).numpy(), hseq.numpy(),
                                  (xf if xf is not None else dummy).numpy(), beta.numpy(), thr.numpy(), v0f.numpy(),
                                  consts, cfg.surrogate.id, cfg.surrogate.alpha, RESET_IDS[cfg.reset],
                                  cfg.decay_input, cfg.reset_amount is None, cfg.detach_reset, have_gmem,
                                  ctx.need_beta, gx.numpy(), grads[0].numpy(), grads[1].numpy(), dv.numpy())
            else:
                _backward_cpu(gout.numpy(), (gmem_f if have_gmem else dummy).numpy(), hseq.numpy(),
                              (iseq if iseq is not None else dummy).numpy(), (aseq if aseq is not None else dummy).numpy(),
                              (xf if xf is not None else dummy).numpy(), beta.numpy(), thr.numpy(), alpha.numpy(),
                              rho.numpy(), adapt.numpy(), v0f.numpy(), i0f.numpy(), consts, cfg.surrogate.id,
                              cfg.surrogate.alpha, cfg.cuba, cfg.alif, cfg.fire, RESET_IDS[cfg.reset], cfg.decay_input,
                              cfg.mpr, cfg.reset_amount is None, cfg.detach_reset, have_gmem, ctx.need_beta,
                              ctx.need_alpha, gx.numpy(), *(g.numpy() for g in grads), dv.numpy(),
                              di.numpy(), da.numpy())
            gbeta, gthr, galpha, grho, gadapt = grads
        else:
            p = DynamicsParams(beta, thr, alpha, rho, adapt)
            st0 = NeuronState(v0f, i0f, None)
            gx, gbeta, gthr, galpha, grho, gadapt, dv, di, da = _backward_torch(
                gout, gmem_f, hseq, iseq, aseq, xf, p, st0, cfg, ctx.need_beta, ctx.need_alpha, (dv, di, da))
        return (*backward_outputs(ctx, cfg, gx, (gbeta, gthr, galpha, grho, gadapt), dv, di, da), None, None, None)


def run(x: torch.Tensor, params: DynamicsParams, cfg: DynamicsConfig, state: Optional[NeuronState] = None,
        return_membrane: bool = False, force_torch: bool = False):
    """Fused multi-step dynamics; same contract as :func:`neuromorph.kernels.reference.run`."""
    if state is None:
        state = initial_state(x, cfg)
    use_numba = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not force_torch
    as_t = lambda q: None if q is None else torch.as_tensor(q, dtype=x.dtype, device=x.device)  # noqa: E731
    out, mem, vT, iT, aT = _Fused.apply(
        x, as_t(params.beta), as_t(params.threshold), as_t(params.alpha), as_t(params.rho), as_t(params.adapt),
        state.v, state.i, state.a, cfg, bool(return_membrane), use_numba)
    if return_membrane and not cfg.fire:
        mem = out
    return out, mem, NeuronState(vT, iT, aT)
