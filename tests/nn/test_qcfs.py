"""QCFS activation and ANN→SNN conversion (METHODS.md §5(d))."""

import pytest
import torch

from neuromorph.errors import ConfigError
from neuromorph.nn.masking import SpikeMask
from neuromorph.nn.qcfs import QCFS, ConvertedSNN, QCFSNeuron, convert_to_snn


def test_qcfs_outputs_on_the_grid():
    q = QCFS(levels=16, lam=2.0)
    x = torch.linspace(-3, 5, 2001)
    a = q(x).detach()
    levels = a / (2.0 / 16)
    assert torch.allclose(levels, levels.round(), atol=1e-5)
    assert a.min() == 0 and a.max() == 2.0
    assert set((levels.round().long()).unique().tolist()) == set(range(17))


def test_qcfs_matches_formula():
    torch.manual_seed(0)
    x = torch.randn(1000, dtype=torch.float64) * 2
    lam, L = 1.7, 8
    q = QCFS(levels=L, lam=lam).double()
    lam = q.lam.item()  # the float32-initialised parameter, as used by the module
    ref = lam * torch.clamp(torch.floor(x * L / lam + 0.5) / L, 0, 1)
    assert torch.equal(q(x).detach(), ref)


def test_qcfs_straight_through_gradients():
    q = QCFS(levels=4, lam=2.0).double()
    x = torch.tensor([-1.0, 0.3, 1.1, 1.9, 2.5], dtype=torch.float64, requires_grad=True)
    q(x).sum().backward()
    # inside [0, λ] the floor is straight-through: d a / d x = 1; outside the clip: 0
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64))
    # d a / d λ = floor(..)/L - x/λ inside, 1 above the clip, 0 below
    inside = torch.tensor([0.3, 1.1, 1.9], dtype=torch.float64)
    expected = (torch.floor(inside * 4 / 2 + 0.5) / 4 - inside / 2).sum() + 1.0
    assert torch.allclose(q.lam.grad, expected)


@pytest.mark.parametrize("lam,L", [(2.0, 16), (1.0, 8), (3.5, 4)])
def test_if_rate_equals_qcfs_after_L_steps(lam, L):
    g = torch.Generator().manual_seed(L)
    x = torch.rand(5000, generator=g, dtype=torch.float64) * lam
    # include the rounding boundaries x = (k + 1/2) λ / L exactly, where ">" instead of ">=" would fail
    grid = (torch.arange(L, dtype=torch.float64) + 0.5) * lam / L
    x = torch.cat([x, grid, torch.tensor([0.0, lam], dtype=torch.float64)])
    qcfs = QCFS(levels=L, lam=lam).double()
    snn = convert_to_snn(qcfs)
    out = snn(x, T=L)  # [L, N]: spike * λ per step
    assert out.shape == (L, x.numel())
    assert set((out / lam).unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out.sum(0) / L, qcfs(x).detach())


def test_converted_mlp_equals_ann_on_first_layer_and_converges():
    torch.manual_seed(0)
    ann = torch.nn.Sequential(
        torch.nn.Linear(20, 32), QCFS(levels=8, lam=1.5), torch.nn.Linear(32, 32), QCFS(levels=8, lam=1.0), torch.nn.Linear(32, 5)
    ).double()
    x = torch.rand(64, 20, dtype=torch.float64)
    snn = convert_to_snn(ann)
    assert isinstance(ann[1], QCFS)  # the ANN is untouched
    assert isinstance(snn.model[1], QCFSNeuron) and isinstance(snn.model[3], QCFSNeuron)
    # first hidden layer: its input is constant, so its rate after L steps is QCFS exactly
    h1 = ConvertedSNN(snn.model[:2])(x, T=8).mean(0)
    assert torch.allclose(h1, ann[:2](x).detach(), atol=1e-12)
    # whole network: at T = L the output is close to the QCFS ANN (same argmax for most inputs) ...
    ref = ann(x).detach()
    out_L = snn(x, T=8).mean(0)
    assert (out_L.argmax(1) == ref.argmax(1)).float().mean() > 0.85
    # ... and as T grows the rates converge to the unquantised clip(x, 0, λ) network, error ~ 1/T
    clip_ann = torch.nn.Sequential(ann[0], torch.nn.Hardtanh(0, 1.5), ann[2], torch.nn.Hardtanh(0, 1.0), ann[4])
    ref_clip = clip_ann(x).detach()
    err = [(snn(x, T=T).mean(0) - ref_clip).abs().mean().item() for T in (16, 256)]
    assert err[1] < err[0] / 5 and err[1] < 2e-3


def test_converted_snn_stateless_across_calls_and_sequence_input():
    torch.manual_seed(1)
    ann = torch.nn.Sequential(torch.nn.Linear(6, 10), QCFS(levels=4, lam=1.0))
    snn = convert_to_snn(ann)
    x = torch.rand(3, 6)
    a = snn(x, T=10)
    b = snn(x, T=10)
    assert torch.equal(a, b)
    seq = x.expand(10, 3, 6)
    assert torch.equal(snn(seq), a)


def test_masking_survives_conversion_and_is_redrawn_per_step():
    ann = torch.nn.Sequential(QCFS(levels=4, lam=1.0), SpikeMask(0.5, seed=0))
    snn = convert_to_snn(ann)
    out = snn(torch.full((1, 4000), 0.9), T=4)
    assert isinstance(snn.model[1], SpikeMask)
    # kept fraction of the spikes ≈ 1/2, and different masks at different steps
    # v = 0.5 + 0.9 t - spikes: every neuron fires at each of the 4 steps, so the output is the mask
    assert torch.allclose((out > 0).float().mean((1, 2)), torch.full((4,), 0.5), atol=0.03)
    assert not torch.equal(out[0], out[1])
    assert not torch.equal(snn(torch.full((1, 4000), 0.9), T=4), out)  # redrawn on the next call


def test_bad_configuration():
    with pytest.raises(ConfigError, match="no QCFS"):
        convert_to_snn(torch.nn.Linear(3, 3))
    with pytest.raises(ConfigError, match="levels"):
        QCFS(levels=0)
    for lam in (-1.0, float("inf"), float("nan"), "a"):
        with pytest.raises(ConfigError, match="lam"):
            QCFS(lam=lam)
    snn = convert_to_snn(QCFS())
    with pytest.raises(ConfigError, match="T="):
        snn(torch.zeros(2), T=0)
