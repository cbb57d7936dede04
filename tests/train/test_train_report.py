"""The report after `neuromorph train` (run as a user runs it): the NIR export names what each peer can run
from the file, and the energy step measures the network in the form it is evaluated and exported in (the
SHD delay recipe: its integer delays)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nir
import pytest
import torch

from neuromorph.energy import measure
from neuromorph.export.peers import PEERS, peer_report, peer_summary
from neuromorph.nn.delays import rounded_delays
from neuromorph.train import checkpoint as ck
from neuromorph.train.data import load_split
from neuromorph.train.evaluation import checkpoint_recipe


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("neuromorph")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "neuromorph"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def shd_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("shd") / "run"
    proc = _cli("train", "shd", "--data-root", str(shared_data / "shd_fsdd"), "--out", str(out), "--epochs", "1",
                "--batch-size", "16", "--set", "train_limit=32", "--set", "test_limit=8", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


@pytest.mark.timeout(300)
def test_train_prints_and_stores_what_each_peer_runs(shd_run):
    out, stdout = shd_run
    report = json.loads((out / "summary.json").read_text())["report"]["nir"]
    assert report["status"] == "ok"
    want = json.loads(json.dumps(peer_report(nir.read(out / "model.nir"))))  # about the file written
    assert report["peers"] == want and set(want) == set(PEERS)
    assert report["peers_summary"] == peer_summary(want)
    for peer in PEERS:  # the delay net: no peer runs nir.Delay
        assert want[peer]["per_sample"] == "fails" and any(i["node"] == "Delay" for i in want[peer]["issues"])
    lines = stdout.splitlines()
    at = lines.index(f"  nir: ok {out / 'model.nir'}")
    assert lines[at + 1] == (f"    {peer_summary(want)} (workarounds: neuromorph export {out / 'best.pt'} --to nir)")
    assert lines[at + 1].startswith("    peers (per sample/batched): snntorch fails (Delay, LI); ")


@pytest.mark.timeout(300)
def test_train_energy_is_measured_with_the_evaluated_integer_delays(shd_run):
    out, stdout = shd_run
    item = json.loads((out / "summary.json").read_text())["report"]["energy"]
    assert item["status"] == "ok"
    assert any("measured as evaluated and exported" in n and "integer delays" in n for n in item["notes"]), item["notes"]
    assert "note: measured as evaluated and exported: delays:" in stdout
    saved = json.loads((out / "energy.json").read_text())
    # the same samples the report measured: the first min(64, n) test samples
    model, info = ck.load_model(out / "best.pt")
    data = load_split(checkpoint_recipe(info, out / "best.pt"), "test", info.get("data", {}).get("n_steps"))
    x, _ = data.batch(torch.arange(min(64, len(data))))
    with rounded_delays(model):
        rounded = measure(model, x, hardware=["loihi", "cmos45nm"], allow_missing=True).to_dict()
    real = measure(model, x, hardware=["loihi", "cmos45nm"], allow_missing=True).to_dict()
    keys = ("synops", "spikes", "neuron_updates", "active_updates")
    tot = {k: saved["totals_per_inference"][k] for k in keys}
    assert tot == {k: rounded["totals_per_inference"][k] for k in keys}
    assert saved["energy_pj_per_inference"] == rounded["energy_pj_per_inference"]
    assert tot != {k: real["totals_per_inference"][k] for k in keys}  # the real-valued delays count otherwise


@pytest.mark.timeout(300)
def test_energy_cli_measures_the_same_evaluated_network(shd_run):
    """`neuromorph energy best.pt` on the same samples gives the train report's counts (integer delays), and says so."""
    out, _ = shd_run
    proc = _cli("energy", str(out / "best.pt"), "--hardware", "loihi,cmos45nm", "--allow-missing", "--limit", "8",
                "--batch-size", "8", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    saved = json.loads((out / "energy.json").read_text())
    assert res["totals_per_inference"] == saved["totals_per_inference"]
    assert res["energy_pj_per_inference"] == saved["energy_pj_per_inference"]
    assert any("integer delays" in n for n in res["notes"]), res["notes"]
    proc = _cli("energy", str(out / "best.pt"), "--limit", "8", "--batch-size", "8")
    assert proc.returncode == 0 and "note: measured as evaluated and exported: delays:" in proc.stdout, proc.stderr[-2000:]
