"""Would an event-driven first convolution pay on N-MNIST frames? (issue 14, "Conv where it pays")

Measurement only: a prototype scatter convolution (numba, below; not used by the library) against
``torch.nn.functional.conv2d`` for the first layer of the ``nmnist`` recipe's ``NMNISTConvSNN`` (2 → 32
channels, 5×5, padding 2, 34×34 frames, 5 bins), in inference. For each nonzero input pixel (n, c, y, x)
with value v the prototype adds ``v · W[:, c, ky, kx]`` (all output channels, a contiguous vector) to the
output pixels it reaches; each frame is accumulated channels-last in a cached block and written out NCHW
once. Work: nnz(x) · 25 · 32 multiply-adds instead of 34 · 34 · 32 · 2 · 25 per frame. Reports the
density of the recipe's frames, the first convolution's CPU time on both paths (and the maximum
difference), its share of the whole network's inference time, and a sweep over random binary frames.

    python benchmarks/sparse_conv.py --data /path/to/data --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numba
import numpy as np
import torch
import torch.nn.functional as F


@numba.njit(cache=False)
def _scatter_conv(x, wt, pad, out):  # pragma: no cover - compiled by numba
    """x [N, C, H, W]; wt [C, KY, KX, O]; out [N, O, HO, WO] written (not read)."""
    N, C, H, W = x.shape
    _, KY, KX, O = wt.shape
    HO, WO = out.shape[2], out.shape[3]
    blk = np.zeros((HO, WO, O), wt.dtype)
    for n in range(N):
        blk[:] = 0
        for c in range(C):
            for y in range(H):
                for xx in range(W):
                    v = x[n, c, y, xx]
                    if v != 0:
                        ky0, ky1 = max(0, y + pad - HO + 1), min(KY, y + pad + 1)
                        kx0, kx1 = max(0, xx + pad - WO + 1), min(KX, xx + pad + 1)
                        for ky in range(ky0, ky1):
                            for kx in range(kx0, kx1):
                                orow = blk[y - ky + pad, xx - kx + pad]
                                wrow = wt[c, ky, kx]
                                for o in range(O):
                                    orow[o] += v * wrow[o]
        for o in range(O):
            for oy in range(HO):
                for ox in range(WO):
                    out[n, o, oy, ox] = blk[oy, ox, o]


def scatter_conv(x: torch.Tensor, w: torch.Tensor, pad: int) -> torch.Tensor:
    N, _, H, W = x.shape
    O, _, KY, KX = w.shape
    out = torch.empty((N, O, H + 2 * pad - KY + 1, W + 2 * pad - KX + 1), dtype=x.dtype)
    _scatter_conv(x.contiguous().numpy(), w.detach().permute(1, 2, 3, 0).contiguous().numpy(), pad, out.numpy())
    return out


def cpu_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        c0 = time.process_time()
        fn()
        times.append(time.process_time() - c0)
    return 1e3 * statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder holding nmnist/")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from neuromorph.models.nmnist import NMNISTConvSNN
    from neuromorph.train.data import load_split
    from neuromorph.train.recipes import get_recipe

    out: dict = {"threads": args.threads, "load_start": os.getloadavg()}
    nmn = load_split(get_recipe("nmnist").replace(data_root=f"{args.data}/nmnist", test_limit=args.samples), "test")
    xn = nmn.x.transpose(0, 1).float().contiguous()  # [T, N, 2, 34, 34] event counts
    frames = xn.reshape(-1, *xn.shape[2:]).contiguous()
    out["frames"] = int(frames.shape[0])
    out["density"] = float((frames != 0).float().mean())
    torch.manual_seed(0)
    model = NMNISTConvSNN(channels=[32, 64]).eval()
    conv = model.net[0]
    w = conv.weight.detach()
    with torch.no_grad():
        ref = F.conv2d(frames, w, padding=2)
        out["max_abs_difference"] = float((scatter_conv(frames, w, 2) - ref).abs().max())
        out["output_scale"] = float(ref.abs().max())
        dense = cpu_ms(lambda: F.conv2d(frames, w, padding=2), args.reps)
        event = cpu_ms(lambda: scatter_conv(frames, w, 2), args.reps)
        whole = cpu_ms(lambda: model(xn), args.reps)
    out["first_conv"] = {"dense_cpu_ms": dense, "event_cpu_ms": event, "dense_over_event": dense / event}
    out["whole_net_inference_cpu_ms"] = whole
    out["first_conv_share_of_inference"] = dense / whole
    sweep = {}
    for density in (0.02, 0.05, 0.1, 0.2, 0.3):
        xr = (torch.rand_like(frames) < density).float()
        with torch.no_grad():
            d = cpu_ms(lambda: F.conv2d(xr, w, padding=2), 5)
            e = cpu_ms(lambda: scatter_conv(xr, w, 2), 5)
        sweep[str(density)] = {"dense_cpu_ms": round(d, 1), "event_cpu_ms": round(e, 1), "dense_over_event": round(d / e, 2)}
    out["random_binary_sweep"] = sweep
    out["load_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
