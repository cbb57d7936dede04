"""A model defined in the user's own module: saved with neuromorph.save_model in the user's script, then
evaluated, measured, plotted and exported by the CLI in other processes, which import the builder only when trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import neuromorph as nm
from neuromorph.errors import CheckpointError
from neuromorph.train import checkpoint as ck

BIN = Path(sys.executable).parent

USER_MODULE = """
import torch
import neuromorph as nm


def build_net(channels=4, n_classes=10):
    return torch.nn.Sequential(
        nm.nn.Conv2d(2, channels, 5, stride=2), nm.nn.LIF(tau=2.0, reset="hard"),
        nm.nn.Flatten(), nm.nn.Linear(channels * 15 * 15, n_classes), nm.nn.LI(tau=2.0))
"""

# the user's training script: trains a few steps on N-MNIST, saves the model, and records what the CLI must
# reproduce from the file (test accuracy, spikes of the first layer on the first 8 test samples)
USER_SCRIPT = """
import json, sys
import torch
import neuromorph as nm
from neuromorph.train.data import load_data
from neuromorph.train.recipes import get_recipe
from usermodel import build_net

recipe = get_recipe("nmnist").replace(data_root=sys.argv[1], train_limit=40, val_fraction=0.0)
data = load_data(recipe)
torch.manual_seed(0)
model = build_net(channels=4)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(3):
    x, y = data.train.batch(torch.arange(step * 10, step * 10 + 10))
    loss = torch.nn.functional.cross_entropy(model(x).mean(0), y)
    opt.zero_grad(); loss.backward(); opt.step()
model.eval()
with torch.no_grad():
    x, y = data.test.batch(torch.arange(len(data.test)))
    scores = model(x).mean(0)
    correct = int((scores.argmax(-1) == y).sum())
    loss = float(torch.nn.functional.cross_entropy(scores, y))
    spikes = float(model[1](model[0](x[:, :8])).sum())
nm.save_model(model, "with_recipe.pt", build_net, {"channels": 4}, input_shape=(2, 34, 34), n_steps=5, recipe="nmnist")
nm.save_model(model, "bare.pt", "usermodel:build_net", {"channels": 4}, input_shape=(2, 34, 34))
torch.save(model, "pickled.pt")
json.dump({"correct": correct, "loss": loss, "n": len(data.test), "spikes_layer1": spikes}, open("expected.json", "w"))
"""


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)  # the user's module is found only where the user says
    env.pop(ck.TRUST_ENV, None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def user_run(shared_data, tmp_path_factory):
    """The user's folder (module + training script), trained and saved in its own process."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "usermodel.py").write_text(USER_MODULE)
    (folder / "train_mine.py").write_text(USER_SCRIPT)
    root = shared_data / "nmnist"
    _run([sys.executable, "train_mine.py", str(root)], folder)
    return folder, root, json.loads((folder / "expected.json").read_text())


def test_cli_evaluates_measures_and_exports_a_user_model(user_run, tmp_path, monkeypatch, capsys):
    folder, root, expected = user_run
    trust = ["--trust-builder", "--python-path", str(folder)]
    # run from elsewhere: the module is found only through --python-path
    ev = json.loads(_run(["neuromorph", "eval", str(folder / "with_recipe.pt"), "--data-root", str(root), "--json", *trust],
                         tmp_path).stdout)
    assert ev["n"] == expected["n"] and round(ev["accuracy"] * ev["n"]) == expected["correct"]
    assert ev["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    # a checkpoint saved without a recipe is pointed at the data with --recipe (same command, run in-process)
    from neuromorph.cli import main

    monkeypatch.syspath_prepend(str(tmp_path))  # --python-path changes sys.path: undo it after the test
    assert main(["eval", str(folder / "bare.pt"), "--recipe", "nmnist", "--data-root", str(root), "--json", *trust]) == 0
    ev2 = json.loads(capsys.readouterr().out)
    sys.modules.pop("usermodel", None)
    assert (ev2["accuracy"], ev2["loss"], ev2["dataset"]) == (ev["accuracy"], ev["loss"], "nmnist")

    en = json.loads(_run(["neuromorph", "energy", str(folder / "bare.pt"), "--recipe", "nmnist", "--data-root", str(root),
                          "--limit", "8", "--json", *trust], tmp_path).stdout)
    layer1 = next(layer for layer in en["layers"] if layer["name"] == "1")
    assert layer1["spikes_out"] == expected["spikes_layer1"]

    plots = json.loads(_run(["neuromorph", "plot", str(folder / "with_recipe.pt"), "--data-root", str(root), "--out",
                             str(tmp_path / "plots"), "--json", *trust], tmp_path).stdout)["plots"]
    assert sorted(Path(p).name for p in plots) == ["confusion.png", "firing_rates.png", "raster_sample0.png"]

    out = tmp_path / "user.nir"
    _run(["neuromorph", "export", str(folder / "bare.pt"), "--to", "nir", "--out", str(out), *trust], tmp_path)
    import nir

    graph = nir.read(str(out))
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert {"Conv2d", "Affine", "LI"} <= kinds and ("LIF" in kinds or "CubaLIF" in kinds)


def test_cli_refuses_untrusted_builders_and_pickled_models(user_run, tmp_path):
    folder, root, _ = user_run
    proc = _run(["neuromorph", "eval", str(folder / "with_recipe.pt"), "--data-root", str(root)], tmp_path, check=False)
    assert proc.returncode != 0
    assert "usermodel:build_net" in proc.stderr and "--trust-builder" in proc.stderr
    assert f"--python-path {folder}" in proc.stderr  # the folder it was saved from, as a ready flag
    proc = _run(["neuromorph", "export", str(folder / "pickled.pt"), "--to", "nir"], tmp_path, check=False)
    assert proc.returncode != 0
    assert "torch.save(model)" in proc.stderr and "save_model" in proc.stderr


def _user_module(tmp_path: Path, monkeypatch, name: str):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(ck.TRUST_ENV, raising=False)
    import importlib

    return importlib.import_module(name)


def test_python_api_trust_rules(tmp_path, monkeypatch):
    mod = _user_module(tmp_path, monkeypatch, "usermodel_api")
    torch.manual_seed(1)
    model = mod.build_net(channels=2)
    path = nm.save_model(model, tmp_path / "m.pt", mod.build_net, {"channels": 2}, input_shape=(2, 34, 34))
    assert ck.load_checkpoint(path)["model"]["builder"] == "usermodel_api:build_net"
    with pytest.raises(CheckpointError, match="trust"):
        nm.load_model(path)
    x = (torch.rand(3, 2, 2, 34, 34) < 0.3).float()
    for trust in (True, "usermodel_api", ["usermodel_api:build_net"]):
        loaded, info = nm.load_model(path, trust_builder=trust)
        assert info["input_shape"] == [2, 34, 34]
        assert torch.equal(loaded(x), model.eval()(x))
    with pytest.raises(CheckpointError, match="trust"):
        nm.load_model(path, trust_builder="usermodel")  # a prefix of the name is not its package
    monkeypatch.setenv(ck.TRUST_ENV, "usermodel_api")
    nm.load_model(path)


def test_save_model_refuses_what_no_other_process_can_rebuild(tmp_path, monkeypatch):
    mod = _user_module(tmp_path, monkeypatch, "usermodel_save")
    model = mod.build_net(channels=2)
    with pytest.raises(CheckpointError, match="does not rebuild"):  # wrong kwargs: caught now, not at load
        nm.save_model(model, tmp_path / "a.pt", mod.build_net, {"channels": 3})

    def local_builder():
        return mod.build_net(channels=2)

    with pytest.raises(CheckpointError, match="importable"):
        nm.save_model(model, tmp_path / "b.pt", local_builder)
    with pytest.raises(CheckpointError, match="__main__"):
        nm.save_model(model, tmp_path / "c.pt", "__main__:build_net")
    assert not any(tmp_path.glob("*.pt"))
