"""Start-up time of the ``neuromorph`` command: wall time and the heavy modules each invocation loads.

Each command runs ``--rounds`` times in a fresh interpreter (``python -c`` calling ``neuromorph.cli.main``,
which is what the console script runs); reported: the median wall time and whether torch / numba were
imported, beside the bare interpreter start (``python -c pass``). ``--version`` and every ``--help`` should load neither (tests/test_cli_contract.py asserts the
imports; this script measures the time, which depends on the machine and its load).

    python benchmarks/startup.py [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS = [["--version"], ["--help"], ["train", "--help"], ["eval", "--help"], ["energy", "--help"],
            ["export", "--help"], ["data", "read", "--help"], ["bench", "--help"]]

PROBE = """import sys
from neuromorph.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
sys.stdout = sys.__stdout__
print("HEAVY", " ".join(m for m in ("torch", "numba", "numpy") if m in sys.modules))
"""


def measure(argv: list[str] | None, rounds: int) -> dict:
    """``argv=None``: the bare interpreter (``python -c pass``), the floor of every row."""
    times, heavy = [], ""
    code = "print('HEAVY')" if argv is None else PROBE.format(argv=argv)
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        times.append(time.perf_counter() - t0)
        heavy = out.rsplit("HEAVY", 1)[-1].strip()
    return {"command": "python -c pass" if argv is None else "neuromorph " + " ".join(argv), "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "loads": heavy.split()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = [measure(argv, args.rounds) for argv in [None, *COMMANDS]]
    if args.json:
        print(json.dumps({"benchmark": "startup", "python": sys.version.split()[0], "rows": rows}))
    else:
        for r in rows:
            print(f"{r['command']:<32} median {r['median_s']:.3f} s  (min {r['min_s']:.3f})  loads: {', '.join(r['loads']) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
