"""Accuracy before and after Loihi quantization, with and without quantization-aware fine-tuning (QAT).

    python benchmarks/export_qat.py [--epochs 4] [--qat-epochs 2] [--json]

Trains the N-MNIST conv net of tests/export (hard-reset LIF, BatchNorm folded at export, two pools folded
into the next synapses) on the 1,000 real N-MNIST training samples in ../shared/data (20 time bins), then
evaluates on the 100 test samples: the float model, and the integer simulation of its ``to_lava`` export
(``fidelity_report``: prediction = class with most output spikes). Then fine-tunes with straight-through
fake quantization of the weights (``enable_quantization_aware``), folds it away and measures again; a
control fine-tunes a copy for the same epochs without fake quantization.
Loss: cross-entropy on the output spike counts (rate code). Small data: expect noisy accuracies.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neuromorph.export import disable_quantization_aware, enable_quantization_aware, fidelity_report, to_lava  # noqa: E402
from tests.export._models import nmnist_net  # noqa: E402


def load(split: str, steps: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    from neuromorph.data.functional import to_frame
    from neuromorph.data.readers.atis import read_nmnist

    files = sorted((REPO.parent / "shared" / "data" / "nmnist" / split).glob("*/*.bin"))
    xs = [to_frame(read_nmnist(f), (34, 34, 2), n_time_bins=steps).astype(np.uint8) for f in files]
    return torch.from_numpy(np.stack(xs, 1)), torch.tensor([int(f.parent.name) for f in files])


def train(model, x, y, epochs: int, lr: float, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(x.shape[1], generator=g)
        for i in range(0, len(perm), 32):
            idx = perm[i : i + 32]
            out = model(x[:, idx].float())
            loss = torch.nn.functional.cross_entropy(out.sum(0), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    xtr, ytr = load("Train")
    xte, yte = load("Test")
    model = nmnist_net()
    t0 = time.time()
    train(model, xtr, ytr, args.epochs, 2e-3)
    res = {"train_s": time.time() - t0}
    with tempfile.TemporaryDirectory() as tmp:
        path = to_lava(model, Path(tmp) / "a.h5", xte[:, :1].float())
        rep = fidelity_report(model, path, xte.float(), yte)
        res["before_qat"] = {"float": rep.accuracy_float, "quantized": rep.accuracy_quantized,
                             "match": [r["match_rate"] for r in rep.layers]}
        # control: the same extra epochs without fake quantization
        import copy

        control = copy.deepcopy(model)
        train(control, xtr, ytr, args.qat_epochs, 5e-4, seed=1)
        path = to_lava(control, Path(tmp) / "c.h5", xte[:, :1].float())
        rep = fidelity_report(control, path, xte.float(), yte)
        res["control_no_qat"] = {"float": rep.accuracy_float, "quantized": rep.accuracy_quantized,
                                 "match": [r["match_rate"] for r in rep.layers]}
        enable_quantization_aware(model)
        train(model, xtr, ytr, args.qat_epochs, 5e-4, seed=1)
        path = to_lava(model, Path(tmp) / "b.h5", xte[:, :1].float())
        rep = fidelity_report(model, path, xte.float(), yte)
        res["after_qat"] = {"float_fakequant": rep.accuracy_float, "quantized": rep.accuracy_quantized,
                            "match": [r["match_rate"] for r in rep.layers]}
        disable_quantization_aware(model)
    print(json.dumps(res) if args.json else json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
