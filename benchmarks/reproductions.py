"""Reproduce each seed paper's headline claim on the data sets here, side by side with its ablation.

Usage::

    python benchmarks/reproductions.py --method mpr --seeds 0 1 2 --threads 1 --out OUT
    python benchmarks/reproductions.py --method all --quick --out OUT      # every method, tiny budget
    python benchmarks/reproductions.py --method dcls --data DATA           # DATA/shd_fsdd, DATA/nmnist

Methods (each module in ``benchmarks/repro/`` states the claim, the protocol and how its sizes differ from
the paper's): ``mpr`` (soft reset + Membrane Potential Rectifier, Guo et al., ECCV 2022), ``mpbn``
(membrane-potential BN, Guo et al., ICCV 2023), ``hoyer`` (Hoyer-extremum one-step SNNs, Datta et al.,
arXiv 2212.10170), ``delta`` (Delta activation layer, Yousefzadeh & Sifalakis, arXiv 2107.07305),
``maxformer`` (Fang et al., NeurIPS 2025), ``qcfs`` (QCFS ANN-to-SNN conversion, Bu et al., ICLR 2022),
``dcls`` (learnable delays, Hammouamri et al., ICLR 2024), ``rsm`` (Random Spike Masking, Wang et al.,
ICCV 2023).

Each run writes ``OUT/<method>.json`` (configuration, per-seed numbers, mean ± std), ``OUT/<method>.config.json``
and ``OUT/<method>.png``, and prints a summary table. ``--quick`` runs the same code with a tiny budget (a
test that the protocol runs end to end; its numbers mean nothing). The real data sets (N-MNIST, shd_fsdd) are
read from ``--data`` (default ``$NEUROMORPH_TEST_DATA``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from repro.common import RunConfig, write_outputs  # noqa: E402

METHODS = ("mpr", "mpbn", "hoyer", "delta", "maxformer", "qcfs", "dcls", "rsm")


def run_method(name: str, args: argparse.Namespace) -> dict:
    module = importlib.import_module(f"repro.{name}")
    cfg = RunConfig(method=name, seeds=list(args.seeds), quick=args.quick, threads=args.threads, out=str(args.out),
                    data=None if args.data is None else str(args.data))
    t0, c0 = time.perf_counter(), time.process_time()
    result = module.run(cfg)
    result["wall_time_s"] = round(time.perf_counter() - t0, 1)
    result["cpu_time_s"] = round(time.process_time() - c0, 1)
    paths = write_outputs(cfg, result, module.plot)
    print(module.table(result))
    print(f"[{name}] {result['wall_time_s']:.0f} s wall, {result['cpu_time_s']:.0f} s CPU; wrote {paths['json']} and {paths['png']}",
          flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, choices=(*METHODS, "all"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--quick", action="store_true", help="tiny budget: checks that the protocol runs, numbers mean nothing")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, default=Path("repro_out"))
    p.add_argument("--data", type=Path, help="folder holding nmnist/ and shd_fsdd/ (default $NEUROMORPH_TEST_DATA)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in METHODS if args.method == "all" else (args.method,):
        run_method(name, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
