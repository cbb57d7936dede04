"""The fused CPU neuron loops on their own: forward and adjoint time per call, without autograd or layers.

What it measures: ``neuromorph.kernels.fused._compiled`` loops (the code every fused neuron layer runs on the
CPU) on flat ``[T, M]`` arrays, M = batch x neurons, for LIF, CUBA, ALIF, SE-adLIF and EF-adLIF with the
default atan surrogate. For each: the training forward (saving the backward's trace h_t / a_{t-1}), the
inference forward (``save_h=False``: the trace is not kept, one [T, M] array less written), and the adjoint
(with the parameter gradients a layer with learnable tau/threshold needs). Median of ``--reps`` calls,
process CPU time and wall time, one thread (``--threads N``: the parallel build on N threads where a layer
would use it, in blocks of neurons; compare the wall times). It backs the kernel-level figures of
benchmarks/RESULTS.md (e.g. the LIF adjoint on [100, 32*256] float32), which were first measured with
throw-away scripts.

    python benchmarks/neuron_kernels.py [--T 100 --M 8192 --dtype float32 --reps 20 --configs lif,cuba,...]
                                        [--threads 1]

Prints one JSON object (per configuration: ms per call and ns per element for each loop).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from neuromorph.kernels import fused
from neuromorph.kernels.config import DynamicsConfig, carries_a, carries_i

CONFIGS = {
    "lif": DynamicsConfig(),
    "cuba": DynamicsConfig(cuba=True, reset="hard"),
    "alif": DynamicsConfig(alif=True),
    "se-adlif": DynamicsConfig(adlif="se"),
    "ef-adlif": DynamicsConfig(adlif="ef"),
}


def _timed(fn, reps: int) -> tuple[float, float]:
    """Median (process CPU ms, wall ms) of ``reps`` calls."""
    fn()  # compiles (or loads from numba's cache) outside the timing
    cpu, wall = [], []
    for _ in range(reps):
        t0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
    return 1e3 * statistics.median(cpu), 1e3 * statistics.median(wall)


def measure(cfg: DynamicsConfig, T: int, M: int, dtype: np.dtype, reps: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((T, M)) * 0.6 + 0.3).astype(dtype)
    par = lambda lo, hi: rng.uniform(lo, hi, M).astype(dtype)  # noqa: E731  (per-element parameters)
    P = [par(0.8, 0.95), par(0.8, 1.2), par(0.7, 0.9), par(0.9, 0.99), par(0.05, 0.2), par(0.1, 0.4)]
    consts = fused._consts(cfg, dtype)
    zeros = lambda *shape: np.zeros(shape, dtype)  # noqa: E731
    dummy = zeros(1, 1)
    state = lambda used: zeros(M) if used else zeros(1)  # noqa: E731
    ci, ca = carries_i(cfg), carries_a(cfg)
    out, hseq = np.empty_like(x), np.empty_like(x)
    aseq = np.empty_like(x) if ca else dummy
    res = {}
    parallel, chunk = fused._blocks(T, M)  # as a layer would run on torch's thread count
    res["parallel"] = parallel
    fwd = fused._compiled(cfg, False, dtype=dtype, parallel=parallel)
    timed = lambda name, fn: res.update(zip((f"{name}_ms", f"{name}_wall_ms"), _timed(fn, reps)))  # noqa: E731
    timed("forward_train", lambda: fwd(x, *P, consts, out, hseq, dummy, dummy, aseq, state(True), state(ci),
                                       state(ca), chunk))
    fwd_inf = fused._compiled(cfg, False, dtype=dtype, parallel=parallel, save_h=False)
    out_inf = np.empty_like(x)  # preallocated as for the training forward: the loops alone are timed
    timed("forward_infer", lambda: fwd_inf(x, *P, consts, out_inf, dummy, dummy, dummy, dummy, state(True),
                                           state(ci), state(ca), chunk))
    # the trace the adjoint reads: from one training forward
    fwd(x, *P, consts, out, hseq, dummy, dummy, aseq, state(True), state(ci), state(ca), chunk)
    gout = rng.standard_normal((T, M)).astype(dtype)
    need_alpha = bool(cfg.cuba)
    bwd = fused._compiled(cfg, True, dtype=dtype, parallel=parallel, need_beta=True, need_alpha=need_alpha)
    sur = cfg.surrogate
    iseq = dummy  # need_alpha with CUBA reads i_t: give it the input as a stand-in of the right shape
    if need_alpha:
        iseq = x.copy()

    def adjoint():
        grads = [zeros(M) for _ in range(6)]
        bwd(gout, dummy, hseq, iseq, aseq, x, *P, zeros(M), state(ci), consts, dtype.type(sur.alpha),
            dtype.type(sur.scale), np.empty_like(x), *grads, zeros(M), state(ci), state(ca), chunk)

    timed("adjoint", adjoint)
    for k in [k for k in res if k.endswith("_ms") and "_wall" not in k]:
        res[k.replace("_ms", "_ns_per_element")] = 1e6 * res[k] / (T * M)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--M", type=int, default=32 * 256, help="batch x neurons (default: the SHD step's 32 x 256)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, from: " + ", ".join(CONFIGS))
    ap.add_argument("--threads", type=int, default=1, help="torch's thread count, which the neuron loops follow")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configurations {unknown}; choose from {list(CONFIGS)}")
    out = {"machine": platform.machine(), "python": platform.python_version(), "torch": torch.__version__,
           "cpus": os.cpu_count(), "threads": args.threads, "T": args.T, "M": args.M, "dtype": args.dtype,
           "reps": args.reps, "load_start": list(os.getloadavg()), "configs": {}}
    for name in names:
        out["configs"][name] = measure(CONFIGS[name], args.T, args.M, np.dtype(args.dtype), args.reps)
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in out["configs"][name].items() if k.endswith("_ms")),
              file=sys.stderr)
    out["load_end"] = list(os.getloadavg())
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
