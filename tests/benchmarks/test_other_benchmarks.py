"""The measurement scripts without a harness of their own still run, as RESULTS.md gives their commands (in a
subprocess, on the real data, at tiny sizes): a script that stopped working went unnoticed for a day once.
No timing or accuracy is asserted."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_sparse_conv_measures_the_first_convolution(shared_data):
    res = json.loads(_run("sparse_conv.py", "--data", str(shared_data), "--threads", "1", "--samples", "4", "--reps", "1"))
    assert 0.0 < res["density"] < 0.5 and res["frames"] == 4 * 5
    assert res["max_abs_difference"] <= 1e-5 * max(1.0, res["output_scale"])  # the prototype equals conv2d
    assert 0.0 < res["first_conv_share_of_inference"] < 1.0


def test_adlif_ablation_trains_each_variant_briefly(shared_data, tmp_path):
    out = _run("adlif_ablation.py", "--variants", "lif-rec", "se", "--seeds", "0", "--epochs", "1", "--hidden", "16",
               "--batch-size", "32", "--train-limit", "64", "--test-limit", "32", "--data", str(shared_data / "shd_fsdd"),
               "--threads", "1", "--out", str(tmp_path), "--quiet")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["variant"], r["epochs"], r["n_test"]) for r in rows] == [("lif-rec", 1, 32), ("se", 1, 32)]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in rows)
    assert (tmp_path / "se-s0" / "best.pt").exists()


def test_scatter_floor_times_each_case():
    res = json.loads(_run("scatter_floor.py", "--T", "5", "--batch", "2", "--reps", "1"))
    assert set(res["ns_per_accumulate"]) == {"l1", "l2", "kernel", "kernel-delay0"}
    assert all(v >= 0 for v in res["ns_per_accumulate"].values())  # tiny sizes: may read 0
