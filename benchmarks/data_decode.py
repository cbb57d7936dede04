"""Event-file decode speed (events/s): neuromorph's readers vs Tonic's and expelliarmus' on the same files.

    python benchmarks/data_decode.py [--json] [--repeats 5]

Inputs (../shared/data, read-only): the 1,100 N-MNIST files, the ten DVS128 recordings, both Prophesee
EVT 2.0 files, the EVT 3.0 file, a Prophesee DAT file written to a temporary folder from the EVT 2.0
events (no real DAT file is at hand), the AEDAT4 DAVIS recording, the Event Stream file and the
shd_fsdd test HDF5. Each reader decodes the whole file from disk (files are in the page cache after the
first round). Before timing, the outputs are checked to be equal (EVT 3.0: x, y, p only, because
expelliarmus' timestamps are wrong after event 20,121 of that file). Each figure is the best of
``--repeats`` rounds, as wall-clock rate and as rate per CPU-second this process received (the machine is
shared). numba runs on one thread; the peers' decoders are single-threaded C/Rust.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neuromorph.data.readers import (  # noqa: E402
    iter_shd, read_aedat4, read_dat, read_dvs128_bin, read_es, read_evt2, read_evt3, read_nmnist,
)

DATA = Path(os.environ.get("NEUROMORPH_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TONIC_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best wall-clock and best CPU time (this process) over ``repeats`` rounds."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def _write_dat(events: np.ndarray, path: Path) -> None:
    raw = np.empty(len(events), dtype=[("t", "<u4"), ("d", "<u4")])
    raw["t"] = events["t"] - events["t"][0]
    raw["d"] = events["x"].astype(np.uint32) | (events["y"].astype(np.uint32) << 14) | (events["p"].astype(np.uint32) << 28)
    path.write_bytes(b"% Data file containing CD events.\n% Version 2\n% Width 640\n% Height 480\n" + bytes([12, 8]) + raw.tobytes())


def _same(a: np.ndarray, b: np.ndarray, fields: str, name: str) -> None:
    if len(a) != len(b) or any(not np.array_equal(a[k], b[k]) for k in fields):
        raise SystemExit(f"{name}: outputs differ; not timing")


@functools.lru_cache(maxsize=None)
def _wizard(encoding: str):
    from expelliarmus import Wizard  # a Tonic dependency; imported only when timed

    return Wizard(encoding=encoding)


def cases(tmp: Path) -> list[dict]:
    """Each case: name, files, our reader, and peer readers ({peer name: function})."""
    import tonic.io

    nmnist = sorted((DATA / "nmnist").glob("*/*/*.bin"))
    dvs = sorted((DATA / "dvs128").glob("*.bin"))
    evt2 = [DATA / "prophesee" / "faery_evt2.raw", DATA / "prophesee" / "expelliarmus_evt2_sample.raw"]
    evt3 = [DATA / "prophesee" / "expelliarmus_evt3_sample.raw"]
    dat = tmp / "from_faery_evt2.dat"
    _write_dat(read_evt2(evt2[0]), dat)
    tonic_mnist = lambda f: tonic.io.read_mnist_file(str(f), dtype=TONIC_DTYPE)  # noqa: E731

    def tonic_shd(f):
        import h5py  # what tonic.datasets.SHD.__getitem__ does per sample, without its folder checks

        with h5py.File(f, "r") as h5:
            n = len(h5["labels"])
        out = []
        for i in range(n):
            with h5py.File(f, "r") as h5:
                out.append(tonic.io.make_structured_array(h5["spikes/times"][i].astype(np.float64) * 1e6,
                                                           h5["spikes/units"][i], 1,
                                                           dtype=np.dtype([("t", int), ("x", int), ("p", int)])))
        return np.concatenate(out)

    def ours_shd(f):
        return np.concatenate([ev for ev, _ in iter_shd(f)])

    return [
        dict(name="N-MNIST .bin (1,100 files)", files=nmnist, ours=read_nmnist, peers={"tonic": tonic_mnist}, cmp="xytp"),
        dict(name="DVS128 .bin (10 files)", files=dvs, ours=read_dvs128_bin, peers={"tonic": tonic_mnist}, cmp="xytp"),
        dict(name="Prophesee EVT 2.0 (2 files)", files=evt2, ours=read_evt2,
             peers={"expelliarmus": lambda f: _wizard("evt2").read(f)}, cmp="xytp"),
        dict(name="Prophesee EVT 3.0 (1 file)", files=evt3, ours=read_evt3,
             peers={"expelliarmus": lambda f: _wizard("evt3").read(f)}, cmp="xyp"),
        dict(name="Prophesee DAT (1 file, from EVT 2.0)", files=[dat], ours=read_dat,
             peers={"expelliarmus": lambda f: _wizard("dat").read(f)}, cmp="xytp"),
        dict(name="AEDAT4 DAVIS346 (1 file)", files=[DATA / "aedat" / "aestream_davis.aedat4"], ours=read_aedat4,
             peers={"tonic (aedat)": lambda f: tonic.io.read_aedat4(str(f))}, cmp="xyt"),
        dict(name="Event Stream .es (1 file)", files=[DATA / "eventstream" / "dvs.es"], ours=read_es, peers={}, cmp=""),
        dict(name="SHD HDF5 (shd_fsdd test, 300 samples)", files=[DATA / "shd_fsdd" / "shd_fsdd_test.h5"],
             ours=ours_shd, peers={"tonic": tonic_shd}, cmp="t"),
    ]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for case in cases(Path(d)):
            files, ours = case["files"], case["ours"]
            ref = [ours(f) for f in files]  # also compiles / loads the numba cache
            n = sum(len(e) for e in ref)
            row = {"format": case["name"], "events": n}
            wall, cpu = _best(lambda: [ours(f) for f in files], args.repeats)
            row["neuromorph"] = {"Mev_s_wall": n / wall / 1e6, "Mev_s_cpu": n / cpu / 1e6}
            for peer, fn in case["peers"].items():
                try:
                    got = [fn(f) for f in files]
                except ImportError as exc:  # e.g. `aedat` (peers extra) not installed
                    row[peer] = f"not installed: {exc.name}"
                    continue
                for a, b, f in zip(ref, got, files):
                    _same(a, b, case["cmp"], f"{case['name']} {peer} {f}")
                pw, pc = _best(lambda: [fn(f) for f in files], args.repeats)
                row[peer] = {"Mev_s_wall": n / pw / 1e6, "Mev_s_cpu": n / pc / 1e6, "ours_over_peer_cpu": pc / cpu}
            rows.append(row)
            if not args.json:
                peers = "; ".join(f"{p} {v['Mev_s_wall']:.1f} wall / {v['Mev_s_cpu']:.1f} cpu (ours {v['ours_over_peer_cpu']:.1f}x)"
                                  if isinstance(v, dict) else f"{p}: {v}"
                                  for p, v in row.items() if p not in ("neuromorph", "format", "events"))
                print(f"{case['name']:<40} {n:>10,} ev  neuromorph {row['neuromorph']['Mev_s_wall']:.1f} wall / "
                      f"{row['neuromorph']['Mev_s_cpu']:.1f} cpu Mev/s  {peers}", flush=True)
    result = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
              "load_average": os.getloadavg(), "repeats": args.repeats, "rows": rows}
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
