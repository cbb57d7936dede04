"""The speed benchmarks that reuse benchmarks/speed.py's harness (its ``build`` replaced by theirs) still run
with it: one tiny step per network, in a subprocess as the benchmark itself starts them. (speed_adlif.py
failed on every row for a while after the harness's ``build`` gained an argument.) No timing is asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("script, network", [("speed.py", "neuromorph"), ("speed_adlif.py", "se-adlif-rec"),
                                             ("speed_adlif.py", "lif-ff"), ("speed_recurrent.py", "neuromorph-fused")])
def test_harness_times_one_step_of_each_scripts_network(script, network):
    proc = subprocess.run([sys.executable, str(BENCH / script), "--_one", network, "--T", "3", "--batch", "2",
                           "--steps", "1", "--warmup", "0", "--threads", "1"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["library"] == network and row["median_ms"] > 0 and row["peak_step_mb"] >= 0


def test_neuron_kernels_benchmark_runs_every_configuration():
    proc = subprocess.run([sys.executable, str(BENCH / "neuron_kernels.py"), "--T", "4", "--M", "16", "--reps", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert set(res["configs"]) == {"lif", "cuba", "alif", "se-adlif", "ef-adlif"}
    for row in res["configs"].values():
        assert all(row[k] >= 0 for k in ("forward_train_ms", "forward_infer_ms", "adjoint_ms"))  # tiny: may read 0


def test_repeated_runs_combine_into_medians_and_keep_failures():
    """``--repeats``: a library's row is the median over its runs (each run listed); one failed run fails the row."""
    sys.path.insert(0, str(BENCH))
    try:
        import speed
    finally:
        sys.path.remove(str(BENCH))
    runs = [{"library": "a", "median_ms": m, "median_cpu_ms": 2 * m, "min_ms": m - 1, "peak_step_mb": 5.0 + m}
            for m in (30.0, 10.0, 20.0)]
    row = speed._combine(runs)
    assert (row["median_ms"], row["median_cpu_ms"], row["min_ms"], row["peak_step_mb"]) == (20.0, 40.0, 9.0, 25.0)
    assert row["runs_ms"] == [30.0, 10.0, 20.0]
    assert speed._combine(runs[:1]) == runs[0]
    assert speed._combine([runs[0], {"library": "a", "error": "boom"}])["error"] == "boom"


def test_memory_run_measures_one_step_without_timing():
    """``--steps 0`` is the memory run: the step's peak only (taken with a fixed glibc mmap threshold)."""
    proc = subprocess.run([sys.executable, str(BENCH / "speed.py"), "--_one", "neuromorph", "--T", "3", "--batch", "2",
                           "--steps", "0", "--warmup", "0", "--threads", "1"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["library"] == "neuromorph" and row["peak_step_mb"] >= 0 and "median_ms" not in row


def test_sparse_parts_benchmark_times_every_part():
    proc = subprocess.run([sys.executable, str(BENCH / "sparse_parts.py"), "--rows", "64", "--in", "16", "--out", "8",
                           "--reps", "1", "--threads", "1", "--density", "0.3", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["results"]
    assert [(r["input"], r["binary"]) for r in rows] == [("binary", True), ("counts", False)]
    for r in rows:
        assert {"count_ms", "list_ms", "forward_ms", "weight_grad_ms", "dense_forward_ms"} <= set(r)
