"""The `ssc` recipe end to end on small files in SSC's layout (ssc_train/valid/test.h5), cut from the real
shd_fsdd spoken digits: the real SSC (35 classes) is not available here."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from neuromorph.nn.delays import delayed_layers
from neuromorph.train import checkpoint as ck
from neuromorph.train.data import load_data
from neuromorph.train.evaluation import evaluate_checkpoint
from neuromorph.train.loop import fit
from neuromorph.train.recipes import get_recipe

KEYS = [f"word{i:02d}" for i in range(35)]


def _write_ssc(src: h5py.File, rows: range, path) -> None:
    with h5py.File(path, "w") as out:
        times = out.create_dataset("spikes/times", (len(rows),), dtype=h5py.vlen_dtype(np.float16))
        units = out.create_dataset("spikes/units", (len(rows),), dtype=h5py.vlen_dtype(np.uint16))
        for j, i in enumerate(rows):
            times[j] = src["spikes/times"][i]
            units[j] = src["spikes/units"][i]
        out["labels"] = src["labels"][rows.start : rows.stop]
        out["extra/keys"] = np.array([k.encode() for k in KEYS], dtype="S6")


@pytest.fixture(scope="module")
def ssc_root(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("ssc")
    with h5py.File(shared_data / "shd_fsdd" / "shd_fsdd_train.h5", "r") as src:
        _write_ssc(src, range(0, 48), root / "ssc_train.h5")
        _write_ssc(src, range(48, 60), root / "ssc_valid.h5")
        _write_ssc(src, range(60, 70), root / "ssc_test.h5")
    return root


def test_ssc_uses_its_own_validation_file(ssc_root):
    data = load_data(get_recipe("ssc").replace(data_root=str(ssc_root)))
    assert (len(data.train), len(data.val), len(data.test)) == (48, 12, 10)  # nothing held out of train
    assert data.n_classes == 35 and data.input_shape == (140,)
    with h5py.File(ssc_root / "ssc_valid.h5", "r") as f:
        assert data.val.y.tolist() == f["labels"][:].tolist()
    # per-batch padding: each split knows its samples' lengths in 10 ms bins
    assert data.val.lengths is not None and int(data.val.lengths.max()) <= data.val.x.shape[1]


@pytest.mark.timeout(300)
def test_ssc_recipe_trains_the_paper_network_and_selects_on_valid(ssc_root, tmp_path):
    recipe = get_recipe("ssc").replace(data_root=str(ssc_root), epochs=4, batch_size=16, seed=1)
    summary = fit(recipe, tmp_path / "run", progress=False)
    assert summary["n_train"] == 48 and summary["n_test"] == 10
    model, info = ck.load_model(tmp_path / "run" / "last.pt")
    layers = delayed_layers(model)
    # METHODS §3(c) SSC: 3 hidden layers of 512, K = 31, τ = 1.5, 35 classes
    assert [(m.in_features, m.out_features, m.kernel_size) for m in layers] == [(140, 512, 31), (512, 512, 31), (512, 512, 31), (512, 35, 31)]
    lifs = [m for m in model.modules() if type(m).__name__ == "LIF"]
    assert len(lifs) == 3 and all(float(m.tau) == pytest.approx(1.5) for m in lifs)
    # σ schedule over 4 epochs: final_epoch = ⌊4/4⌋ = 1, so σ went from ⌊K/2⌋ = 15 to 0.23 after epoch 1
    for m in layers:
        torch.testing.assert_close(m.sigma, torch.full_like(m.sigma, 0.23))
    # the best epoch was chosen on ssc_valid.h5, and evaluating best.pt there reproduces that accuracy
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    best = max((r for r in records if "val_accuracy" in r), key=lambda r: r["val_accuracy"])
    again = evaluate_checkpoint(tmp_path / "run" / "best.pt", split="val")
    assert again["n"] == 12 and again["accuracy"] == pytest.approx(best["val_accuracy"])
