"""benchmarks/sparse_real.py runs its sections on the real shd_fsdd test split, as a user would start it (in a
subprocess): the Linear net's train/infer/stream rows, and the delay network's inference, streaming and
per-layer profile for a given checkpoint. No timing is asserted."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from neuromorph.models.shd import SHDDelayNet
from neuromorph.train import checkpoint as ck

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "sparse_real.py"


def _run(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(BENCH), *args, "--threads", "1", "--reps", "1", "--stream-samples", "1",
                           "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_linear_section_runs_on_the_shd_fsdd_test_split(shared_data):
    res = _run("--data", str(shared_data), "--sections", "linear")
    assert 0.0 < res["shd_fsdd_input_density"] < 0.3
    assert {"train", "infer", "stream"} <= set(res)


def test_delay_section_with_a_checkpoint_and_its_profile(shared_data, tmp_path):
    torch.manual_seed(0)
    kwargs = {"n_inputs": 140, "n_classes": 10, "hidden": 32}
    model = SHDDelayNet(**kwargs)
    path = ck.save_checkpoint(tmp_path / "best.pt", model, "neuromorph.models.shd:SHDDelayNet", kwargs)
    res = _run("--data", str(shared_data), "--sections", "delay", "--checkpoint", str(path), "--batch", "150",
               "--profile")["delay"]
    assert res["samples"] == 300 and res["stream_equals_whole_sequence"]  # exact by construction
    assert len(res["delay_input_densities"]) == 3 and set(res["paths"]) <= {"sparse", "dense"}
    layers = res["infer"]["layers_ms"]
    assert set(layers) == {"sparse", "dense"}
    assert [k.split()[1] for k in layers["sparse"]] == [type(m).__name__ for m in model]
