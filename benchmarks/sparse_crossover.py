"""Where event-driven synapses start to pay: dense vs sparse ``nm.nn.Linear`` over a sweep of input densities.

For each layer shape and input density, one product is timed on ``rows`` = T·B rows of random spikes:

- ``train``: forward + backward (weight and bias gradient; the input gradient too for hidden layers,
  whose input comes from a neuron and needs one), as in a training step;
- ``infer``: forward under ``torch.no_grad``.

The crossover is the density where sparse and dense cost the same (log-linear interpolation between the two
sweep points around the sign change of log(sparse/dense)); ``neuromorph.kernels.sparse.DEFAULT_CROSSOVER``
comes from it. Median of ``--reps`` after one warm-up, process CPU time and wall time.

    python benchmarks/sparse_crossover.py --threads 1            # SHD shapes, 3200 rows
    python benchmarks/sparse_crossover.py --json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time

import torch

import neuromorph as nm

SHAPES = [(700, 256, False), (256, 256, True), (256, 20, True)]  # (in, out, input needs a gradient)
DENSITIES = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]


def time_one(layer, x, mode: str, reps: int) -> tuple[float, float]:
    g = torch.randn(x.shape[0], layer.out_features)

    def run():
        if mode == "infer":
            with torch.no_grad():
                layer(x)
        else:
            layer.zero_grad(set_to_none=True)
            layer(x).backward(g)

    run()
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1e3 * statistics.median(wall), 1e3 * statistics.median(cpu)


def crossover(dens, ratios):
    """Density where ratio (sparse/dense) crosses 1, log-linear between sweep points; None if it never does."""
    for (d0, r0), (d1, r1) in zip(zip(dens, ratios), zip(dens[1:], ratios[1:])):
        if r0 < 1 <= r1:
            a, b = math.log(r0), math.log(r1)
            return math.exp(math.log(d0) + (0 - a) / (b - a) * (math.log(d1) - math.log(d0)))
    return None if ratios[0] >= 1 else float("inf")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3200)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--densities", type=float, nargs="+", default=DENSITIES)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = []
    for n_in, n_out, need_x in SHAPES:
        for mode in ("train", "infer"):
            rows = []
            for d in args.densities:
                x = (torch.rand(args.rows, n_in) < d).float().requires_grad_(need_x and mode == "train")
                t = {}
                for backend in ("dense", "sparse"):
                    layer = nm.nn.Linear(n_in, n_out, backend=backend)
                    t[backend] = time_one(layer, x, mode, args.reps)
                rows.append({"density": d, "dense_ms": t["dense"][0], "sparse_ms": t["sparse"][0],
                             "dense_cpu_ms": t["dense"][1], "sparse_cpu_ms": t["sparse"][1],
                             "ratio_cpu": t["sparse"][1] / t["dense"][1]})
            cross = crossover([r["density"] for r in rows], [r["ratio_cpu"] for r in rows])
            out.append({"shape": f"{n_in}->{n_out}", "mode": mode, "rows": rows, "crossover": cross})
            if not args.json:
                print(f"{n_in}->{n_out} {mode} ({args.rows} rows, threads={args.threads}); crossover (CPU time) "
                      f"{'none' if cross is None else f'{cross:.3f}'}")
                for r in rows:
                    print(f"  density {r['density']:.3f}: dense {r['dense_ms']:7.2f} ms (CPU {r['dense_cpu_ms']:7.2f})"
                          f"  sparse {r['sparse_ms']:7.2f} ms (CPU {r['sparse_cpu_ms']:7.2f})  sparse/dense "
                          f"{r['ratio_cpu']:.2f}")
    if args.json:
        print(json.dumps({"machine": platform.machine(), "threads": args.threads, "results": out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
