"""The fused numba loops on several threads (blocks of neurons) give the one-thread results bit for bit.

Neurons are independent, so each block walks all T steps of its own neurons in the same order of
operations as the serial loop: spikes, membranes and every gradient must be identical, not merely close.
"""

from __future__ import annotations

import numba
import pytest
import torch

from neuromorph.kernels import DynamicsConfig, DynamicsParams, fused

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has a single thread here")

# M = B * N = 2000 neurons: two blocks of 1008 and 992 (the last one partial); T * M is above PARALLEL_ELEMENTS
T, B, N = 40, 8, 250

CONFIGS = {"lif": DynamicsConfig(), "cuba-hard": DynamicsConfig(cuba=True, reset="hard"),
           "alif": DynamicsConfig(alif=True), "se-adlif": DynamicsConfig(adlif="se"),
           "ef-adlif": DynamicsConfig(adlif="ef"), "no-reset": DynamicsConfig(reset="none")}


def _outputs_and_grads(cfg: DynamicsConfig, dtype: torch.dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(T, B, N, generator=g, dtype=dtype) * 1.5 + 0.9).requires_grad_()
    params = [torch.tensor(v, dtype=dtype, requires_grad=True) for v in (0.9, 1.0, 0.8, 0.9, 0.1, 0.2)]
    out, mem, st = fused.run(x, DynamicsParams(*params), cfg, None, return_membrane=True)
    w_out, w_mem = torch.randn(T, B, N, generator=g, dtype=dtype), torch.randn(T, B, N, generator=g, dtype=dtype)
    loss = (out * w_out).sum() + (mem * w_mem).sum() + st.v.sum()
    grads = torch.autograd.grad(loss, [x, *params], allow_unused=True)
    return [out.detach(), mem.detach(), *(q for q in grads if q is not None)]


@pytest.mark.parametrize("name,dtype", [(n, torch.float32) for n in CONFIGS] + [("lif", torch.float64)])
def test_blocks_on_two_threads_equal_one_thread(name, dtype, monkeypatch):
    cfg = CONFIGS[name]
    blocks: list = []
    real = fused._blocks
    monkeypatch.setattr(fused, "_blocks", lambda *a: blocks.append(real(*a)) or blocks[-1])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = _outputs_and_grads(cfg, dtype)
        assert blocks and not any(par for par, _ in blocks)
        blocks.clear()
        torch.set_num_threads(2)
        parallel = _outputs_and_grads(cfg, dtype)
    finally:
        torch.set_num_threads(before)
    # the forward and the backward both ran the parallel build, in more than one block
    assert len(blocks) == 2 and all(par and chunk < B * N for par, chunk in blocks), blocks
    if cfg.fire:
        assert serial[0].mean() > 0.02 and (serial[0] == 0).any()  # many spikes, and silence
    for a, b in zip(serial, parallel):
        assert torch.equal(a, b)


def test_small_or_single_thread_runs_serial():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert fused._blocks(10, 64) == (False, 64)  # too few elements to pay for the threads
        assert fused._blocks(4000, 20) == (False, 20)  # too few neurons for two aligned blocks
        par, chunk = fused._blocks(100, 1000)
        assert par and chunk == 512 and chunk % 16 == 0  # 2 blocks: 512 + 488
        torch.set_num_threads(1)
        assert fused._blocks(100, 1000) == (False, 1000)
    finally:
        torch.set_num_threads(before)
