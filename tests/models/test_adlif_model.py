"""The recurrent SE-adLIF network and its recipes: parameter counts, initialisation, and a user's run of
``neuromorph train shd-adlif`` on real data (validation held out of train, export refused by name)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import neuromorph as nm
from neuromorph.errors import ConfigError
from neuromorph.models.adlif import AdLIFNet, parameter_count
from neuromorph.train.recipes import get_recipe

BIN = Path(sys.executable).parent


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_t10_parameter_counts_of_the_released_configurations():
    assert _trainable(AdLIFNet()) == parameter_count(140, 360, 2, 20) == 450_020
    assert _trainable(AdLIFNet(hidden=720, n_classes=35)) == parameter_count(140, 720, 2, 35) == 1_688_435
    assert _trainable(AdLIFNet(neuron="ef")) == 450_020
    assert _trainable(AdLIFNet(recurrent=False)) == 450_020 - 2 * 360 * 360
    # one learned τ per neuron instead of w_u, w_w, a, b
    assert _trainable(AdLIFNet(neuron="lif")) == 450_020 - 3 * 2 * 360


def test_initialisation_follows_the_reference():
    torch.manual_seed(0)
    net = AdLIFNet(hidden=64)
    lin, rec, drop = net[0], net[1], net[2]
    assert isinstance(rec, nm.nn.Recurrent) and isinstance(rec.neuron, nm.nn.SEAdLIF) and rec.neuron.q == 120
    assert bool((lin.bias == 0).all()) and bool((net[-2].bias == 0).all())
    assert lin.weight.abs().max() <= 1 / math.sqrt(140)
    torch.testing.assert_close(rec.weight @ rec.weight.t(), torch.eye(64), atol=1e-5, rtol=0)  # orthogonal
    assert drop.p == 0.15
    # the readout decays by exp(-1/15) per step
    cfg, p = net[-1].dynamics()
    assert float(p.beta) == pytest.approx(math.exp(-1 / 15), rel=1e-7)  # float32 buffer
    y = net(torch.rand(30, 2, 140))
    assert y.shape == (20, 2, 20)  # the first 10 steps are left out
    assert isinstance(AdLIFNet(neuron="ef", hidden=8)[1].neuron, nm.nn.EFAdLIF)
    assert isinstance(AdLIFNet(delays=True, hidden=8)[0], nm.nn.DelayedLinear)
    with pytest.raises(ConfigError, match="neuron="):
        AdLIFNet(neuron="alif")


def test_recipes_follow_the_spec_and_select_on_held_out_train():
    shd, ssc, dly = get_recipe("shd-adlif"), get_recipe("ssc-adlif"), get_recipe("shd-adlif-delays")
    for r in (shd, ssc, dly):
        assert (r.dt_us, r.channel_group, r.grad_clip, r.batch_size) == (4000, 5, 1.5, 256)
        assert r.model == "neuromorph.models.adlif:AdLIFNet"
    assert (shd.lr, shd.epochs, shd.readout, shd.schedule, shd.val_fraction) == (0.01, 300, "summed-softmax", "none", 0.2)
    assert (ssc.lr, ssc.epochs, ssc.readout, ssc.model_kwargs["hidden"]) == (0.006, 40, "mean", 720)
    # the delays variant trains its weights like shd-adlif (positions: their own Adam, see test_adlif_delays.py)
    assert dly.hooks == "adlif-delays" and dly.model_kwargs["delays"] is True
    assert (dly.lr, dly.schedule, dly.weight_decay) == (shd.lr, shd.schedule, shd.weight_decay)


def test_user_trains_shd_adlif_on_shd_fsdd_from_the_cli(tmp_path, shared_data):
    cfg = tmp_path / "small.toml"
    cfg.write_text("train_limit = 60\ntest_limit = 20\n[model_kwargs]\nhidden = 12\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    proc = subprocess.run(
        ["neuromorph", "train", "shd-adlif", "--config", str(cfg), "--data-root", str(shared_data / "shd_fsdd"),
         "--epochs", "1", "--batch-size", "12", "--out", str(out), "--no-progress", "--json"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    # 20 % of the 60 training samples picked best.pt; the test split was only evaluated
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == (48, 12, 20)
    assert summary["best_val_accuracy"] is not None
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert "val_accuracy" in lines[0] and lines[-1]["event"] == "final"
    # 4 ms bins of 140 channel groups reached the model
    info = torch.load(out / "best.pt", weights_only=True, map_location="cpu")["info"]
    assert info["input_shape"] == [140]
    # the export after training names the adaptive layer instead of writing a wrong file
    nir = summary["report"]["nir"]
    assert nir["status"] == "failed" and "layer '1'" in nir["reason"] and "SEAdLIF" in nir["reason"]
