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
atomics. The streaming kernel keeps the pending currents in a ring buffer ``[K, B, out]`` (slot ``s mod K``
holds what arrives at step s) and adds the terms in the same order, so streaming gives the whole-sequence
outputs bit for bit.

Both kernels report their work to :func:`neuromorph.kernels.sparse.count_work`: ``events`` = nonzero inputs,
``accumulates`` = synapses actually delivered, ``synops`` = the same weighted by the input value (a count of
3 is 3 spikes), which is the energy report's synops for the layer (nonzero weights, deliveries inside the
output window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch
from numba import prange

from neuromorph.kernels import sparse

__all__ = ["Packed", "pack", "deliver", "stream", "count_events"]


def _deliver(x, ptr, fl, dl, wv, K, out, counts):  # pragma: no cover - compiled by numba
    """``out[t + d, b, j] += x[t, b, i] · w`` for every event and synapse (``out [S, B, O]`` is written, not
    read). Each sample is accumulated in its own block ``[S·O]`` (an event then writes a window of K rows of
    one block, which stays in cache; ``fl = d·O + j`` is the synapse's offset from row t) and copied out at
    the end. Entries of input i are sorted by delay: near the end the scan stops at the first delay past the
    output. ``counts[b] = (deliveries, value-weighted deliveries)``."""
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
        counts[b, 0] = n
        counts[b, 1] = syn


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


_LOOPS = {"deliver": _deliver, "stream": _stream, "nonzero": _nonzero}
_COMPILED: dict = {}


def _kernel(name: str, rows: int):
    """``name`` compiled parallel when there are enough batch rows and torch allows threads (as in
    :mod:`neuromorph.kernels.sparse`: ``torch.set_num_threads(1)`` keeps it on one core)."""
    parallel = False
    if name == "deliver" and rows > 1:  # the others are serial (the streaming step asks at every step)
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
    return Packed(ptr, jj.astype(np.int32), (dd * n_out + jj).astype(np.uint32), dd.astype(np.int32),
                  np.ascontiguousarray(w[ii, jj]), n_in, n_out, int(kernel_size))


def count_events(x: torch.Tensor) -> int:
    """``torch.count_nonzero(x)`` for a CPU float ``x [T, B, in]``, several times faster (one branch-light pass, no
    temporary): what the layer's choice of path costs before the event-driven kernel runs."""
    return int(_kernel("nonzero", 1)(x.detach().numpy()))


def deliver(x: torch.Tensor, packed: Packed, out_steps: int) -> torch.Tensor:
    """The layer's output ``[out_steps, B, out]`` for input ``x [T, B, in]`` (no bias), event-driven; ``x`` has
    the packed weights' dtype."""
    xc = x.detach()  # any strides (a time-major view of batch-major data is read in place, not copied)
    steps, batch, _ = xc.shape
    counts = np.zeros((batch, 2), np.float64)
    if steps and batch and packed.synapses:
        out = torch.empty(out_steps, batch, packed.out_features, dtype=xc.dtype)
        _kernel("deliver", batch)(xc.numpy(), packed.ptr, packed.offset, packed.delay, packed.weight,
                                  packed.kernel_size, out.numpy(), counts)
    else:
        out = torch.zeros(out_steps, batch, packed.out_features, dtype=xc.dtype)
    work = sparse._WORK.get()
    if work is not None:
        work.calls += 1
        work.events += count_events(xc)
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
