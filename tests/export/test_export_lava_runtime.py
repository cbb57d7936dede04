"""Our netx files run in Lava itself (lava-nc 0.10 + lava-dl 0.6 netx, CPU fixed-point models) and give
exactly the spikes of our simulator. Lava lives in its own cached venv (hardware/lava/build_venv.sh);
when it cannot be built on this machine the test is skipped with the reason."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuromorph.export.loihi import simulate
from neuromorph.export.netx import NetxLayer, NetxNetwork, write_netx

REPO = Path(__file__).resolve().parents[2]
LAVA_DIR = REPO / "hardware" / "lava"


@pytest.fixture(scope="module")
def lava_python() -> Path:
    venv = Path(os.environ.get("NEUROMORPH_LAVA_VENV", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "neuromorph" / "lava-venv"))
    py = os.environ.get("NEUROMORPH_LAVA_PYTHON", "python3.11")
    if shutil.which(py) is None:
        pytest.skip(f"Lava venv not built: no {py} interpreter on this machine (set NEUROMORPH_LAVA_PYTHON)")
    # build_venv.sh returns at once when the cached venv matches the requirements
    proc = subprocess.run(["bash", str(LAVA_DIR / "build_venv.sh"), str(venv)], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        pytest.skip("Lava venv could not be built here (pip needs lava-nc/lava-dl and a CPU torch wheel): " + " | ".join(tail))
    return venv / "bin" / "python"


def _run_lava(lava_python: Path, net: Path, x: np.ndarray, tmp_path: Path) -> list[np.ndarray]:
    inp, out = tmp_path / "in.npy", tmp_path / "out.npz"
    np.save(inp, x)
    proc = subprocess.run([str(lava_python), str(LAVA_DIR / "run_netx.py"), str(net), str(inp), str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    z = np.load(out)
    return [z[f"layer{i}"] for i in range(len(z.files))]


def test_lava_matches_simulator_dense_delay_conv(lava_python, tmp_path):
    rng = np.random.default_rng(1)
    conv = NetxLayer(kind="conv", weight=rng.integers(-40, 90, (3, 2, 3, 3)), shape=(3, 5, 5), i_decay=4096, v_decay=800, v_th_mant=180, padding=(1, 1))
    conv2 = NetxLayer(
        kind="conv", weight=rng.integers(-40, 120, (2, 3, 2, 2)), shape=(2, 2, 2), i_decay=3000, v_decay=300, v_th_mant=90, stride=(2, 2),
        bias=np.array([2, -1]),
    )
    dense = NetxLayer(
        kind="dense", weight=rng.integers(-80, 127, (4, 8)), shape=(4,), i_decay=4096, v_decay=1500, v_th_mant=100,
        delay=rng.integers(0, 5, (4, 8)), flatten_before=True,
    )
    out = NetxLayer(kind="dense", weight=rng.integers(-60, 127, (2, 4)), shape=(2,), i_decay=4096, v_decay=0, v_th_mant=64)
    net = tmp_path / "net.h5"
    write_netx(NetxNetwork(input_shape=(2, 5, 5), layers=[conv, conv2, dense, out]), net)
    x = (rng.random((40, 2, 5, 5)) < 0.3).astype(np.int64)
    lava = _run_lava(lava_python, net, x, tmp_path)
    ours = simulate(net, x, num_steps=40)
    assert len(lava) == 4
    for i, (a, b) in enumerate(zip(lava, ours.spikes)):
        assert a.shape == b[:, 0].shape, i
        np.testing.assert_array_equal(a, b[:, 0], err_msg=f"layer {i}")
    assert all(s.sum() > 0 for s in ours.spikes), "test network must spike in every layer to be meaningful"
