"""Event-driven evaluation of a delay layer with integer delays (``DelayedLinear`` after rounding).

After :meth:`~neuromorph.nn.DelayedLinear.round_delays` every synapse (j, i) is one tap: weight ``w_ji`` at an
integer delay ``d_ji`` in ``0 .. K-1``. The dense evaluation convolves every synapse over all K taps (or its
spectrum); the event-driven form does work only for the nonzero inputs::

    for each input event (t, b, i) with value x:   for each j with w_ji ≠ 0:   y[t + d_ji, b, j] += w_ji · x

which costs ``nnz(x) · fan-out`` multiply-adds instead of ``T · B · in · out · K`` (direct) and writes only
output steps that exist (``t + d_ji < T + ⌊(K-1)/2⌋``, the layer's output length; later deliveries are dropped,
as in the dense evaluation).

The weights are packed once per weight/delay version (:class:`Packed`): for each input i the synapses with a
nonzero weight, sorted by delay then output, so an event touches a compact window of the output. Every
output ``y[s, b, j]`` is the sum of its terms in one fixed order (input step, then input index), whatever the
thread count: the whole-sequence kernel runs the batch rows in parallel, each row by one thread, with no
atomics. For float32 batches whose samples fire at the same (step, input) pairs often enough, as a trained
network's do, a second whole-sequence kernel delivers to 8 samples at once, one 8-lane add per synapse
(:func:`_deliver_lanes`; blocks of 8 rows in parallel), with the same terms in the same order: the same
bits. The streaming kernel keeps the pending currents in a ring buffer ``[K, B, out]`` (slot ``s mod K``
holds what arrives at step s) and adds the terms in the same order, so streaming gives the whole-sequence
outputs bit for bit.

Both kernels report their work to :func:`neuromorph.kernels.sparse.count_work`: ``events`` = nonzero inputs,
``accumulates`` = synapses actually delivered, ``synops`` = the same weighted by the input value (a count of
3 is 3 spikes), which is the energy report's synops for the layer (nonzero weights, deliveries inside the
output window).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import prange
from numba.core import cgutils
from numba.extending import intrinsic

from neuromorph.kernels import sparse

__all__ = ["Packed", "pack", "deliver", "stream", "count_events", "event_counts"]


def _deliver(x, ptr, fl, dl, wv, K, out, counts):  # pragma: no cover - compiled by numba
    """``out[t + d, b, j] += x[t, b, i] · w`` for every event and synapse (``out [S, B, O]`` is written, not
    read). Each sample is accumulated in its own block ``[S·O]`` (an event then writes a window of K rows of
    one block, which stays in cache; ``fl = d·O + j`` is the synapse's offset from row t) and copied out at
    the end. Entries of input i are sorted by delay: near the end the scan stops at the first delay past the
    output. ``counts[b] = (deliveries, value-weighted deliveries)`` when ``counts`` has rows (else not kept)."""
    T, B, I = x.shape
    S, _, O = out.shape
    for b in prange(B):
        ob = np.zeros(S * O, wv.dtype)
        n = 0
        syn = 0.0
        for t in range(T):
            lim = S - t
            base = np.uint64(t * O)  # unsigned indices: numba then skips the negative-index wraparound test
            for i in range(I):
                v = x[t, b, i]
                if v != 0:
                    p0 = ptr[i]  # uint64 (as all indices here): no negative-index wraparound code per synapse
                    p1 = ptr[i + 1]
                    if t + K <= S:  # every delay lands inside the output
                        for p in range(p0, p1):
                            ob[base + fl[p]] += v * wv[p]
                        p = p1
                    else:
                        p = p0
                        while p < p1 and dl[p] < lim:
                            ob[base + fl[p]] += v * wv[p]
                            p += np.uint64(1)
                    n += np.int64(p - p0)
                    syn += float(v) * np.int64(p - p0)
        for s in range(S):
            row = s * O
            for o in range(O):
                out[s, b, o] = ob[row + o]
        if counts.shape[0]:
            counts[b, 0] = n
            counts[b, 1] = syn


#: samples the float32 whole-sequence kernel delivers to at once (one 8-lane register per synapse)
LANES = 8
#: :func:`_deliver_lanes` may run for batches of at least this many samples and layers whose inputs have at
#: least this many synapses on average; below either, :func:`_deliver` (fewer lanes in use, or too little work
#: per input to repay reading the L samples' values)
LANES_MIN_BATCH = LANES
LANES_MIN_FANOUT = 64
#: and then does when each (step, input, block of L samples) with an event holds more than this many events on
#: average: the cost of an 8-lane add relative to a scattered scalar add (1.2-1.8 measured, benchmarks/RESULTS.md).
#: Samples whose activity is alike (the same busy channels, the same busy neurons) share their blocks; on the
#: shd recipe's trained model a block with an event holds 2.1-2.7 events, independent 4-8 % input 1.1-1.3.
LANE_COST = 1.6


def _add_lanes_codegen(context, builder, sig, args):
    """``win[base + L·fl[p] : + L] += wv[p] · xv[0 : L]`` for p in [p0, p1), L = :data:`LANES` float32 lanes: the
    synapse's weight times the L samples' input values, added to its output cell of each sample (the cells of
    one synapse are adjacent, samples innermost). A lane whose sample has no event adds w · 0 = +0 or -0, which
    leaves its sum as it is (a sum that starts at +0 never becomes -0; the weights are finite). A product, then a
    sum, never fused: each sample's sum gets the scalar loop's bits."""
    win, base, fl, wv, p0, p1, xv = args
    winp, flp, wvp, xvp = (cgutils.create_struct_proxy(sig.args[k])(context, builder, value=args[k]).data
                           for k in (0, 2, 3, 6))
    i64, lanes = ir.IntType(64), ir.VectorType(ir.FloatType(), LANES)
    x = builder.load(builder.bitcast(xvp, lanes.as_pointer()), align=4)
    with cgutils.for_range_slice(builder, p0, p1, ir.Constant(i64, 1), inc=True) as (p, _):
        cell = builder.add(base, builder.mul(builder.zext(builder.load(builder.gep(flp, [p])), i64),
                                             ir.Constant(i64, LANES)))
        ptr = builder.bitcast(builder.gep(winp, [cell]), lanes.as_pointer())
        w = sparse._splat(builder, builder.load(builder.gep(wvp, [p])), lanes)
        builder.store(builder.fadd(builder.load(ptr, align=4), builder.fmul(x, w)), ptr, align=4)
    return context.get_dummy_value()


@intrinsic
def _add_lanes(typingctx, win, base, fl, wv, p0, p1, xv):
    """See :func:`_add_lanes_codegen`; compiles only for C-contiguous float32 ``win``, ``wv``, ``xv``, uint32 ``fl``
    and uint64 ``base``, ``p0``, ``p1``."""
    f32, u32, u64 = numba.types.float32, numba.types.uint32, numba.types.uint64
    if not (sparse._c_arrays((win, f32), (fl, u32), (wv, f32), (xv, f32)) and base == p0 == p1 == u64):
        return None
    return numba.types.void(win, base, fl, wv, p0, p1, xv), _add_lanes_codegen


def _deliver_lanes(x, ptr, fl, dl, wv, K, out, counts):  # pragma: no cover - compiled by numba
    """:func:`_deliver` for float32, :data:`LANES` samples at a time: for each input step and input index at
    which any of them has an event, every synapse adds its weight times their L values to their L output cells
    at once (:func:`_add_lanes`); the lanes of samples without an event there add zeros. One such add costs
    1.2-1.8 scattered scalar adds, so this pays where the samples' events share their (step, input) pairs (see
    :data:`LANE_COST`). Each output gets the same terms in the same order as in :func:`_deliver` (input step,
    then input index): the same bits.

    The sums of a block live in a window of 2K output steps ``[2K, O, L]`` (samples innermost): an event at
    step t reaches steps t .. t + K - 1, so after the input steps c0 .. c0 + K - 1 the window's first K steps
    are complete; they are copied out and the window moves on by K."""
    T, B, I = x.shape
    S, _, O = out.shape
    L = LANES
    half = K * O * L
    want = counts.shape[0] > 0  # the work is counted only for count_work (~10 % of the time here)
    for blk in prange((B + L - 1) // L):
        b0 = blk * L
        nb = min(L, B - b0)
        win = np.zeros(2 * half, np.float32)
        xv = np.zeros(L, np.float32)  # lanes nb .. L-1 (past the batch) stay 0
        n = np.zeros(L, np.int64)
        syn = np.zeros(L, np.float64)
        for c0 in range(0, S, K):
            for t in range(c0, min(T, c0 + K)):
                lim = S - t
                base = np.uint64((t - c0) * O * L)
                for i in range(I):
                    active = False
                    for k in range(nb):
                        v = x[t, b0 + k, i]
                        xv[k] = v
                        active |= v != 0
                    if active:
                        p0 = ptr[i]
                        p1 = ptr[i + 1]
                        if t + K > S:  # entries are sorted by delay: stop at the first past the output
                            p = p0
                            while p < p1 and dl[p] < lim:
                                p += np.uint64(1)
                            p1 = p
                        _add_lanes(win, base, fl, wv, p0, p1, xv)
                        m = np.int64(p1 - p0)
                        for k in range(nb if want else 0):
                            if xv[k] != 0:
                                n[k] += m
                                syn[k] += float(xv[k]) * m
            for s in range(c0, min(S, c0 + K)):
                row = (s - c0) * O * L
                for k in range(nb):
                    for o in range(O):
                        out[s, b0 + k, o] = win[row + o * L + k]
            win[:half] = win[half:]
            win[half:] = 0
        for k in range(nb if want else 0):
            counts[b0 + k, 0] = n[k]
            counts[b0 + k, 1] = syn[k]


def _stream(x, ptr, oj, dl, wv, ring, head, out, counts):  # pragma: no cover - compiled by numba
    """Steps ``x [t, B, I]`` through the ring ``[K, B, O]`` whose slot ``head`` is the current step: deposit
    each event's currents ``d`` slots ahead, then read and clear the current slot into ``out``; returns the
    new head. ``counts`` accumulates (events, deliveries, value-weighted deliveries)."""
    T, B, I = x.shape
    K, _, O = ring.shape
    for t in range(T):
        for b in range(B):
            for i in range(I):
                v = x[t, b, i]
                if v != 0:
                    p0 = ptr[i]
                    p1 = ptr[i + 1]
                    for p in range(p0, p1):
                        s = head + dl[p]
                        if s >= K:
                            s -= K
                        ring[s, b, oj[p]] += v * wv[p]
                    counts[0] += 1
                    counts[1] += np.int64(p1 - p0)
                    counts[2] += float(v) * np.int64(p1 - p0)
            for o in range(O):
                out[t, b, o] = ring[head, b, o]
                ring[head, b, o] = 0
        head += 1
        if head == K:
            head = 0
    return head


def _nonzero(x):  # pragma: no cover - compiled by numba
    """The number of nonzero entries of ``x [T, B, I]`` (any strides)."""
    T, B, I = x.shape
    c = 0
    for t in range(T):
        for b in range(B):
            for i in range(I):
                if x[t, b, i] != 0:
                    c += 1
    return c


def _lane_blocks(x):  # pragma: no cover - compiled by numba
    """(nonzero entries, (step, input, block of :data:`LANES` samples) with at least one) of ``x [T, B, I]``."""
    T, B, I = x.shape
    nnz = 0
    blocks = 0
    for t in prange(T):
        c = np.zeros(I, np.int64)
        for b0 in range(0, B, LANES):
            c[:] = 0
            for b in range(b0, min(B, b0 + LANES)):
                for i in range(I):
                    c[i] += x[t, b, i] != 0
            for i in range(I):
                nnz += c[i]
                blocks += c[i] > 0
    return nnz, blocks


_LOOPS = {"deliver": _deliver, "deliver_lanes": _deliver_lanes, "lane_blocks": _lane_blocks, "stream": _stream,
          "nonzero": _nonzero}
_COMPILED: dict = {}


def _kernel(name: str, rows: int):
    """``name`` compiled parallel when there are enough rows (batch rows, blocks or steps) and torch allows
    threads (as in :mod:`neuromorph.kernels.sparse`: ``torch.set_num_threads(1)`` keeps it on one core). The
    streaming loop and the event count stay serial: a streamed step asks for them at every step."""
    parallel = False
    if name in ("deliver", "deliver_lanes", "lane_blocks") and rows > 1:
        threads = sparse.numba_threads()
        parallel = threads > 1
    key = (name, parallel)
    if key not in _COMPILED:
        _COMPILED[key] = sparse.compile_loop(_LOOPS[name], parallel=parallel)
    if parallel:
        numba.set_num_threads(min(threads, rows))
    return _COMPILED[key]


@dataclass(frozen=True)
class Packed:
    """The nonzero synapses of a rounded delay layer, grouped by input: entries ``ptr[i] .. ptr[i+1]`` of
    ``out_idx`` (int32), ``delay`` (int32), ``offset`` (``delay · out + out_idx``, uint32) and ``weight`` belong to
    input i, sorted by delay then output."""

    ptr: np.ndarray
    out_idx: np.ndarray
    offset: np.ndarray
    delay: np.ndarray
    weight: np.ndarray
    in_features: int
    out_features: int
    kernel_size: int
    finite: bool = True

    @property
    def synapses(self) -> int:
        """Number of synapses with a nonzero weight."""
        return int(self.weight.shape[0])


def pack(weight: torch.Tensor, delays: torch.Tensor, kernel_size: int) -> Packed:
    """Pack ``weight [out, in]`` and integer ``delays [out, in]`` (each in 0 .. K-1) by input (see :class:`Packed`);
    the kernels take inputs of the weight's dtype."""
    w = weight.detach().t().contiguous().numpy()  # [in, out]
    d = delays.detach().t().contiguous().numpy().astype(np.int64)
    n_in, n_out = w.shape
    ii, jj = np.nonzero(w != 0)
    dd = d[ii, jj]
    order = np.lexsort((jj, dd, ii))  # by input, then delay, then output
    ii, jj, dd = ii[order], jj[order], dd[order]
    ptr = np.zeros(n_in + 1, np.uint64)
    np.cumsum(np.bincount(ii, minlength=n_in), out=ptr[1:])
    wv = np.ascontiguousarray(w[ii, jj])
    return Packed(ptr, jj.astype(np.int32), (dd * n_out + jj).astype(np.uint32), dd.astype(np.int32), wv, n_in,
                  n_out, int(kernel_size), bool(np.isfinite(wv).all()))


def count_events(x: torch.Tensor) -> int:
    """``torch.count_nonzero(x)`` for a CPU float ``x [T, B, in]``, several times faster (one branch-light pass, no
    temporary): what the layer's choice of path costs before the event-driven kernel runs."""
    return int(_kernel("nonzero", 1)(x.detach().numpy()))


def _lanes_possible(x: torch.Tensor, packed: Packed) -> bool:
    """Whether :func:`_deliver_lanes` may run for this input and layer (see :data:`LANES_MIN_BATCH`)."""
    return (x.dtype == torch.float32 and packed.finite and x.shape[1] >= LANES_MIN_BATCH
            and packed.synapses >= LANES_MIN_FANOUT * packed.in_features)


def event_counts(x: torch.Tensor, packed: Packed) -> tuple[int, Optional[int]]:
    """``(events, blocks)`` of ``x [T, B, in]`` in one pass: its nonzero entries (as :func:`count_events`) and,
    where the 8-sample kernel may run for ``packed``, the (step, input, block of :data:`LANES` samples) with at
    least one (else None). The layer's auto rule prices the events and :func:`deliver` chooses its kernel by
    the blocks: a caller that has priced the call hands these to :func:`deliver`, so the input is read once."""
    if _lanes_possible(x, packed):
        events, blocks = _kernel("lane_blocks", x.shape[0])(x.detach().numpy())
        return int(events), int(blocks)
    return count_events(x), None


def deliver(x: torch.Tensor, packed: Packed, out_steps: int,
            counted: Optional[tuple[int, Optional[int]]] = None) -> torch.Tensor:
    """The layer's output ``[out_steps, B, out]`` for input ``x [T, B, in]`` (no bias), event-driven; ``x`` has
    the packed weights' dtype. ``counted``: :func:`event_counts` of this ``x``, if the caller has them."""
    xc = x.detach()  # any strides (a time-major view of batch-major data is read in place, not copied)
    steps, batch, _ = xc.shape
    work = sparse._WORK.get()
    counts = np.zeros((batch if work is not None else 0, 2), np.float64)  # per sample, asked by count_work only
    if steps and batch and packed.synapses:
        out = torch.empty(out_steps, batch, packed.out_features, dtype=xc.dtype)
        lanes = _lanes_possible(xc, packed)
        if lanes:
            if counted is None:
                counted = event_counts(xc, packed)
            lanes = counted[1] * LANE_COST < counted[0]
        name, rows = ("deliver_lanes", -(-batch // LANES)) if lanes else ("deliver", batch)
        _kernel(name, rows)(xc.numpy(), packed.ptr, packed.offset, packed.delay, packed.weight, packed.kernel_size,
                            out.numpy(), counts)
    else:
        out = torch.zeros(out_steps, batch, packed.out_features, dtype=xc.dtype)
    if work is not None:
        work.calls += 1
        work.events += counted[0] if counted is not None else count_events(xc)
        work.accumulates += int(counts[:, 0].sum())
        work.synops += float(counts[:, 1].sum())
    return out


def stream(x: torch.Tensor, packed: Packed, ring: torch.Tensor, head: int) -> tuple[torch.Tensor, int]:
    """Run the steps ``x [t, B, in]`` through the pending-current ring ``[K, B, out]`` (updated in place) whose
    slot ``head`` is the current step; returns (outputs ``[t, B, out]``, new head)."""
    xn = x.detach().numpy()  # any strides
    out = np.empty((xn.shape[0], xn.shape[1], packed.out_features), xn.dtype)
    counts = np.zeros(3, np.float64)
    head = _kernel("stream", 1)(xn, packed.ptr, packed.out_idx, packed.delay, packed.weight, ring.numpy(), head, out,
                                counts)
    work = sparse._WORK.get()
    if work is not None:
        work.calls += 1
        work.events += int(counts[0])
        work.accumulates += int(counts[1])
        work.synops += float(counts[2])
    return torch.from_numpy(out), int(head)
