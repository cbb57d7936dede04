"""Training-step speed of the recurrent SHD-shaped network, neuromorph beside the peers' recurrent neurons.

Network: 700 inputs -> Linear + recurrent LIF 256 -> Linear + recurrent LIF 256 -> Linear + leaky
integrator 20 (the recurrent layer's input current is ``W x_t + V s_{t-1}``, ``V`` all-to-all 256 x 256),
time-major ``[T, B, 700]`` Bernoulli(0.05) input, cross-entropy on the time-averaged readout, Adam.
Libraries:

- ``neuromorph-fused``: ``nn.Linear`` + ``nm.nn.Recurrent(nm.nn.LIF(...), 256)`` (the fused recurrent kernel);
- ``neuromorph-reference``: the same with ``backend="reference"`` (a torch loop over steps, plain autograd);
- ``snntorch``: ``snn.RLeaky(all_to_all=True, linear_features=256)`` in a Python loop over steps;
- ``norse-lif``: ``norse.LIFRecurrent`` (its input and recurrent weights inside), ``norse.LI`` readout;
- ``norse-lsnn``: ``norse.LSNNRecurrent`` (recurrent adaptive LIF), ``norse.LI`` readout.

Neuron parameters as in ``benchmarks/speed.py`` (tau 2 steps, threshold 1). Timing, CPU time and memory
exactly as there (each library in its own subprocess; median of ``--steps`` steps after ``--warmup``).

    python benchmarks/speed_recurrent.py --T 100 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import speed  # noqa: E402  (the timing and memory harness)

LIBRARIES = ["neuromorph-fused", "neuromorph-reference", "snntorch", "norse-lif", "norse-lsnn"]
PEERS = ["snntorch", "norse-lif", "norse-lsnn"]
TAU, THRESHOLD, IN, HID, OUT = speed.TAU, speed.THRESHOLD, speed.IN, speed.HID, speed.OUT


def build(lib: str, triangle_alpha: float = 1.0):  # the harness's signature (speed.build)
    """Return (model, step_fn(x) -> logits [B, OUT]) for one library."""
    import torch
    from torch import nn

    if lib.startswith("neuromorph"):
        import neuromorph as nm

        backend = lib.split("-", 1)[1]
        lif = lambda: nm.nn.LIF(tau=TAU, threshold=THRESHOLD, reset="hard", backend=backend)  # noqa: E731
        net = nn.Sequential(nn.Linear(IN, HID), nm.nn.Recurrent(lif(), HID), nn.Linear(HID, HID),
                            nm.nn.Recurrent(lif(), HID), nn.Linear(HID, OUT), nm.nn.LI(tau=TAU, backend=backend))
        return net, lambda x: net(x).mean(0)
    if lib == "snntorch":
        return snntorch_rleaky(IN, HID, OUT, beta=1 - 1 / TAU, threshold=THRESHOLD)
    if lib.startswith("norse"):
        return norse_recurrent("lif" if lib == "norse-lif" else "lsnn", IN, HID, OUT, tau=TAU, threshold=THRESHOLD)
    raise ValueError(f"unknown library {lib!r}; choose from {LIBRARIES}")


def snntorch_rleaky(n_in: int, hid: int, n_out: int, beta: float, threshold: float):
    """snnTorch's nearest equivalent of two ``nn.Recurrent`` layers and a readout: ``RLeaky(all_to_all=True)``
    stepped in Python, ``Leaky`` without reset as the readout. Returns (model, step_fn)."""
    import snntorch as snn
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(n_in, hid), nn.Linear(hid, hid), nn.Linear(hid, n_out)
            self.lif1 = snn.RLeaky(beta=beta, threshold=threshold, all_to_all=True, linear_features=hid,
                                   reset_mechanism="zero")
            self.lif2 = snn.RLeaky(beta=beta, threshold=threshold, all_to_all=True, linear_features=hid,
                                   reset_mechanism="zero")
            self.li = snn.Leaky(beta=beta, reset_mechanism="none")

        def forward(self, x):
            s1, m1 = self.lif1.init_rleaky()
            s2, m2 = self.lif2.init_rleaky()
            m3 = self.li.init_leaky()
            c1 = self.fc1(x)
            out = []
            for t in range(x.shape[0]):
                s1, m1 = self.lif1(c1[t], s1, m1)
                s2, m2 = self.lif2(self.fc2(s1), s2, m2)
                _, m3 = self.li(self.fc3(s2), m3)
                out.append(m3)
            return torch.stack(out)

    net = Net()
    return net, lambda x: net(x).mean(0)


def norse_recurrent(kind: str, n_in: int, hid: int, n_out: int, tau: float, threshold: float):
    """Norse's recurrent cells (``kind`` "lif": ``LIFRecurrent``, "lsnn": ``LSNNRecurrent``; input and recurrent
    weights inside), two layers, ``LI`` readout. Returns (model, step_fn)."""
    import norse.torch as norse
    import torch
    from torch import nn

    inv = torch.tensor(1 / tau)
    lip = norse.LIParameters(tau_mem_inv=inv, tau_syn_inv=inv)
    if kind == "lif":
        p = norse.LIFParameters(tau_mem_inv=inv, tau_syn_inv=inv, v_th=torch.tensor(threshold))
        cell = lambda i: norse.LIFRecurrent(i, hid, p=p, dt=1.0)  # noqa: E731
    else:
        p = norse.LSNNParameters(tau_mem_inv=inv, tau_syn_inv=inv, v_th=torch.tensor(threshold))
        cell = lambda i: norse.LSNNRecurrent(i, hid, p=p, dt=1.0)  # noqa: E731
    net = norse.SequentialState(cell(n_in), cell(hid), nn.Linear(hid, n_out), norse.LI(lip, dt=1.0))
    return net, lambda x: net(x)[0].mean(0)


speed.build = build  # the harness times this module's networks


def hidden_rates(T: int, batch: int) -> list[float]:
    """The two recurrent layers' firing rates of the neuromorph network on the benchmark's input (what its
    event-driven recurrent products and dV accumulation cost depends on)."""
    import torch

    torch.manual_seed(0)
    net, _ = build("neuromorph-fused")
    x = (torch.rand(T, batch, IN) < 0.05).float()
    with torch.no_grad():
        return [float(net[:2](x).mean()), float(net[:4](x).mean())]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--libraries", nargs="+", default=LIBRARIES)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threshold", type=float, default=speed.THRESHOLD,
                    help="the neurons' threshold (default 1: a silent network at initialisation, as in speed.py; "
                         "lower it to time a network that fires)")
    ap.add_argument("--_one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    global THRESHOLD
    THRESHOLD = args.threshold
    if args._one:
        print(json.dumps(speed.measure(args._one, args.T, args.batch, args.steps, args.warmup, args.threads)))
        return 0
    rows = []
    for lib in args.libraries:
        rows.append(speed.run_script(__file__, lib, args.T, ["--batch", str(args.batch), "--threads", str(args.threads),
                                                             "--threshold", str(args.threshold)], args.steps, args.warmup))
    ok = {r["library"]: r for r in rows if "error" not in r}
    peers = [ok[p] for p in PEERS if p in ok]
    fastest = min(peers, key=lambda r: r["median_cpu_ms"]) if peers else None
    for r in rows:
        if fastest and "error" not in r:
            r["cpu_speedup_vs_fastest_peer"] = fastest["median_cpu_ms"] / r["median_cpu_ms"]
            r["wall_speedup_vs_fastest_peer"] = fastest["median_ms"] / r["median_ms"]
            r["fastest_peer"] = fastest["library"]
    if args.json:
        print(json.dumps(rows))
        return 0
    rates = ", ".join(f"{r:.3f}" for r in hidden_rates(args.T, args.batch))
    print(f"T={args.T} batch={args.batch} threads={args.threads} threshold={args.threshold:g} (median of {args.steps} "
          f"steps); load {os.getloadavg()[0]:.2f}; neuromorph's recurrent layers fire at rates {rates}")
    for r in rows:
        if "error" in r:
            print(f"  {r['library']:<22} error: {r['error']}")
            continue
        extra = (f"  x{r['cpu_speedup_vs_fastest_peer']:.2f} CPU / x{r['wall_speedup_vs_fastest_peer']:.2f} wall vs "
                 f"fastest peer ({r['fastest_peer']})") if fastest else ""
        print(f"  {r['library']:<22} {r['median_ms']:8.1f} ms wall {r['median_cpu_ms']:8.1f} ms CPU  step peak "
              f"{r['peak_step_mb']:6.1f} MB{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
