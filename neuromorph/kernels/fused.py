"""The fused backend: the whole sequence as one autograd node (:class:`~neuromorph.kernels.config.MultiStep`)
with the hand-written adjoint of :mod:`neuromorph.functional.dynamics`.

On the CPU both directions are numba loops, one per configuration, data type and call switches: the
definitions are compiled with the static flags frozen as constants and their float literals typed like the
data, so each configuration (e.g. the plain soft-reset LIF) gets a vectorised inner loop over neurons
without the other models' branches, and the compiled code is cached on disk under a name that carries all
of these and a fingerprint of the definition (the first use of a configuration compiles for a few seconds).
Neurons are independent, so with more than one torch thread a large ``[T, M]`` walk runs on numba's threads,
one block of neurons each (a separate parallel build; the results are the serial build's bit for bit).
On other devices (or with ``force_torch``) the same definitions run on tensors, one step at a time. This
module only walks time and moves data; every formula is in :mod:`neuromorph.functional.dynamics`.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import math
import textwrap
import types
from typing import Optional

import llvmlite.binding
import numba
import numpy as np
import torch

from neuromorph.functional.dynamics import SOURCE_HASH, bind, static_flags, torch_definitions, typed_literals
from neuromorph.kernels.config import (DynamicsConfig, DynamicsParams, NeuronState, carries_a,
                                      carries_i, has_compact_backward, run_engine)
from neuromorph.kernels.sparse import compile_loop, numba_threads


# ----------------------------------------------------------------------------------------------------------
# numba (CPU): scalar primitives and the two time walks, compiled once per configuration
# ----------------------------------------------------------------------------------------------------------
def _where(c, a, b):
    return a if c else b


def _sech2(z):
    c = math.cosh(z)
    return 1.0 / (c * c)


def _cbrt(z):
    return z ** (1.0 / 3.0)


# LLVM vectorises a loop only if it needs at most this many run-time overlap checks between the arrays it
# reads and writes (default 128). The adjoint of a model with many state and parameter slots (EF-adLIF with
# its tau gradient, CUBA + ALIF with both decay gradients) needs more, and stayed scalar: 1.4x the LIF step.
# A heuristic of the optimiser only (the checks still run, and fall back to the scalar loop on overlap);
# it is process-wide, so it also applies to other numba code compiled in this process.
llvmlite.binding.set_option("neuromorph", "-vectorize-memory-check-threshold=512")

_OPS: dict = {}


def numba_ops(dtype) -> dict:
    """The primitives for numba loops on ``dtype`` data, their float literals of that type (as the
    definitions', see `_compiled`)."""
    dtype = np.dtype(dtype)
    if dtype not in _OPS:
        lit = _literal(dtype)
        own = {f.__name__.lstrip("_"): numba.njit(inline="always")(typed_literals(f, lit)) for f in
               (_where, _sech2, _cbrt)}
        _OPS[dtype] = {"exp": math.exp, "absv": abs, "tanh": math.tanh, "minimum": min, "maximum": max, **own}
    return _OPS[dtype]


def _literal(dtype) -> type:
    """How a float literal is typed in a loop on ``dtype`` data: numba types a Python float as float64, which
    would turn float32 arithmetic into float64 (slower, unvectorised, and rounded unlike torch)."""
    return np.dtype(dtype).type


# Single-threaded on purpose: the inner loop over all neurons vectorises (an element costs about half a
# nanosecond, forward or backward), while threads cost more in start-up and in contention with torch's
# own threads than they save at the sizes of a training step. The capitalised flags and the definitions
# are bound per configuration by `_compiled`, the element helpers spliced into the loops by `splice`.


# The per-element code of the numba time walks (these and the recurrent kernel's, kernels/recurrent.py):
# reading an element's parameter and state slots, calling the definition, storing its state, summing its
# parameter gradients; a new slot is added here once. The helpers are written as functions but never called:
# `splice` copies a helper's body into each loop in place of the statement ``targets = helper(names)``
# (parameters renamed to the argument names, the returned names to the targets), so each loop compiles as if
# the code were written out in it. (numba's own inlining binds the arrays to new variables whose reference
# counts are then updated per element in the backward loops, which made them 2-4x slower.)
def _step_element(xv, t, m, beta, thr, syn, rho, adapt, couple, save_i, save_a, iseq, aseq, vT, iT, aT, v_rest,
                  v_reset, ramount, k, one, zero):  # pragma: no cover - spliced into the loops
    """Element ``m`` at step ``t`` of a forward loop: steps it with the input ``xv``, carries its state in
    ``vT``/``iT``/``aT``, saves a_{t−1} (``save_a``) and i_t (``save_i``) for the backward; gives (spike,
    pre-reset membrane, membrane).
    The saved sequences are indexed [t, m] (the recurrent kernel passes them as [T, B·N])."""
    i = zero
    a = zero
    kappa = zero
    r = zero
    bb = zero
    cp = zero
    if CARRY_I:  # noqa: F821
        i = iT[m]
    if CUBA:  # noqa: F821
        kappa = syn[m]
    if CARRY_A:  # noqa: F821
        a = aT[m]
        r = rho[m]
        bb = adapt[m]
        if save_a:
            aseq[t, m] = a
    if ADLIF:  # noqa: F821
        cp = couple[m]
    o, h, v, i, a = step(xv, vT[m], i, a, beta[m], thr[m], kappa, r, bb, cp, v_rest,  # noqa: F821
                         v_reset, ramount, k, one, zero)
    vT[m] = v
    if CARRY_I:  # noqa: F821
        iT[m] = i
        if save_i:
            iseq[t, m] = i
    if CARRY_A:  # noqa: F821
        aT[m] = a
    return o, h, v


def _adjoint_element(gs, dvm, t, m, hseq, iseq, aseq, yin, beta, thr, syn, rho, adapt, couple, v0, i0, need_beta,
                     need_alpha, gbeta, gthr, gsyn, grho, gadapt, gcouple, di, da, v_reset, v_rest, ramount, k, salpha,
                     sscale, sid, one, zero):  # pragma: no cover - spliced into the loops
    """Element ``m`` at step ``t`` of a backward loop: the adjoint with ∂L/∂s_t = ``gs`` and ∂L/∂v_t = ``dvm``
    on the saved values (v_{t−1} recomputed from h_{t−1}; ``yin`` the saved input [T, M]), carrying
    ``di``/``da`` and summing the parameter gradients; gives (∂L/∂y_t, ∂L/∂v_{t−1})."""
    aprev = zero
    dam = zero
    r = zero
    bb = zero
    cp = zero
    dim = zero
    kappa = zero
    iprev = zero
    dterm = zero
    vprev = zero
    if CARRY_A:  # noqa: F821
        aprev = aseq[t, m]
        dam = da[m]
        r = rho[m]
        bb = adapt[m]
    if ADLIF:  # noqa: F821
        cp = couple[m]
    if CARRY_I:  # noqa: F821
        dim = di[m]
    # The values of step t-1 are read from row tp = t-1, or from row 0 at t = 0 and then replaced by the
    # initial state: a select, not a branch around the loads, so that the loop over m vectorises whatever
    # the number of such terms (LLVM unswitches a loop on only so many conditions).
    tp = t - 1 if t > 0 else 0
    if CUBA:  # noqa: F821
        kappa = syn[m]
        if need_alpha:
            i0m = i0[m]
            ip = iseq[tp, m]
            iprev = i0m if t == 0 else ip
    if need_beta or ADLIF == 2:  # noqa: F821
        ap = aseq[tp, m] if ALIF else zero  # noqa: F821
        hp = hseq[tp, m]
        th = threshold(thr[m], ap)  # noqa: F821
        v0m = v0[m]
        vp = membrane_after(hp, th, k, v_reset, ramount, one, zero)  # noqa: F821
        vprev = v0m if t == 0 else vp
        if ADLIF == 2:  # noqa: F821  EF-adLIF's carried spike s_{t-1}, fired again from h_{t-1}
            i0m = i0[m]
            u, sp = fire(hp, th, k, one, zero)  # noqa: F821
            iprev = i0m if t == 0 else sp
    if need_beta:
        yy = zero
        if DECAY_INPUT:  # noqa: F821
            yy = iseq[t, m] if CUBA else yin[t, m]  # noqa: F821
        dterm = beta_term(vprev, yy, aprev, v_rest)  # noqa: F821
    dx, dvn, din, dan, gb, gth, gsy, grh, gad, gcp = adjoint(  # noqa: F821
        gs, dvm, dim, dam, hseq[t, m], aprev, dterm, iprev, vprev, beta[m], thr[m], kappa, r, bb, cp,
        v_reset, ramount, k, salpha, sscale, sid, one, zero)
    if FIRE:  # noqa: F821
        gthr[m] += gth
    if need_beta:
        gbeta[m] += gb
    if CARRY_I:  # noqa: F821
        di[m] = din
    if CUBA:  # noqa: F821
        if need_alpha:
            gsyn[m] += gsy
    if CARRY_A:  # noqa: F821
        da[m] = dan
        grho[m] += grh
        gadapt[m] += gad
    if ADLIF:  # noqa: F821
        gcouple[m] += gcp
    return dx, dvn


_ELEMENTS = {"step_element": _step_element, "adjoint_element": _adjoint_element}
#: fingerprint of the element helpers: part of the recurrent loops' cache names, since numba's disk cache
#: checks only the file a loop is written in
ELEMENT_HASH = hashlib.sha1("".join(inspect.getsource(f) for f in _ELEMENTS.values()).encode()).hexdigest()[:8]


#: the source of every function `splice` reads, taken when its module is imported (`remember_source`): a
#: configuration compiled later must not re-read a file edited since (inspect would then hand back the
#: lines now at the function's old position)
_SOURCES: dict = {}


def remember_source(*fns: types.FunctionType) -> None:
    """Keep the source of ``fns`` (loops and element helpers) for `splice`; call at import."""
    for fn in fns:
        _SOURCES[fn] = textwrap.dedent(inspect.getsource(fn))


def _function_ast(fn: types.FunctionType) -> ast.FunctionDef:
    if fn not in _SOURCES:
        remember_source(fn)
    tree = ast.parse(_SOURCES[fn])
    ast.increment_lineno(tree, fn.__code__.co_firstlineno - 1)
    return tree.body[0]


def _element_body(name: str, stmt: ast.Assign, loop_names: set) -> list:
    """The body of helper ``name`` for the statement ``targets = name(args)``, renamed to its names."""
    fdef = _function_ast(_ELEMENTS[name])
    params = [p.arg for p in fdef.args.args]
    call, target = stmt.value, stmt.targets[0]
    targets = [e.id for e in target.elts] if isinstance(target, ast.Tuple) else [target.id]
    body = fdef.body[1:] if isinstance(fdef.body[0], ast.Expr) else fdef.body  # without the docstring
    returned = body[-1].value
    returned = [e.id for e in returned.elts] if isinstance(returned, ast.Tuple) else [returned.id]
    if (call.keywords or len(call.args) != len(params) or not all(isinstance(a, ast.Name) for a in call.args)
            or len(returned) != len(targets)):
        raise TypeError(f"{name}: call it with one name per parameter {params} and {len(returned)} targets")
    rename = {p: a.id for p, a in zip(params, call.args)}
    rename.update(zip(returned, targets))
    stmts = [copy.deepcopy(st) for st in body[:-1]]
    for st in stmts:
        for node in ast.walk(st):
            if isinstance(node, ast.Name):
                node.id = rename.get(node.id, node.id)
                if isinstance(node.ctx, ast.Store) and node.id not in targets and (
                        node.id in loop_names or node.id in rename.values()):
                    raise TypeError(f"{name}: its local {node.id!r} is a name of the loop it is spliced into")
    return stmts


def splice(loop: types.FunctionType, ns: dict) -> types.FunctionType:
    """``loop`` compiled in the namespace ``ns`` with every ``targets = <element helper>(names)`` replaced by
    that helper's body (see above); a plain Python function for numba to compile. A ``TypeError`` says when a
    call is not one name per parameter or a helper's local would overwrite a name of the loop."""
    fdef = _function_ast(loop)
    calls = [st for st in ast.walk(fdef) if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call)
             and isinstance(st.value.func, ast.Name) and st.value.func.id in _ELEMENTS]
    inside = {id(n) for st in calls for n in ast.walk(st)}
    loop_names = {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name) and id(n) not in inside}
    loop_names |= {a.arg for a in fdef.args.args}

    class Splice(ast.NodeTransformer):
        def visit_Assign(self, node):
            if any(node is st for st in calls):
                return _element_body(node.value.func.id, node, loop_names)
            return node

    module = ast.fix_missing_locations(ast.Module(body=[Splice().visit(fdef)], type_ignores=[]))
    exec(compile(module, inspect.getfile(loop), "exec"), ns)  # noqa: S102 - our own source, re-arranged
    return ns.pop(loop.__name__)


def _forward_loop(x, beta, thr, syn, rho, adapt, couple, consts, out, hseq, mem, iseq, aseq, vT, iT,
                  aT, chunk):  # pragma: no cover - compiled by numba
    T, M = x.shape
    v_reset, v_rest, ramount, k, one, zero = consts[0], consts[1], consts[2], consts[3], consts[4], consts[5]
    # neurons are independent: blocks of `chunk` neurons run in parallel in the parallel build (one block of
    # all M in the serial one); each walks all T steps, so the order of every neuron's operations is the same
    for c in prange((M + chunk - 1) // chunk):  # noqa: F821
        m0 = np.uint64(c * chunk)  # unsigned: no negative-index wraparound test, which keeps a loop scalar
        m1 = np.uint64(min(M, c * chunk + chunk))
        for t in range(T):
            for m in range(m0, m1):
                xv = x[t, m]
                o, h, v = step_element(xv, t, m, beta, thr, syn, rho, adapt, couple, SAVE_I, SAVE_H,  # noqa: F821
                                       iseq, aseq, vT, iT, aT, v_rest, v_reset, ramount, k, one, zero)
                out[t, m] = o
                if FIRE:  # noqa: F821
                    if SAVE_H:  # noqa: F821
                        hseq[t, m] = h
                    if WANT_MEM:  # noqa: F821
                        mem[t, m] = v


def _backward_loop(gout, gmem, hseq, iseq, aseq, x, beta, thr, syn, rho, adapt, couple, v0, i0, consts, salpha,
                   sscale, gx, gbeta, gthr, gsyn, grho, gadapt, gcouple, dv, di,
                   da, chunk):  # pragma: no cover - compiled by numba
    T, M = gout.shape
    v_reset, v_rest, ramount, k, one, zero = consts[0], consts[1], consts[2], consts[3], consts[4], consts[5]
    steps = np.arange(T - 1, -1, -1)
    for c in prange((M + chunk - 1) // chunk):  # noqa: F821 - blocks of neurons, as in the forward loop
        m0 = np.uint64(c * chunk)  # unsigned: no negative-index wraparound test, which keeps a loop scalar
        m1 = np.uint64(min(M, c * chunk + chunk))
        # t read from an array, not counted down: LLVM hoists the inner loop's overlap check out of the time
        # loop, and for a row address that falls with t the hoisted check always fails (the loop ran scalar)
        for t in steps:
            for m in range(m0, m1):
                gs = gout[t, m]
                dvm = dv[m]
                if HAVE_GMEM:  # noqa: F821
                    dvm = dvm + gmem[t, m]
                dx, dvn = adjoint_element(gs, dvm, t, m, hseq, iseq, aseq, x, beta, thr, syn, rho,  # noqa: F821
                                          adapt, couple, v0, i0, NEED_BETA, NEED_ALPHA, gbeta, gthr,  # noqa: F821
                                          gsyn, grho, gadapt, gcouple, di, da, v_reset, v_rest, ramount,
                                          k, salpha, sscale, SID, one, zero)  # noqa: F821
                gx[t, m] = dx
                dv[m] = dvn


def _active_loop(hseq, aseq, thr, consts, salpha, sscale, act):  # pragma: no cover - compiled by numba
    """``act[t, m] = 1`` where the adjoint's surrogate factor is nonzero, i.e. where ∂L/∂s_t reaches the
    membrane: the same expressions on the same saved values as :func:`_backward_loop` (bound from the same
    definitions with the same flags), so the set is exactly the one the adjoint multiplies by a nonzero.
    The surrogate id is the compile-time constant ``SID`` here, so that the loop compiles to one branch-free
    shape per surrogate."""
    T, M = hseq.shape
    k, one, zero = consts[3], consts[4], consts[5]
    for t in range(T):
        for m in range(M):
            aprev = zero
            if CARRY_A:  # noqa: F821
                aprev = aseq[t, m]
            h = hseq[t, m]
            th = threshold(thr[m], aprev)  # noqa: F821
            if MPR:  # noqa: F821
                u, s = fire(h, th, k, one, zero)  # noqa: F821
                act[t, m] = where((u >= 0.0) & (u <= 1.0), one, zero) != zero  # noqa: F821
            else:
                act[t, m] = sscale * surrogate_grad(h - th, salpha, SID, one, zero) != zero  # noqa: F821


remember_source(*_ELEMENTS.values(), _forward_loop, _backward_loop, _active_loop)

_COMPILED: dict = {}
_BY_CALL: dict = {}


def _compiled(cfg: DynamicsConfig, adjoint, active: bool = False, dtype=np.float32, parallel: bool = False,
              **switches):
    """The numba loop for ``cfg`` on ``dtype`` data (forward, or backward with ``adjoint``; the active-set
    loop with ``active``, which uses the backward's flags), compiled on first use.

    Everything the element code branches on is a compile-time constant: the configuration's flags, the
    surrogate (``SID``) and the call's ``switches`` (forward: ``want_mem``, ``save_i``, ``save_h``; backward:
    ``have_gmem``, ``need_beta``, ``need_alpha``), and the definitions' float literals have the data's
    type. So the inner loop over neurons has no branch it cannot turn into a select and no float64
    arithmetic on float32 data, and it vectorises: 4-5x faster than with these as run-time values.
    ``error_model="numpy"`` (a division by zero gives inf/nan as in torch instead of raising) removes the
    per-element zero checks that would also keep it scalar. ``parallel`` (forward and backward loops): the
    build that runs blocks of neurons on numba's threads (see :func:`_blocks`)."""
    # the configuration is hashable and equal configurations compile alike: a call finds its loop by the
    # arguments as given, without rebuilding the flags (a few µs per call, which a streamed step pays per layer)
    fast = (cfg, adjoint, active, dtype, parallel, *sorted(switches.items()))
    loop = _BY_CALL.get(fast)
    if loop is not None:
        return loop
    _BY_CALL[fast] = loop = _compile(cfg, adjoint, active, dtype, parallel, switches)
    return loop


def _compile(cfg: DynamicsConfig, adjoint, active, dtype, parallel, switches):
    flags = static_flags(cfg, adjoint or active)
    if active or adjoint:
        flags["SID"] = cfg.surrogate.id
    flags.update(_switches(cfg, adjoint, active, switches))
    dtype = np.dtype(dtype)
    parallel = bool(parallel) and not active
    key = (adjoint, active, dtype.name, tuple(sorted(flags.items())), parallel)
    if key not in _COMPILED:
        ns = bind(numba_ops(dtype), flags, wrap=numba.njit(inline="always"), module=__name__,
                  literal=_literal(dtype), extra={"np": np, "prange": numba.prange})
        loop = _active_loop if active else _backward_loop if adjoint else _forward_loop
        fn = splice(loop, ns)
        # numba caches by qualified name: one name per configuration, data type and version of the definition
        # (compile_loop adds the build's options)
        fn.__qualname__ = "_".join([loop.__name__, dtype.name, *(f"{k}{int(v)}" for k, v in key[3]), SOURCE_HASH])
        _COMPILED[key] = compile_loop(fn, parallel=parallel, error_model="numpy")
    return _COMPILED[key]


#: a loop over [T, M] runs on several threads only from this many elements (below, starting them costs more
#: than they save) and in blocks of a multiple of this many neurons (whole cache lines per block)
PARALLEL_ELEMENTS = 1 << 16
_BLOCK_ALIGN = 16


def _blocks(T: int, M: int) -> tuple[bool, int]:
    """(parallel build?, neurons per block) for a loop over ``[T, M]``: one block per thread that torch may
    use (``torch.set_num_threads(1)`` keeps it on one core), or one block of all M, serial."""
    threads = numba_threads()
    if threads < 2 or T * M < PARALLEL_ELEMENTS or M < 2 * _BLOCK_ALIGN:
        return False, max(M, 1)
    per = -(-M // threads)
    per = -(-per // _BLOCK_ALIGN) * _BLOCK_ALIGN
    numba.set_num_threads(threads)
    return True, per


def _switches(cfg: DynamicsConfig, adjoint: bool, active: bool, given: dict) -> dict:
    """The run-time choices a loop is compiled for, as capitalised flags (those a configuration cannot use
    fixed at False, so that they add no variant)."""
    names = () if active else ("have_gmem", "need_beta", "need_alpha") if adjoint else ("want_mem", "save_i", "save_h")
    unknown = set(given) - set(names)
    if unknown:
        raise TypeError(f"_compiled: unknown switches {sorted(unknown)} (this loop takes {list(names)})")
    out = {n.upper(): bool(given.get(n, n == "save_h")) for n in names}  # the backward's trace is saved by default
    if "NEED_ALPHA" in out:
        out["NEED_ALPHA"] &= bool(cfg.cuba)
    if "SAVE_I" in out:
        out["SAVE_I"] &= carries_i(cfg)
    if "WANT_MEM" in out:
        out["WANT_MEM"] &= bool(cfg.fire)
    if "SAVE_H" in out:  # h_t is saved only when it differs from the output, a_{t-1} only when carried
        out["SAVE_H"] &= bool(cfg.fire) or carries_a(cfg)
    return out


_CONSTS: dict = {}


def _consts(cfg: DynamicsConfig, dtype) -> np.ndarray:
    """The runtime constants, in the data's precision (see functional.dynamics on ``one``/``zero``); one
    array per configuration and type, which the loops only read."""
    key = (cfg, np.dtype(dtype))
    c = _CONSTS.get(key)
    if c is None:
        _CONSTS[key] = c = np.array([cfg.v_reset, cfg.v_rest, cfg.reset_amount or 0.0, cfg.mpr_k, 1.0, 0.0],
                                    dtype=dtype)
    return c


class _Numba:
    @staticmethod
    def forward(cfg, xf, P, v, i, a, want_mem, save_i, save_h=True):
        out = torch.empty_like(xf)
        dummy = xf.new_zeros(1, 1)
        hseq = (torch.empty_like(xf) if save_h else dummy) if cfg.fire else out
        mem = torch.empty_like(xf) if want_mem else dummy
        iseq = torch.empty_like(xf) if save_i else dummy
        keep_a = carries_a(cfg) and save_h
        aseq = torch.empty_like(xf) if keep_a else dummy
        dt = xf.numpy().dtype
        parallel, chunk = _blocks(*xf.shape)
        _compiled(cfg, False, dtype=dt, parallel=parallel, want_mem=want_mem, save_i=save_i, save_h=save_h)(
            xf.numpy(), *(q.numpy() for q in P), _consts(cfg, dt), out.numpy(), hseq.numpy(), mem.numpy(),
            iseq.numpy(), aseq.numpy(), v.numpy(), i.numpy(), a.numpy(), chunk)
        return (out, hseq if save_h or not cfg.fire else None, mem if want_mem else None, iseq if save_i else None,
                aseq if keep_a else None, v, i, a)

    @staticmethod
    def backward(cfg, gout, gmem, hseq, iseq, aseq, xf, P, v0, i0, need_beta, need_alpha, dv, di, da):
        M = v0.numel()
        gx = torch.empty_like(gout)
        grads = hseq.new_zeros(6, M).unbind(0)  # one allocation for the six sums
        dummy = hseq.new_zeros(1, 1)
        arr = lambda q: (dummy if q is None else q).numpy()  # noqa: E731
        dt = gout.numpy().dtype
        parallel, chunk = _blocks(*gout.shape)
        _compiled(cfg, True, dtype=dt, parallel=parallel, have_gmem=gmem is not None, need_beta=need_beta,
                  need_alpha=need_alpha)(
            gout.numpy(), arr(gmem), hseq.numpy(), arr(iseq), arr(aseq), arr(xf), *(q.numpy() for q in P),
            v0.numpy(), i0.numpy(), _consts(cfg, dt), dt.type(cfg.surrogate.alpha), dt.type(cfg.surrogate.scale),
            gx.numpy(), *(g.numpy() for g in grads), dv.numpy(), di.numpy(), da.numpy(), chunk)
        return gx, grads, dv, di, da


class _NumbaActive(_Numba):
    """The numba engine that keeps what the active set is computed from (the saved pre-reset membranes,
    a_{t−1}, the thresholds) until the first of: the next synapse asks for it (:meth:`active_mask`), or the
    backward of these dynamics has run (then nothing can use it any more)."""

    def __init__(self, cfg: DynamicsConfig):
        self.cfg = cfg
        self.saved: Optional[tuple] = None

    def forward(self, cfg, xf, P, v, i, a, want_mem, save_i, save_h=True):
        res = _Numba.forward(cfg, xf, P, v, i, a, want_mem, save_i, save_h)
        self.saved = (res[1], res[4], P[1])  # hseq, aseq, flat thresholds (all saved for the backward too)
        return res

    def backward(self, *args):
        self.saved = None
        return _Numba.backward(*args)

    def active_mask(self) -> Optional[torch.Tensor]:
        """uint8 ``[T, M]``: 1 where the adjoint's surrogate factor is nonzero (None once released)."""
        if self.saved is None:
            return None
        hseq, aseq, thr = self.saved
        cfg, sur = self.cfg, self.cfg.surrogate
        act = torch.empty(hseq.shape, dtype=torch.uint8)
        dt = hseq.numpy().dtype
        _compiled(cfg, False, active=True, dtype=dt)(
            hseq.numpy(), (hseq.new_zeros(1, 1) if aseq is None else aseq).numpy(), thr.numpy(), _consts(cfg, dt),
            dt.type(sur.alpha), dt.type(sur.scale), act.numpy())
        return act


# ----------------------------------------------------------------------------------------------------------
# torch operations (any device): the same definitions on tensors, one step at a time
# ----------------------------------------------------------------------------------------------------------
class _Torch:
    @staticmethod
    def forward(cfg, xf, P, v, i, a, want_mem, save_i, save_h=True):  # keeps h_t and a_{t-1} either way
        D = torch_definitions(static_flags(cfg, adjoint=False))
        one, zero = xf.new_ones(()), xf.new_zeros(())
        ramount = cfg.reset_amount or 0.0
        outs, hs, mems, iseq, aseq = [], [], [], [], []
        for t in range(xf.shape[0]):
            if carries_a(cfg):
                aseq.append(a)
            o, h, v, i, a = D.step(xf[t], v, i, a, P[0], P[1], P[2], P[3], P[4], P[5], cfg.v_rest, cfg.v_reset,
                                   ramount, cfg.mpr_k, one, zero)
            outs.append(o)
            hs.append(h)
            if want_mem:
                mems.append(v)
            if save_i:
                iseq.append(i)
        stack = lambda seq: torch.stack(seq) if seq else None  # noqa: E731
        out = stack(outs)
        return out, stack(hs) if cfg.fire else out, stack(mems), stack(iseq), stack(aseq), v, i, a

    @staticmethod
    def backward(cfg, gout, gmem, hseq, iseq, aseq, xf, P, v0, i0, need_beta, need_alpha, dv, di, da):
        D = torch_definitions(static_flags(cfg, adjoint=True))
        one, zero = gout.new_ones(()), gout.new_zeros(())
        ramount = cfg.reset_amount or 0.0
        grads = [zero] * 6
        gx = torch.empty_like(gout)
        ef = cfg.adlif == "ef"
        for t in range(gout.shape[0] - 1, -1, -1):
            dvm = dv + gmem[t] if gmem is not None else dv
            aprev = aseq[t] if carries_a(cfg) else zero
            iprev = (i0 if t == 0 else iseq[t - 1]) if (cfg.cuba and need_alpha) else zero
            dterm = zero
            vprev = zero
            if need_beta or ef:
                vprev = v0
                if ef:
                    iprev = i0
                if t > 0:
                    th = D.threshold(P[1], aseq[t - 1] if cfg.alif else zero)
                    vprev = D.membrane_after(hseq[t - 1], th, cfg.mpr_k, cfg.v_reset, ramount, one, zero)
                    if ef:  # the carried spike s_{t-1}, fired again from h_{t-1}
                        iprev = D.fire(hseq[t - 1], th, cfg.mpr_k, one, zero)[1]
            if need_beta:
                y = (iseq[t] if cfg.cuba else xf[t]) if cfg.decay_input else zero
                dterm = D.beta_term(vprev, y, aprev, cfg.v_rest)
            dx, dv, di, da, *g = D.adjoint(gout[t], dvm, di, da, hseq[t], aprev, dterm, iprev, vprev, P[0], P[1], P[2],
                                           P[3], P[4], P[5], cfg.v_reset, ramount, cfg.mpr_k,
                                           float(cfg.surrogate.alpha), float(cfg.surrogate.scale), cfg.surrogate.id,
                                           one, zero)
            gx[t] = dx
            grads = [acc + inc for acc, inc in zip(grads, g)]
        M = v0.numel()
        return gx, [torch.broadcast_to(q, (M,)).contiguous() for q in grads], dv, di, da


def active_supported(x: torch.Tensor, cfg: DynamicsConfig) -> bool:
    """Whether :func:`run` can record the active set for ``x`` (CPU float32/float64, compact backward)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and has_compact_backward(cfg)


def run(x: torch.Tensor, params: DynamicsParams, cfg: DynamicsConfig, state: Optional[NeuronState] = None,
        return_membrane: bool = False, force_torch: bool = False, active: bool = False):
    """Fused multi-step dynamics; same contract as :func:`neuromorph.kernels.reference.run`.

    With ``active`` (and :func:`active_supported`), the spikes carry the set of entries where ∂L/∂s reaches
    the membrane (:func:`neuromorph.kernels.sparse.attach_active`): an event-driven synapse that consumes them
    computes its input gradient only there."""
    use_numba = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not force_torch
    if not (active and use_numba and active_supported(x, cfg)):
        return run_engine(_Numba if use_numba else _Torch, x, params, cfg, state, return_membrane)
    engine = _NumbaActive(cfg)
    out, mem, final = run_engine(engine, x, params, cfg, state, return_membrane)
    if out.requires_grad:
        from neuromorph.kernels import sparse

        sparse.attach_active(out, engine.active_mask)  # computed only if an event-driven synapse needs it
    else:
        engine.saved = None
    return out, mem, final
