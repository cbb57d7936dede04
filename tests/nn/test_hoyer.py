"""Hoyer-extremum thresholds (METHODS.md §4(d))."""

import pytest
import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.hoyer import HoyerSpike, hoyer_extremum, hoyer_regularizer, hoyer_square


def test_extremum_is_homogeneous_before_clipping():
    g = torch.Generator().manual_seed(0)
    z = torch.rand(4, 8, 5, 5, generator=g, dtype=torch.float64)
    for c in (0.3, 2.0, 17.0):
        assert torch.allclose(hoyer_extremum(c * z), c * hoyer_extremum(z))
    per_channel = hoyer_extremum(z, (0, 2, 3))
    assert per_channel.shape == (8,)
    assert torch.allclose(hoyer_extremum(3 * z, (0, 2, 3)), 3 * per_channel)


def test_hoyer_square_scale_invariant_and_bounded():
    g = torch.Generator().manual_seed(1)
    for n in (1, 7, 100):
        x = torch.rand(n, generator=g, dtype=torch.float64) * (torch.rand(n, generator=g, dtype=torch.float64) < 0.5)
        x[0] = 0.4
        h = hoyer_square(x)
        assert 1.0 - 1e-12 <= h <= n + 1e-12
        assert torch.allclose(hoyer_square(5.5 * x), h)
    assert torch.allclose(hoyer_square(torch.ones(9, dtype=torch.float64)), torch.tensor(9.0, dtype=torch.float64))
    assert hoyer_square(torch.zeros(5)) == 0


def test_extremum_between_mean_of_positives_and_max():
    g = torch.Generator().manual_seed(2)
    for _ in range(20):
        z = torch.clamp(torch.randn(200, generator=g, dtype=torch.float64), 0, 1)
        e = hoyer_extremum(z)
        assert z[z > 0].mean() - 1e-12 <= e <= z.max() + 1e-12


def test_single_nonzero_entry_gives_its_value():
    z = torch.zeros(3, 4)
    z[1, 2] = 0.37
    assert torch.allclose(hoyer_extremum(z), torch.tensor(0.37))


def test_extremum_is_where_the_hoyer_gradient_vanishes():
    # gradient descent on H lowers entries below E and raises those above it
    g = torch.Generator().manual_seed(3)
    z = (torch.rand(50, generator=g, dtype=torch.float64) + 0.05).requires_grad_(True)
    hoyer_square(z).backward()
    e = hoyer_extremum(z.detach())
    assert torch.all(z.grad[z.detach() < e] > 0) and torch.all(z.grad[z.detach() > e] < 0)


def test_training_threshold_is_per_channel_batch_extremum_and_ema():
    torch.manual_seed(4)
    act = HoyerSpike(num_features=3, momentum=0.1)
    u = torch.randn(1, 16, 3, 6, 6) * torch.tensor([0.3, 1.0, 3.0]).view(1, 1, 3, 1, 1)
    out = act(u)
    e = hoyer_extremum(torch.clamp(u, 0, 1), (0, 1, 3, 4))
    assert torch.equal(out, (torch.clamp(u, 0, 1) >= e.view(1, 1, 3, 1, 1)).float())
    assert torch.allclose(act.running_threshold, 0.9 * torch.ones(3) + 0.1 * e)
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_fc_layer_uses_one_threshold_and_works_at_T1():
    torch.manual_seed(5)
    act = HoyerSpike()
    u = torch.randn(1, 32, 20) * 2
    e = hoyer_extremum(torch.clamp(u / 1.0, 0, 1))
    assert torch.equal(act(u), (torch.clamp(u, 0, 1) >= e).float())


def test_zero_channel_gets_threshold_one_and_no_spikes():
    act = HoyerSpike(num_features=2, momentum=1.0)
    u = torch.randn(1, 8, 2, 4, 4)
    u[:, :, 1] = -torch.rand(1, 8, 4, 4)  # channel 1 all ≤ 0: clipped map is all zero
    out = act(u)
    assert act.running_threshold[1] == 1.0
    assert out[:, :, 1].sum() == 0 and out[:, :, 0].sum() > 0


def test_eval_uses_running_threshold_not_batch_value():
    torch.manual_seed(6)
    act = HoyerSpike(num_features=2)
    act.running_threshold.copy_(torch.tensor([0.9, 0.1]))
    act.eval()
    u = torch.rand(1, 4, 2, 3, 3)
    out = act(u)
    assert torch.equal(out[:, :, 0], (u[:, :, 0] >= 0.9).float())
    assert torch.equal(out[:, :, 1], (u[:, :, 1] >= 0.1).float())
    assert torch.equal(act.running_threshold, torch.tensor([0.9, 0.1]))  # not updated in eval


def test_v_th_scales_the_input_and_receives_gradient():
    act = HoyerSpike()
    with torch.no_grad():
        act.v_th.fill_(2.0)
    act.eval()
    act.running_threshold.fill_(0.5)
    u = torch.tensor([[[0.9, 1.1, 2.5, -1.0]]], requires_grad=True)
    out = act(u)
    assert out.flatten().tolist() == [0.0, 1.0, 1.0, 0.0]  # z = u/2 ≥ 0.5
    out.sum().backward()
    # ∂o/∂z = 0.5 on 0 < z < 1, so ∂o/∂u = 0.5/|v_th| there and 0 for z = 1.25, z < 0
    assert torch.allclose(u.grad.flatten(), torch.tensor([0.25, 0.25, 0.0, 0.0]))
    # ∂o/∂v_th = Σ 0.5 · (−u/v_th²) over 0 < z < 1
    assert torch.allclose(act.v_th.grad, torch.tensor(-0.5 * (0.9 + 1.1) / 4.0))


def test_regularizer_equals_hoyer_of_clipped_preactivation_with_stop_gradient():
    torch.manual_seed(7)
    net = torch.nn.Sequential(HoyerSpike(num_features=3), torch.nn.Identity(), HoyerSpike())
    with torch.no_grad():
        net[0].v_th.fill_(0.8)
    u = torch.randn(1, 4, 3, 2, 2, requires_grad=True)
    net[0](u)
    net[2](u.flatten(2))
    reg = hoyer_regularizer(net)
    expected = hoyer_square(torch.clamp(u, 0, 0.8)) + hoyer_square(torch.clamp(u, 0, 1.0))
    assert torch.allclose(reg, expected)
    reg.backward()
    assert net[0].v_th.grad is None  # sg(v_th) in the regulariser
    assert u.grad.abs().sum() > 0


def test_bad_input():
    with pytest.raises(ShapeError, match="HoyerSpike"):
        HoyerSpike(num_features=4)(torch.randn(1, 2, 3, 5, 5))
    with pytest.raises(ConfigError, match="num_features"):
        HoyerSpike(num_features=0)
    for v_th in (0.0, float("nan"), float("inf"), "a"):
        with pytest.raises(ConfigError, match="v_th"):
            HoyerSpike(v_th=v_th)
    with pytest.raises(ConfigError, match="no HoyerSpike"):
        hoyer_regularizer(torch.nn.Linear(2, 2))
