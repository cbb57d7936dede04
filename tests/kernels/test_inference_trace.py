"""In inference the fused forward keeps no backward trace (h_t, a_{t-1}): same results, one [T, M] array less."""

import pytest
import torch

from neuromorph.kernels import fused, run
from neuromorph.kernels.config import DynamicsConfig, DynamicsParams

CONFIGS = {"lif": DynamicsConfig(), "cuba": DynamicsConfig(cuba=True, reset="hard"), "alif": DynamicsConfig(alif=True),
           "se-adlif": DynamicsConfig(adlif="se"), "ef-adlif": DynamicsConfig(adlif="ef"), "li": DynamicsConfig(fire=False)}


def _params(grad: bool) -> DynamicsParams:
    return DynamicsParams(*(torch.tensor(v, requires_grad=grad) for v in (0.9, 1.0, 0.8, 0.9, 0.1, 0.2)))


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_grad_forward_equals_training_forward_without_the_trace(name, dtype, monkeypatch):
    cfg = CONFIGS[name]
    x = torch.randn(20, 3, 17, dtype=dtype) * 1.5
    ref, ref_mem, ref_state = run(x.clone().requires_grad_(True), _params(True), cfg, None, True, "fused")
    calls = []
    real = fused._Numba.forward

    def spy(*args):
        res = real(*args)
        calls.append((args[-1], res[1], res[4]))  # save_h, hseq, aseq
        return res

    monkeypatch.setattr(fused._Numba, "forward", staticmethod(spy))
    with torch.no_grad():
        out, mem, state = run(x, _params(True), cfg, None, True, "fused")
    assert [c[0] for c in calls] == [False]
    if cfg.fire:  # nothing of the backward's trace was allocated
        assert calls[0][1] is None and calls[0][2] is None
    assert torch.equal(out, ref.detach()) and torch.equal(mem, ref_mem.detach())
    for a, b in zip(state, ref_state):
        assert (a is None and b is None) or torch.equal(a, b.detach())
    # parameters that need no gradient: also inference, even with grad mode on
    calls.clear()
    out2, _, _ = run(x, _params(False), cfg, None, False, "fused")
    assert [c[0] for c in calls] == [False] and torch.equal(out2, ref.detach())
    # while training, the trace is kept
    calls.clear()
    run(x.clone().requires_grad_(True), _params(False), cfg, None, False, "fused")
    assert [c[0] for c in calls] == [True]
