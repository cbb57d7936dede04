"""FEAST features + linear readout on real N-MNIST.

Learns FEAST features on nmnist/Train only (a 1000-sample subset), builds per-sample
feature histograms over a 4 x 4 spatial grid, fits a logistic-regression readout on Train and reports
the accuracy on nmnist/Test (100 samples). Hyper-parameters were chosen by 5-fold cross-validation on
Train (``--select`` reruns that search); Test is touched once, at the end.

    python examples/feast_nmnist.py --data-root ROOT [--out runs/feast] [--select] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from neuromorph.data import read_nmnist
from neuromorph.features import FeastLayer, LinearReadout, feature_histogram

SENSOR = (34, 34)
# chosen by 5-fold CV on nmnist/Train (see --select); never tuned on Test
DEFAULT = dict(n_neurons=32, radius=3, tau=10_000.0, grid=4, C=0.1)


def load(root: Path, split: str):
    files = sorted((root / "nmnist" / split).glob("*/*.bin"))
    if not files:
        sys.exit(f"no N-MNIST files under {root / 'nmnist' / split}")
    return [read_nmnist(f) for f in files], np.array([int(f.parent.name) for f in files])


def features(layer: FeastLayer, streams, grid: int) -> np.ndarray:
    return feature_histogram(layer.transform(streams), layer.n_neurons, SENSOR, grid=(grid, grid))


def train_layer(cfg: dict, streams, seed: int) -> tuple[FeastLayer, object]:
    layer = FeastLayer(cfg["n_neurons"], SENSOR, radius=cfg["radius"], tau=cfg["tau"], init_threshold=0.0, seed=seed)
    # present the samples in a shuffled order: sorted by class they would drift the kernels class by class
    order = np.random.default_rng(seed).permutation(len(streams))
    trace = layer.fit([streams[i] for i in order], record_every=2000)
    return layer, trace


def cv_accuracy(cfg: dict, streams, labels, seed: int) -> float:
    from sklearn.model_selection import StratifiedKFold

    layer, _ = train_layer(cfg, streams, seed)  # unsupervised: no labels used
    h = features(layer, streams, cfg["grid"])
    folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(h, labels)
    return float(np.mean([LinearReadout(C=cfg["C"]).fit(h[a], labels[a]).score(h[b], labels[b]) for a, b in folds]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, required=True, help="folder holding nmnist/Train and nmnist/Test")
    ap.add_argument("--out", type=Path, default=None, help="folder for PNG plots and result.json")
    ap.add_argument("--select", action="store_true", help="rerun the 5-fold CV search on Train first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    train, y_train = load(args.data_root, "Train")
    test, y_test = load(args.data_root, "Test")
    cfg = dict(DEFAULT)
    search = []
    if args.select:
        for n in (16, 32):
            for tau in (10_000.0, 20_000.0, 50_000.0):
                c = dict(cfg, n_neurons=n, tau=tau)
                search.append((cv_accuracy(c, train, y_train, args.seed), c))
                if not args.json:
                    print(f"CV on Train: {c} -> {search[-1][0]:.3f}", flush=True)
        cfg = max(search, key=lambda s: s[0])[1]

    t0 = time.perf_counter()
    layer, trace = train_layer(cfg, train, args.seed)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    h_train = features(layer, train, cfg["grid"])
    h_test = features(layer, test, cfg["grid"])
    transform_s = time.perf_counter() - t0
    readout = LinearReadout(C=cfg["C"]).fit(h_train, y_train)
    n_events = int(sum(len(s) for s in train))
    result = {
        "test_accuracy": readout.score(h_test, y_test),
        "train_accuracy": readout.score(h_train, y_train),
        "n_train": len(train), "n_test": len(test), "config": cfg, "seed": args.seed,
        "train_events": n_events, "fit_events_per_s": n_events / fit_s,
        "transform_events_per_s": (n_events + sum(len(s) for s in test)) / transform_s,
        "hit_miss_ratio": trace.hit_miss_ratio,
        "expected_hit_miss_ratio": layer.n_neurons * layer.delta_open / layer.delta_close,
        "win_count_min_over_max": float(trace.wins.min() / trace.wins.max()),
        "cv_search": [{"cv_accuracy": a, **c} for a, c in search],
    }
    if args.out is not None:
        from neuromorph.features.plot import plot_feast_kernels, plot_threshold_trajectories

        args.out.mkdir(parents=True, exist_ok=True)
        plot_feast_kernels(layer, args.out / "feast_kernels.png")
        plot_threshold_trajectories(trace, args.out / "feast_thresholds.png", layer.delta_open, layer.delta_close)
        (args.out / "result.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"N-MNIST test accuracy {result['test_accuracy']:.3f} ({len(test)} samples; features and readout "
              f"fitted on {len(train)} Train samples), FEAST fit {result['fit_events_per_s'] / 1e6:.2f} M events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
