"""How fast can this core scatter? The floor under the event-driven delay kernel (``DelayedLinear`` inference).

The delay kernel's inner loop is a scattered accumulate, ``out[offset[p]] += v · weight[p]`` over the synapses
of each input event. This times that loop alone and the kernel itself, in ns per accumulate, one thread:

- ``l1``: one 256-synapse list (offsets a permutation of 0..255) applied over and over to a 256-float output:
  everything in L1;
- ``l2``: 256 such lists (512 KB of offsets and weights, as a 256 → 256 layer's packed synapses), one picked at
  random per event: the lists stream from L2;
- ``kernel``: ``neuromorph.kernels.sparse_delays`` delivering a random 256 → 256 layer (K = 25, integer
  delays) on ``--batch`` samples × ``--T`` steps of 8 % binary input (independent across samples, so
  ``deliver`` runs its scalar kernel: the 8-sample kernel pays only where the samples' events share their
  (step, input) pairs, as a trained network's do);
- ``kernel-delay0``: the same with every delay 0 and each input's outputs in increasing order (so the
  25-row output window and the output order cannot be what limits it).

Beside them, ``lane_kernel_ns_per_accumulate`` times the ``kernel`` case through the 8-sample kernel, called
directly (per accumulate delivered: where the samples' events rarely share a block, as here, most of its
8-lane adds carry one event).

    python benchmarks/scatter_floor.py [--T 127 --batch 100 --density 0.08 --reps 7]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numba
import numpy as np
import torch

from neuromorph.kernels import sparse, sparse_delays


@numba.njit(nogil=True)
def _scatter_l1(fl, w, ob, reps, v):  # pragma: no cover - compiled by numba
    n = fl.shape[0]
    for _ in range(reps):
        for p in range(n):
            ob[fl[p]] += v * w[p]


@numba.njit(nogil=True)
def _scatter_lists(fl, w, ob, order, reps, v):  # pragma: no cover - compiled by numba
    for _ in range(reps):
        for e in range(order.shape[0]):
            p0 = np.uint64(order[e] * 256)
            for p in range(p0, p0 + np.uint64(256)):
                ob[fl[p]] += v * w[p]


def _best_ns(fn, accumulates: int, reps: int) -> float:
    fn()  # compile / warm
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return 1e9 * statistics.median(times) / accumulates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, default=127)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--density", type=float, default=0.08)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    v = np.float32(1.0)
    out: dict = {"machine": platform.machine(), "python": platform.python_version(), "numba": numba.__version__,
                 "load_start": list(os.getloadavg()), "ns_per_accumulate": {}}
    res = out["ns_per_accumulate"]

    fl = rng.permutation(256).astype(np.uint32)
    w = rng.random(256, dtype=np.float32)
    ob = np.zeros(256, np.float32)
    res["l1"] = _best_ns(lambda: _scatter_l1(fl, w, ob, 20000, v), 256 * 20000, args.reps)

    fls = np.concatenate([rng.permutation(256) for _ in range(256)]).astype(np.uint32)
    ws = rng.random(256 * 256, dtype=np.float32)
    order = rng.integers(0, 256, 4096)
    res["l2"] = _best_ns(lambda: _scatter_lists(fls, ws, ob, order, 5, v), 256 * 4096 * 5, args.reps)

    k = 25
    weight = torch.from_numpy(rng.standard_normal((256, 256), dtype=np.float32))
    x = torch.from_numpy((rng.random((args.T, args.batch, 256)) < args.density).astype(np.float32))
    steps = args.T + (k - 1) // 2
    for name, delays in (("kernel", torch.from_numpy(rng.integers(0, k, (256, 256)))),
                         ("kernel-delay0", torch.zeros(256, 256, dtype=torch.int64))):
        packed = sparse_delays.pack(weight, delays, k)
        with sparse.count_work() as work:
            sparse_delays.deliver(x, packed, steps)
        res[name] = _best_ns(lambda: sparse_delays.deliver(x, packed, steps), max(1, work.accumulates), args.reps)
        if name == "kernel":
            lanes = sparse_delays._kernel("deliver_lanes", 1)
            y = np.empty((steps, args.batch, 256), np.float32)
            args_lanes = (x.numpy(), packed.ptr, packed.offset, packed.delay, packed.weight, k, y, np.zeros((0, 2)))
            out["lane_kernel_ns_per_accumulate"] = _best_ns(lambda: lanes(*args_lanes), max(1, work.accumulates),
                                                            args.reps)
    out["load_end"] = list(os.getloadavg())
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
