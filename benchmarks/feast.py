"""FEAST throughput on real N-MNIST events (one core), side by side with a plain-Python transcription.

No peer library implements FEAST (Tonic has time-surface transforms but no FEAST learning rule), so the
comparison is with the plain per-event Python transcription of the FEAST rule (Afshar et al., Sensors
2020) that the tests use as reference, run on a small slice and reported as a ratio. Both wall-clock and
CPU time (of this process: the numba kernel is single-threaded) are given, because the machine is shared.

    python benchmarks/feast.py [--files 300] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from neuromorph.data import read_nmnist
from neuromorph.features import FeastLayer

SENSOR = (34, 34)
CONFIGS = [dict(n_neurons=16, radius=3), dict(n_neurons=32, radius=3), dict(n_neurons=16, radius=5)]


def python_transcription(stream, w, theta, radius, tau, eta=0.001, d_close=0.001, d_open=0.01):
    """Per-event FEAST in plain Python + numpy (one channel), the baseline of the ratio."""
    side = 2 * radius + 1
    surface = np.full((SENSOR[0] + 2 * radius, SENSOR[1] + 2 * radius), -np.inf)
    for e in stream:
        x, y, t = int(e["x"]) + radius, int(e["y"]) + radius, float(e["t"])
        surface[x, y] = t
        c = np.exp((surface[x - radius:x + radius + 1, y - radius:y + radius + 1] - t) / tau).reshape(side * side)
        c /= math.sqrt(float(c @ c))
        d = w @ c
        cand = d > theta
        if not cand.any():
            theta -= d_open
            continue
        j = int(np.argmax(np.where(cand, d, -np.inf)))
        w[j] = (1 - eta) * w[j] + eta * c
        w[j] /= np.linalg.norm(w[j])
        theta[j] += d_close


def timed(fn, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--files", type=int, default=300, help="first N Train files (sorted by path)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    files = sorted((args.data_root / "nmnist" / "Train").glob("*/*.bin"))[: args.files]
    streams = [read_nmnist(f) for f in files]
    n = sum(len(s) for s in streams)
    rows = []
    for cfg in CONFIGS:
        warm = FeastLayer(tau=10_000.0, sensor_size=SENSOR, init_threshold=0.0, **cfg)
        warm.fit(streams[:2])  # compile / load the numba cache outside the timing
        layers = []

        def fit():
            layer = FeastLayer(tau=10_000.0, sensor_size=SENSOR, init_threshold=0.0, **cfg)
            layer.fit(streams, record_every=1000)
            layers.append(layer)

        fit_wall, fit_cpu = timed(fit, args.repeats)
        tr_wall, tr_cpu = timed(lambda: layers[-1].transform(streams), args.repeats)
        py_events = streams[0][:3000]
        ref = FeastLayer(tau=10_000.0, sensor_size=SENSOR, init_threshold=0.0, **cfg)
        py_wall, py_cpu = timed(lambda: python_transcription(py_events, ref._weights.copy(), ref.thresholds.copy(),
                                                             cfg["radius"], 10_000.0), 1)
        rows.append({**cfg, "events": n, "fit_Mev_s_wall": n / fit_wall / 1e6, "fit_Mev_s_cpu": n / fit_cpu / 1e6,
                     "transform_Mev_s_wall": n / tr_wall / 1e6, "transform_Mev_s_cpu": n / tr_cpu / 1e6,
                     "python_Mev_s_cpu": len(py_events) / py_cpu / 1e6,
                     "speedup_vs_python_cpu": (n / fit_cpu) / (len(py_events) / py_cpu)})
    if args.json:
        print(json.dumps({"files": len(files), "events": n, "results": rows}))
    else:
        print(f"{len(files)} N-MNIST Train files, {n} events, median of {args.repeats}")
        print("N  R  fit Mev/s (wall/cpu)  transform Mev/s (wall/cpu)  python Mev/s  speed-up")
        for r in rows:
            print(f"{r['n_neurons']:<2} {r['radius']}  {r['fit_Mev_s_wall']:.2f} / {r['fit_Mev_s_cpu']:.2f}"
                  f"            {r['transform_Mev_s_wall']:.2f} / {r['transform_Mev_s_cpu']:.2f}"
                  f"                 {r['python_Mev_s_cpu']:.4f}       {r['speedup_vs_python_cpu']:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
