"""Training-step speed of the adaptive LIF networks at the SHD shape of the SE-adLIF recipe.

Network: 140 inputs (4 ms bins, 140 channel groups) -> Linear + neuron 360 -> Linear + neuron 360 -> Linear +
leaky integrator 20; Bernoulli(0.05) input ``[T, B, 140]``, cross-entropy on the time-averaged readout, Adam.

- ``lif-ff``: ``nm.nn.LIF`` (hard reset, learned per-neuron τ), feed-forward: the baseline of the 1.3x target;
- ``se-adlif-ff`` / ``ef-adlif-ff``: ``nm.nn.SEAdLIF`` / ``nm.nn.EFAdLIF`` (4 learned parameters per neuron,
  an adaptation current), feed-forward;
- ``lif-rec`` / ``se-adlif-rec``: the same neurons in ``nm.nn.Recurrent`` (the fused recurrent kernel);
- ``snntorch-rleaky``: ``snn.RLeaky(all_to_all=True)`` stepped in Python (no adaptation);
- ``norse-lsnn``: ``norse.LSNNRecurrent`` (recurrent adaptive-threshold LIF, its weights inside).

Timing, CPU time and memory by the harness of ``benchmarks/speed.py`` (each network in its own subprocess,
median of ``--steps`` steps after ``--warmup``).

    python benchmarks/speed_adlif.py --T 250 --batch 32 --threads 1

``--interleave`` (the feed-forward comparison of the 1.3x target) builds the networks in one process and
times them round-robin, one step of each per round (the order rotating), so that a change of machine load
hits every network alike; it reports each network's median and range of CPU time per step and, per round,
its ratio to the LIF step of the same round (median, min, max)::

    python benchmarks/speed_adlif.py --interleave --libraries lif-ff se-adlif-ff ef-adlif-ff --steps 15 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import speed  # noqa: E402  (the timing and memory harness)
import speed_recurrent  # noqa: E402  (the peers' recurrent networks)

IN, HID, OUT = 140, 360, 20
LIBRARIES = ["lif-ff", "se-adlif-ff", "ef-adlif-ff", "lif-rec", "se-adlif-rec", "snntorch-rleaky", "norse-lsnn"]
PEERS = ["snntorch-rleaky", "norse-lsnn"]


def build(lib: str, triangle_alpha: float = 1.0):
    """Return (model, step_fn(x) -> logits [B, OUT]) for one network (``triangle_alpha``: the harness's
    signature, see speed.build; unused here)."""
    import torch
    from torch import nn

    if lib in ("lif-ff", "se-adlif-ff", "ef-adlif-ff", "lif-rec", "se-adlif-rec"):
        import neuromorph as nm

        kind, _, wiring = lib.rpartition("-")

        def neuron():
            if kind == "lif":
                return nm.nn.LIF(tau=10.0 + 10 * torch.rand(HID), learn_tau=True, shape=(HID,), reset="hard",
                                 detach_reset=True, surrogate="slayer_exp")
            return (nm.nn.SEAdLIF if kind == "se-adlif" else nm.nn.EFAdLIF)(HID)

        cell = (lambda: nm.nn.Recurrent(neuron(), HID)) if wiring == "rec" else neuron
        net = nn.Sequential(nn.Linear(IN, HID), cell(), nn.Linear(HID, HID), cell(), nn.Linear(HID, OUT),
                            nm.nn.LI(tau=15.0))
        return net, lambda x: net(x).mean(0)
    if lib == "snntorch-rleaky":
        return speed_recurrent.snntorch_rleaky(IN, HID, OUT, beta=0.9, threshold=1.0)
    if lib == "norse-lsnn":
        return speed_recurrent.norse_recurrent("lsnn", IN, HID, OUT, tau=10.0, threshold=1.0)
    raise ValueError(f"unknown network {lib!r}; choose from {LIBRARIES}")


speed.build = build  # the harness times this module's networks at this module's shape
speed.IN, speed.OUT = IN, OUT


def interleaved(libraries: list[str], T: int, batch: int, steps: int, warmup: int, threads: int,
                density: float = 0.05) -> dict:
    """Time ``libraries`` round-robin in this process: ``steps`` rounds of one training step each (the order
    rotated every round, after ``warmup`` rounds). Returns per network the CPU and wall ms of every round and,
    when ``lif-ff`` is among them, the per-round CPU ratios to it."""
    import statistics
    import time

    import torch

    torch.set_num_threads(threads)
    x = (torch.rand(T, batch, IN, generator=torch.Generator().manual_seed(0)) < density).float()
    y = torch.randint(0, OUT, (batch,), generator=torch.Generator().manual_seed(1))
    nets = {}
    for lib in libraries:
        torch.manual_seed(0)
        net, forward = build(lib)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step(forward=forward, opt=opt):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(forward(x), y).backward()
            opt.step()

        nets[lib] = step
    cpu: dict[str, list[float]] = {lib: [] for lib in libraries}
    wall: dict[str, list[float]] = {lib: [] for lib in libraries}
    for r in range(warmup + steps):
        order = libraries[r % len(libraries):] + libraries[: r % len(libraries)]
        for lib in order:
            t0, c0 = time.perf_counter(), time.process_time()
            nets[lib]()
            if r >= warmup:
                wall[lib].append(1e3 * (time.perf_counter() - t0))
                cpu[lib].append(1e3 * (time.process_time() - c0))
    out = {"T": T, "batch": batch, "rounds": steps, "threads": threads, "load": os.getloadavg()[0], "networks": {}}
    for lib in libraries:
        row = {"median_cpu_ms": statistics.median(cpu[lib]), "min_cpu_ms": min(cpu[lib]), "max_cpu_ms": max(cpu[lib]),
               "median_ms": statistics.median(wall[lib])}
        if "lif-ff" in cpu and lib != "lif-ff":
            ratios = [a / b for a, b in zip(cpu[lib], cpu["lif-ff"])]
            row.update({"ratio_vs_lif_ff_median": statistics.median(ratios), "ratio_vs_lif_ff_min": min(ratios),
                        "ratio_vs_lif_ff_max": max(ratios)})
        out["networks"][lib] = row
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, default=250)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--libraries", nargs="+", default=LIBRARIES)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--interleave", action="store_true",
                    help="time the networks round-robin in one process (per-round ratios to lif-ff)")
    ap.add_argument("--_one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._one:
        print(json.dumps(speed.measure(args._one, args.T, args.batch, args.steps, args.warmup, args.threads)))
        return 0
    if args.interleave:
        res = interleaved(args.libraries, args.T, args.batch, args.steps, args.warmup, args.threads)
        if args.json:
            print(json.dumps(res))
            return 0
        print(f"T={args.T} batch={args.batch} threads={args.threads}, {args.steps} interleaved rounds; load "
              f"{res['load']:.2f}")
        for lib, r in res["networks"].items():
            extra = ""
            if "ratio_vs_lif_ff_median" in r:
                extra = (f"  {r['ratio_vs_lif_ff_median']:.3f}x the LIF step (CPU, per-round median; range "
                         f"{r['ratio_vs_lif_ff_min']:.3f}-{r['ratio_vs_lif_ff_max']:.3f})")
            print(f"  {lib:<14} {r['median_cpu_ms']:7.1f} ms CPU (range {r['min_cpu_ms']:.1f}-{r['max_cpu_ms']:.1f}), "
                  f"{r['median_ms']:7.1f} ms wall{extra}")
        return 0
    rows = []
    for lib in args.libraries:
        rows.append(speed.run_script(__file__, lib, args.T, ["--batch", str(args.batch), "--threads", str(args.threads)],
                                     args.steps, args.warmup))
    ok = {r["library"]: r for r in rows if "error" not in r}
    for r in rows:
        if "error" in r:
            continue
        if "lif-ff" in ok and r["library"].endswith("-ff"):
            r["cpu_ratio_vs_lif_ff"] = r["median_cpu_ms"] / ok["lif-ff"]["median_cpu_ms"]
        peers = [ok[p] for p in PEERS if p in ok]
        if peers and r["library"].endswith("-rec"):
            fastest = min(peers, key=lambda p: p["median_cpu_ms"])
            r["cpu_speedup_vs_fastest_peer"] = fastest["median_cpu_ms"] / r["median_cpu_ms"]
            r["fastest_peer"] = fastest["library"]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"T={args.T} batch={args.batch} threads={args.threads} (median of {args.steps} steps); load "
          f"{os.getloadavg()[0]:.2f}")
    for r in rows:
        if "error" in r:
            print(f"  {r['library']:<18} error: {r['error']}")
            continue
        extra = ""
        if "cpu_ratio_vs_lif_ff" in r:
            extra = f"  {r['cpu_ratio_vs_lif_ff']:.2f}x the LIF step (CPU)"
        if "cpu_speedup_vs_fastest_peer" in r:
            extra = f"  x{r['cpu_speedup_vs_fastest_peer']:.2f} faster than {r['fastest_peer']} (CPU)"
        print(f"  {r['library']:<18} {r['median_ms']:8.1f} ms wall {r['median_cpu_ms']:8.1f} ms CPU  step peak "
              f"{r['peak_step_mb']:6.1f} MB{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
