"""MPBN at inference: unfolded vs folded into thresholds, beside a plain LIF and SpikingJelly's MPBN neuron.

Claim checked (Guo et al., ICCV 2023): folding MPBN into per-channel thresholds gives
the same spikes at no extra inference cost. Measured: eval-mode forward time of one neuron layer on
``[T, B, C, H, W]`` input for

- ``neuromorph MPBNLIF`` unfolded (reference backend, BN at every step via the ``pre_fire`` hook),
- ``neuromorph MPBNLIF`` after ``fold_mpbn`` (a per-channel-threshold LIF on the fused backend),
- ``neuromorph LIF`` with a scalar threshold (the cost floor),
- SpikingJelly 2.0 ``MPBNLIFNode`` (multi-step, torch backend, unfolded; note it resets the normalised
  potential, so its spikes differ from those of the official code, yfguo91/MPBN).

Also checks that the folded layer's spikes equal the unfolded ones. Times are medians over ``--repeats``.

Usage::

    python benchmarks/mpbn_fold.py [--T 4] [--batch 32] [--channels 64] [--size 16] [--repeats 7] [--threads 2]

The last line of stdout is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from neuromorph.nn import LIF, MPBNLIF, fold_mpbn


def _time_interleaved(fns: dict, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall seconds and median process CPU seconds per call of each function, measured
    round-robin so that load changes on a shared machine hit every candidate alike."""
    for fn in fns.values():
        fn()  # warm-up (numba compilation, allocator)
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return ({n: statistics.median(v) for n, v in wall.items()}, {n: statistics.median(v) for n, v in cpu.items()})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    C = args.channels
    x = torch.randn(args.T, args.batch, C, args.size, args.size)

    neuron = MPBNLIF(C)
    neuron.train()
    with torch.no_grad():
        for _ in range(5):  # real running statistics
            neuron(x)
        neuron.mpbn.weight.uniform_(0.5, 1.5)
        neuron.mpbn.bias.normal_(0.0, 0.2)
    neuron.eval()
    folded = fold_mpbn(copy.deepcopy(neuron))
    plain = LIF(tau=4.0 / 3.0, threshold=0.5, reset="hard", decay_input=False).eval()

    fns = {
        "neuromorph MPBNLIF unfolded": lambda: neuron(x),
        "neuromorph MPBNLIF folded": lambda: folded(x),
        "neuromorph LIF (scalar threshold)": lambda: plain(x),
    }
    with torch.no_grad():
        same = bool(torch.equal(neuron(x), folded(x)))
        try:
            from spikingjelly.activation_based import functional as sjf
            from spikingjelly.activation_based.neuron import MPBNLIFNode

            sj = MPBNLIFNode(tau=4.0 / 3.0, v_threshold=0.5, v_reset=0.0, step_mode="m", out_channels=C)
            sj.train()
            for _ in range(5):
                sj(x)
                sjf.reset_net(sj)
            sj.eval()

            def run_sj():
                sj(x)
                sjf.reset_net(sj)

            fns["spikingjelly MPBNLIFNode unfolded"] = run_sj
        except Exception as exc:  # peer missing or its API changed: report, do not fail the benchmark
            print(f"spikingjelly skipped: {exc!r}")
        results, cpu = _time_interleaved(fns, args.repeats)

    base, cbase = results["neuromorph MPBNLIF folded"], cpu["neuromorph MPBNLIF folded"]
    print(f"input [T, B, C, H, W] = {list(x.shape)}, threads = {args.threads}, folded spikes identical: {same}")
    print(f"{'layer':40s} {'wall ms':>9s} {'x folded':>9s} {'CPU ms':>9s} {'x folded':>9s}")
    for name, sec in results.items():
        print(f"{name:40s} {sec * 1e3:9.2f} {sec / base:9.2f} {cpu[name] * 1e3:9.2f} {cpu[name] / cbase:9.2f}")
    print(json.dumps({"shape": list(x.shape), "threads": args.threads, "identical": same,
                      "wall_seconds": results, "cpu_seconds": cpu,
                      "wall_ratio_to_folded": {k: v / base for k, v in results.items()},
                      "cpu_ratio_to_folded": {k: v / cbase for k, v in cpu.items()}}))


if __name__ == "__main__":
    main()
