"""DelayedLinear vs DCLS's Dcls1d at the SHD configuration: forward+backward time and peak memory.

Configuration (first layer of the SHD delay net of Hammouamri et al., ICLR 2024): batch 256, 140 inputs, 256 outputs,
K = 25, T = 100 steps of 10 ms, input spike counts (10 % nonzero), Gaussian (training) form with σ = 6,
gradients for weights and positions (``--input-grad`` adds the input gradient, as in a hidden layer).
Dcls1d is called exactly as SNN-delays calls it: permute [T, B, C] -> [B, C, T], zero-pad K-1 left and
⌊(K-1)/2⌋ right, Dcls1d, permute back. Also timed: inference forward with rounded integer delays.

Timing (wall clock, and process CPU time, which load from other processes disturbs less): all
variants in one process, rounds interleaved (A B C A B C ...) so that load from other
processes hits them alike; medians over ``--rounds`` after one warm-up. Peak memory: each variant in
its own process, the rise of the peak resident set size (VmHWM, reset through /proc/self/clear_refs)
over one training step after a warm-up step, above the resident size before it (Linux only).

    python benchmarks/delays.py [--batch 256] [--steps 100] [--rounds 5] [--threads 2] [--input-grad] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

VARIANTS = ("dcls.Dcls1d", "neuromorph.spectral", "neuromorph.direct")


def _rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5" resets VmHWM to the current RSS
        fh.write("5")


def _build(variant: str, n_in: int, n_out: int, k: int):
    """(forward, layer, to_inference) for one variant, with the same weights and positions."""
    torch.manual_seed(1)
    weight = torch.empty(n_out, n_in)
    torch.nn.init.kaiming_uniform_(weight, nonlinearity="relu")
    pos = torch.empty(n_out, n_in).uniform_(-(k // 2), k // 2)
    if variant == "dcls.Dcls1d":
        from DCLS.construct.modules import Dcls1d

        layer = Dcls1d(n_in, n_out, kernel_count=1, dilated_kernel_size=k, bias=False, version="gauss")
        with torch.no_grad():
            layer.weight.copy_(weight.unsqueeze(-1))
            layer.P.copy_(pos.view(layer.P.shape))
            layer.SIG.fill_(6.0)
        layer.SIG.requires_grad_(False)

        def forward(inp):
            return layer(F.pad(inp.permute(1, 2, 0), (k - 1, (k - 1) // 2))).permute(2, 0, 1)

        def to_inference():
            layer.version = layer.DCK.version = "max"
            with torch.no_grad():
                layer.SIG.zero_()
                layer.P.round_()

        return forward, layer, to_inference
    from neuromorph.nn import DelayedLinear

    layer = DelayedLinear(n_in, n_out, k, method=variant.split(".")[1], sigma=6.0)
    with torch.no_grad():
        layer.weight.copy_(weight)
    layer.set_positions(pos)
    return layer, layer, layer.round_delays


def _input(batch: int, steps: int, n_in: int, grad: bool):
    torch.manual_seed(0)
    x = (torch.rand(steps, batch, n_in) < 0.1).float() * torch.randint(1, 4, (steps, batch, n_in)).float()
    return x.requires_grad_(grad)


def _train_step(forward, layer, x) -> None:
    y = forward(x)
    y.backward(torch.ones_like(y))
    layer.zero_grad(set_to_none=True)
    x.grad = None


def _memory_worker(variant: str, a) -> dict:
    torch.set_num_threads(a.threads)
    forward, layer, _ = _build(variant, a.inputs, a.outputs, a.kernel)
    x = _input(a.batch, a.steps, a.inputs, a.input_grad)
    _train_step(forward, layer, x)  # warm-up: one-off allocations (thread pools, caches)
    before = _rss_mib("VmRSS")
    _reset_peak_rss()
    _train_step(forward, layer, x)
    return {"variant": variant, "train_peak_mib": _rss_mib("VmHWM") - before}


def _timing(a) -> dict[str, dict]:
    torch.set_num_threads(a.threads)
    built = {v: _build(v, a.inputs, a.outputs, a.kernel) for v in VARIANTS}
    x = _input(a.batch, a.steps, a.inputs, a.input_grad)
    with torch.no_grad():  # same numbers from every variant before timing them
        ref = built[VARIANTS[0]][0](x)
        for v in VARIANTS[1:]:
            err = (built[v][0](x) - ref).abs().max().item()
            if err > 1e-3 * ref.abs().max().item():
                raise RuntimeError(f"{v} differs from Dcls1d by {err}")
    train = {v: [] for v in VARIANTS}
    train_cpu = {v: [] for v in VARIANTS}
    for r in range(a.rounds + 1):
        for v in VARIANTS:
            t0, c0 = time.perf_counter(), time.process_time()
            _train_step(built[v][0], built[v][1], x)
            if r:  # round 0 is the warm-up
                train[v].append(time.perf_counter() - t0)
                train_cpu[v].append(time.process_time() - c0)
    infer = {v: [] for v in VARIANTS}
    for v in VARIANTS:
        built[v][2]()
    x = x.detach()
    with torch.no_grad():
        for r in range(a.rounds + 1):
            for v in VARIANTS:
                t0 = time.perf_counter()
                out = built[v][0](x)
                if r:
                    infer[v].append(time.perf_counter() - t0)
    assert out.shape == (a.steps + (a.kernel - 1) // 2, a.batch, a.outputs)
    return {
        v: {
            "train_fwd_bwd_ms": 1e3 * statistics.median(train[v]),
            "train_fwd_bwd_cpu_ms": 1e3 * statistics.median(train_cpu[v]),
            "infer_fwd_ms": 1e3 * statistics.median(infer[v]),
        }
        for v in VARIANTS
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--inputs", type=int, default=140)
    p.add_argument("--outputs", type=int, default=256)
    p.add_argument("--kernel", type=int, default=25)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--input-grad", action="store_true", help="also compute the input gradient (hidden layer)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--memory-worker", choices=VARIANTS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.memory_worker:
        print(json.dumps(_memory_worker(a.memory_worker, a)))
        return 0
    opts = [f"--{n}={getattr(a, n)}" for n in ("batch", "steps", "inputs", "outputs", "kernel", "threads")]
    opts += ["--input-grad"] if a.input_grad else []
    results = _timing(a)
    for v in VARIANTS:
        # glibc would keep freed blocks in its heap and hide the peak: map every block >= 64 KiB
        # separately, so that the resident size follows the live tensors
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        out = subprocess.run(
            [sys.executable, __file__, "--memory-worker", v, *opts], check=True, capture_output=True, text=True, env=env
        )
        results[v].update(json.loads(out.stdout.strip().splitlines()[-1]))
    base = results[VARIANTS[0]]
    for r in results.values():
        r["train_speedup_vs_dcls"] = base["train_fwd_bwd_ms"] / r["train_fwd_bwd_ms"]
        r["train_cpu_speedup_vs_dcls"] = base["train_fwd_bwd_cpu_ms"] / r["train_fwd_bwd_cpu_ms"]
        r["infer_speedup_vs_dcls"] = base["infer_fwd_ms"] / r["infer_fwd_ms"]
        r["train_peak_ratio_vs_dcls"] = r["train_peak_mib"] / base["train_peak_mib"] if base["train_peak_mib"] > 0 else None
    config = {n: getattr(a, n) for n in ("batch", "steps", "inputs", "outputs", "kernel", "threads", "rounds", "input_grad")}
    if a.json:
        print(json.dumps({"config": config, "results": results}))
        return 0
    print(f"config: {config}")
    print(
        f"{'variant':20s} {'fwd+bwd ms':>11s} {'speedup':>8s} {'CPU ms':>8s} {'speedup':>8s} {'peak MiB':>9s} {'ratio':>6s} "
        f"{'infer ms':>9s} {'speedup':>8s}"
    )
    for v, r in results.items():
        ratio = r["train_peak_ratio_vs_dcls"]
        print(
            f"{v:20s} {r['train_fwd_bwd_ms']:11.1f} {r['train_speedup_vs_dcls']:8.2f} {r['train_fwd_bwd_cpu_ms']:8.1f} "
            f"{r['train_cpu_speedup_vs_dcls']:8.2f} {r['train_peak_mib']:9.1f} {(ratio if ratio is not None else float('nan')):6.2f} "
            f"{r['infer_fwd_ms']:9.1f} {r['infer_speedup_vs_dcls']:8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
