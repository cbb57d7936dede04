"""Delta activation layer (METHODS.md §9(d))."""

import pytest
import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.delta import DeltaActivation, delta_penalty


def _video(T=6, B=3, C=4, H=5, W=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, C, H, W, generator=g, dtype=torch.float64)


def test_outputs_are_multiples_of_theta_per_channel():
    layer = DeltaActivation(4).double()
    with torch.no_grad():
        layer.theta.copy_(torch.tensor([0.1, 0.25, -0.3, 0.05], dtype=torch.float64))  # |θ| is used
    q = layer(_video())
    theta = layer.theta.abs().view(1, 1, 4, 1, 1)
    ratio = q / theta
    assert torch.allclose(ratio, ratio.round(), atol=1e-9)
    assert (q >= 0).all()
    # nearest level of relu(x)
    x = torch.relu(_video())
    assert ((q - x).abs() <= theta / 2 + 1e-12).all()


def test_deltas_sum_to_the_last_frame_and_linear_layer_in_delta_mode_is_exact():
    x = _video()
    dense = DeltaActivation(4).double()
    delta = DeltaActivation(4, mode="delta").double()
    q, d = dense(x), delta(x)
    assert torch.allclose(d.sum(0), q[-1])
    assert torch.allclose(d.cumsum(0), q)
    # a linear layer fed the deltas and accumulating its outputs equals the dense layer
    lin = torch.nn.Linear(4 * 25, 7).double()
    W = lambda v: v.flatten(2) @ lin.weight.T  # noqa: E731 (bias added once below)
    acc = W(d).cumsum(0) + lin.bias
    assert torch.allclose(acc, lin(q.flatten(2)))


def test_static_video_has_zero_deltas_after_first_frame_and_zero_penalty():
    frame = _video(T=1)
    x = frame.expand(5, *frame.shape[1:]).clone()
    layer = DeltaActivation(4, mode="delta", sp_rate=1.0, fan_out=9).double()
    d = layer(x)
    assert torch.equal(d[1:], torch.zeros_like(d[1:]))
    assert d[0].abs().sum() > 0
    assert layer.penalty == 0


def test_penalty_value():
    x = _video()
    layer = DeltaActivation(4, sp_rate=1e-2, fan_out=36).double()
    q = layer(x)
    expected = 1e-2 * 36 * (q[1:] - q[:-1]).abs().mean()
    assert torch.allclose(layer.penalty, expected)
    assert torch.allclose(delta_penalty(torch.nn.Sequential(layer)), expected)


def test_penalty_gradient_step_increases_theta():
    x = _video(seed=3)
    layer = DeltaActivation(4).double()
    layer(x)
    layer.penalty.backward()
    assert (layer.theta.grad < 0).all()  # descent increases θ: the sign-flip of the code
    before = layer.theta.detach().clone()
    torch.optim.SGD(layer.parameters(), lr=0.01).step()
    assert (layer.theta.detach() > before).all()


def test_straight_through_gradient_to_input():
    x = _video(seed=4).requires_grad_(True)
    layer = DeltaActivation(4).double()
    layer(x).sum().backward()
    assert torch.equal(x.grad, (x.detach() > 0).to(x.dtype))  # relu' · 1 (round is straight-through)


def test_theta_gradient_is_minus_level_count():
    layer = DeltaActivation(granularity="layer", theta=0.5).double()
    x = torch.tensor([0.2, 0.8, 1.3, -1.0], dtype=torch.float64).view(4, 1, 1)
    q = layer(x)
    assert q.flatten().tolist() == [0.0, 1.0, 1.5, 0.0]  # round(0.4)=0, round(1.6)=2, round(2.6)=3
    q.sum().backward()
    assert layer.theta.grad.item() == -(0 + 2 + 3 + 0)


def test_neuron_granularity_and_bad_input():
    layer = DeltaActivation((2, 3), granularity="neuron")
    assert layer(torch.rand(3, 2, 2, 3)).shape == (3, 2, 2, 3)
    with pytest.raises(ShapeError, match="DeltaActivation"):
        layer(torch.rand(3, 2, 3, 2))
    with pytest.raises(ShapeError, match="DeltaActivation"):
        DeltaActivation(4)(torch.rand(3, 2, 5))
    for theta in (0, float("inf"), "a"):
        with pytest.raises(ConfigError, match="theta"):
            DeltaActivation(4, theta=theta)
    with pytest.raises(ConfigError, match="sp_rate"):
        DeltaActivation(4, sp_rate="a")
    with pytest.raises(ConfigError, match="num_features"):
        DeltaActivation(0)
    with pytest.raises(ConfigError, match="granularity"):
        DeltaActivation(4, granularity="pixel")
    with pytest.raises(ConfigError, match="no DeltaActivation"):
        delta_penalty(torch.nn.Linear(2, 2))
