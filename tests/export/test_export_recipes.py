"""Every recipe's trained model exports: `neuromorph train nmnist|shd` end with `nir: ok` and `lava: ok`,
`neuromorph export best.pt --to lava --check loihi2` passes, and the automatic export after training and the
explicit one give the same verdict (one function). The files reproduce the float model's spikes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neuromorph.export.constraints import check_model
from neuromorph.export.loihi import fidelity_report, simulate
from neuromorph.export.netx import read_netx
from neuromorph.export.nir import from_nir, to_nir
from neuromorph.export.pipeline import export_checkpoint
from neuromorph.models.nmnist import NMNISTConvSNN
from neuromorph.train import checkpoint as ck
from neuromorph.train.recipes import get_recipe

from ._models import nmnist_frames, outputs_of


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the `neuromorph` console script next to this interpreter, as a user would."""
    exe = Path(sys.executable).with_name("neuromorph")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "neuromorph"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=env)



# ------------------------------------------------------------------------------------------------ in process


def test_nmnist_recipe_architecture_fits_loihi2_and_avg_pooling_gets_one_verdict(tmp_path):
    recipe = get_recipe("nmnist")
    x = torch.zeros(recipe.n_time_bins, 1, 2, 34, 34)
    model = NMNISTConvSNN(**recipe.model_kwargs).eval()
    rep = check_model(model, x, "loihi2")
    assert rep.ok, rep.table()
    assert sum(r["check"] == "maxpool_gate" for r in rep.rows) == 2
    # average pooling folds into the readout: 4x its fan-in, beyond Loihi 2's; every path says so
    avg = NMNISTConvSNN(**{**recipe.model_kwargs, "pool": "avg"}).eval()
    rep = check_model(avg, x, "loihi2")
    assert [(r["layer"], r["check"]) for r in rep.violations()] == [("net_10", "fan_in")]
    path = ck.save_checkpoint(tmp_path / "avg.pt", avg, "neuromorph.models.nmnist:NMNISTConvSNN", {**recipe.model_kwargs, "pool": "avg"},
                              info={"recipe": recipe.to_dict(), "input_shape": [2, 34, 34]})
    res = export_checkpoint(path, "lava", check="loihi2")
    assert not res.written and not res.out.exists() and res.check.violations() == rep.violations()
    assert "net_10 fan_in" in res.error


def test_delay_checkpoint_exports_the_integer_delays_it_is_evaluated_with(tmp_path):
    from neuromorph.models.shd import SHDDelayNet
    from neuromorph.nn.delays import delayed_layers, rounded_delays

    recipe = get_recipe("shd")
    kwargs = {"n_inputs": 20, "n_classes": 4, "hidden": 16, "n_hidden_layers": 1, "max_delay": 7, "delay_method": "direct"}
    torch.manual_seed(0)
    model = SHDDelayNet(**kwargs)
    with torch.no_grad():
        for m in delayed_layers(model):
            m.positions.uniform_(-3.0, 3.0)  # real-valued, as training leaves them
            m.weight.mul_(3.0)
            m.set_sigma(0.23)
    model.eval()
    path = ck.save_checkpoint(tmp_path / "best.pt", model, "neuromorph.models.shd:SHDDelayNet", kwargs,
                              info={"recipe": recipe.to_dict(), "input_shape": [20], "data": {"n_steps": 30}})
    with pytest.raises(Exception, match="real-valued delays"):
        to_nir(model, torch.zeros(30, 1, 20))  # the Python API still refuses to round silently
    nir_res = export_checkpoint(path, "nir")
    lava_res = export_checkpoint(path, "lava", check="loihi2")
    assert nir_res.written and lava_res.written and lava_res.check.ok
    for res in (nir_res, lava_res):
        assert any("integer delays that recipe 'shd' evaluates with" in n for n in res.notes), res.notes
    with rounded_delays(model):
        want = [m.integer_delays().numpy() for m in delayed_layers(model)]
        x = (torch.rand(30, 3, 20, generator=torch.Generator().manual_seed(1)) < 0.3).float()
        outs, y = outputs_of(model, x, ["2"])
    net = read_netx(lava_res.out)
    for layer, d in zip(net.layers, want):
        np.testing.assert_array_equal(np.where(layer.weight != 0, layer.delay, 0), np.where(layer.weight != 0, d, 0))
    back = from_nir(nir_res.out)
    theirs, y2 = outputs_of(back, x, ["nodes.2"])
    assert outs["2"].sum() > 20
    torch.testing.assert_close(theirs["nodes.2"], outs["2"], rtol=0, atol=0)
    torch.testing.assert_close(y2[: y.shape[0]], y)
    # the checkpoint itself keeps its real-valued positions (the rounding is the export's, on the fly)
    reloaded, _ = ck.load_model(path)
    assert not all(torch.equal(m.positions, m.positions.round()) for m in delayed_layers(reloaded))


# ------------------------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def nmnist_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("nmnist") / "run"
    proc = _cli("train", "nmnist", "--data-root", str(shared_data / "nmnist"), "--out", str(out), "--epochs", "1",
                "--set", "train_limit=40", "--set", "test_limit=10", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


@pytest.mark.timeout(400)
def test_train_nmnist_ends_with_nir_ok_lava_ok_and_the_files_reproduce_its_spikes(nmnist_run, shared_data):
    out, stdout = nmnist_run
    assert f"nir: ok {out / 'model.nir'}" in stdout and f"lava: ok {out / 'model.net.h5'} (loihi2 check passed)" in stdout
    assert "max-pool gates" in stdout  # the report says what the max pooling costs on Loihi
    # which peers run model.nir (one line; the energy report charges the gate neurons on Loihi)
    assert ("    peers (per sample/batched): snntorch fails (Flatten, IF); norse exact/fails (Flatten); spikingjelly exact; "
            "sinabs fails (IF, LIF)") in stdout
    assert "max-pool gates (net.3, net.7): " in stdout
    report = json.loads((out / "summary.json").read_text())["report"]
    assert report["lava"]["check"] == {"profile": "loihi2", "ok": True, "violations": []}
    proc = _cli("export", str(out / "best.pt"), "--to", "lava", "--check", "loihi2", "--out", str(out / "again.net.h5"))
    assert proc.returncode == 0 and "FAIL" not in proc.stdout, proc.stdout + proc.stderr
    assert (out / "again.net.h5").read_bytes() == (out / "model.net.h5").read_bytes()  # one path, one file

    model, _ = ck.load_model(out / "best.pt")
    x, _ = nmnist_frames(shared_data, n=4, steps=5)
    names = ["net.2", "net.3", "net.6", "net.7"]
    ours, y = outputs_of(model, x, names)
    theirs, y2 = outputs_of(from_nir(out / "model.nir"), x, [f"nodes.{n.replace('.', '_')}" for n in names])
    for n in names:  # NIR: every spike of every layer
        torch.testing.assert_close(theirs[f"nodes.{n.replace('.', '_')}"], ours[n], rtol=0, atol=0)
    torch.testing.assert_close(y2, y)
    # netx through the bit-accurate simulator: the gates are exactly the max pooling of the simulated layer
    # before them (one step later); the conv layers differ from the float model only by Loihi's 8-bit weights
    net = read_netx(out / "model.net.h5")
    assert [l.extra.get("role") for l in net.layers] == [None, "maxpool_gate", None, "maxpool_gate", None]
    sim = simulate(out / "model.net.h5", x)
    for gate in (1, 3):
        prev = torch.from_numpy(sim.spikes[gate - 1]).double()
        pooled = torch.nn.functional.max_pool2d(prev.flatten(0, 1), 2).reshape(sim.spikes[gate].shape)
        np.testing.assert_array_equal(sim.spikes[gate][1:], pooled[:-1].numpy())
    rows = fidelity_report(model, out / "model.net.h5", x).layers
    assert rows[0]["spikes_float"] > 100 and rows[0]["match_rate"] > 0.99 and rows[1]["match_rate"] > 0.99, rows


@pytest.mark.timeout(400)
def test_avg_pooling_variant_gets_the_same_verdict_after_training_and_from_export(shared_data, tmp_path):
    out = tmp_path / "run"
    proc = _cli("train", "nmnist", "--data-root", str(shared_data / "nmnist"), "--out", str(out), "--epochs", "1",
                "--batch-size", "16", "--set", "train_limit=20", "--set", "test_limit=10", "--set", 'model_kwargs.pool="avg"', "--no-progress", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lava = json.loads(proc.stdout.strip().splitlines()[-1])["report"]["lava"]
    assert lava["status"] == "failed" and "net_10 fan_in" in lava["reason"] and not (out / "model.net.h5").exists()
    proc = _cli("export", str(out / "best.pt"), "--to", "lava", "--check", "loihi2", "--json")
    res = json.loads(proc.stdout)
    assert proc.returncode == 1 and not res["written"]
    assert [r for r in res["check"]["rows"] if not r["ok"]] == lava["check"]["violations"]


@pytest.mark.timeout(400)
def test_train_shd_ends_with_nir_ok_lava_ok_with_its_evaluated_integer_delays(shared_data, tmp_path):
    from neuromorph.nn.delays import delayed_layers, rounded_delays

    out = tmp_path / "run"
    proc = _cli("train", "shd", "--data-root", str(shared_data / "shd_fsdd"), "--out", str(out), "--epochs", "1",
                "--batch-size", "16", "--set", "train_limit=32", "--set", "test_limit=8", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"nir: ok {out / 'model.nir'}" in proc.stdout and f"lava: ok {out / 'model.net.h5'} (loihi2 check passed)" in proc.stdout
    assert "integer delays that recipe 'shd' evaluates with" in proc.stdout  # the report says so
    proc = _cli("export", str(out / "best.pt"), "--to", "lava", "--check", "loihi2", "--json")
    res = json.loads(proc.stdout)
    assert proc.returncode == 0 and res["written"] and res["check"]["ok"]
    assert any("integer delays" in n for n in res["notes"])

    from neuromorph.train.data import load_split
    from neuromorph.train.evaluation import checkpoint_recipe

    model, info = ck.load_model(out / "best.pt")
    x, _ = load_split(checkpoint_recipe(info, out / "best.pt"), "test").batch(torch.arange(4))  # real test samples
    x = x.float()
    with rounded_delays(model):  # what evaluation runs
        ours, y = outputs_of(model, x, ["2", "6"])
        want = [m.integer_delays().numpy() for m in delayed_layers(model)]
        fid = fidelity_report(model, out / "model.net.h5", x).layers
    theirs, y2 = outputs_of(from_nir(out / "model.nir"), x, ["nodes.2", "nodes.6"])
    for n in ("2", "6"):
        assert ours[n].sum() > 10
        torch.testing.assert_close(theirs[f"nodes.{n}"], ours[n], rtol=0, atol=0)
    torch.testing.assert_close(y2[: y.shape[0]], y)
    net = read_netx(out / "model.net.h5")
    for layer, d in zip(net.layers, want):
        np.testing.assert_array_equal(np.where(layer.weight != 0, layer.delay, 0), np.where(layer.weight != 0, d, 0))
    assert all(r["match_rate"] > 0.98 for r in fid if r["match_rate"] is not None), fid
