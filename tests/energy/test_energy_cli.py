"""``neuromorph energy CKPT``: JSON output equals measure() on the same model and inputs; bad input."""

from __future__ import annotations

import json

import pytest
import torch

import neuromorph.energy as ne
import neuromorph.nn as nm_nn
from neuromorph.cli import main
from neuromorph.train import checkpoint as ck


def _build(hidden: int = 12) -> torch.nn.Module:
    return torch.nn.Sequential(
        nm_nn.Conv2d(2, 4, 3, stride=2, padding=1), nm_nn.LIF(tau=2.0), nm_nn.Flatten(),
        nm_nn.Linear(4 * 4 * 4, hidden), nm_nn.LIF(tau=2.0), nm_nn.Linear(hidden, 3), nm_nn.LI(tau=2.0),
    )


@pytest.fixture
def checkpoint(tmp_path):
    ck.register_builder("tests.energy:net", _build)
    torch.manual_seed(0)
    model = _build()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(3.0)  # make the hidden layers fire
    path = ck.save_checkpoint(tmp_path / "best.pt", model, "tests.energy:net", {"hidden": 12}, info={"epoch": 1})
    x = (torch.rand(5, 6, 2, 8, 8) < 0.3).float()
    torch.save(x, tmp_path / "x.pt")
    return path, tmp_path / "x.pt", model.eval(), x


def test_cli_json_equals_measure(checkpoint, tmp_path, capsys):
    path, inputs, model, x = checkpoint
    rc = main(["energy", str(path), "--inputs", str(inputs), "--hardware", "loihi,cmos45nm", "--batch-size", "4",
               "--json", "--plot", str(tmp_path / "e.png"), "--out", str(tmp_path / "e.json")])
    out = capsys.readouterr().out
    assert rc == 0
    data = json.loads(out)
    expected = ne.measure(model, x, hardware="loihi,cmos45nm").to_dict()
    assert data["samples"] == 6 and data["time_steps"] == 5
    assert data["totals_per_inference"] == pytest.approx(expected["totals_per_inference"])
    assert data["energy_pj_per_inference"] == pytest.approx(expected["energy_pj_per_inference"])
    assert [layer["name"] for layer in data["layers"]] == ["0", "1", "3", "4", "5", "6"]
    assert data["totals_per_inference"]["synops"] > 0
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "e.json").read_text())["samples"] == 6


def test_cli_table_and_errors(checkpoint, capsys):
    path, inputs, _, _ = checkpoint
    assert main(["energy", str(path), "--inputs", str(inputs), "--hardware", "cmos45nm"]) == 0
    assert "SNN/ANN energy ratio" in capsys.readouterr().out
    assert main(["energy", str(path), "--inputs", str(inputs), "--hardware", "truenorth", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["type"] == "HardwareProfileError" and "truenorth" in err["message"] and "loihi" in err["message"]
    code = main(["energy", str(path), "--inputs", str(inputs), "--hardware", "loihi2", "--json"])
    err = json.loads(capsys.readouterr().out)["error"]
    assert code == err["exit_code"] and "loihi2" in err["message"]
    # a profile without published energies gives "n/a", never a ratio of 0
    assert main(["energy", str(path), "--inputs", str(inputs), "--hardware", "loihi2,loihi", "--allow-missing"]) == 0
    table = capsys.readouterr().out
    assert "SNN/ANN energy ratio [loihi2]: n/a" in table and "SNN/ANN energy ratio [loihi]: n/a" not in table
    assert "x T = 5" in table and "active" in table
    assert main(["energy", "--list-hardware", "--json"]) == 0
    assert "cmos45nm" in json.loads(capsys.readouterr().out)["hardware"]
    garbage = inputs.parent / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    assert main(["energy", str(path), "--inputs", str(garbage), "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["type"] == "DataFormatError" and err["file"] == str(garbage)


def test_cli_allow_missing_leaves_layers_out(checkpoint, tmp_path, capsys):
    path, _, model, x = checkpoint
    analog = tmp_path / "analog.pt"
    torch.save(torch.rand(3, 2, 2, 8, 8), analog)  # analog input: the first conv needs MACs, Loihi has none
    code = main(["energy", str(path), "--inputs", str(analog), "--hardware", "loihi", "--json"])
    err = json.loads(capsys.readouterr().out)["error"]
    assert code == err["exit_code"] and "'mac'" in err["message"]
    assert main(["energy", str(path), "--inputs", str(analog), "--hardware", "loihi", "--allow-missing", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"][0]["energy_pj"]["loihi"] is None
    assert "'mac'" in data["missing"]["loihi"][0]
