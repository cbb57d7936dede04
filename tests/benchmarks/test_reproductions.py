"""benchmarks/reproductions.py runs every method's protocol end to end (``--quick``: tiny budget) and writes
every field, the configuration beside the result, and the plot, so that the reproductions cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "reproductions.py"
sys.path.insert(0, str(REPO / "benchmarks"))

from reproductions import METHODS  # noqa: E402

# the accuracy-like statistic each method's summary rows must carry (mean ± std over seeds)
ROW_KEYS = {
    "mpr": ("test_accuracy", "qe", "qe_phi"),
    "mpbn": ("test_accuracy",),
    "hoyer": ("test_accuracy",),
    "delta": ("test_accuracy", "nonzero_delta_fraction", "activation_density", "synop_saving"),
    "maxformer": ("test_accuracy", "energy_pj", "synops"),
    "qcfs": ("ann_accuracy",),
    "dcls": ("test_accuracy", "best_val_accuracy"),
    "rsm": ("snn_accuracy", "energy_pj", "energy_vs_r0"),
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("repro")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--method", "all", "--quick", "--seeds", "0", "1", "--out", str(out),
                           "--data", str(shared_data)], capture_output=True, text=True, env=env, cwd=out, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc.stdout


def test_every_method_has_a_test_here():
    assert set(ROW_KEYS) == set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_quick_protocol_writes_every_field_and_the_plot(quick_run, method):
    out, stdout = quick_run
    result = json.loads((out / f"{method}.json").read_text())
    config = json.loads((out / f"{method}.config.json").read_text())
    assert result["config"] == config
    assert config["method"] == method and config["quick"] is True and config["seeds"] == [0, 1] and config["params"]
    assert result["claim"] and result["wall_time_s"] >= 0 and result["cpu_time_s"] >= 0
    # one run per seed and variant, and every summary row has mean ± std over both seeds
    assert {r["seed"] for r in result["runs"]} == {0, 1}
    assert result["summary"]
    for row in result["summary"].values():
        for key in ROW_KEYS[method]:
            assert row[key]["mean"] is not None and row[key]["std"] is not None, (method, key)
            assert len(row[key]["values"]) == 2, (method, key)
    png = (out / f"{method}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert f"[{method}]" in stdout


def test_quick_numbers_obey_what_they_measure(quick_run):
    out, _ = quick_run
    mpbn = json.loads((out / "mpbn.json").read_text())
    for r in (r for r in mpbn["runs"] if r["variant"] == "BN+MPBN"):
        # folding MPBN into the thresholds must not change a single test prediction
        assert r["folded_identical_fraction"] == 1.0 and r["folded_accuracy"] == r["unfolded_accuracy"]
    delta = json.loads((out / "delta.json").read_text())
    for r in delta["runs"]:
        assert 0.0 <= r["nonzero_delta_fraction"] <= 1.0 and r["synop_saving"] <= 1.0
    accuracies = [v for s in json.loads((out / "qcfs.json").read_text())["summary"].values() for v in s["snn_accuracy"].values()]
    assert all(0.0 <= a["mean"] <= 1.0 for a in accuracies)


def test_unknown_method_is_refused():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--method", "nope"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "invalid choice: 'nope'" in proc.stderr
