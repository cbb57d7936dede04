"""Event-driven synapses on real input: training step, inference and streaming, sparse (default) vs dense.

Data: the shd_fsdd test split binned as the ``shd`` recipe does (10 ms bins, 700 channels summed in groups of
5: [300, 115, 140] event counts) and N-MNIST test frames as the ``nmnist`` recipe makes them (5 frames).
For each case the same model runs with ``nm.nn.Linear``'s default (``backend="auto"``: event-driven below the
crossover density) and with every synapse dense (``synapse_backend("dense")``), same weights, same input.

- ``train``: one training step (forward, backward, Adam) of the SHD-shaped network 140 → 256 → 256 → 10
  (LIF, tau 2, threshold 1, leaky-integrator readout) on 32 samples; beside it the ReLU floor (the same
  network with ReLU and dense products). The hidden weights are scaled by ``--gain`` so that the hidden
  layers fire (an untrained network with torch's initialisation is silent here); the measured densities of
  every synapse's input are printed.
- ``nmnist-train``: one training step of the N-MNIST recipe's conv net (``NMNISTConvSNN``, channels 32/64)
  on 32 samples: only its Linear layers can run event-driven, the convolutions stay dense.
- ``infer``: the whole shd_fsdd test split through the SHD-shaped network, batches of 100, no gradients.
- ``stream``: ``nm.nn.Streaming`` with batch 1, one step at a time, over the first ``--stream-samples``
  samples; latency per step (median) and input events per second.
- ``delay``: the shd_fsdd recipe's model (``SHDDelayNet``, DCLS delays, evaluated with rounded integer
  delays as the recipe evaluates): a trained one from ``--checkpoint`` (a ``neuromorph train shd``
  checkpoint), else one trained here first, deterministically: the ``shd`` recipe for ``--train-epochs``
  epochs (default 10, about 4.5 min of CPU on one core) with ``--train-seed`` (default 0) on one thread,
  the same as ``neuromorph train shd --data-root DATA/shd_fsdd --epochs 10 --seed 0`` (kept in
  ``--train-out`` if given). A trained model matters: the speed depends on how often its hidden layers fire
  (an untrained one fires far more). Inference on the whole test split (batches of ``--batch``) and
  streaming (batch 1, one step per call, ``--stream-samples`` samples), event-driven delays (default,
  ``backend="auto"``) vs dense (``synapse_backend("dense")``: the spectral/conv evaluation for whole
  sequences, one product with all K taps per step when streaming; for context also ``method="direct"``,
  the convolution over all K taps). Reports the density of every delay
  layer's input, the path taken, the predictions and accuracy on both paths, latency per step and events/s,
  and the minor page faults of one inference pass on each path after the timed runs (the first touch of
  fresh large allocations: the part of the time that depends on the process's allocator state).

Times are medians over ``--reps`` after a warm-up, wall-clock and process CPU time, ``--threads`` threads. The
two paths of a row are timed alternately (sparse, dense, sparse, ...), so that a slow spell of a shared machine
weighs on both alike; ``speedup_cpu_pairs`` is the median of the per-pair CPU-time ratios.
``--profile`` adds the delay section's per-layer CPU time in inference (forward hooks, after the timed runs),
and, for each delay layer, the inputs it receives over the split run through each of its two event-driven
kernels (the scalar one and the one that delivers to 8 samples at once), with the events per (step, input,
block of 8 samples) that has any, by which ``deliver`` chooses between them.

    python benchmarks/sparse_real.py --data /path/to/data --threads 1
    python benchmarks/sparse_real.py --data /path/to/data --threads 1 --sections delay
    python benchmarks/sparse_real.py --data /path/to/data --threads 1 --sections delay --checkpoint best.pt
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import numpy as np
import torch
from torch import nn

import neuromorph as nm
from neuromorph.kernels.sparse import synapse_backend

HID, TAU, THRESHOLD = 256, 2.0, 1.0


def _run(fn) -> tuple[float, float, float, float]:
    t0, c0, o0 = time.perf_counter(), time.process_time(), os.times()
    fn()
    o1 = os.times()
    return time.perf_counter() - t0, time.process_time() - c0, o1.user - o0.user, o1.system - o0.system


def _medians(runs) -> tuple[float, float, float, float]:
    return tuple(1e3 * statistics.median(v) for v in zip(*runs))


def timed(fn, reps: int) -> tuple[float, float, float, float]:
    """Medians in ms: wall, process CPU, and the CPU split into user and system time (page faults of large
    fresh allocations count as system time, so the process's allocator state shows there)."""
    fn()
    return _medians([_run(fn) for _ in range(reps)])


def paired(fn, reps: int) -> dict:
    """``fn()`` with the default synapses and with all synapses dense, timed alternately (sparse, dense, sparse,
    ...), so that a slow spell of a shared machine weighs on both alike. Returns the two paths' medians as
    :func:`timed` gives them, the speed-ups as ratios of those medians, and the median of the per-pair
    CPU-time ratios with its range."""
    fn()
    with synapse_backend("dense"):
        fn()
    s, d = [], []
    for _ in range(reps):
        s.append(_run(fn))
        with synapse_backend("dense"):
            d.append(_run(fn))
    pairs = [b[1] / a[1] for a, b in zip(s, d)]
    sm, dm = _medians(s), _medians(d)
    return {"sparse_ms": sm, "dense_ms": dm, "speedup_cpu": dm[1] / sm[1], "speedup_wall": dm[0] / sm[0],
            "speedup_cpu_pairs": statistics.median(pairs), "speedup_cpu_pairs_range": [min(pairs), max(pairs)]}


def page_faults(fn) -> int:
    """Minor page faults of this process during one call of ``fn()``."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def shd_net(n_in: int, n_out: int, gain: float) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nm.nn.Linear(n_in, HID), nm.nn.LIF(tau=TAU, threshold=THRESHOLD),
                        nm.nn.Linear(HID, HID), nm.nn.LIF(tau=TAU, threshold=THRESHOLD),
                        nm.nn.Linear(HID, n_out), nm.nn.LI(tau=TAU))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nm.nn.Linear):
                m.weight.mul_(gain)
    return net


def densities(net: nn.Module) -> list[float]:
    return [round(m.last_density, 4) for m in net.modules() if isinstance(m, nm.nn.Linear)]


def train_step(net, forward, x, y):
    """One training step (forward, backward, Adam) as a function of nothing."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(forward(x), y).backward()
        opt.step()

    return step


def layer_times(net: nn.Module, fn, reps: int) -> dict:
    """Process CPU ms per call of ``fn()`` spent in each leaf module of ``net`` (forward hooks; mean of ``reps``
    calls after the timed runs, so the hooks do not disturb those), keyed "name Type"."""
    acc: dict = {}
    start: dict = {}
    hooks = []
    for name, m in net.named_modules():
        if name and not list(m.children()):
            key = f"{name} {type(m).__name__}"
            hooks.append(m.register_forward_pre_hook(lambda m, a, k=key: start.__setitem__(k, time.process_time())))
            hooks.append(m.register_forward_hook(
                lambda m, a, o, k=key: acc.__setitem__(k, acc.get(k, 0.0) + time.process_time() - start[k])))
    try:
        for _ in range(reps):
            fn()
    finally:
        for h in hooks:
            h.remove()
    return {k: round(1e3 * v / reps, 2) for k, v in acc.items()}


def delay_kernels(infer, layers: list, reps: int) -> list[dict]:
    """For each delay layer, its inputs over one ``infer()`` pass, delivered by the scalar and by the 8-sample
    kernel (called directly, so both run whatever ``deliver`` would choose; minimum ms over ``reps`` passes,
    wall, ``torch``'s thread count), and the events per (step, input, block of 8 samples) with any."""
    from neuromorph.kernels import sparse_delays

    inputs: dict = {id(m): [] for m in layers}
    hooks = [m.register_forward_pre_hook(lambda m, a: inputs[id(m)].append(a[0])) for m in layers]
    try:
        infer()
    finally:
        for h in hooks:
            h.remove()
    rows = []
    for m in layers:
        packed, xs = m._packed(torch.float32), inputs[id(m)]
        steps = xs[0].shape[0] + m.output_extension
        events, blocks = np.sum([sparse_delays._kernel("lane_blocks", 1)(x.numpy()) for x in xs], axis=0)
        row = {"layer": f"{m.in_features} -> {m.out_features}", "events_per_block": float(events / max(1, blocks))}
        for name in ("deliver", "deliver_lanes"):
            outs = [np.empty((steps, x.shape[1], m.out_features), np.float32) for x in xs]
            none = np.zeros((0, 2))

            def run():
                for x, out in zip(xs, outs):
                    sparse_delays._kernel(name, -(-x.shape[1] // 8) if name == "deliver_lanes" else x.shape[1])(
                        x.numpy(), packed.ptr, packed.offset, packed.delay, packed.weight, packed.kernel_size, out,
                        none)

            run()
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            row[f"{name}_ms"] = 1e3 * min(times)
        row["lanes_speedup"] = row["deliver_ms"] / row["deliver_lanes_ms"]
        rows.append(row)
    return rows


def both(fn):
    """``fn()`` with the default synapses and with all synapses dense."""
    sparse = fn()
    with synapse_backend("dense"):
        dense = fn()
    return sparse, dense


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder holding shd_fsdd/ and nmnist/")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--gain", type=float, default=6.0)
    ap.add_argument("--stream-samples", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sections", default="linear,nmnist,delay",
                    help="comma-separated: linear (train/infer/stream of the Linear net), nmnist, delay")
    ap.add_argument("--checkpoint", help="a `neuromorph train shd` checkpoint for the delay section (default: "
                                         "train one here, see --train-epochs)")
    ap.add_argument("--train-epochs", type=int, default=10, help="epochs of the delay model trained without --checkpoint")
    ap.add_argument("--train-seed", type=int, default=0, help="seed of the delay model trained without --checkpoint")
    ap.add_argument("--train-out", help="folder for the run that trains the delay model (default: a temporary one)")
    ap.add_argument("--batch", type=int, default=100, help="inference batch size (delay section)")
    ap.add_argument("--profile", action="store_true",
                    help="delay section: also the CPU time of each layer in inference, both paths")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sections = set(args.sections.split(","))
    from neuromorph.train.data import load_split
    from neuromorph.train.recipes import get_recipe

    out: dict = {"threads": args.threads, "load_start": os.getloadavg()}
    shd = load_split(get_recipe("shd").replace(data_root=f"{args.data}/shd_fsdd", pad="dataset"), "test")
    xs = shd.x.transpose(0, 1).float()  # [T, N, 140] event counts
    out["shd_fsdd_input_density"] = float((xs != 0).float().mean())
    n_cls = int(shd.y.max()) + 1
    if "delay" in sections:
        out["delay"] = delay_section(xs, shd.y.long(), args)
    if "linear" in sections:
        linear_section(out, xs, shd, n_cls, args)
    if "nmnist" in sections:
        nmnist_section(out, args)
    out["load_end"] = os.getloadavg()
    print(json.dumps(out, indent=None if args.json else 1))
    return 0


def train_delay_model(args) -> dict:
    """Train the ``shd`` recipe's delay network: ``neuromorph train shd --epochs E --seed S`` in a subprocess
    (one thread, CPU: deterministic); returns the checkpoint's path, the training time and test accuracy."""
    import subprocess
    import sys
    import tempfile

    out = args.train_out or tempfile.mkdtemp(prefix="sparse_real_shd_")
    cmd = [sys.executable, "-m", "neuromorph", "train", "shd", "--data-root", f"{args.data}/shd_fsdd", "--out", out,
           "--epochs", str(args.train_epochs), "--seed", str(args.train_seed), "--device", "cpu", "--overwrite",
           "--no-report", "--no-progress", "--json"]
    # its own process: the timed process then starts as fresh as with --checkpoint (allocator, caches)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"training the delay model failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"command": " ".join(cmd[1:]), "checkpoint": os.path.join(out, "best.pt"), "epochs": args.train_epochs,
            "seed": args.train_seed, "wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "test_accuracy": summary.get("test_accuracy"),
            "best_epoch": summary.get("best_epoch")}


def delay_section(xs: torch.Tensor, y: torch.Tensor, args) -> dict:
    """Inference and streaming of the shd_fsdd recipe's delay network, event-driven vs dense delays."""
    from neuromorph.models.shd import summed_softmax

    from neuromorph.train.checkpoint import load_model

    trained = None
    if args.checkpoint:
        net, _ = load_model(args.checkpoint)
        origin = os.path.basename(args.checkpoint)
    else:
        trained = train_delay_model(args)
        net, _ = load_model(trained["checkpoint"])
        origin = f"trained here: shd recipe, {args.train_epochs} epochs, seed {args.train_seed}"
    net.eval()
    nm.nn.round_delays(net)  # the recipe evaluates with integer delays
    layers = [m for m in net.modules() if isinstance(m, nm.nn.DelayedLinear)]
    res: dict = {"model": origin, "training": trained, "samples": xs.shape[1], "steps": xs.shape[0],
                 "input_events": float(xs.sum()), "input_nonzero": int(torch.count_nonzero(xs))}

    def infer():
        with torch.no_grad():
            return torch.cat([summed_softmax(net(xs[:, i:i + args.batch])).argmax(1)
                              for i in range(0, xs.shape[1], args.batch)])

    dens: list[float] = []
    hooks = [m.register_forward_pre_hook(lambda m, a: dens.append(float((a[0] != 0).float().mean())))
             for m in layers]
    pred = infer()
    for h in hooks:
        h.remove()
    n = len(layers)
    res["delay_input_densities"] = [round(statistics.mean(dens[i::n]), 4) for i in range(n)]
    res["paths"] = [m.last_path for m in layers]
    with synapse_backend("dense"):
        pred_dense = infer()
    res["accuracy"] = float((pred == y).float().mean())
    res["predictions_equal_dense"] = bool(torch.equal(pred, pred_dense))
    res["infer"] = paired(infer, args.reps)
    s = res["infer"]["sparse_ms"]
    res["infer"]["page_faults_per_pass"] = dict(zip(("sparse", "dense"), both(lambda: page_faults(infer))))
    if args.profile:  # where the time goes, per layer (after the timed runs: hooks cost a little)
        res["infer"]["layers_ms"] = dict(zip(("sparse", "dense"), both(lambda: layer_times(net, infer, args.reps))))
        res["infer"]["delay_kernels"] = delay_kernels(infer, layers, args.reps)
    # for context: the dense evaluation over all K taps (conv1d, what DCLS's Dcls1d computes)
    methods = [m.method for m in layers]
    for m in layers:
        m.method = "direct"
    with synapse_backend("dense"):
        direct = timed(infer, max(1, args.reps // 2))
    for m, method in zip(layers, methods):
        m.method = method
    res["infer"]["dense_direct_ms"] = direct
    res["infer"]["speedup_cpu_vs_direct"] = direct[1] / s[1]

    def stream():
        lat, cpu, events = [], 0.0, 0.0
        st = nm.nn.Streaming(net)
        with torch.no_grad():
            for b in range(args.stream_samples):
                st.reset()
                for t in range(xs.shape[0]):
                    step = xs[t, b:b + 1]
                    t0, c0 = time.perf_counter(), time.process_time()
                    st.step(step)
                    lat.append(time.perf_counter() - t0)
                    cpu += time.process_time() - c0
                    events += float(step.sum())
        return {"median_step_us": 1e6 * statistics.median(lat), "mean_step_us": 1e6 * statistics.mean(lat),
                "mean_step_cpu_us": 1e6 * cpu / len(lat), "events_per_s": events / sum(lat),
                "events_per_cpu_s": events / cpu, "steps": len(lat)}

    stream()  # warm-up (compiles the kernels)
    s, d = both(stream)
    res["stream"] = {"sparse": s, "dense": d, "speedup_median": d["median_step_us"] / s["median_step_us"],
                     "speedup_cpu": d["mean_step_cpu_us"] / s["mean_step_cpu_us"]}
    # streaming gives the whole sequence's outputs: check on the first sample
    with torch.no_grad():
        st = nm.nn.Streaming(net)
        steps = torch.stack([st.step(xs[t, :1]) for t in range(xs.shape[0])])
        res["stream_equals_whole_sequence"] = bool(torch.equal(steps, net(xs[:, :1])[:xs.shape[0]]))
    return res


def linear_section(out: dict, xs: torch.Tensor, shd, n_cls: int, args) -> None:

    # training step, real density
    x, y = xs[:, :32].contiguous(), shd.y[:32].long()
    net = shd_net(xs.shape[2], n_cls, args.gain)
    train = paired(train_step(net, lambda v: net(v).mean(0), x, y), args.reps)
    dens = densities(net)
    with synapse_backend("auto"):
        net(x)
        dens = densities(net)
    floor = nn.Sequential(nn.Linear(xs.shape[2], HID), nn.ReLU(), nn.Linear(HID, HID), nn.ReLU(), nn.Linear(HID, n_cls))
    f = timed(train_step(floor, lambda v: floor(v).mean(0), x, y), args.reps)
    out["train"] = {**train, "relu_floor_ms": f, "synapse_input_densities": dens,
                    "ratio_to_floor_cpu": train["sparse_ms"][1] / f[1]}

    # inference on the whole test split
    net.eval()

    def infer():
        with torch.no_grad():
            return torch.cat([net(xs[:, i:i + 100]).mean(0).argmax(1) for i in range(0, xs.shape[1], 100)])

    out["infer"] = {"samples": xs.shape[1], **paired(infer, args.reps),
                    "same_predictions": bool(torch.equal(infer(), infer()))}
    with synapse_backend("dense"):
        pd = infer()
    out["infer"]["predictions_equal_dense"] = bool(torch.equal(infer(), pd))

    # streaming: batch 1, one step at a time
    def stream():
        lat, events = [], 0.0
        st = nm.nn.Streaming(net)
        with torch.no_grad():
            for b in range(args.stream_samples):
                st.reset()
                for t in range(xs.shape[0]):
                    step = xs[t, b:b + 1]
                    t0 = time.perf_counter()
                    st.step(step)
                    lat.append(time.perf_counter() - t0)
                    events += float(step.sum())
        return {"median_step_us": 1e6 * statistics.median(lat), "events_per_s": events / sum(lat),
                "steps": len(lat)}

    stream()  # warm-up
    s, d = both(stream)
    out["stream"] = {"sparse": s, "dense": d, "speedup": d["median_step_us"] / s["median_step_us"]}


def nmnist_section(out: dict, args) -> None:
    from neuromorph.models.nmnist import NMNISTConvSNN
    from neuromorph.train.data import load_split
    from neuromorph.train.recipes import get_recipe

    nmn = load_split(get_recipe("nmnist").replace(data_root=f"{args.data}/nmnist", test_limit=32), "test")
    xn = nmn.x.transpose(0, 1).float().contiguous()
    out["nmnist_input_density"] = float((xn != 0).float().mean())
    torch.manual_seed(0)
    model = NMNISTConvSNN(channels=[32, 64])
    train = paired(train_step(model, lambda v: model(v).mean(0), xn, nmn.y.long()), args.reps)
    model(xn)  # record the default path and densities (the dense run above overwrote them)
    out["nmnist_train"] = {**train,
                           "linear_input_densities": densities(model),
                           "linear_paths": [m.last_path for m in model.modules() if isinstance(m, nm.nn.Linear)]}


if __name__ == "__main__":
    raise SystemExit(main())
