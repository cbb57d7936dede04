"""Run a netx HDF5 network in Lava's CPU simulator (fixed-point, bit-accurate models) and save the
spikes of every layer. Runs inside the separate Lava venv (see build_venv.sh), never in neuromorph's.

Usage: python run_netx.py NET.h5 INPUT.npy OUT.npz [NET.h5 INPUT.npy OUT.npz ...]
  (several networks in one process: importing Lava takes most of the time)
  INPUT.npy: integer spikes [T, *input_shape] in PyTorch order (C, H, W) or (N,).
  OUT.npz:   layer<i>: integer spikes [T, *shape] (PyTorch order) of netx block i, as Lava produced them;
             seconds_build, seconds_run: wall time to build the Lava network and to run it (import excluded).
"""

import sys
import time
import types

import numpy as np


def _stub_object_detection() -> None:
    # lava.lib.dl.slayer imports its object_detection package, which needs opencv; netx never uses it.
    name = "lava.lib.dl.slayer.object_detection"
    if name not in sys.modules:
        mod = types.ModuleType(name)
        mod.__path__ = []
        sys.modules[name] = mod


def main(net_path: str, input_path: str, out_path: str) -> None:
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    t0 = time.perf_counter()
    x = np.load(input_path)
    T = x.shape[0]
    graded = int(x.max()) > 1
    net = netx.hdf5.Network(net_config=net_path, input_message_bits=8 if graded else 0)
    # Lava orders neurons (x, y, channel); our arrays are (channel, y, x)
    data = x.transpose(tuple(range(x.ndim - 1, 0, -1)) + (0,)).astype(np.int32)
    source = io.source.RingBuffer(data=data)
    source.s_out.connect(net.inp)
    sinks = []
    for layer in net.layers:
        sink = io.sink.RingBuffer(shape=layer.out.shape, buffer=T)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
    t1 = time.perf_counter()
    net.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    out = {}
    for i, sink in enumerate(sinks):
        d = sink.data.get()  # (*lava_shape, T)
        out[f"layer{i}"] = d.transpose((d.ndim - 1,) + tuple(range(d.ndim - 2, -1, -1))).astype(np.int64)
    net.stop()
    out["seconds_build"] = np.float64(t1 - t0)
    out["seconds_run"] = np.float64(time.perf_counter() - t1)
    np.savez(out_path, **out)


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit(__doc__)
    _stub_object_detection()
    for k in range(0, len(args), 3):
        main(*args[k : k + 3])
