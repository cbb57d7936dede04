"""Training-step speed and peak memory of the SHD-shaped network, neuromorph beside the peer libraries.

Network: 700 inputs -> Linear+LIF 256 -> Linear+LIF 256 -> Linear+leaky integrator 20, time-major
[T, B, 700] input, cross-entropy on the time-averaged readout, Adam. One full training step (forward,
backward, optimiser) is timed; the median of ``--steps`` steps after ``--warmup`` steps is reported, in
wall-clock time and in process CPU time (all threads; the steadier figure on a loaded machine, best with
``--threads 1``).
The "relu floor" is the same network with ReLU in place of the neurons and no readout dynamics: the
cost of the matrix products alone.

Each library runs in its own subprocess. Peak memory is the working memory of a training step: the
highest resident set sampled during the first full-size step, minus the resident set just before it
(library, model, input, compiled kernels, gradients and optimiser state already in place from two steps
on a tiny input, so only what the step itself allocates counts). It is taken in a second subprocess
(no timed steps) in which glibc maps every block above 64 KiB on its own and returns it when freed
(``MALLOC_MMAP_THRESHOLD_=65536``), so that the resident set follows the memory in use: with glibc's
default, adaptive threshold, freed blocks may or may not stay resident, and the same step's peak moved
by 15-40 MB between processes at T = 500.

    python benchmarks/speed.py                  # T=100 and T=500, all libraries
    python benchmarks/speed.py --T 100 --json   # one JSON object on stdout
    python benchmarks/speed.py --T 100 --gain 8 --triangle-alpha 0.2   # hidden layers firing at 3-5 %
    python benchmarks/speed.py --T 100 --repeats 5 --libraries neuromorph relu-floor spikingjelly

On a shared machine the speed of a process drifts by tens of per cent over tens of seconds, and the
libraries run one after another. ``--repeats R`` runs the whole list R times in turn (A B C A B C ...)
and reports, per library, the median over the R runs of its median step (and lists the R values), so
that a slow spell weighs on every library alike; the ratios are taken between those medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

LIBRARIES = ["neuromorph", "neuromorph-triangle", "neuromorph-dense", "neuromorph-reference", "snntorch", "spikingjelly",
             "norse", "relu-floor"]
PEERS = ["snntorch", "spikingjelly", "norse"]
TAU, THRESHOLD, IN, HID, OUT = 2.0, 1.0, 700, 256, 20


def build(lib: str, triangle_alpha: float = 1.0):
    """Return (model, step_fn(x) -> logits [B, OUT]) for one library."""
    import torch
    from torch import nn

    if lib.startswith("neuromorph"):
        import neuromorph as nm

        # "neuromorph": default settings (synapses choose event-driven or dense by input density, neurons
        # the fused backend, atan surrogate); "-triangle": the same with the compact triangle surrogate of
        # half-width `triangle_alpha`, so that the hidden synapse's input gradient is computed only where the
        # producing neurons are within the window; "-dense": dense synapses, fused neurons (no sparse
        # backward); "-reference": dense, plain autograd
        syn = {"neuromorph": "auto", "neuromorph-triangle": "auto", "neuromorph-dense": "dense",
               "neuromorph-reference": "dense"}[lib]
        backend = "reference" if lib == "neuromorph-reference" else "auto"
        sur = dict(surrogate="triangle", alpha=triangle_alpha) if lib == "neuromorph-triangle" else {}
        net = nn.Sequential(nm.nn.Linear(IN, HID, backend=syn),
                            nm.nn.LIF(tau=TAU, threshold=THRESHOLD, backend=backend, **sur),
                            nm.nn.Linear(HID, HID, backend=syn),
                            nm.nn.LIF(tau=TAU, threshold=THRESHOLD, backend=backend, **sur),
                            nm.nn.Linear(HID, OUT, backend=syn), nm.nn.LI(tau=TAU, backend=backend))
        return net, lambda x: net(x).mean(0)
    if lib == "relu-floor":
        net = nn.Sequential(nn.Linear(IN, HID), nn.ReLU(), nn.Linear(HID, HID), nn.ReLU(), nn.Linear(HID, OUT))
        return net, lambda x: net(x).mean(0)
    if lib == "snntorch":
        import snntorch as snn

        beta = 1 - 1 / TAU

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2, self.fc3 = nn.Linear(IN, HID), nn.Linear(HID, HID), nn.Linear(HID, OUT)
                self.lif1 = snn.Leaky(beta=beta, threshold=THRESHOLD)
                self.lif2 = snn.Leaky(beta=beta, threshold=THRESHOLD)
                self.li = snn.Leaky(beta=beta, reset_mechanism="none")

            def forward(self, x):
                m1, m2, m3 = self.lif1.init_leaky(), self.lif2.init_leaky(), self.li.init_leaky()
                c1 = self.fc1(x)  # the input layer on all steps at once, as in the other libraries
                out = []
                for t in range(x.shape[0]):
                    s1, m1 = self.lif1(c1[t], m1)
                    s2, m2 = self.lif2(self.fc2(s1), m2)
                    _, m3 = self.li(self.fc3(s2), m3)
                    out.append(m3)
                return torch.stack(out)

        net = Net()
        return net, lambda x: net(x).mean(0)
    if lib == "spikingjelly":
        from spikingjelly.activation_based import functional, layer, neuron

        net = nn.Sequential(layer.Linear(IN, HID, step_mode="m"), neuron.LIFNode(tau=TAU, step_mode="m"),
                            layer.Linear(HID, HID, step_mode="m"), neuron.LIFNode(tau=TAU, step_mode="m"),
                            layer.Linear(HID, OUT, step_mode="m"),
                            neuron.LIFNode(tau=TAU, v_threshold=float("inf"), step_mode="m", store_v_seq=True))

        def step(x):
            functional.reset_net(net)
            net(x)
            return net[-1].v_seq.mean(0)

        return net, step
    if lib == "norse":
        import norse.torch as norse

        p = norse.LIFParameters(tau_mem_inv=torch.tensor(1 / TAU), tau_syn_inv=torch.tensor(1 / TAU))
        lip = norse.LIParameters(tau_mem_inv=torch.tensor(1 / TAU), tau_syn_inv=torch.tensor(1 / TAU))
        net = norse.SequentialState(nn.Linear(IN, HID), norse.LIF(p, dt=1.0), nn.Linear(HID, HID),
                                    norse.LIF(p, dt=1.0), nn.Linear(HID, OUT), norse.LI(lip, dt=1.0))
        return net, lambda x: net(x)[0].mean(0)
    raise ValueError(f"unknown library {lib!r}; choose from {LIBRARIES}")


def measure(lib: str, T: int, batch: int, steps: int, warmup: int, threads: int, density: float = 0.05,
            gain: float = 1.0, triangle_alpha: float = 1.0) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, forward = build(lib, triangle_alpha)
    with torch.no_grad():  # every library's synapses are torch.nn.Linear (or subclasses)
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(gain)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = (torch.rand(T, batch, IN) < density).float()
    y = torch.randint(0, OUT, (batch,))

    def step(x=x, y=y):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()

    # compile kernels and create optimiser state on a tiny input, so that the first full-size step's memory
    # is only what a step needs (freed memory stays resident, so later steps would hide their peak)
    for _ in range(2):
        step(x[:2, :2].clone(), y[:2].clone())
    base, peak = _rss_mb(), _peak_rss_during(step)
    if steps == 0:  # the memory run (see run_isolated)
        return {"library": lib, "T": T, "batch": batch, "peak_step_mb": peak - base}
    for _ in range(warmup):
        step()
    # the hidden layers' activity moves while the weights train (an untrained net may start silent): show it
    # at the first and the last timed step, not only at the end
    first = _activity(net, x) if lib.startswith("neuromorph") else ""
    times, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    res = {"library": lib, "T": T, "batch": batch, "median_ms": 1e3 * statistics.median(times),
           "min_ms": 1e3 * min(times), "median_cpu_ms": 1e3 * statistics.median(cpu), "peak_step_mb": peak - base}
    if lib.startswith("neuromorph"):
        res["activity"] = f"first timed step: {first}; last: {_activity(net, x)}"
    return res


def _activity(net, x) -> str:
    """Spike rate of each hidden layer and, where the spikes carry one, the fraction of entries inside the
    surrogate's window (the active set of the sparse input gradient)."""
    import torch

    from neuromorph.kernels import sparse

    parts, h = [], x
    with torch.enable_grad():
        for m in list(net)[:-2]:
            h = m(h)
            if hasattr(m, "surrogate"):
                act = sparse.active_of(h)
                parts.append(f"rate {float(h.detach().mean()):.3f}" + (f" active {act.density:.3f}" if act else ""))
    return "; ".join(parts)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_during(fn) -> float:
    """Highest resident set seen (sampled every 0.5 ms) while ``fn`` runs once."""
    import threading

    peak, done = [_rss_mb()], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(5e-4)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    fn()
    done.set()
    th.join()
    return max(peak[0], _rss_mb())


def run_script(script: str, lib: str, T: int, options: list, steps: int, warmup: int) -> dict:
    """Time ``lib`` in one subprocess of ``script`` (``--_one lib --T T`` and ``options``, then the step
    counts), then measure its step's memory in another, untimed one (module docstring). The harness of
    every speed benchmark that reuses :func:`measure`."""
    def one(steps: int, warmup: int, env: dict) -> dict:
        cmd = [sys.executable, script, "--_one", lib, "--T", str(T), *options, "--steps", str(steps),
               "--warmup", str(warmup)]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore", **env})
        if out.returncode != 0:
            return {"library": lib, "T": T, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
        return json.loads(out.stdout.strip().splitlines()[-1])

    row = one(steps, warmup, {})
    if "error" not in row:
        mem = one(0, 0, {"MALLOC_MMAP_THRESHOLD_": "65536"})
        if "error" in mem:
            return mem
        row["peak_step_mb"] = mem["peak_step_mb"]
    return row


def run_isolated(lib: str, args) -> dict:
    return run_script(__file__, lib, args.T[0],
                      ["--batch", str(args.batch), "--threads", str(args.threads), "--density", str(args.density),
                       "--gain", str(args.gain), "--triangle-alpha", str(args.triangle_alpha)], args.steps, args.warmup)


def _combine(runs: list) -> dict:
    """One library's row from its repeated runs: medians of the per-run medians (the runs listed)."""
    failed = [r for r in runs if "error" in r]
    if failed or len(runs) == 1:
        return (failed or runs)[0]
    row = dict(runs[-1])  # activity and the like from the last run
    for key in ("median_ms", "median_cpu_ms", "peak_step_mb"):
        row[key] = statistics.median(r[key] for r in runs)
    row["min_ms"] = min(r["min_ms"] for r in runs)
    row["runs_ms"] = [r["median_ms"] for r in runs]
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--libraries", nargs="+", default=LIBRARIES)
    ap.add_argument("--density", type=float, default=0.05, help="input spike probability per step and channel")
    ap.add_argument("--gain", type=float, default=1.0,
                    help="multiply every library's initial synaptic weights (1: torch's default init, whose hidden "
                         "layers stay silent; about 8 makes them fire at 3-5 %% per step)")
    ap.add_argument("--triangle-alpha", type=float, default=1.0,
                    help="half-width of the triangle surrogate of the neuromorph-triangle row (default 1, the "
                         "library's default)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="run the library list this many times in turn; report medians over the runs")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--_one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._one:
        print(json.dumps(measure(args._one, args.T[0], args.batch, args.steps, args.warmup, args.threads, args.density,
                                 args.gain, args.triangle_alpha)))
        return 0
    results = []
    for T in args.T:
        runs = [[run_isolated(lib, argparse.Namespace(**{**vars(args), "T": [T]})) for lib in args.libraries]
                for _ in range(args.repeats)]
        rows = [_combine([run[k] for run in runs]) for k in range(len(args.libraries))]
        ok = {r["library"]: r for r in rows if "error" not in r}
        peers = [ok[p] for p in PEERS if p in ok]
        fastest = min(peers, key=lambda r: r["median_ms"]) if peers else None
        leanest = min(peers, key=lambda r: r["peak_step_mb"]) if peers else None
        floor = ok.get("relu-floor")
        for r in rows:
            if "error" in r:
                continue
            if fastest:
                r["speedup_vs_fastest_peer"] = fastest["median_ms"] / r["median_ms"]
                r["fastest_peer"] = fastest["library"]
                r["peak_vs_leanest_peer"] = r["peak_step_mb"] / leanest["peak_step_mb"]
                # on a shared machine the CPU times are the steadier comparison
                fastest_cpu = min(peers, key=lambda q: q["median_cpu_ms"])
                r["cpu_speedup_vs_fastest_peer"] = fastest_cpu["median_cpu_ms"] / r["median_cpu_ms"]
            if floor:
                r["ratio_to_relu_floor"] = r["median_ms"] / floor["median_ms"]
                r["cpu_ratio_to_relu_floor"] = r["median_cpu_ms"] / floor["median_cpu_ms"]
        results.extend(rows)
        if not args.json:
            print(f"T={T} batch={args.batch} threads={args.threads} input density={args.density} gain={args.gain} "
                  f"triangle alpha={args.triangle_alpha} (median of {args.steps} steps"
                  f"{f', median of {args.repeats} runs' if args.repeats > 1 else ''}; load "
                  f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end)")
            for r in rows:
                if "error" in r:
                    print(f"  {r['library']:22s} ERROR {r['error']}")
                    continue
                extra = ""
                if "speedup_vs_fastest_peer" in r:
                    extra += f"  x{r['speedup_vs_fastest_peer']:.2f} vs fastest peer ({r['fastest_peer']})"
                if "ratio_to_relu_floor" in r:
                    extra += f"  {r['ratio_to_relu_floor']:.2f}x relu floor"
                if "cpu_ratio_to_relu_floor" in r:
                    extra += (f"  | CPU: {r['cpu_ratio_to_relu_floor']:.2f}x relu floor, "
                              f"x{r.get('cpu_speedup_vs_fastest_peer', float('nan')):.2f} vs fastest peer")
                print(f"  {r['library']:22s} {r['median_ms']:8.1f} ms  (CPU {r['median_cpu_ms']:7.1f} ms)  "
                      f"step peak {r['peak_step_mb']:6.1f} MB{extra}")
                if len(r.get("runs_ms", ())) > 1:
                    print(f"  {'':22s} runs: {' '.join(f'{v:.1f}' for v in r['runs_ms'])} ms")
                if r.get("activity"):
                    print(f"  {'':22s} hidden layers: {r['activity']}")
    if args.json:
        print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                          "cpus": os.cpu_count(), "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
