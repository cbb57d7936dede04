"""The serial and the parallel build of an event-driven loop never load each other's cached machine code.

Numba's disk cache keys a function by name, bytecode and signature, not by ``parallel=``: before
``sparse.compile_loop`` gave each build its own name, a process that asked for the parallel build found the
serial one saved by an earlier process (or the other way round) and ran it, on one thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
import neuromorph as nm
from neuromorph.kernels import sparse, sparse_delays

batch = int(sys.argv[2])
torch.manual_seed(0)
x = (torch.rand(70, batch, 12) < 0.3).float()  # T * batch rows: >= 64 runs the parallel build with 2 threads
nm.nn.Linear(12, 5, backend="sparse")(x)
w, d = torch.randn(5, 12), torch.randint(0, 3, (5, 12))
sparse_delays.deliver(x, sparse_delays.pack(w, d, 3), 72)
out = {}
for mod in (sparse, sparse_delays):
    for (name, parallel), fn in mod._COMPILED.items():
        out[f"{mod.__name__.rsplit('.', 1)[1]}.{name}.{'parallel' if parallel else 'serial'}"] = {
            "hits": sum(fn.stats.cache_hits.values()), "misses": sum(fn.stats.cache_misses.values())}
print(json.dumps(out))
"""


def _run(tmp_path, threads: int, batch: int) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_NUM_THREADS": "2",
           "NEUROMORPH_NUMBA_CACHE": "1", "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(threads), str(batch)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_parallel_build_does_not_load_the_serial_build(tmp_path):
    from neuromorph.kernels import sparse

    fwd = "sparse.forward16" if sparse.VECTOR_FORWARD else "sparse.forward"  # the float32 forward's loop
    serial = _run(tmp_path, threads=1, batch=2)  # fills the cache with serial builds only
    assert serial and all(k.endswith(".serial") for k in serial), serial
    assert "sparse_delays.deliver.serial" in serial and fwd + ".serial" in serial
    parallel = _run(tmp_path, threads=2, batch=2)
    assert "sparse_delays.deliver.parallel" in parallel and fwd + ".parallel" in parallel
    for name, stats in parallel.items():
        if name.endswith(".parallel"):
            # compiled here: the serial entries in the cache are not the parallel build
            assert stats == {"hits": 0, "misses": 1}, (name, stats)
    again = _run(tmp_path, threads=2, batch=2)
    for name, stats in again.items():  # and each build is then found under its own name
        assert stats == {"hits": 1, "misses": 0}, (name, stats)
