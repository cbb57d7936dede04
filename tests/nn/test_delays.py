"""DelayedLinear (DCLS learnable delays): METHODS.md §3(d) properties, equality with DCLS's Dcls1d,
gradients against finite differences, the σ schedule, clamping, rounding and bad input."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

from neuromorph.errors import ConfigError, NonFiniteError, ShapeError
from neuromorph.nn.delays import (
    DelayedLinear,
    SigmaSchedule,
    clamp_after_step,
    delay_kernel_size,
    round_delays,
    rounded_delays,
)

METHODS = ["spectral", "direct", "shift"]


def _layer(i, o, k, *, form="gauss", method="spectral", seed=0, spread=0.5, sigma=None, dtype=torch.float64):
    torch.manual_seed(seed)
    m = DelayedLinear(i, o, k, form=form, method=method, dtype=dtype)
    half = m.half_width
    m.set_positions(torch.empty(o, i, dtype=dtype).uniform_(-half - spread, half + spread))
    if sigma is not None:
        m.set_sigma(sigma)
    return m


def _shift_reference(x: torch.Tensor, weight: torch.Tensor, delays: torch.Tensor, out_steps: int) -> torch.Tensor:
    """y_j[t] = Σ_i w_ji x_i[t - d_ji]: shift each presynaptic train by its delay, weight it, sum."""
    steps, batch, n_in = x.shape
    y = torch.zeros(out_steps, batch, weight.shape[0], dtype=x.dtype)
    for j in range(weight.shape[0]):
        for i in range(n_in):
            d = int(delays[j, i])
            n = min(steps, out_steps - d)
            if n > 0:
                y[d : d + n, :, j] += weight[j, i] * x[:n, :, i]
    return y


# ---------------------------------------------------------------- kernel size and output length
def test_kernel_size_from_max_delay():
    assert delay_kernel_size(250, 10) == 25  # SHD
    assert delay_kernel_size(300, 10) == 31  # SSC/GSC: 30 bumped to odd
    assert delay_kernel_size(25) == 25
    assert delay_kernel_size(0.3, 0.1) == 3
    assert delay_kernel_size(1) == 1
    assert DelayedLinear(3, 2, 250.0, dt=10.0).kernel_size == 25


@pytest.mark.parametrize("k,steps", [(25, 40), (31, 7), (4, 10), (1, 5)])
def test_output_length_convention(k, steps):
    m = DelayedLinear(3, 2, k)
    y = m(torch.rand(steps, 2, 3))
    kk = m.kernel_size
    assert y.shape == (steps + (kk - 1) // 2, 2, 2)


# ---------------------------------------------------------------- §3(d) properties
@pytest.mark.parametrize("method", METHODS)
def test_max_form_integer_positions_is_shift_and_sum(method):
    """METHODS §3(d): K=25 maps P = -12, 0, 5, 12 to d = 24, 12, 7, 0; the layer is shift-by-d, ×w, sum."""
    torch.manual_seed(1)
    m = DelayedLinear(4, 3, 25, form="max", sigma=0.0, method=method, dtype=torch.float64)
    pos = torch.tensor([[-12.0, 0.0, 5.0, 12.0], [3.0, -7.0, 12.0, -12.0], [0.0, 1.0, -1.0, 11.0]], dtype=torch.float64)
    m.set_positions(pos)
    assert m.integer_delays()[0].tolist() == [24, 12, 7, 0]
    x = (torch.rand(30, 2, 4, dtype=torch.float64) < 0.3).to(torch.float64) * torch.rand(30, 2, 4, dtype=torch.float64)
    y = m(x)
    ref = _shift_reference(x, m.weight.detach(), 12 - pos, 30 + 12)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)


def test_max_form_one_spike_arrives_at_its_delay():
    m = DelayedLinear(1, 1, 25, form="max", sigma=0.0, method="direct")
    with torch.no_grad():
        m.weight.fill_(0.7)
    m.set_delays(torch.tensor([[9.0]]))
    x = torch.zeros(5, 1, 1)
    x[2] = 1.0
    y = m(x)[:, 0, 0]
    expected = torch.zeros(5 + 12)
    expected[2 + 9] = 0.7
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.0, 0.23, 2.0, 12.0])
def test_gauss_taps_sum_to_weight(sigma):
    """§3(d): in the Gaussian form the taps of each synapse sum to w, also when truncated at an edge."""
    m = _layer(9, 6, 25, sigma=sigma, spread=1.0)
    with torch.no_grad():
        m.positions[0, :3] = torch.tensor([-12.0, 12.0, 0.0], dtype=torch.float64)  # edges and centre
    k = m.kernel()
    sums = k.sum(-1)
    # the 1e-7 in the normaliser makes the sum w / (1 + 1e-7 / Σg), and Σg >= 0.36 (σ_eff >= 0.27)
    torch.testing.assert_close(sums, m.weight.detach(), rtol=3e-7, atol=0)
    assert (k.abs() > 0).sum(-1).min() > 1  # really spread over several taps


def test_gauss_kernel_matches_equation():
    m = _layer(2, 2, 7, sigma=torch.tensor([[0.5, 1.0], [0.0, 3.0]], dtype=torch.float64))
    k = m.kernel().detach()
    for j in range(2):
        for i in range(2):
            c = float(m.positions[j, i].detach()) + 3
            s = abs(float(m.sigma[j, i])) + 0.27
            g = torch.tensor([math.exp(-0.5 * ((n - c) / s) ** 2) for n in range(7)], dtype=torch.float64)
            torch.testing.assert_close(k[j, i], float(m.weight[j, i].detach()) * g / (g.sum() + 1e-7))


def test_round_delays_leaves_one_tap_per_synapse():
    """§3(d): after rounding, each (j, i) pair has at most one nonzero tap, at n = P + ⌊K/2⌋."""
    m = _layer(20, 15, 25, spread=1.0)
    p_before = m.positions.detach().clone()
    delays = m.round_delays()
    assert m.form == "max" and torch.all(m.sigma == 0)
    k = m.kernel().detach()
    assert int((k != 0).sum(-1).max()) <= 1
    expected_p = p_before.round().clamp(-12, 12)
    torch.testing.assert_close(m.positions.detach(), expected_p)
    assert torch.equal(delays, (12 - expected_p).long())
    tap = k.abs().argmax(-1)
    assert torch.equal(tap, (expected_p + 12).long())
    torch.testing.assert_close(k.sum(-1), m.weight.detach(), rtol=0, atol=0)


def test_round_half_to_even():
    m = DelayedLinear(4, 1, 25, dtype=torch.float64)
    m.set_positions(torch.tensor([[0.5, 1.5, -2.5, 11.5]], dtype=torch.float64))
    assert m.round_delays().tolist() == [[12, 10, 14, 0]]


def test_sigma_schedule_reaches_final_exactly_at_final_epoch():
    """§3(d): σ reaches 0.23 exactly at final_epoch (SHD: σ_init 12, 150 epochs, α ≈ 0.899 over 37)."""
    s = SigmaSchedule.for_training(kernel_size=25, epochs=150)
    assert s.sigma_init == 12.0 and s.final_epoch == 37
    assert s.alpha == pytest.approx(0.899, abs=5e-4)
    values = [s(e) for e in range(0, 151)]
    assert values[0] == 12.0
    assert values[37] == 0.23 and all(v == 0.23 for v in values[37:])
    assert all(a > b for a, b in zip(values[:37], values[1:38]))
    # the closed form equals the reference's repeated multiplication σ ← σ·α at the end of each epoch
    sigma = 12.0
    for epoch in range(37):
        if epoch < 37 and sigma > 0.23:
            sigma *= s.alpha
        assert values[epoch + 1] == pytest.approx(sigma, rel=1e-12)
    assert values[36] > 0.23
    assert s(37) + 0.27 == pytest.approx(0.5)


def test_sigma_schedule_constant_modes_and_apply():
    assert SigmaSchedule(0.23, 0)(10) == 0.23  # the reference's "constant σ" configuration
    assert SigmaSchedule(5.0, 0)(3) == 5.0
    model = torch.nn.Sequential(DelayedLinear(3, 4, 25), torch.nn.ReLU(), DelayedLinear(4, 2, 25))
    assert torch.all(model[0].sigma == 12.0)
    s = SigmaSchedule.for_training(25, 8)
    got = s.apply(model, 1)
    assert got == pytest.approx(12.0 * (0.23 / 12.0) ** 0.5)
    for layer in (model[0], model[2]):
        assert torch.all(layer.sigma == torch.tensor(got, dtype=layer.sigma.dtype))
    with pytest.raises(ConfigError):
        SigmaSchedule(-1.0, 3)
    with pytest.raises(ConfigError):
        s(-1)


# ---------------------------------------------------------------- equality with the DCLS library
@pytest.mark.parametrize("form", ["gauss", "max"])
@pytest.mark.parametrize("method", METHODS)
def test_equal_to_dcls_dcls1d(form, method):
    dcls = pytest.importorskip("DCLS.construct.modules")
    i, o, k, steps, batch = 11, 7, 25, 33, 4
    m = _layer(i, o, k, form=form, method=method, seed=3, spread=1.0, dtype=torch.float32)
    torch.manual_seed(4)
    m.set_sigma(torch.rand(o, i) * 4.0)
    ref = dcls.Dcls1d(i, o, kernel_count=1, dilated_kernel_size=k, bias=False, version=form)
    with torch.no_grad():
        ref.weight.copy_(m.weight.unsqueeze(-1))
        ref.P.copy_(m.positions.view(1, o, i, 1))
        ref.SIG.copy_(m.sigma.view(1, o, i, 1))
    x = (torch.rand(steps, batch, i) < 0.4).float().requires_grad_()
    y = m(x)
    # the SNN-delays way of calling Dcls1d: [T,B,C] -> [B,C,T], pad K-1 left and (K-1)//2 right
    y_ref = ref(F.pad(x.permute(1, 2, 0), (k - 1, (k - 1) // 2))).permute(2, 0, 1)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, m.weight, m.positions], g)
    grads_ref = torch.autograd.grad(y_ref, [x, ref.weight, ref.P], g)
    torch.testing.assert_close(grads[0], grads_ref[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grads[1], grads_ref[1].view(o, i), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grads[2], grads_ref[2].view(o, i), rtol=1e-4, atol=1e-4)


def test_spectral_equals_direct_at_shd_like_shape():
    torch.manual_seed(5)
    a = _layer(140, 64, 25, method="spectral", seed=5, dtype=torch.float32)
    b = DelayedLinear(140, 64, 25, method="direct")
    b.load_state_dict(a.state_dict())
    x = (torch.rand(50, 8, 140) < 0.1).float() * 2
    ya, yb = a(x), b(x)
    assert ya.shape == (62, 8, 64)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("steps,k", [(1, 25), (2, 3), (37, 25), (10, 1), (50, 4), (8, 31)])
def test_spectral_equals_direct_for_odd_and_even_lengths(steps, k):
    """N = T + K - 1 is odd or even (Nyquist bin), T may be shorter than K."""
    a = _layer(5, 4, k, method="spectral", seed=steps + k, sigma=1.5)
    b = DelayedLinear(5, 4, k, method="direct", dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(steps, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x), rtol=1e-10, atol=1e-10)


def test_spectral_float32_accuracy_on_long_sequences():
    """The DFT matrices are built in float64 from (f·t mod N); float32 results stay close at T = 1500."""
    a = _layer(6, 5, 31, method="spectral", seed=11, dtype=torch.float32)
    b = DelayedLinear(6, 5, 31, method="direct")
    b.load_state_dict(a.state_dict())
    x = (torch.rand(1500, 2, 6) < 0.2).float()
    ya, yb = a(x), b(x)
    assert ya.shape == (1515, 2, 5)
    torch.testing.assert_close(ya, yb, rtol=0, atol=2e-5 * float(yb.detach().abs().max()))


def test_auto_method_choice():
    m = DelayedLinear(140, 256, 25)
    assert m._resolve_method(torch.zeros(100, 2, 140)) == "spectral"
    assert m._resolve_method(torch.zeros(100, 2, 140, dtype=torch.bfloat16)) == "direct"
    assert DelayedLinear(140, 256, 1)._resolve_method(torch.zeros(100, 2, 140)) == "direct"
    # rounded: random delays use all 25 taps (spectral stays cheaper); one shared delay is one product
    m.round_delays()
    assert len(m.used_delays()) == 25 and m._resolve_method(torch.zeros(100, 2, 140)) == "spectral"
    m.set_delays(torch.full((256, 140), 3))
    assert m.used_delays() == [3] and m._resolve_method(torch.zeros(100, 2, 140)) == "shift"
    assert m._resolve_method(torch.zeros(100, 2, 140, dtype=torch.bfloat16)) == "shift"
    # between integers a triangular tap covers two delays; σ widens it
    m.set_positions(torch.full((256, 140), 0.5))
    assert m.used_delays() == [11, 12]
    m.set_sigma(1.0)
    assert m.used_delays() == [10, 11, 12, 13]


def test_shift_method_gradients_equal_direct_with_zero_weights_and_two_delays():
    """Taps left out by "shift" have zero value and zero gradient, also for weights that are exactly 0."""
    torch.manual_seed(3)
    x = torch.rand(9, 2, 5, dtype=torch.float64)
    delays = torch.where(torch.rand(4, 5) < 0.5, 1.0, 4.0).to(torch.float64)
    grads = {}
    for method in ("direct", "shift"):
        m = DelayedLinear(5, 4, 7, form="max", sigma=0.0, method=method, dtype=torch.float64)
        with torch.no_grad():
            m.weight.copy_(torch.arange(20, dtype=torch.float64).view(4, 5) % 3 - 1)  # a third of them 0
        m.set_delays(delays)
        y = m(x)
        (y * torch.linspace(-1, 1, y.numel(), dtype=torch.float64).view_as(y)).sum().backward()
        grads[method] = (y.detach(), m.weight.grad.clone(), m.positions.grad.clone())
    assert set(m.used_delays()) == {1, 4}
    for a, b in zip(grads["direct"], grads["shift"]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert (grads["shift"][1][m.weight.detach() == 0] != 0).any()


# ---------------------------------------------------------------- gradients vs finite differences
@pytest.mark.parametrize("form", ["gauss", "max"])
@pytest.mark.parametrize("method", METHODS)
def test_gradcheck(form, method):
    m = _layer(3, 2, 5, form=form, method=method, seed=6, sigma=0.7)
    x = torch.rand(6, 2, 3, dtype=torch.float64, requires_grad=True)
    w = m.weight.detach().clone().requires_grad_()
    # keep positions away from integers so the triangular (max) kernel is differentiable at the point
    p = (m.positions.detach().floor().clamp(-2, 1) + 0.37).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, p: _functional(m, x, w, p), (x, w, p), eps=1e-6, atol=1e-6)


def _functional(m: DelayedLinear, x, w, p):
    return torch.func.functional_call(m, {"weight": w, "positions": p}, (x,))


# ---------------------------------------------------------------- initialisation, clamping, rounding context
def test_initialisation_distribution():
    torch.manual_seed(7)
    m = DelayedLinear(140, 256, 25)
    p = m.positions.detach()
    assert p.min() >= -12 and p.max() <= 12
    # U(-13, 12) clamped: P(P == -12) = 1/25
    frac_low = (p == -12).float().mean().item()
    assert abs(frac_low - 1 / 25) < 0.006
    bound = math.sqrt(6 / 140)  # Kaiming-uniform with the ReLU gain, fan-in 140
    w = m.weight.detach()
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert m.bias is None and torch.all(m.sigma == 12)


def test_clamp_after_each_optimizer_step():
    m = DelayedLinear(4, 3, 25)
    opt = torch.optim.SGD([m.positions], lr=100.0)
    handle = clamp_after_step(opt, m)
    x = torch.rand(10, 2, 4)
    m(x).sum().backward()
    with torch.no_grad():
        m.positions.grad.fill_(-1.0)
        m.positions.grad[0, 0] = 1.0
    opt.step()
    assert m.positions.detach().max() == 12 and m.positions.detach()[0, 0] == -12
    handle.remove()


def test_rounded_delays_context_restores_state():
    model = torch.nn.Sequential(_layer(5, 4, 25, seed=8), torch.nn.ReLU(), _layer(4, 3, 25, seed=9))
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    x = torch.rand(12, 2, 5, dtype=torch.float64)
    y_real = model(x)
    with rounded_delays(model):
        assert all(layer.form == "max" for layer in (model[0], model[2]))
        y_round = model(x)
        assert torch.all(model[0].positions == model[0].positions.round())
    after = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    assert model[0].form == "gauss"
    torch.testing.assert_close(model(x), y_real)
    assert not torch.allclose(y_real, y_round)
    # the rounded model equals explicit shift-and-sum through both layers
    copy = torch.nn.Sequential(_layer(5, 4, 25, seed=8), torch.nn.ReLU(), _layer(4, 3, 25, seed=9))
    delays = round_delays(copy)
    assert set(delays) == {"0", "2"}
    h = torch.relu(_shift_reference(x, copy[0].weight.detach(), delays["0"], 24))
    ref = _shift_reference(h, copy[2].weight.detach(), delays["2"], 36)
    torch.testing.assert_close(y_round, ref, rtol=0, atol=1e-10)


def test_state_dict_roundtrip_keeps_form():
    m = _layer(6, 3, 25, seed=10)
    m.round_delays()
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    fresh = DelayedLinear(6, 3, 25, dtype=torch.float64)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.form == "max"
    x = torch.rand(9, 2, 6, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), m(x))


def test_bias_is_added():
    m = DelayedLinear(3, 2, 5, bias=True)
    with torch.no_grad():
        m.bias.copy_(torch.tensor([1.0, -2.0]))
        m.weight.zero_()
    y = m(torch.rand(4, 2, 3))
    torch.testing.assert_close(y, torch.tensor([1.0, -2.0]).expand(6, 2, 2))


# ---------------------------------------------------------------- bad input
def test_bad_input_errors_name_the_layer():
    with pytest.raises(ConfigError, match="shorter than one time step"):
        DelayedLinear(3, 2, 5.0, dt=10.0)
    with pytest.raises(ConfigError, match="max_delay"):
        DelayedLinear(3, 2, 0)
    with pytest.raises(ConfigError, match="in_features"):
        DelayedLinear(0, 2, 5)
    with pytest.raises(ConfigError, match="form"):
        DelayedLinear(3, 2, 5, form="linear")
    with pytest.raises(ConfigError, match="method"):
        DelayedLinear(3, 2, 5, method="sparse")
    m = DelayedLinear(3, 2, 25)
    with pytest.raises(ShapeError, match=r"DelayedLinear\(3, 2, kernel_size=25\).*positions"):
        m.set_positions(torch.zeros(3, 2))
    with pytest.raises(ShapeError, match=r"DelayedLinear\(3, 2.*sigma"):
        m.set_sigma(torch.zeros(2))
    with pytest.raises(NonFiniteError, match="sigma"):
        m.set_sigma(float("nan"))
    with pytest.raises(ShapeError, match=r"DelayedLinear\(3, 2.*\[T, B, 3\]"):
        m(torch.rand(4, 3))
    with pytest.raises(ShapeError, match="input"):
        m(torch.rand(4, 2, 5))
    with pytest.raises(ShapeError, match="floating"):
        m(torch.ones(4, 2, 3, dtype=torch.int64))
    with pytest.raises(ConfigError, match="delays"):
        m.set_delays(torch.full((2, 3), 25.0))
