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


def _run_lava(lava_python: Path, jobs: list[tuple[Path, np.ndarray]], tmp_path: Path) -> list[list[np.ndarray]]:
    """Run several netx files in one Lava process (its import dominates the time)."""
    args = []
    for k, (net, x) in enumerate(jobs):
        inp, out = tmp_path / f"in{k}.npy", tmp_path / f"out{k}.npz"
        np.save(inp, x)
        args += [str(net), str(inp), str(out)]
    proc = subprocess.run([str(lava_python), str(LAVA_DIR / "run_netx.py"), *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = []
    for k in range(len(jobs)):
        z = np.load(tmp_path / f"out{k}.npz")
        result.append([z[f"layer{i}"] for i in range(sum(f.startswith("layer") for f in z.files))])
    return result


def test_lava_matches_simulator_exactly(lava_python, shared_data, tmp_path):
    """Lava's fixed-point spikes equal our simulator's, layer by layer, for (1) a hand-built net with
    conv (padding, stride, bias, CUBA current decay), flatten, dense with delays; (2) the N-MNIST conv net
    exported by to_lava on real N-MNIST input (graded spike counts, pooling folded into synapses); (3) the
    SHD delay net (per-synapse delays, BatchNorm folded into a bias, LI readout); (4) a net with max pooling
    of spikes (gate layers: grouped unit-weight convolutions + IF)."""
    import torch

    from neuromorph.export.lava import to_lava

    from ._models import maxpool_net, nmnist_frames, nmnist_net, shd_delay_net

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
    hand = write_netx(NetxNetwork(input_shape=(2, 5, 5), layers=[conv, conv2, dense, out]), tmp_path / "hand.h5")
    x_hand = (rng.random((40, 2, 5, 5)) < 0.3).astype(np.int64)

    x, _ = nmnist_frames(shared_data, n=1, steps=20)
    nmnist = to_lava(nmnist_net(), tmp_path / "nmnist.h5", x)
    x_nmnist = x[:, 0].numpy().astype(np.int64)

    torch.manual_seed(2)
    xs = (torch.rand(40, 1, 20) < 0.3).float()
    shd = to_lava(shd_delay_net(), tmp_path / "shd.h5", xs)
    x_shd = xs[:, 0].numpy().astype(np.int64)

    # (4) max pooling of spikes: unit-weight depthwise conv + IF gate layers (exact parameters, so the
    # simulator also equals the float model: test_export_maxpool)
    xm = torch.poisson(torch.full((12, 1, 2, 16, 16), 0.4), generator=torch.Generator().manual_seed(4))
    maxpool = to_lava(maxpool_net(), tmp_path / "maxpool.h5", xm, check="loihi2")
    x_maxpool = xm[:, 0].numpy().astype(np.int64)

    jobs = [(hand, x_hand), (nmnist, x_nmnist), (shd, x_shd), (maxpool, x_maxpool)]
    lava = _run_lava(lava_python, jobs, tmp_path)
    for (net, xin), got in zip(jobs, lava):
        ours = simulate(net, xin, num_steps=xin.shape[0])
        assert len(got) == len(ours.spikes)
        assert sum(int(s.sum()) for s in ours.spikes[:-1]) > 20, f"{net.name}: test input must make the network spike"
        for i, (a, b) in enumerate(zip(got, ours.spikes)):
            assert a.shape == b[:, 0].shape, (net.name, i)
            np.testing.assert_array_equal(a, b[:, 0], err_msg=f"{net.name} layer {i}")
