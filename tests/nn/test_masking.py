"""Random Spike Masking (METHODS.md §5(d))."""

import pytest
import torch

from neuromorph.errors import ConfigError
from neuromorph.nn.masking import SpikeMask


def _spikes(shape=(8, 16, 64), seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < 0.5).float()


def test_kept_fraction_is_one_minus_p():
    x = torch.ones(20, 50, 100)  # 100k elements: std of the kept fraction ≈ 0.0014
    for p in (0.25, 0.5, 0.75):
        out = SpikeMask(p, seed=1)(x)
        assert abs(out.mean().item() - (1 - p)) < 0.01


def test_p_zero_is_identity_and_p_one_drops_all():
    x = _spikes()
    assert torch.equal(SpikeMask(0.0)(x), x)
    assert SpikeMask(1.0)(x).sum() == 0


def test_no_rescaling_and_only_drops_spikes():
    x = _spikes()
    out = SpikeMask(0.5, seed=3)(x)
    # values stay 0/1 (no 1/(1-p) factor) and a spike is only ever removed, never created
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(out <= x)
    assert 0 < out.sum() < x.sum()


def test_mask_is_redrawn_per_call_and_per_time_step():
    x = torch.ones(4, 8, 256)
    m = SpikeMask(0.5, seed=0)
    a, b = m(x), m(x)
    assert not torch.equal(a, b)
    # within one call, each time step gets its own mask
    assert not torch.equal(a[0], a[1])


def test_active_in_eval_mode_and_seedable():
    x = torch.ones(4, 8, 32)
    m1, m2 = SpikeMask(0.75, seed=42).eval(), SpikeMask(0.75, seed=42).eval()
    a = m1(x)
    assert a.mean() < 0.5  # still masking at inference
    assert torch.equal(a, m2(x))
    m1.reseed()
    assert torch.equal(m1(x), a)


def test_gradient_flows_only_through_kept_spikes():
    x = torch.ones(3, 4, 10, requires_grad=True)
    out = SpikeMask(0.5, seed=5)(x)
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "a"])
def test_bad_probability_raises(p):
    with pytest.raises(ConfigError, match="SpikeMask"):
        SpikeMask(p)
