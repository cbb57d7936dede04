import math

import pytest
import torch

from neuromorph.errors import ConfigError
from neuromorph import kernels
from neuromorph.functional import get_surrogate, mpr, mpr_fire, mpr_grad, spike_fn
from neuromorph.functional.surrogate import SURROGATE_IDS
from neuromorph.kernels import DynamicsConfig, DynamicsParams


def test_heaviside_is_strict_and_grads_follow_formulas():
    x = torch.tensor([-0.3, 0.0, 0.2], requires_grad=True)
    s = spike_fn(x, "atan", alpha=2.0)
    assert s.tolist() == [0.0, 0.0, 1.0]
    s.sum().backward()
    expected = [(1.0) / (1 + (math.pi * v) ** 2) for v in (-0.3, 0.0, 0.2)]
    torch.testing.assert_close(x.grad, torch.tensor(expected))


@pytest.mark.parametrize("name", list(SURROGATE_IDS))
def test_each_surrogate_is_a_bump_centred_at_zero(name):
    sg = get_surrogate(name)
    x = torch.linspace(-3, 3, 6001, dtype=torch.float64)
    g = sg.grad(x)
    assert (g >= 0).all()
    assert g[3000] == g.max() and g[0] < g[3000]  # peak at x = 0
    torch.testing.assert_close(g, sg.grad(-x))  # symmetric


@pytest.mark.parametrize("name,alpha,x,expected", [
    ("sigmoid", 4.0, 0.0, 1.0),
    ("fast_sigmoid", 25.0, 0.04, 1 / 4),
    ("triangle", 1.0, 0.5, 0.5),
    ("rectangular", 1.0, 0.49, 1.0),
    ("rectangular", 1.0, 0.51, 0.0),
    ("mpr", 3.0, 0.0, 3 / (2 * math.tanh(1.5))),
    ("mpr", 3.0, 0.51, 0.0),
])
def test_surrogate_values(name, alpha, x, expected):
    assert get_surrogate(name, alpha).grad(torch.tensor(x, dtype=torch.float64)).item() == pytest.approx(expected)


def test_unknown_surrogate_lists_valid_names():
    with pytest.raises(ConfigError, match="atan.*sigmoid.*fast_sigmoid.*triangle.*rectangular.*mpr"):
        get_surrogate("tanh")
    with pytest.raises(ConfigError, match="alpha"):
        get_surrogate("atan", -1.0)


def test_mpr_properties_methods_1d():
    u = torch.linspace(-3, 4, 70001, dtype=torch.float64)
    phi = mpr(u)
    assert (phi[1:] > phi[:-1]).all()  # strictly increasing
    for point, value in [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)]:
        assert mpr(torch.tensor(point, dtype=torch.float64)).item() == pytest.approx(value, abs=1e-15)
    d = lambda v: mpr_grad(torch.tensor(v, dtype=torch.float64)).item()  # noqa: E731
    assert d(0.5) == pytest.approx(3 / (2 * math.tanh(1.5)))
    assert d(0.5) == pytest.approx(1.657, abs=1e-3)
    assert d(1e-12) == pytest.approx(0.299, abs=1e-3) and d(1 - 1e-12) == pytest.approx(0.299, abs=1e-3)
    assert d(1 + 1e-12) == pytest.approx(1 / 3)
    # continuity at the joints
    for j in (0.0, 1.0):
        assert mpr(torch.tensor(j - 1e-9, dtype=torch.float64)).item() == pytest.approx(j, abs=1e-8)
    # analytic derivative equals autograd of phi
    uu = u[::97].clone().requires_grad_()
    (g,) = torch.autograd.grad(mpr(uu).sum(), uu)
    torch.testing.assert_close(g, mpr_grad(uu.detach()))


def test_mpr_forward_invariance_and_surrogate_shape():
    u = torch.randn(100000, dtype=torch.float64) * 2
    th = torch.tensor(0.5, dtype=torch.float64)
    assert torch.equal(mpr_fire(u, th), (u > 0.5).to(u.dtype))
    uu = torch.linspace(-1, 2, 3001, dtype=torch.float64, requires_grad=True)
    mpr_fire(uu, th).sum().backward()
    inside = (uu.detach() >= 0) & (uu.detach() <= 1)
    torch.testing.assert_close(uu.grad[inside], mpr_grad(uu.detach()[inside]))
    assert (uu.grad[~inside] == 0).all()
    assert uu.grad.max().item() == pytest.approx(1.657, abs=1e-3)


def test_soft_reset_invariant_spike_count_is_rounded_input_sum():
    """METHODS §1(d): IF, threshold ½, subtract 1 per spike, inputs in [0,1]: |Σo − Σx| ≤ ½."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 8, 32, generator=g, dtype=torch.float64)
    cfg = DynamicsConfig(reset="soft", reset_amount=1.0, mpr=True, decay_input=False)  # IF: beta = 1
    one = torch.ones((), dtype=x.dtype)
    s, mem, _ = kernels.run(x, DynamicsParams(one, 0.5 * one), cfg, return_membrane=True)
    assert ((mem > -0.5) & (mem <= 0.5)).all()
    assert ((s.sum(0) - x.sum(0)).abs() <= 0.5).all()
