"""MPBN and threshold folding (METHODS.md §2(d))."""

import copy

import pytest
import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.mpbn import MPBN, MPBNLIF, fold_mpbn


def _numpy_style_reference(x, gamma, beta, mu, var, eps=1e-5, lam=0.25, theta=0.5):
    """Direct transcription of §2(b) in eval mode for channel-wise MPBN on [T, B, C, ...]."""
    shape = (-1,) + (1,) * (x.dim() - 3)
    g, b, m, s = (q.view(shape) for q in (gamma, beta, mu, torch.sqrt(var + eps)))
    u = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        u = lam * u + x[t]
        o = ((g * (u - m) / s + b) > theta).to(x.dtype)
        u = u * (1 - o)  # hard reset on the raw u
        out.append(o)
    return torch.stack(out)


def _randomise(neuron: MPBNLIF, gamma_sign: str = "pos", seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    bn = neuron.mpbn
    shape = bn.weight.shape
    with torch.no_grad():
        w = 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)
        if gamma_sign == "mixed":
            w = w * torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
        bn.weight.copy_(w)
        bn.bias.copy_(torch.randn(shape, generator=g, dtype=torch.float64) * 0.3)
        bn.running_mean.copy_(torch.randn(shape, generator=g, dtype=torch.float64) * 0.5)
        bn.running_var.copy_(0.2 + torch.rand(shape, generator=g, dtype=torch.float64))
        bn.num_batches_tracked.fill_(1)


def test_train_mode_normalises_each_step_and_updates_running_stats_per_step():
    torch.manual_seed(0)
    n = MPBNLIF(3)
    x = torch.randn(4, 16, 3, 5, 5)
    n(x)
    assert int(n.mpbn.num_batches_tracked) == 4  # one BN update per time step, as the official code
    assert not torch.equal(n.mpbn.running_mean, torch.zeros(3))


def test_eval_matches_direct_transcription_of_the_equations():
    torch.manual_seed(1)
    n = MPBNLIF(4).double().eval()
    _randomise(n)
    x = torch.randn(6, 5, 4, 3, 3, dtype=torch.float64)
    bn = n.mpbn
    ref = _numpy_style_reference(x, bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var)
    assert torch.equal(n(x), ref)
    assert ref.sum() > 0 and (1 - ref).sum() > 0


def test_reset_acts_on_raw_potential_not_normalised():
    # one neuron, γ = 2, β = 0, μ = 0, σ² = 1 - ε: ũ = 2u. Drive x = 0.3 per step.
    n = MPBNLIF(1).double().eval()
    with torch.no_grad():
        n.mpbn.weight.fill_(2.0)
        n.mpbn.running_var.fill_(1.0 - 1e-5)
    n.mpbn.num_batches_tracked.fill_(1)
    x = torch.full((4, 1, 1), 0.3, dtype=torch.float64)
    # u: 0.3 (ũ 0.6 > 0.5 fire, u -> 0), 0.3 fire, ... every step fires
    assert n(x).flatten().tolist() == [1.0, 1.0, 1.0, 1.0]
    x = torch.full((4, 1, 1), 0.22, dtype=torch.float64)
    # u: 0.22 (ũ 0.44), 0.275 (ũ 0.55 fire, u -> 0), 0.22, 0.275 (fire)
    assert n(x).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    x = torch.full((4, 1, 1), 0.15, dtype=torch.float64)
    # raw u stays below 0.25 (ũ < 0.5): never fires. Storing ũ instead of u (SpikingJelly's
    # MPBNLIFNode) would give 0.3 -> 0.45 -> 0.525 and fire at step 3.
    assert n(x).flatten().tolist() == [0.0, 0.0, 0.0, 0.0]


def _train_some(model, x, steps=3):
    model.train()
    for _ in range(steps):
        model(x)
    model.eval()


@pytest.mark.parametrize("gamma_sign", ["pos", "mixed"])
def test_fold_conv_net_float64_exact(gamma_sign):
    torch.manual_seed(2)
    C = 8
    conv = torch.nn.Conv2d(2, C, 3, padding=1).double()
    neuron = MPBNLIF(C).double()
    _randomise(neuron, gamma_sign)
    x = torch.rand(6, 5, 2, 10, 10, dtype=torch.float64) * 2
    drive = conv(x.flatten(0, 1)).unflatten(0, (6, 5)).detach()
    _train_some(neuron, drive)  # real running statistics
    if gamma_sign == "mixed":
        with torch.no_grad():
            neuron.mpbn.weight[:4].mul_(-1).abs_().mul_(-1)
    folded = fold_mpbn(copy.deepcopy(neuron))
    assert folded.mpbn is None and folded.threshold.shape == (C,)
    a, b = neuron(drive), folded(drive)
    assert a.sum() > 0 and (1 - a).sum() > 0
    assert torch.equal(a, b)
    if gamma_sign == "mixed":
        assert (folded.fire_sign < 0).sum() >= 4


@pytest.mark.parametrize("gamma_sign", ["pos", "mixed"])
def test_fold_elementwise_linear_float64_exact(gamma_sign):
    torch.manual_seed(3)
    neuron = MPBNLIF((32,), mode="element").double()
    drive = torch.randn(8, 16, 32, dtype=torch.float64)
    _train_some(neuron, drive)
    with torch.no_grad():
        neuron.mpbn.weight.uniform_(0.3, 2.0)
        if gamma_sign == "mixed":
            neuron.mpbn.weight[::3].mul_(-1)
        neuron.mpbn.bias.normal_(0, 0.3)
    folded = fold_mpbn(copy.deepcopy(neuron))
    assert folded.threshold.shape == (32,)
    assert torch.equal(neuron(drive), folded(drive))


def test_fold_elementwise_conv_shape():
    torch.manual_seed(4)
    neuron = MPBNLIF((3, 4, 4), mode="element").double()
    _randomise(neuron, "mixed", seed=4)
    neuron.eval()
    x = torch.randn(5, 7, 3, 4, 4, dtype=torch.float64)
    folded = fold_mpbn(copy.deepcopy(neuron))
    assert folded.threshold.shape == (3, 4, 4)
    assert torch.equal(neuron(x), folded(x))


def test_fold_float32_at_most_one_flip_per_million():
    torch.manual_seed(5)
    C = 16
    neuron = MPBNLIF(C)
    drive = torch.randn(8, 32, C, 16, 16)  # 1.05M neuron-steps
    _train_some(neuron, drive)
    with torch.no_grad():
        neuron.mpbn.weight.uniform_(0.2, 2.0)
        neuron.mpbn.bias.normal_(0, 0.3)
    folded = fold_mpbn(copy.deepcopy(neuron))
    flips = (neuron(drive) != folded(drive)).sum().item()
    assert flips <= drive.numel() / 1e6


def test_gamma_zero_fires_always_or_never():
    neuron = MPBNLIF(2).double().eval()
    with torch.no_grad():
        neuron.mpbn.weight.zero_()
        neuron.mpbn.bias.copy_(torch.tensor([0.7, 0.2], dtype=torch.float64))  # β > θ: always; β < θ: never
    neuron.mpbn.num_batches_tracked.fill_(1)
    x = torch.randn(5, 3, 2, dtype=torch.float64) * 3
    folded = fold_mpbn(copy.deepcopy(neuron))
    out = folded(x)
    assert torch.equal(out, neuron(x))
    assert out[..., 0].eq(1).all() and out[..., 1].eq(0).all()


def test_refuse_negative_gamma_when_asked():
    neuron = MPBNLIF(3).eval()
    with torch.no_grad():
        neuron.mpbn.weight[1] = -1.0
    neuron.mpbn.num_batches_tracked.fill_(1)
    net = torch.nn.Sequential(torch.nn.Identity(), neuron)
    with pytest.raises(ConfigError, match=r"layer '1'.*gamma < 0 at \[1\]"):
        fold_mpbn(net, allow_negative_gamma=False)


def test_fold_refuses_training_mode_and_missing_statistics():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), MPBNLIF(4))
    with pytest.raises(ConfigError, match=r"layer '1' is in training mode"):
        fold_mpbn(net)
    with pytest.raises(ConfigError, match=r"layer '1' has no running statistics"):
        fold_mpbn(net.eval())
    with pytest.raises(ConfigError, match="no unfolded MPBNLIF"):
        fold_mpbn(torch.nn.Linear(2, 2))


def test_fold_whole_model_in_place():
    torch.manual_seed(6)
    net = torch.nn.Sequential(MPBNLIF(6), MPBNLIF(6)).double()
    x = torch.randn(4, 8, 6, dtype=torch.float64) * 2
    _train_some(net, x)
    ref = net(x)
    assert fold_mpbn(net) is net
    assert all(m.mpbn is None for m in net)
    assert torch.equal(net(x), ref)


def test_surrogate_is_the_tanh_bump_of_the_normalised_potential():
    # γ = 1, β = 0, μ = 0, σ² = 1 - ε: ũ = u, so ∂o/∂x at t = 0 is the MPR bump at x
    n = MPBNLIF(1).double().eval()
    n.mpbn.running_var.fill_(1.0 - 1e-5)
    n.mpbn.num_batches_tracked.fill_(1)
    u = torch.tensor([0.1, 0.5, 0.9, 1.2], dtype=torch.float64)
    x = u.view(1, 4, 1).clone().requires_grad_(True)
    n(x).sum().backward()
    k = 3.0
    peak = k / (2 * torch.tanh(torch.tensor(k / 2, dtype=torch.float64)))
    expected = torch.where((u >= 0) & (u <= 1), peak / torch.cosh(k * (u - 0.5)) ** 2, torch.zeros_like(u))
    assert torch.allclose(x.grad.flatten(), expected)


def test_gradients_reach_gamma_and_beta_in_training():
    torch.manual_seed(7)
    n = MPBNLIF(3)
    x = torch.randn(4, 8, 3, 4, 4, requires_grad=True)
    n(x).sum().backward()
    assert n.mpbn.weight.grad is not None and n.mpbn.weight.grad.abs().sum() > 0
    assert n.mpbn.bias.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_bad_shapes_and_config():
    with pytest.raises(ShapeError, match="MPBN"):
        MPBNLIF(3)(torch.randn(2, 4, 5, 2))
    with pytest.raises(ShapeError, match="MPBN"):
        MPBNLIF((3, 2), mode="element")(torch.randn(2, 4, 3, 3))
    with pytest.raises(ConfigError, match="mode"):
        MPBN(3, mode="layer")
    with pytest.raises(ConfigError, match="channel"):
        MPBN((3, 4))
    with pytest.raises(ConfigError, match="tau"):
        MPBNLIF(3, tau=0.5)


def test_is_a_spiking_neuron_and_exports_only_when_folded():
    from neuromorph.errors import ExportError
    from neuromorph.nn import LIF, SpikingNeuron

    torch.manual_seed(8)
    n = MPBNLIF(4)
    assert isinstance(n, SpikingNeuron) and isinstance(n, LIF)
    with pytest.raises(ExportError, match="fold_mpbn"):
        n.spec()
    x = torch.randn(3, 8, 4)
    _train_some(n, x)
    fold_mpbn(n)
    spec = n.spec()
    assert spec.kind == "LIF" and spec.reset == "hard" and spec.threshold.shape == (4,)
    assert torch.allclose(1 - 1 / spec.tau, torch.tensor(0.25))
    with torch.no_grad():
        n2 = MPBNLIF(2).eval()
        n2.mpbn.weight[0] = -1.0
        n2.mpbn.num_batches_tracked.fill_(1)
    with pytest.raises(ExportError, match="gamma < 0"):
        fold_mpbn(n2).spec()


def test_streaming_in_two_halves_equals_one_call():
    torch.manual_seed(9)
    n = MPBNLIF(3, streaming=True).double()
    _randomise(n)
    n.eval()
    x = torch.randn(6, 4, 3, 2, 2, dtype=torch.float64)
    full, _ = n(x)
    a, state = n(x[:3])
    b, _ = n(x[3:], state)
    assert torch.equal(torch.cat([a, b]), full)


def test_training_statistics_of_a_single_value_are_refused_clearly():
    from neuromorph.errors import ShapeError
    from neuromorph.nn import MPBN

    with pytest.raises(ShapeError, match="batch size 1"):
        MPBN(8)(torch.rand(1, 8))
    with pytest.raises(ShapeError, match="batch size 1"):
        MPBN((3, 2), mode="element")(torch.rand(1, 3, 2))
    assert MPBN(8)(torch.rand(1, 8, 4, 4)).shape == (1, 8, 4, 4)  # spatial positions give the statistics
    assert MPBN(8).eval()(torch.rand(1, 8)).shape == (1, 8)  # running statistics need no batch
