"""The parts of one event-driven ``Linear`` product, timed on their own: where a layer's time goes.

For input rows ``x [rows, in]`` of random spikes (``binary``) or binned counts 1-2 (``counts``) at
``--density``, the kernels of ``neuromorph.kernels.sparse`` are called directly, as a layer calls them:

- ``count``: the row count that decides dense or sparse (and finds whether the input is binary);
- ``list``: the listing of the nonzero entries (CSR; indices only for binary input);
- ``forward``: the product from the listing (28.7 M multiply-adds for the SHD input layer at 5 %);
- ``weight_grad``: dW (and the bias gradient) from the listing and a random ``g [rows, out]``;
- ``dense_forward`` / ``dense_weight_grad``: torch's products (and bias sum) for the same shapes, for scale.

Minimum over ``--reps`` calls (the machine's noise only ever adds), wall ms, at ``--threads``.

    python benchmarks/sparse_parts.py                               # 3200 x 700 -> 256, 5 %, 1 and 2 threads
    python benchmarks/sparse_parts.py --in 256 --density 0.13 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch


def best(fn, reps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def parts(kind: str, rows: int, n_in: int, n_out: int, density: float, reps: int) -> dict:
    from neuromorph.kernels import sparse

    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(rows, n_in, generator=gen) < density).float()
    if kind == "counts":
        x *= torch.randint(1, 3, x.shape, generator=gen).float()
    w = torch.randn(n_out, n_in, generator=gen) / n_in ** 0.5
    b = torch.zeros(n_out)
    g = torch.randn(rows, n_out, generator=gen)
    wt = w.t().contiguous()
    listed = sparse.Rows(x)
    csr = listed.csr()

    def weight_grad():
        dw = np.empty((n_out, n_in), np.float32)
        sparse._weight_grad_into(csr, g.numpy(), dw, np.empty(n_out, np.float32))

    return {"binary": listed.binary, "density": listed.density,
            "count_ms": best(lambda: sparse.Rows(x), reps),
            "list_ms": best(listed.csr, reps),
            "forward_ms": best(lambda: sparse._forward_product(csr, w, b, rows, wt), reps),
            "weight_grad_ms": best(weight_grad, reps),
            "dense_forward_ms": best(lambda: torch.nn.functional.linear(x, w, b), reps),
            "dense_weight_grad_ms": best(lambda: (g.t().mm(x), g.sum(0)), reps)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3200)
    ap.add_argument("--in", dest="n_in", type=int, default=700)
    ap.add_argument("--out", dest="n_out", type=int, default=256)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = {"machine": platform.machine(), "cpus": __import__("os").cpu_count(), "rows": args.rows, "in": args.n_in,
           "out": args.n_out, "results": []}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for kind in ("binary", "counts"):
            row = {"threads": threads, "input": kind, **parts(kind, args.rows, args.n_in, args.n_out, args.density,
                                                               args.reps)}
            res["results"].append(row)
            if not args.json:
                print(f"threads={threads} {kind:6s} density {row['density']:.3f}: " + "  ".join(
                    f"{k[:-3]} {v:.3f}" for k, v in row.items() if k.endswith("_ms")) + " ms")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
