"""Event-driven synapses: a linear layer that does work only for the nonzero entries of its input.

A layer that receives spikes (or binned event counts) sees mostly zeros: 5 % of the SHD inputs fire in a
step and hidden layers fire less. With the input rows ``x[r, :]`` (r = batch × time) stored as the list of
their nonzero entries (CSR: which inputs fired, and their values), the three products of a training step
cost only ``nnz(x) · out`` multiply-adds instead of ``rows · in · out``:

- forward  ``y[r, :] = b + Σ_{i: x[r,i] ≠ 0} x[r, i] · W[:, i]``  (gather the weight columns of the active
  inputs; Perez-Nieves & Goodman, "Sparse Spiking Gradient Descent", NeurIPS 2021, input-side form);
- weight gradient ``dW[:, i] = Σ_{r: x[r,i] ≠ 0} x[r, i] · g[r, :]`` (the forward's product on the input
  listed by column: for each input, the rows of g where it fired, summed in increasing row order, in
  parallel over the inputs: every sum has one fixed order at any thread count, deterministic, no atomics);
- input gradient ``dx = g W`` (needed only when the input itself needs a gradient, i.e. not for the first
  layer): a dense product, unless the input is the spikes of a neuron layer with a compact-support
  surrogate, which carry the layer's *active set* A (the entries where its backward multiplies ∂L/∂s by a
  nonzero surrogate factor, :func:`attach_active`); then ``dx`` is computed only on A, ``nnz(A) · out``
  multiply-adds, and is 0 elsewhere: entries the producer never reads (Algorithm B step 4 of the sparse
  spiking gradient descent, exact; docs/methods/sparse.md). This does not depend on the forward: a layer
  whose input is too dense for the event-driven forward restricts its input gradient too (:func:`dense_linear`).

Every sum is over exactly the nonzero terms of the dense product, so the results equal the dense path up
to float rounding (the order of the additions differs from the BLAS kernel's), for binary spikes and for
counts or any other values alike. The input values are used, not just where they are nonzero.

The kernels are numba loops, parallel over the rows for large inputs and serial for the few rows of a
streaming step, with no Python in the loops. The forward keeps the CSR form (indices and values, ``nnz``
entries; indices only for binary spikes) for the backward instead of the dense input.

:func:`count_work` reports the work the kernels did, to be compared with the energy report's synops.
"""

from __future__ import annotations

import contextlib
import contextvars
import types
from dataclasses import dataclass
from typing import Iterator, Optional

import llvmlite
import numba
import numpy as np
import torch
from llvmlite import ir
from numba import prange
from numba.core import cgutils
from numba.extending import intrinsic
from torch.utils.weak import WeakIdKeyDictionary

from neuromorph.kernels.config import NUMBA_CACHE

__all__ = ["linear", "rule", "choose", "synapse_linear", "eligible", "count_work", "Work", "Rows", "SparseLinear",
           "SYNAPSE_BACKENDS", "DEFAULT_CROSSOVER", "crossover_for", "synapse_backend", "ActiveSet", "attach_active",
           "active_of", "propagate_active", "input_grad", "DX_CROSSOVER", "DX_MIN_OUT", "DenseLinear",
           "dense_linear"]

#: below this many rows the serial kernels run (thread start-up costs more than it saves)
PARALLEL_ROWS = 64
#: the side of the square tiles in which a matrix is transposed (32 floats: two cache lines a row)
_TILE = 32
#: a transpose (or the weight gradient's sums) runs on several threads from this many elements (or terms)
_PARALLEL_ELEMENTS = 1 << 16


# ----------------------------------------------------------------------------------------------------------
# the loops (each compiled twice: parallel and serial; `prange` is `range` in the serial build)
# ----------------------------------------------------------------------------------------------------------
def _row_counts(x, indptr):  # pragma: no cover - compiled by numba
    """``indptr`` [R + 1] = the row starts of the nonzero entries of ``x [R, I]``; returns their number and
    how many of them are exactly 1 (all of them: binary spikes, whose CSR needs no values)."""
    R, I = x.shape
    indptr[0] = 0
    ones = 0
    for r in prange(R):
        c = 0
        u = 0
        for i in range(I):
            xi = x[r, i]
            c += xi != 0
            u += xi == 1
        indptr[r + 1] = c
        ones += u
    for r in range(R):
        indptr[r + 1] += indptr[r]
    return indptr[R], ones


def _fill_csr(x, indptr, idx, val):  # pragma: no cover - compiled by numba
    """Column indices and values of the nonzero entries of each row of ``x`` (row order, then column order);
    a silent row is skipped and a row's scan stops at its last nonzero entry. Every entry is written at the
    row's next free slot, which advances only past a nonzero one (a zero is overwritten by the next entry):
    no branch on the data, which at a few % density mispredicts on nearly every nonzero entry. A binary
    input (values all 1) gets only the indices, and ``val`` is empty: half the stores of this store-bound loop."""
    R, I = x.shape
    binary = val.shape[0] != idx.shape[0]  # values all 1, not stored
    for r in prange(R):
        p = indptr[r]
        end = indptr[r + 1]
        if p == end:
            continue
        row = x[r]
        if binary:
            for i in range(I):
                idx[p] = i
                p += row[i] != 0
                if p == end:
                    break
            continue
        for i in range(I):
            xi = row[i]
            idx[p] = i
            val[p] = xi
            p += xi != 0
            if p == end:
                break


# ----------------------------------------------------------------------------------------------------------
# 16-lane float32 kernels: listing (CPUs with AVX-512) and the forward's sums in registers
# ----------------------------------------------------------------------------------------------------------
def _llvm_vectors() -> bool:
    """Whether numba's LLVM has the portable vector intrinsics the 16-lane kernels below are written with
    (``llvm.experimental.vector.compress`` is LLVM 19+)."""
    return llvmlite.binding.llvm_version_info >= (19,)


def _vector_compress_available() -> bool:
    """Whether numba compiles for a CPU with AVX-512F (one instruction compresses the positions of a 16-lane
    compare's nonzero entries into the low lanes). Elsewhere LLVM expands the compress into scalar code
    that is 2x slower than the branch-free scalar loop, so the listing keeps that loop."""
    from numba.core import codegen

    if not _llvm_vectors():
        return False
    features = numba.config.CPU_FEATURES
    if features is None:
        features = codegen.get_host_cpu_features()
    return "+avx512f" in str(features).split(",")


#: whether float32 rows are listed by :func:`_fill_csr16` (read once: the compile target is fixed per process)
VECTOR_LISTING = _vector_compress_available()
#: whether the float32 forward runs :func:`_forward16` (faster with AVX2 as with AVX-512: 2.0-2.3x at 5 %)
VECTOR_FORWARD = _llvm_vectors()


def _splat(builder, value, vector: ir.VectorType):
    """``value`` in every lane of a ``vector``-typed register."""
    first = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, ir.Constant(vector, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), vector.count), [0] * vector.count))


def _compress16_codegen(context, builder, signature, args, values: bool):
    """``out[p : p + n] = `` the positions ``i .. i + 15`` (or, with ``values``, the values) of the nonzero
    entries of ``row[i : i + 16]`` (float32), in order; returns n. The positions are compressed into the low
    lanes of a vector and n lanes are stored (a masked store), but never at ``end`` or past it: the slots
    there belong to another row, perhaps another thread's. (The row count and this compare agree, so the
    clamp never cuts; it keeps the store inside the row even if they did not, e.g. a denormal read as 0
    by a thread that flushes denormals and as nonzero by one that does not.)"""
    row, i, out, p, end = args
    data = cgutils.create_struct_proxy(signature.args[0])(context, builder, value=row).data
    dest = cgutils.create_struct_proxy(signature.args[2])(context, builder, value=out).data
    i32, i16 = ir.IntType(32), ir.IntType(16)
    lanes = ir.VectorType(ir.FloatType(), 16) if values else ir.VectorType(i32, 16)
    f32x16, mask_t = ir.VectorType(ir.FloatType(), 16), ir.VectorType(ir.IntType(1), 16)
    x = builder.load(builder.bitcast(builder.gep(data, [i]), f32x16.as_pointer()), align=4)
    mask = builder.fcmp_unordered("!=", x, ir.Constant(f32x16, [0.0] * 16))  # as `x != 0`: NaN listed, -0.0 not
    if values:
        vec = x
    else:
        vec = builder.add(_splat(builder, builder.trunc(i, i32), lanes), ir.Constant(lanes, list(range(16))))
    suffix = "v16f32" if values else "v16i32"
    compress = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lanes, [lanes, mask_t, lanes]),
                                              "llvm.experimental.vector.compress." + suffix)
    packed = builder.call(compress, [vec, mask, ir.Constant(lanes, ir.Undefined)])
    ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i16, [i16]), "llvm.ctpop.i16")
    n = builder.call(ctpop, [builder.bitcast(mask, i16)])
    room = builder.trunc(builder.sub(end, p), i32)  # > 0: the caller stops at p == end
    stored = builder.select(builder.icmp_unsigned("<", builder.zext(n, i32), room), builder.zext(n, i32), room)
    low = builder.sub(builder.shl(ir.Constant(i32, 1), stored), ir.Constant(i32, 1))
    store = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [lanes, lanes.as_pointer(), i32, mask_t]),
        f"llvm.masked.store.{suffix}.p0")
    builder.call(store, [packed, builder.bitcast(builder.gep(dest, [p]), lanes.as_pointer()), ir.Constant(i32, 4),
                         builder.bitcast(builder.trunc(low, i16), mask_t)])
    return builder.zext(n, ir.IntType(64))


def _c_arrays(*pairs) -> bool:
    """Whether every (numba type, dtype) pair is a C-contiguous array of that dtype: the IR below reads
    their data as plain float32/int32 buffers, so any other type must not compile."""
    return all(isinstance(t, numba.types.Array) and t.layout == "C" and t.dtype == d for t, d in pairs)


@intrinsic
def _positions16(typingctx, row, i, idx, p, end):
    """``idx[p : end] =`` the positions of the nonzero entries of ``row[i : i + 16]`` (as many as fit);
    returns their number."""
    if not _c_arrays((row, numba.types.float32), (idx, numba.types.int32)) or p != end:  # p, end: one int type
        return None
    return numba.types.int64(row, i, idx, p, end), lambda c, b, sig, args: _compress16_codegen(c, b, sig, args,
                                                                                               False)


@intrinsic
def _values16(typingctx, row, i, val, p, end):
    """``val[p : end] =`` the nonzero entries of ``row[i : i + 16]`` (as many as fit); returns their number."""
    if not _c_arrays((row, numba.types.float32), (val, numba.types.float32)) or p != end:  # p, end: one int type
        return None
    return numba.types.int64(row, i, val, p, end), lambda c, b, sig, args: _compress16_codegen(c, b, sig, args, True)


def _fill_csr16(x, indptr, idx, val):  # pragma: no cover - compiled by numba
    """:func:`_fill_csr` for float32 rows, 16 entries per step (:func:`_positions16`: a compare, a
    compress and a masked store, no branch on the data), the last ``I mod 16`` as there; the same lists."""
    R, I = x.shape
    binary = val.shape[0] != idx.shape[0]  # values all 1, not stored
    for r in prange(R):
        p = indptr[r]
        end = indptr[r + 1]
        row = x[r]
        i = 0
        while i + 16 <= I and p < end:
            if not binary:
                _values16(row, i, val, p, end)
            p += _positions16(row, i, idx, p, end)
            i += 16
        while i < I and p < end:
            xi = row[i]
            idx[p] = i
            if not binary:
                val[p] = xi
            p += xi != 0
            i += 1


def _add_rows_codegen(context, builder, sig, args, vectors: int, scaled: bool, masked: bool):
    """``orow[o0 : o0 + n] += Σ_{p ∈ [start, end)} (val[p] ·) wt[idx[p], o0 : o0 + n]`` for float32, with the
    n = 16 · ``vectors`` sums held in vector registers for the whole list (loaded from ``orow`` once, stored
    once) instead of loaded and stored per event; ``masked``: one vector of the first ``count`` lanes (a
    row's last < 16 outputs). Each sum adds the same terms in the same order as :func:`_forward`'s loop
    (a product, then a sum; never fused): the same bits."""
    wt, idx, val, start, end, o0, n_out, orow, count = args
    data = [cgutils.create_struct_proxy(sig.args[k])(context, builder, value=args[k]).data for k in (0, 1, 2, 7)]
    wtp, idxp, valp, outp = data
    i32, i64 = ir.IntType(32), ir.IntType(64)
    f32x16, mask_t = ir.VectorType(ir.FloatType(), 16), ir.VectorType(ir.IntType(1), 16)
    mask = None
    if masked:  # lanes 0 .. count-1
        lanes = ir.Constant(ir.VectorType(i64, 16), list(range(16)))
        mask = builder.icmp_unsigned("<", lanes, _splat(builder, count, ir.VectorType(i64, 16)))
        mload = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(f32x16, [f32x16.as_pointer(), i32, mask_t, f32x16]),
            "llvm.masked.load.v16f32.p0")
        mstore = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [f32x16, f32x16.as_pointer(), i32, mask_t]),
            "llvm.masked.store.v16f32.p0")

    def at(base, j):
        return builder.bitcast(builder.gep(base, [ir.Constant(i64, 16 * j)]), f32x16.as_pointer())

    def load(ptr):
        if masked:
            return builder.call(mload, [ptr, ir.Constant(i32, 4), mask, ir.Constant(f32x16, [0.0] * 16)])
        return builder.load(ptr, align=4)

    out0 = builder.gep(outp, [o0])
    sums = [cgutils.alloca_once(builder, f32x16) for _ in range(vectors)]  # registers after mem2reg
    for j, acc in enumerate(sums):
        builder.store(load(at(out0, j)), acc)
    with cgutils.for_range_slice(builder, start, end, ir.Constant(i64, 1), inc=True) as (p, _):
        row = builder.gep(wtp, [builder.add(builder.mul(builder.sext(builder.load(builder.gep(idxp, [p])), i64),
                                                        n_out), o0)])
        if scaled:
            v = _splat(builder, builder.load(builder.gep(valp, [p])), f32x16)
        for j, acc in enumerate(sums):
            w = load(at(row, j))
            builder.store(builder.fadd(builder.load(acc), builder.fmul(v, w) if scaled else w), acc)
    for j, acc in enumerate(sums):
        if masked:
            builder.call(mstore, [builder.load(acc), at(out0, j), ir.Constant(i32, 4), mask])
        else:
            builder.store(builder.load(acc), at(out0, j), align=4)
    return context.get_dummy_value()


def _add_rows_intrinsic(vectors: int, scaled: bool, masked: bool):
    @intrinsic
    def add_rows(typingctx, wt, idx, val, start, end, o0, n_out, orow, count):
        f32, i32 = numba.types.float32, numba.types.int32
        if not _c_arrays((wt, f32), (idx, i32), (orow, f32)) or not (isinstance(val, numba.types.Array)
                                                                      and val.dtype == f32):
            return None
        return (numba.types.void(wt, idx, val, start, end, o0, n_out, orow, count),
                lambda c, b, sig, args: _add_rows_codegen(c, b, sig, args, vectors, scaled, masked))
    return add_rows


#: the forward's sums, 64 outputs at a time in four 16-lane registers, and the last < 64 by 16 (masked)
_add64, _add64_scaled = _add_rows_intrinsic(4, False, False), _add_rows_intrinsic(4, True, False)
_add16, _add16_scaled = _add_rows_intrinsic(1, False, True), _add_rows_intrinsic(1, True, True)


def _forward16(indptr, idx, val, wt, bias, out):  # pragma: no cover - compiled by numba
    """:func:`_forward` for float32 with each row's sums in vector registers, 64 outputs per pass over its
    events (then the rest 16 at a time): one load of each event's weights per output, instead of a load and
    a store of the output too. The same terms in the same order: the same bits."""
    R, O = out.shape
    binary = val.shape[0] != idx.shape[0]  # values all 1, not stored
    for r in prange(R):
        orow = out[r]
        for o in range(O):
            orow[o] = bias[o]
        start = indptr[r]
        end = indptr[r + 1]
        if start == end:
            continue
        o0 = 0
        while o0 + 64 <= O:
            if binary:
                _add64(wt, idx, val, start, end, o0, O, orow, 64)
            else:
                _add64_scaled(wt, idx, val, start, end, o0, O, orow, 64)
            o0 += 64
        while o0 < O:
            n = min(16, O - o0)
            if binary:
                _add16(wt, idx, val, start, end, o0, O, orow, n)
            else:
                _add16_scaled(wt, idx, val, start, end, o0, O, orow, n)
            o0 += 16


def _forward(indptr, idx, val, wt, bias, out):  # pragma: no cover - compiled by numba
    """``out[r, :] = bias + Σ_p val[p] · wt[idx[p], :]`` over the row's entries; ``wt`` is Wᵀ ``[I, O]``.
    (Each row starts from the bias here, while it is in cache, rather than from a pre-filled output.)
    A binary CSR's values are 1 (1 · w = w exactly: the same bits as with its values stored)."""
    R, O = out.shape
    binary = val.shape[0] != idx.shape[0]  # values all 1, not stored
    one = wt.dtype.type(1)
    for r in prange(R):
        orow = out[r]
        for o in range(O):
            orow[o] = bias[o]
        for p in range(indptr[r], indptr[r + 1]):
            wrow = wt[idx[p]]
            v = one if binary else val[p]
            for o in range(O):
                orow[o] += v * wrow[o]


def _forward_scan_w(x, w, bias, out, limit):  # pragma: no cover - compiled by numba
    """The forward found while scanning the rows, reading the weight ``w [O, I]`` as it is (a strided column
    per event): for the few rows of a streaming step, where transposing the whole weight would cost more
    than the product; the same terms in the same order as :func:`_forward`.
    Returns the number n of nonzero inputs; with ``limit`` or more of them it returns -1 - n and writes
    nothing (so one call both applies the auto rule's crossover and computes, as a streamed step needs)."""
    R, I = x.shape
    O = out.shape[1]
    n = 0
    for r in range(R):
        for i in range(I):
            if x[r, i] != 0:
                n += 1
    if n >= limit:
        return -1 - n
    for r in range(R):
        orow = out[r]
        for o in range(O):
            orow[o] = bias[o]
        row = x[r]
        for i in range(I):
            v = row[i]
            if v != 0:
                for o in range(O):
                    orow[o] += v * w[o, i]
    return n


def _by_input(indptr, idx, val, colptr, rows, vals, parts):  # pragma: no cover - compiled by numba
    """The listing of ``x [R, I]`` by input (CSC) from its listing by row (CSR), for the weight gradient:
    ``rows[colptr[i] : colptr[i + 1]]`` are the rows where input i is nonzero, in increasing order, and
    ``vals`` their values (not for binary input). A last column I lists every row with value 1: the bias,
    whose gradient is then summed by the same kernel (``colptr [I + 2]``). A counting sort in ``parts`` runs
    of rows: each run counts its entries per input, every run's slots in a column follow the previous
    run's, and each run then fills its slots in row order, so the lists are in row order at any ``parts``."""
    R = indptr.shape[0] - 1
    I = colptr.shape[0] - 2
    binary = val.shape[0] != idx.shape[0]
    slot = np.zeros((parts, I), np.int64)
    for c in prange(parts):
        for p in range(indptr[c * R // parts], indptr[(c + 1) * R // parts]):
            slot[c, idx[p]] += 1
    n = 0
    for i in range(I):
        colptr[i] = n
        for c in range(parts):
            k = slot[c, i]
            slot[c, i] = n
            n += k
    colptr[I] = n
    colptr[I + 1] = n + R
    for c in prange(parts):
        for r in range(c * R // parts, (c + 1) * R // parts):
            for p in range(indptr[r], indptr[r + 1]):
                i = idx[p]
                k = slot[c, i]
                rows[k] = r
                if not binary:
                    vals[k] = val[p]
                slot[c, i] = k + 1
            rows[n + r] = r
            if not binary:
                vals[n + r] = 1.0


def _transpose(src, dst):  # pragma: no cover - compiled by numba
    """``dst [I, O] = srcᵀ`` for ``src [O, I]``, a square tile at a time (both sides stay in cache)."""
    O, I = src.shape
    for ib in prange((I + _TILE - 1) // _TILE):
        i0 = ib * _TILE
        i1 = min(I, i0 + _TILE)
        for o0 in range(0, O, _TILE):
            o1 = min(O, o0 + _TILE)
            for i in range(i0, i1):
                drow = dst[i]
                for o in range(o0, o1):
                    drow[o] = src[o, i]


def _input_grad(aptr, aidx, g, wt, gx):  # pragma: no cover - compiled by numba
    """``gx[r, i] = g[r, :] · wt[i, :]`` (= (g W)[r, i]) only for the listed entries ``(r, i)`` of the
    producing neuron's active set; every other entry of ``gx`` is left as it is (zero)."""
    R, O = g.shape
    for r in prange(R):
        grow = g[r]
        grx = gx[r]
        for p in range(aptr[r], aptr[r + 1]):
            wrow = wt[aidx[p]]
            acc = grow[0] * wrow[0]
            for o in range(1, O):
                acc += grow[o] * wrow[o]
            grx[aidx[p]] = acc


def _mask_counts(mask, indptr):  # pragma: no cover - compiled by numba
    """:func:`_row_counts` for a uint8 mask (the active set)."""
    R, I = mask.shape
    indptr[0] = 0
    for r in prange(R):
        c = 0
        for i in range(I):
            c += mask[r, i]
        indptr[r + 1] = c
    for r in range(R):
        indptr[r + 1] += indptr[r]
    return indptr[R]


def _mask_fill(mask, indptr, idx):  # pragma: no cover - compiled by numba
    """The column indices of the set entries of each row of ``mask``."""
    R, I = mask.shape
    for r in prange(R):
        p = indptr[r]
        if p == indptr[r + 1]:
            continue
        row = mask[r]
        for i in range(I):
            if row[i]:
                idx[p] = i
                p += 1


_LOOPS = {"row_counts": _row_counts, "fill_csr": _fill_csr, "fill_csr16": _fill_csr16, "forward": _forward,
          "forward16": _forward16,
          "input_grad": _input_grad, "mask_counts": _mask_counts, "mask_fill": _mask_fill,
          "forward_scan_w": _forward_scan_w,
          "by_input": _by_input, "transpose": _transpose}
_COMPILED: dict = {}


def numba_threads() -> int:
    """The threads a parallel numba loop of the package may use: torch's setting (so that
    ``torch.set_num_threads(1)`` keeps every kernel on one core), at most numba's pool."""
    return min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)


def compile_loop(fn, parallel: bool = False, **options):
    """``numba.njit(fn)`` (no GIL, cached on disk when ``NUMBA_CACHE``) under a name that tells its build apart.

    Numba's disk cache keys a function by its qualified name, bytecode and signature, not by its compile options:
    the serial and the parallel build of one loop would share one cache entry, and whichever was saved last is
    what both load (a "parallel" kernel then runs on one thread). So a build with options is compiled from a
    copy of ``fn`` whose qualified name is ``fn``'s followed by them (a generated loop, named after its
    configuration, keeps that name as the stem)."""
    options = {k: v for k, v in options.items() if v}
    if parallel or options:
        tags = ["parallel"] * parallel + [f"{k}-{'-'.join(sorted(v)) if isinstance(v, (set, frozenset)) else v}"
                                          for k, v in sorted(options.items())]
        stem = fn.__qualname__
        fn = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        fn.__qualname__ = "_".join([stem, *tags])
    return numba.njit(parallel=parallel, cache=NUMBA_CACHE, nogil=True, **options)(fn)


def _kernel(name: str, rows: int):
    """The loop ``name``: parallel when there are enough rows and torch may use more than one thread (the
    thread count follows torch's setting, so ``torch.set_num_threads(1)`` keeps everything on one core)."""
    if rows < PARALLEL_ROWS:  # serial: skip the thread logic (a streamed step's case)
        fn = _COMPILED.get((name, False))
        if fn is not None:
            return fn
    threads = numba_threads()
    parallel = rows >= PARALLEL_ROWS and threads > 1
    key = (name, parallel)
    if key not in _COMPILED:
        # the input gradient's dot products may be summed in SIMD lanes (a fixed order per build: reproducible)
        fast = {"fastmath": {"reassoc"}} if name == "input_grad" else {}
        _COMPILED[key] = compile_loop(_LOOPS[name], parallel=parallel, **fast)
    if parallel:
        numba.set_num_threads(threads)
    return _COMPILED[key]


# ----------------------------------------------------------------------------------------------------------
# work counting (for the energy report's synops)
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Work:
    """What the sparse kernels did while :func:`count_work` was open (forward passes only).

    ``events``: nonzero inputs processed; ``accumulates``: weight columns added, one multiply-add per event
    and output (``events · out_features``); ``synops``: the same weighted by the input value (a count of 3
    is 3 spikes), the energy report's ``Σ count · fan-out`` for weights without zeros."""

    calls: int = 0
    events: int = 0
    accumulates: int = 0
    synops: float = 0.0


_WORK: contextvars.ContextVar[Optional[Work]] = contextvars.ContextVar("neuromorph_sparse_work", default=None)


@contextlib.contextmanager
def count_work() -> Iterator[Work]:
    """Count the work of every sparse forward product inside the block::

        with count_work() as work:
            model(x)
        work.accumulates  # == energy report synops of the sparse layers (dense weights, spike input)
    """
    work = Work()
    token = _WORK.set(work)
    try:
        yield work
    finally:
        _WORK.reset(token)


# ----------------------------------------------------------------------------------------------------------
# the autograd Function and the entry point
# ----------------------------------------------------------------------------------------------------------
def eligible(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the CPU kernels can run this product (CPU tensors of float32/float64, same dtype)."""
    return (isinstance(x, torch.Tensor) and x.device.type == "cpu" and weight.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64) and weight.dtype == x.dtype and x.numel() > 0)


class Rows:
    """The nonzero entries of a row-major input ``x [R, I]``: counted per row on construction (one pass,
    enough to decide dense or sparse), then listed by :meth:`csr` (a second pass, only if sparse)."""

    def __init__(self, x2: torch.Tensor):
        self.x = x2.detach().contiguous()
        self.indptr = np.empty(self.x.shape[0] + 1, np.int64)
        nnz, ones = _kernel("row_counts", self.x.shape[0])(self.x.numpy(), self.indptr)
        self.nnz = int(nnz)
        self.binary = int(ones) == self.nnz  # every nonzero entry is 1: the CSR needs no values

    @property
    def density(self) -> float:
        """Fraction of nonzero entries."""
        return self.nnz / max(1, self.x.numel())

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr [R + 1], idx [nnz] int32, val [nnz])``: row starts, column indices, values; ``val`` is
        empty for a binary input (every value 1), which the kernels then add without multiplying."""
        idx = np.empty(self.nnz, np.int32)
        val = np.empty(0 if self.binary else self.nnz, self.x.numpy().dtype)
        name = "fill_csr16" if (VECTOR_LISTING and self.x.dtype == torch.float32) else "fill_csr"
        _kernel(name, self.x.shape[0])(self.x.numpy(), self.indptr, idx, val)
        return self.indptr, idx, val


def _transpose_into(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst = srcᵀ`` by tiles, in parallel only for a matrix large enough to pay for starting the threads."""
    _kernel("transpose", src.shape[1] if src.size >= _PARALLEL_ELEMENTS else 0)(src, dst)


def _transposed(weight: torch.Tensor, wt: Optional[torch.Tensor]) -> np.ndarray:
    """Wᵀ ``[I, O]`` (``wt`` if the caller keeps one): the layout in which an event's weights are one row."""
    if wt is not None:
        return np.ascontiguousarray(wt.numpy())  # the kernels read it as rows of O values
    w = weight.detach().contiguous().numpy()
    out = np.empty((w.shape[1], w.shape[0]), w.dtype)
    _transpose_into(w, out)
    return out


def _row_sums(dtype) -> str:
    """The loop that sums listed rows (the forward, and the weight gradient on the input by column): the
    register sums for float32 where numba's LLVM has them, else the scalar loop (the same bits)."""
    return "forward16" if (VECTOR_FORWARD and np.dtype(dtype) == np.float32) else "forward"


def _count(idx_count: int, value_sum: float, O: int) -> None:
    work = _WORK.get()
    if work is not None:
        work.calls += 1
        work.events += idx_count
        work.accumulates += idx_count * O
        work.synops += value_sum * O


def _start(weight: torch.Tensor, bias: Optional[torch.Tensor], R: int) -> tuple[torch.Tensor, np.ndarray]:
    """The (uninitialised) output and the bias the kernels start each row from."""
    O = weight.shape[0]
    b = bias.detach().contiguous().numpy() if bias is not None else np.zeros(O, weight.detach().numpy().dtype)
    return torch.empty(R, O, dtype=weight.dtype), b


def _forward_product(csr, weight: torch.Tensor, bias: Optional[torch.Tensor], R: int,
                     wt: Optional[torch.Tensor] = None) -> torch.Tensor:
    indptr, idx, val = csr
    out, b = _start(weight, bias, R)
    _kernel(_row_sums(b.dtype), R)(indptr, idx, val, _transposed(weight, wt), b, out.numpy())
    if _WORK.get() is not None:
        n = int(idx.shape[0])
        _count(n, float(val.sum(dtype=np.float64)) if val.shape[0] == n else float(n), weight.shape[0])
    return out


def _weight_grad_into(csr, g: np.ndarray, dw: np.ndarray, gb: Optional[np.ndarray] = None) -> None:
    """``dw = gᵀ x`` (dW's ``[O, I]``, written whole) and ``gb = Σ_r g[r]`` if given, from the CSR of ``x``.

    The weight gradient is the forward's product on the input's listing by column: row i of dWᵀ is the sum of
    the rows of g where input i fired, ``Σ_r x[r, i] · g[r, :]``, so :func:`_by_input` lists the input by
    column and the forward kernel sums those rows of g, with the sums in registers and one output row per
    input, over the inputs in parallel (no per-thread copies to add, no scatter). Every sum runs over the
    rows in increasing order whatever the thread count: deterministic, the same bits at any thread count."""
    indptr, idx, val = csr
    g = np.ascontiguousarray(g)  # the kernels read it as rows of O values
    O, I = dw.shape
    R = g.shape[0]
    binary = val.shape[0] != idx.shape[0]
    colptr = np.empty(I + 2, np.int64)
    rows = np.empty(idx.shape[0] + R, np.int32)
    vals = np.empty(0 if binary else idx.shape[0] + R, g.dtype)
    parts = numba_threads() if R >= PARALLEL_ROWS else 1
    _kernel("by_input", R if parts > 1 else 0)(indptr, idx, val, colptr, rows, vals, parts)
    dwt = np.empty((I + 1, O), g.dtype)
    # in parallel over the inputs when the sums are worth starting threads for (not a streamed step's few rows)
    parallel = rows.shape[0] * O >= _PARALLEL_ELEMENTS
    _kernel(_row_sums(g.dtype), I + 1 if parallel else 0)(colptr, rows, vals, g, np.zeros(O, g.dtype), dwt)
    _transpose_into(dwt[:I], dw)
    if gb is not None:
        gb[:] = dwt[I]


def _forward_inference(rows: "Rows", weight: torch.Tensor, bias: Optional[torch.Tensor],
                       wt: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The forward without a backward: the few rows of a streaming step are scanned against the weight as
    it is (transposing it would cost more than the product); more rows are listed and summed as in
    training (the listing and the register sums are 3-5x faster than summing while scanning)."""
    R = rows.x.shape[0]
    if not (rows.nnz and R < PARALLEL_ROWS and wt is None):
        return _forward_product(rows.csr(), weight, bias, R, wt)
    out, b = _start(weight, bias, R)
    _kernel("forward_scan_w", R)(rows.x.numpy(), weight.detach().numpy(), b, out.numpy(), np.inf)
    if _WORK.get() is not None:
        _count(rows.nnz, float(rows.x.sum(dtype=torch.float64)), weight.shape[0])
    return out


# ----------------------------------------------------------------------------------------------------------
# the producing neuron's active set: where the input gradient is needed at all
# ----------------------------------------------------------------------------------------------------------
#: at most this fraction of active entries, the input gradient is computed entry by entry (cost
#: nnz(A)·out) instead of as one dense product (cost rows·in·out at BLAS speed). Measured on the benchmark
#: machine (one thread, 3200 rows, 256 → 256): entry by entry costs 0.06× / 0.2× / 0.3× / 1.2× the dense
#: product at 1 % / 5 % / 10 % / 20 % active entries (benchmarks/RESULTS.md, issue 14).
DX_CROSSOVER = 0.15
#: narrower layers compute the input gradient densely: finding the active set scans every input entry,
#: which costs about as much as the whole dense product when it has few outputs
DX_MIN_OUT = 64
#: tensor -> (its pending active set, its version when attached); keyed by identity and weakly, so a set
#: lives exactly as long as its tensor and never becomes part of the tensor's state (pickling, copies)
_ACTIVE: WeakIdKeyDictionary = WeakIdKeyDictionary()


class ActiveSet:
    """The entries ``(r, i)`` of a spike tensor, read as rows ``[R, I]`` of its last dimension, at which
    the producing neuron's backward multiplies ∂L/∂s by a nonzero surrogate factor (CSR: ``indptr [R + 1]``,
    ``idx [nnz]``). ∂L/∂s elsewhere is never used, so a consumer may leave it 0."""

    __slots__ = ("indptr", "idx", "shape", "nnz")

    def __init__(self, mask: torch.Tensor):
        m = mask.reshape(-1, mask.shape[-1]).contiguous().numpy()
        self.shape = m.shape
        self.indptr = np.empty(m.shape[0] + 1, np.int64)  # row starts (counted even when not listed)
        self.nnz = int(_kernel("mask_counts", m.shape[0])(m, self.indptr))
        self.idx = None  # listed only when sparse enough to be used (input_grad runs dense otherwise)
        if self.density <= DX_CROSSOVER:
            self.idx = np.empty(self.nnz, np.int32)
            _kernel("mask_fill", m.shape[0])(m, self.indptr, self.idx)

    @property
    def density(self) -> float:
        """Fraction of active entries."""
        return self.nnz / max(1, self.shape[0] * self.shape[1])

    def saved(self) -> tuple[torch.Tensor, ...]:
        """The listed set as tensors (no copies) for ``ctx.save_for_backward``, () when not listed: saved
        tensors are freed as soon as the consumer's backward has run, while a ``ctx`` attribute would keep
        them until the whole graph is gone (through the producer's backward, the step's peak)."""
        return () if self.idx is None else (torch.from_numpy(self.indptr), torch.from_numpy(self.idx))

    @classmethod
    def restored(cls, saved: tuple, shape: tuple[int, int]) -> Optional["ActiveSet"]:
        """The set from :meth:`saved`'s tensors (None for ())."""
        if not saved:
            return None
        act = cls.__new__(cls)
        act.indptr, act.idx = saved[0].numpy(), saved[1].numpy()
        act.shape, act.nnz = shape, int(act.idx.shape[0])
        return act


def _save(ctx, tensors: tuple, csr: Optional[tuple], active: Optional[ActiveSet]) -> None:
    """Save ``tensors``, the input's CSR arrays and the active set for the backward, all as saved tensors
    (freed right after this node's backward unless the graph is retained)."""
    csr_t = () if csr is None else tuple(torch.from_numpy(a) for a in csr)
    act_t = () if active is None else active.saved()
    ctx.layout = (len(tensors), len(csr_t), None if active is None else active.shape)
    ctx.save_for_backward(*tensors, *csr_t, *act_t)


def _saved(ctx) -> tuple[tuple, Optional[tuple], Optional[ActiveSet]]:
    n, n_csr, shape = ctx.layout
    st = ctx.saved_tensors
    csr = tuple(t.numpy() for t in st[n:n + n_csr]) or None
    return st[:n], csr, ActiveSet.restored(st[n + n_csr:], shape)


class _Pending:
    """An active set not computed yet: ``mask()`` gives it (uint8, nonzero = active) or None if it can no
    longer be computed; evaluated once, on the first :func:`active_of` that needs it."""

    __slots__ = ("mask", "result")

    def __init__(self, mask):
        self.mask, self.result = mask, None

    def get(self) -> Optional[ActiveSet]:
        if self.mask is not None:
            m, self.mask = self.mask(), None
            self.result = None if m is None else ActiveSet(m)
        return self.result


def attach_active(spikes: torch.Tensor, mask) -> None:
    """Attach an active set to the tensor ``spikes``, for :func:`active_of`: ``mask`` is a tensor (nonzero =
    active, the spikes' number of entries) or a callable returning one (or None), called only when a
    consumer asks. The producing neuron layer does this."""
    last = spikes.shape[-1]

    def rows():
        m = mask() if callable(mask) else mask
        return None if m is None else m.reshape(-1, last)  # rows of the last dimension, as Linear reads them

    _ACTIVE[spikes] = (_Pending(rows), spikes._version)


def active_of(x: torch.Tensor) -> Optional[ActiveSet]:
    """The active set attached to ``x`` by its producer, or None: none attached, or ``x`` was modified in
    place since (its version changed), or it does not match ``x``'s rows."""
    entry = _ACTIVE.get(x)
    if entry is None or entry[1] != x._version or not x.dim():
        return None
    act = entry[0].get()
    return act if act is not None and act.shape == (x.numel() // max(1, x.shape[-1]), x.shape[-1]) else None


def propagate_active(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Give ``dst`` the active set of ``src``, for a layer whose backward maps the gradient of every entry
    of ``dst`` to the same entry of ``src`` only (elementwise: dropout masks, scaling). Returns ``dst``."""
    entry = _ACTIVE.get(src)
    if entry is not None and entry[1] == src._version and dst is not src and dst.shape == src.shape:
        _ACTIVE[dst] = (entry[0], dst._version)
    return dst


def input_grad(g: torch.Tensor, weight: torch.Tensor, active: Optional[ActiveSet]) -> torch.Tensor:
    """``∂L/∂x = g W`` for rows ``g [R, O]``: on the active entries only (0 elsewhere) when ``active`` is
    given and sparse enough (:data:`DX_CROSSOVER`), else the dense product."""
    if active is None or active.idx is None or active.density > DX_CROSSOVER:
        return g.mm(weight)
    gx = torch.zeros(g.shape[0], weight.shape[1], dtype=g.dtype)
    if active.nnz:
        _kernel("input_grad", g.shape[0])(active.indptr, active.idx, g.numpy(), _transposed(weight, None),
                                          gx.numpy())
    return gx


class SparseLinear(torch.autograd.Function):
    """``y = x Wᵀ + b`` over rows ``x [R, I]`` with the event-driven forward and weight gradient above; the
    forward saves the CSR form of ``x`` (not ``x``) and the weight. With the producer's ``active`` set the
    input gradient is computed only on it (:func:`input_grad`)."""

    @staticmethod
    def forward(ctx, x2, weight, bias, rows=None, wt=None, active=None):
        R = x2.shape[0]
        csr = (rows if rows is not None else Rows(x2)).csr()
        out = _forward_product(csr, weight, bias, R, wt)
        ctx.rows, ctx.n_in, ctx.has_bias = R, x2.shape[1], bias is not None
        _save(ctx, (weight,), csr, active)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (weight,), (indptr, idx, val), active = _saved(ctx)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = g.contiguous()
        gx = input_grad(g, weight, active) if need_x else None
        gw = gb = None
        need_b = need_b and ctx.has_bias
        if need_w:  # the bias gradient is summed from the rows the weight gradient reads anyway
            gw = torch.empty(weight.shape[0], ctx.n_in, dtype=g.dtype)
            gb = torch.empty(weight.shape[0], dtype=g.dtype) if need_b else None
            _weight_grad_into((indptr, idx, val), g.numpy(), gw.numpy(), None if gb is None else gb.numpy())
        elif need_b:
            gb = g.sum(0)
        return gx, gw, gb, None, None, None


class DenseLinear(torch.autograd.Function):
    """``y = x Wᵀ + b`` over rows ``x [R, I]`` by the dense product (forward and weight gradient), with the input
    gradient computed only on the producer's ``active`` set (:func:`input_grad`): for a layer whose input is
    too dense for the event-driven forward while the set where the producer reads ∂L/∂x is small."""

    @staticmethod
    def forward(ctx, x2, weight, bias, active):
        ctx.has_bias = bias is not None
        _save(ctx, (x2, weight), None, active)
        return torch.nn.functional.linear(x2, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (x2, weight), _, active = _saved(ctx)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = g.contiguous()
        gx = input_grad(g, weight, active) if need_x else None
        gw = g.t().mm(x2) if need_w else None
        gb = g.sum(0) if (need_b and ctx.has_bias) else None
        return gx, gw, gb, None


def dense_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                 backend: str = "auto") -> torch.Tensor:
    """The dense product ``torch.nn.functional.linear(x, weight, bias)`` for a layer whose forward runs dense.

    The input gradient needs no forward path: when ``x`` carries its producer's active set (:func:`active_of`)
    and it is sparse enough (:data:`DX_CROSSOVER`, :data:`DX_MIN_OUT` outputs or more), the backward computes
    ∂L/∂x only on it (0 elsewhere), exactly as the event-driven path does. Only for a layer of ``backend``
    "auto" outside a :func:`synapse_backend` override: an explicit "dense" (the layer's or the override's) is
    the dense reference, input gradient included."""
    if (backend == "auto" and _FORCED.get() is None and eligible(x, weight) and x.requires_grad
            and torch.is_grad_enabled() and weight.shape[0] >= DX_MIN_OUT
            and not (torch.jit.is_tracing() or torch.compiler.is_compiling())):
        active = active_of(x)
        if active is not None and active.idx is not None:
            out = DenseLinear.apply(x.reshape(-1, x.shape[-1]), weight, bias, active)
            return out.reshape(*x.shape[:-1], weight.shape[0])
    return torch.nn.functional.linear(x, weight, bias)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``torch.nn.functional.linear(x, weight, bias)`` computed event-driven (see the module docstring);
    ``x`` is ``[..., in_features]`` on the CPU, float32 or float64 like the weight."""
    _, rows, _ = choose(x, weight, "sparse")
    return synapse_linear(x, weight, bias, rows)


# ----------------------------------------------------------------------------------------------------------
# dense or sparse: the choice a layer makes per call
# ----------------------------------------------------------------------------------------------------------
SYNAPSE_BACKENDS = ("auto", "dense", "sparse")

#: Input densities below which ``backend="auto"`` runs the event-driven kernels, for a training step's
#: product (forward and backward) and for inference (forward only), in the limit of wide layers; see
#: :func:`crossover_for`. Measured with ``benchmarks/sparse_crossover.py`` (one thread, 3200 rows, the SHD
#: layer shapes 700→256, 256→256, 256→20) on the 2-core x86-64 CPU of benchmarks/RESULTS.md ("Vector
#: kernels", 2026-12-04, three runs): sparse and dense cost the same at 0.32-0.35 (700→256, 256→256) and
#: 0.13-0.20 (256→20) in training, 0.33-0.40 (700→256), above 0.49 (256→256) and 0.27-0.33 (256→20) in
#: inference; the values below are a little lower, so that auto does not pick the slower path near the
#: crossover. Re-measure on other machines and pass ``crossover=`` to the layer.
DEFAULT_CROSSOVER = {"train": 0.30, "infer": 0.32}
#: the event-driven kernels scan every input once (a cost independent of the layer's width) and then do
#: work proportional to the outputs; the dense product is proportional to the outputs. So the crossover
#: falls with the width, to zero at about this many outputs (fitted per mode to the two measured widths).
NARROW_OUTPUTS = {"train": 12, "infer": 4}


def crossover_for(out_features: int, training: bool) -> float:
    """The default crossover density for a layer with ``out_features`` outputs:
    ``DEFAULT_CROSSOVER[mode] · max(0, 1 − NARROW_OUTPUTS[mode] / out_features)`` (dense for narrow layers)."""
    mode = "train" if training else "infer"
    return DEFAULT_CROSSOVER[mode] * max(0.0, 1.0 - NARROW_OUTPUTS[mode] / max(1, out_features))


_FORCED: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("neuromorph_synapse_backend", default=None)


@contextlib.contextmanager
def synapse_backend(backend: str) -> Iterator[None]:
    """Run every layer built with ``backend="auto"`` as ``backend`` (``"dense"`` or ``"sparse"``) inside
    the block, e.g. to reproduce a dense library's float32 rounding bit for bit::

        with synapse_backend("dense"):
            ref = model(x)
    """
    from neuromorph.errors import check_choice

    check_choice("backend", backend, SYNAPSE_BACKENDS)
    token = _FORCED.set(None if backend == "auto" else backend)
    try:
        yield
    finally:
        _FORCED.reset(token)


def rule(x: torch.Tensor, weight: torch.Tensor, backend: str = "auto",
         crossover: Optional[float] = None) -> tuple[str, float]:
    """What :func:`choose` decides before counting: ``("dense", nan)`` (no count), ``("sparse", inf)``
    (sparse whatever the count), or ``("auto", c)``: sparse when the input's density is below ``c``."""
    if backend not in SYNAPSE_BACKENDS:
        from neuromorph.errors import check_choice

        check_choice("backend", backend, SYNAPSE_BACKENDS)
    if backend == "auto" and _FORCED.get() is not None:
        backend = _FORCED.get()
    if backend == "auto" and (torch.jit.is_tracing() or torch.compiler.is_compiling()):
        backend = "dense"  # a traced or compiled graph cannot hold the numba kernels
    if backend == "dense" or (backend == "auto" and not eligible(x, weight)):
        return "dense", float("nan")
    if backend == "sparse" and not eligible(x, weight):
        from neuromorph.errors import ConfigError

        raise ConfigError(f"backend='sparse' runs on CPU float32/float64 tensors of one dtype; got input "
                          f"{x.dtype} on {x.device} and weight {weight.dtype} on {weight.device} (use 'auto' to "
                          f"fall back to the dense product)")
    if backend == "sparse":
        return "sparse", float("inf")
    if crossover is None:
        training = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
        crossover = crossover_for(weight.shape[0], training)
        if crossover <= 0.0:
            return "dense", float("nan")
    return "auto", crossover


def choose(x: torch.Tensor, weight: torch.Tensor, backend: str = "auto",
           crossover: Optional[float] = None) -> tuple[str, Optional[Rows], float]:
    """Which product to run for input ``x`` and ``weight``: ``("sparse" | "dense", rows, density)``.

    ``"auto"`` (unless :func:`synapse_backend` overrides it) runs sparse on eligible tensors (:func:`eligible`)
    whose density (one counting pass, reused by the sparse kernels) is below ``crossover`` (default
    :func:`crossover_for` the layer's width, training or inference); ``"sparse"`` insists
    (a ConfigError if not eligible); ``"dense"`` never counts. ``density`` is NaN when not counted.
    The decision before the count is :func:`rule`.
    """
    mode, crossover = rule(x, weight, backend, crossover)
    if mode == "dense":
        return "dense", None, float("nan")
    rows = Rows(x.reshape(-1, x.shape[-1]))
    if rows.density < crossover:  # inf for "sparse"
        return "sparse", rows, rows.density
    return "dense", None, rows.density


def synapse_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], rows: Rows,
                   wt: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The event-driven ``linear`` on the counted ``rows`` of ``x`` (from :func:`choose`); ``wt`` is
    ``weight.t().contiguous()`` if the caller keeps one (else it is made here)."""
    x2 = x.reshape(-1, x.shape[-1])
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                              or (bias is not None and bias.requires_grad))
    if needs_grad:
        active = active_of(x) if (x.requires_grad and weight.shape[0] >= DX_MIN_OUT) else None
        out = SparseLinear.apply(x2, weight, bias, rows, wt, active)
    else:
        out = _forward_inference(rows, weight, bias, wt)
    return out.reshape(*x.shape[:-1], weight.shape[0])
