"""Export benchmark: our bit-accurate Loihi simulator vs Lava's own CPU simulation (fixed-point models) on
the same netx files, and the float-vs-quantized spike match of those files.

    python benchmarks/export_loihi.py [--repeats 3] [--json]

Networks: the N-MNIST conv net of tests/export (real N-MNIST test samples, 20 bins) and the SHD delay net
(140 -> 256 -> 256 -> 20 in the reference configuration, K = 25, random input at 20% rate, 100 steps),
both exported with ``neuromorph.export.to_lava``. Lava runs in its separate venv
(hardware/lava/build_venv.sh); its time excludes the Lava import. Spikes are checked to be equal before
anything is timed. Weights are untrained (random init, scaled so that every layer spikes): the match rates
measure quantization, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neuromorph.export import fidelity_report, simulate, to_lava  # noqa: E402
from tests.export._models import nmnist_frames, nmnist_net  # noqa: E402


def shd_reference_net() -> torch.nn.Module:
    from neuromorph.models.shd import SHDDelayNet

    torch.manual_seed(0)
    m = SHDDelayNet(delay_method="direct")
    with torch.no_grad():
        for mod in m.modules():
            if type(mod).__name__ == "DelayedLinear":
                mod.weight.mul_(3.0)
                mod.round_delays()
    return m.eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = REPO.parent / "shared" / "data"
    venv = Path(os.environ.get("NEUROMORPH_LAVA_VENV", Path.home() / ".cache" / "neuromorph" / "lava-venv"))
    lava_py = venv / "bin" / "python"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        x, labels = nmnist_frames(data, n=1, steps=20)
        torch.manual_seed(1)
        xs = (torch.rand(100, 1, 140) < 0.2).float()
        cases = [("N-MNIST conv net", nmnist_net(), x), ("SHD delay net", shd_reference_net(), xs)]
        for name, model, inp in cases:
            path = to_lava(model, tmp / f"{len(rows)}.h5", inp)
            xi = inp[:, 0].numpy().astype(np.int64)
            T = xi.shape[0]
            ours_t = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                ours = simulate(path, xi, num_steps=T)
                ours_t.append(time.perf_counter() - t0)
            rep = fidelity_report(model, path, inp)
            row = {"network": name, "steps": T, "layers": len(ours.spikes),
                   "neurons": int(sum(np.prod(s.shape[2:]) for s in ours.spikes)),
                   "ours_s": float(np.median(ours_t)),
                   "match_rates": [r["match_rate"] for r in rep.layers]}
            if lava_py.is_file():
                np.save(tmp / "in.npy", xi)
                lava_t = []
                for _ in range(args.repeats):
                    proc = subprocess.run([str(lava_py), str(REPO / "hardware" / "lava" / "run_netx.py"), str(path), str(tmp / "in.npy"),
                                           str(tmp / "out.npz")], capture_output=True, text=True)
                    if proc.returncode:
                        raise SystemExit(proc.stderr[-2000:])
                    z = np.load(tmp / "out.npz")
                    for i, s in enumerate(ours.spikes):
                        if not np.array_equal(z[f"layer{i}"], s[:, 0]):
                            raise SystemExit(f"{name}: Lava and our simulator differ in layer {i}")
                    lava_t.append(float(z["seconds_build"]) + float(z["seconds_run"]))
                row["lava_s"] = float(np.median(lava_t))
                row["lava_over_ours"] = row["lava_s"] / row["ours_s"]
            rows.append(row)
    if args.json:
        print(json.dumps(rows))
        return
    print("| network | steps | neurons | ours (s) | Lava CPU fixed_pt (s) | Lava / ours | float vs quantized spike match per layer |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        lava = f"{r['lava_s']:.2f}" if "lava_s" in r else "n/a"
        ratio = f"{r['lava_over_ours']:.0f}x" if "lava_s" in r else "n/a"
        rates = ", ".join(f"{m:.4f}" for m in r["match_rates"] if m is not None)
        print(f"| {r['network']} | {r['steps']} | {r['neurons']} | {r['ours_s']:.3f} | {lava} | {ratio} | {rates} |")


if __name__ == "__main__":
    main()
