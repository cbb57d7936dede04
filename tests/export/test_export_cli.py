"""`neuromorph export CKPT --to nir|lava --check PROFILE --json` on real checkpoints."""

import json

import nir
import numpy as np
import torch

import neuromorph.nn as nnm
from neuromorph.cli import main
from neuromorph.export.loihi import simulate
from neuromorph.train import checkpoint as ck

from ._models import nmnist_net


def _soft_net():
    return torch.nn.Sequential(nnm.Linear(6, 4), nnm.LIF(tau=2.0, reset="soft"), nnm.Linear(4, 3), nnm.LIF(tau=2.0, reset="hard"))


def _run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def test_export_lava_and_nir_with_check(tmp_path, capsys):
    # (the delay export is covered in test_export_nir/test_export_lava_quant)
    ck.register_builder("tests.nmnist_net", nmnist_net)
    path = ck.save_checkpoint(tmp_path / "best.pt", nmnist_net(), "tests.nmnist_net", {},
                              info={"input_shape": [2, 34, 34], "data": {"n_steps": 6}})
    code, res = _run(capsys, ["export", str(path), "--to", "lava", "--check", "loihi2", "--json"])
    assert code == 0 and res["written"] and res["check"]["ok"]
    assert {r["check"] for r in res["check"]["rows"]} >= {"fan_in", "fan_out", "weight_bits", "decays", "cores_total"}
    assert [l["kind"] for l in res["layers"]] == ["conv", "conv", "dense"]
    out = tmp_path / "best.net.h5"
    assert res["out"] == str(out) and out.is_file()
    sim = simulate(out, (np.random.default_rng(0).random((4, 2, 34, 34)) < 0.3).astype(int))
    assert len(sim.spikes) == 3
    code, res = _run(capsys, ["export", str(path), "--to", "nir", "--out", str(tmp_path / "m.nir"), "--json"])
    assert code == 0 and res["written"]
    g = nir.read(tmp_path / "m.nir")
    assert sum(isinstance(n, nir.LIF) for n in g.nodes.values()) == 3


def test_failed_check_names_layer_and_writes_nothing(tmp_path, capsys):
    ck.register_builder("tests.soft_net", _soft_net)
    path = ck.save_checkpoint(tmp_path / "soft.pt", _soft_net(), "tests.soft_net", {}, info={"input_shape": [6]})
    code, res = _run(capsys, ["export", str(path), "--to", "lava", "--check", "loihi", "--json"])
    assert code == 1 and not res["written"]
    assert (res["error"]["type"], res["error"]["layer"], res["error"]["exit_code"]) == ("HardwareConstraintError", "1", 1)
    bad = [r for r in res["check"]["rows"] if not r["ok"]]
    assert bad[0]["layer"] == "1" and "soft reset" in bad[0]["fix"]
    assert not (tmp_path / "soft.net.h5").exists()
    code, res = _run(capsys, ["export", str(path), "--to", "nir", "--json"])
    assert code == 1 and res["error"]["type"] == "ExportError" and "soft reset" in res["error"]["message"]
    assert not (tmp_path / "soft.nir").exists()
    code, res = _run(capsys, ["export", str(path), "--to", "nir", "--non-strict", "--json"])
    assert code == 0 and res["written"] and any("soft reset" in w for w in res["warnings"])
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    code, res = _run(capsys, ["export", str(tmp_path / "broken.pt"), "--to", "nir", "--json"])
    assert code == 1 and res["error"]["type"] == "CheckpointError" and "broken.pt" in res["error"]["message"]
