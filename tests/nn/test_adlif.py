"""SE-adLIF and EF-adLIF (Baronig et al., Nat Commun 2025): hand-computed spike trains and gradients, every
backend against the reference, stability, constraints, the surrogate, and the layer in the protocol.

The hand values are those of the released classes (IGITUGraz/SE-adlif, models/alif.py), reproduced in float64
by an independent re-implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neuromorph as nm
from neuromorph import kernels
from neuromorph.errors import ConfigError, ExportError
from neuromorph.functional.surrogate import get_surrogate, spike_fn
from neuromorph.kernels import DynamicsConfig, DynamicsParams, NeuronState, fused

BACKENDS = ["reference", "fused", "fused-torch"] + (["triton"] if kernels.triton_available() else [])


def _cfg(scheme: str) -> DynamicsConfig:
    return DynamicsConfig(reset="hard", detach_reset=True, surrogate=get_surrogate("slayer_exp"), adlif=scheme)


def _run(backend, x, p, cfg, state=None):
    if backend == "fused-torch":
        return fused.run(x, p, cfg, state, return_membrane=True, force_torch=True)
    return kernels.run(x, p, cfg, state, return_membrane=True, backend=backend)


def _t1(backend, scheme, dtype):
    """T1: α = 0.5, β = 0.75, q = 8, a = b = 1, ϑ = 1, x = (4, 0, 0, 3, 2); L = Σ z."""
    x = torch.tensor([4.0, 0, 0, 3, 2], dtype=dtype).view(5, 1, 1).requires_grad_()
    alpha = torch.tensor([0.5], dtype=dtype, requires_grad=True)
    beta = torch.tensor([0.75], dtype=dtype, requires_grad=True)
    a = torch.tensor([1.0], dtype=dtype, requires_grad=True)
    b = torch.tensor([1.0], dtype=dtype, requires_grad=True)
    p = DynamicsParams(alpha, torch.tensor([1.0], dtype=dtype), rho=beta, adapt=8 * b, couple=8 * a)
    out, mem, st = _run(backend, x, p, _cfg(scheme))
    grads = torch.autograd.grad(out.sum(), [x, a, b, alpha, beta])
    return out.flatten(), mem.flatten(), st, [g.flatten() for g in grads]


T1 = {
    "se": dict(spikes=[1, 0, 0, 1, 0], u=[0, -1, -0.25, 0, 0.328125], w_T=1.6640625,
               gx=[0.003423171, -0.007849753, -0.016261811, 0.008303962, 0.017378488], ga=0.010152033,
               gb=-0.018669808, galpha=-0.101315895, gbeta=0.060463072),
    "ef": dict(spikes=[1, 0, 0, 0, 1], u=[0, 0, -1, 0.25, 0], w_T=-0.15625,
               gx=[0.003231856, -0.054566064, -0.016619727, 0.026772540, 0.030027334], ga=0.060054668,
               gb=-0.040700106, galpha=-0.383839959, gbeta=-0.221045329),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scheme", ["se", "ef"])
def test_t1_hand_example_exact_and_reference_gradients(backend, scheme):
    want = T1[scheme]
    for dtype in (torch.float64, torch.float32):
        out, mem, st, (gx, ga, gb, gal, gbe) = _t1(backend, scheme, dtype)
        # dyadic numbers: exact in binary floating point, float32 included
        assert out.tolist() == want["spikes"]
        assert mem.tolist() == want["u"]
        assert st.a.item() == want["w_T"]
        tol = dict(rtol=0, atol=1e-9) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-8)
        exp = lambda v: torch.tensor(v, dtype=dtype)  # noqa: E731
        torch.testing.assert_close(gx, exp(want["gx"]), **tol)
        torch.testing.assert_close(ga, exp([want["ga"]]), **tol)
        torch.testing.assert_close(gb, exp([want["gb"]]), **tol)
        torch.testing.assert_close(gal, exp([want["galpha"]]), **tol)
        torch.testing.assert_close(gbe, exp([want["gbeta"]]), **tol)


def _single(cls, tau_u, tau_w, q, a, b, **kw):
    """A one-neuron layer with fixed τ (a range of one point) and the given raw a, b."""
    layer = cls(1, tau_u_range=(tau_u, tau_u), tau_w_range=(tau_w, tau_w), q=q, streaming=True, **kw).double()
    with torch.no_grad():
        layer.a.fill_(a)
        layer.b.fill_(b)
    return layer


def _trace(layer, x):
    """Run step by step through the streaming protocol: spikes, post-reset u, w per step."""
    state = None
    zs, us, ws = [], [], []
    for t in range(x.shape[0]):
        z, state = layer(x[t : t + 1], state)
        zs.append(z.item())
        us.append(state.v.item())
        ws.append(state.a.item())
    return zs, us, ws


@pytest.mark.parametrize("cls, spikes, u_tilde, w", [
    (nm.nn.SEAdLIF, [0, 0, 1, 0, 0, 0, 0, 0],
     [0.543808, 0.891281, 1.017161, -0.067855, -0.101102, -0.100406, -0.072507, -0.027803],
     [0.539301, 1.414282, 3.374332, 3.251266, 3.097264, 2.946497, 2.825889, 2.751609]),
    (nm.nn.EFAdLIF, [0, 0, 1, 0, 0, 0, 0, 0],
     [0.543808, 0.989040, 1.255806, 0.269868, 0.135811, -0.012063, -0.146521, -0.243191],
     [0, 0.539301, 1.511231, 3.469678, 3.679961, 3.753822, 3.679814, 3.473685]),
])
def test_t2_in_range_example_through_the_layer(cls, spikes, u_tilde, w):
    """T2: τ_u = 5, τ_w = 60, q = 120, a = 0.5, b = 1, x = 3 for 8 steps; exp decays (not 1 − 1/τ)."""
    layer = _single(cls, 5.0, 60.0, 120.0, 0.5, 1.0)
    zs, us, ws = _trace(layer, torch.full((8, 1, 1), 3.0, dtype=torch.float64))
    assert zs == spikes
    # the post-reset membrane is ũ where no spike fired, 0 where one did
    expected_u = [0.0 if s else v for s, v in zip(spikes, u_tilde)]
    np.testing.assert_allclose(us, expected_u, atol=1e-6)
    np.testing.assert_allclose(ws, w, atol=1e-6)
    # the same on the whole sequence at once, float32, every backend
    for backend in BACKENDS:
        layer32 = cls(1, tau_u_range=(5, 5), tau_w_range=(60, 60), q=120.0, backend=backend.replace("-torch", ""))
        with torch.no_grad():
            layer32.a.fill_(0.5)
            layer32.b.fill_(1.0)
        assert layer32(torch.full((8, 1, 1), 3.0)).flatten().tolist() == spikes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scheme", ["se", "ef"])
def test_t3_strict_threshold(backend, scheme):
    """T3: a = b = 0, α = 0.5: ũ_5 = 1.0 exactly does not fire (H(0) = 0) and stays u_5 = 1."""
    x = torch.tensor([4.0, 0, 0, 3, 2], dtype=torch.float64).view(5, 1, 1)
    zero = torch.zeros(1, dtype=torch.float64)
    p = DynamicsParams(torch.tensor([0.5], dtype=torch.float64), torch.ones(1, dtype=torch.float64), rho=zero + 0.75,
                       adapt=zero, couple=zero)
    out, mem, _ = _run(backend, x, p, _cfg(scheme))
    assert out.flatten().tolist() == [1, 0, 0, 1, 0]
    assert mem.flatten()[-1].item() == 1.0


@pytest.mark.parametrize("scheme", ["se", "ef"])
def test_t4_without_adaptation_it_is_the_lif_with_exp_decay(scheme):
    """T4: a = b = 0 (any β): spikes, membranes and gradients equal the hard-reset LIF with α = exp(−1/τ)."""
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(40, 3, 6, generator=g, dtype=torch.float64) + 0.8).requires_grad_()
    tau = (5 + 20 * torch.rand(6, generator=g, dtype=torch.float64)).requires_grad_()
    zero = torch.zeros(6, dtype=torch.float64)
    thr = torch.ones(6, dtype=torch.float64)
    lif_cfg = DynamicsConfig(reset="hard", detach_reset=True, surrogate=get_surrogate("slayer_exp"))
    w = torch.randn(40, 3, 6, generator=g, dtype=torch.float64)
    res = []
    for cfg, adaptive in ((_cfg(scheme), True), (lif_cfg, False)):
        alpha = torch.exp(-1 / tau)
        p = DynamicsParams(alpha, thr, rho=zero + 0.9, adapt=zero, couple=zero) if adaptive else DynamicsParams(alpha, thr)
        out, mem, _ = kernels.run(x, p, cfg, None, True, "fused")
        res.append((out, mem, torch.autograd.grad((out * w).sum() + mem.sum(), [x, tau])))
    assert res[0][0].sum() > 0
    assert torch.equal(res[0][0], res[1][0])
    torch.testing.assert_close(res[0][1], res[1][1])
    for ga, gl in zip(res[0][2], res[1][2]):
        torch.testing.assert_close(ga, gl)


def test_t5_se_adapts_one_step_before_ef():
    """T5: a = 0, b > 0: after the first spike SE has w = (1 − β) q b at once, EF one step later."""
    se = _single(nm.nn.SEAdLIF, 5.0, 60.0, 10.0, 0.0, 1.0)
    ef = _single(nm.nn.EFAdLIF, 5.0, 60.0, 10.0, 0.0, 1.0)
    x = torch.tensor([8.0, 0, 0], dtype=torch.float64).view(3, 1, 1)
    jump = (1 - math.exp(-1 / 60)) * 10.0
    z_se, _, w_se = _trace(se, x)
    z_ef, _, w_ef = _trace(ef, x)
    assert z_se[0] == z_ef[0] == 1
    assert w_se[0] == pytest.approx(jump, rel=1e-12)
    assert w_ef[0] == 0.0 and w_ef[1] == pytest.approx(jump, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_t6_reset_routes_no_gradient_but_adaptation_does(backend):
    """T6: one step that fires: ∂u_1/∂x_1 = 0 (detached reset), ∂w_1/∂x_1 = (1 − β) q b σ'(ũ − ϑ)(1 − α)."""
    x = torch.tensor([[[2.5]]], dtype=torch.float64, requires_grad=True)
    alpha, beta, q, b = 0.5, 0.75, 8.0, 1.0
    one = torch.ones(1, dtype=torch.float64)
    p = DynamicsParams(one * alpha, one, rho=one * beta, adapt=one * q * b, couple=one * q)
    out, mem, st = _run(backend, x, p, _cfg("se"))
    assert out.item() == 1.0
    (du,) = torch.autograd.grad(mem.sum(), [x], retain_graph=True)
    (dw,) = torch.autograd.grad(st.a.sum(), [x])
    assert du.item() == 0.0
    u_tilde = (1 - alpha) * 2.5
    sigma = 0.4 * 5 / 2 * math.exp(-5 * abs(u_tilde - 1))
    assert dw.item() == pytest.approx((1 - beta) * q * b * sigma * (1 - alpha), rel=1e-12)


def test_t7_slayer_surrogate_values_and_finite_differences():
    """T7: σ'(0) = 1, σ'(±0.2) = e^{−1}, σ'(1) = e^{−5} for α = 5, c = 0.4; it is the derivative of
    its own smooth antiderivative (c/2)·sign(x)(1 − e^{−α|x|}) (finite differences)."""
    s = get_surrogate("slayer_exp")
    assert (s.alpha, s.scale) == (5.0, 0.4)
    x = torch.tensor([0.0, 0.2, -0.2, 1.0], dtype=torch.float64)
    torch.testing.assert_close(s.grad(x), torch.tensor([1.0, math.exp(-1), math.exp(-1), math.exp(-5)],
                                                       dtype=torch.float64), rtol=1e-15, atol=0)
    xs = torch.linspace(-1.3, 1.7, 31, dtype=torch.float64)
    xs = xs[xs.abs() > 1e-3]
    prim = lambda z: 0.2 * torch.sign(z) * (1 - torch.exp(-5 * z.abs()))  # noqa: E731
    h = 1e-6
    torch.testing.assert_close(s.grad(xs), (prim(xs + h) - prim(xs - h)) / (2 * h), rtol=1e-7, atol=1e-9)
    # the spike function uses it backward; other surrogates stay at scale 1
    xr = xs.clone().requires_grad_()
    spike_fn(xr, "slayer_exp").sum().backward()
    torch.testing.assert_close(xr.grad, s.grad(xs))
    assert get_surrogate("atan").scale == 1.0
    assert get_surrogate("slayer_exp", alpha=2.0, scale=1.0).grad(torch.zeros(1)).item() == 1.0


def _linear_map(cls, tau_u, tau_w, A):
    """The one-step sub-threshold map (u, w) -> (u', w') of the layer (no spikes), column by column."""
    layer = _single(cls, tau_u, tau_w, A, 1.0, 0.0, threshold=1e15)  # spiking disabled
    cols = []
    for u0, w0 in ((1.0, 0.0), (0.0, 1.0)):
        state = NeuronState(torch.tensor([[u0]], dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
                            if cls is nm.nn.EFAdLIF else None, torch.tensor([[w0]], dtype=torch.float64))
        _, new = layer(torch.zeros(1, 1, 1, dtype=torch.float64), state)
        cols.append([new.v.item(), new.a.item()])
    return np.array(cols).T, layer


def test_t8_se_stays_bounded_where_ef_diverges():
    """T8: τ_u = 25, τ_w = 60, A = 120, no spikes, zero input, (u, w) = (1, 0): after 2000 steps SE has
    decayed below 1e-20 and EF grown above 1e9; spectral radii 0.972064 (SE) and 1.011277 (EF)."""
    norms = {}
    for cls, radius in ((nm.nn.SEAdLIF, 0.972064), (nm.nn.EFAdLIF, 1.011277)):
        M, layer = _linear_map(cls, 25.0, 60.0, 120.0)
        assert max(abs(np.linalg.eigvals(M))) == pytest.approx(radius, abs=1e-6)
        state = NeuronState(torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
                            if cls is nm.nn.EFAdLIF else None, torch.zeros(1, 1, dtype=torch.float64))
        z, state = layer(torch.zeros(2000, 1, 1, dtype=torch.float64), state)
        assert z.sum() == 0
        norms[cls] = math.hypot(state.v.item(), state.a.item())
    assert norms[nm.nn.SEAdLIF] < 1e-20
    assert norms[nm.nn.EFAdLIF] > 1e9
    # SE's radius is √(αβ) for every coupling with complex eigenvalues (here A = 10 ... 800)
    for A in (10.0, 120.0, 800.0):
        M, _ = _linear_map(nm.nn.SEAdLIF, 25.0, 60.0, A)
        assert max(abs(np.linalg.eigvals(M))) == pytest.approx(math.exp(-(1 / 25 + 1 / 60) / 2), abs=1e-9)


def test_t9_constraints_project_after_the_step_and_never_in_forward():
    layer = nm.nn.SEAdLIF(4)
    with torch.no_grad():
        layer.w_u.copy_(torch.tensor([-0.5, 0.3, 1.7, 1.0]))
        layer.w_w.copy_(torch.tensor([2.0, 0.0, 0.25, -1.0]))
        layer.a.copy_(torch.tensor([1.5, 0.5, -0.1, 0.9]))
        layer.b.copy_(torch.tensor([2.5, 1.9, -3.0, 0.0]))
    x = torch.rand(30, 2, 4) * 3
    before = layer(x)
    layer.apply_constraints()
    after = layer(x)
    assert not torch.equal(before, after), "the forward pass must not clamp (out-of-range values act)"
    assert layer.w_u.tolist() == [0.0, pytest.approx(0.3), 1.0, 1.0]
    assert layer.w_w.tolist() == [1.0, 0.0, 0.25, 0.0]
    assert layer.a.tolist() == [1.0, 0.5, 0.0, pytest.approx(0.9)]
    assert layer.b.tolist() == [2.0, pytest.approx(1.9), 0.0, 0.0]


def test_parameters_init_ranges_and_exp_decays():
    torch.manual_seed(0)
    layer = nm.nn.SEAdLIF(1000)
    assert [n for n, _ in layer.named_parameters()] == ["w_u", "w_w", "a", "b"]
    for p, hi in ((layer.w_u, 1), (layer.w_w, 1), (layer.a, 1), (layer.b, 2)):
        assert 0 <= p.min() and p.max() <= hi and p.max() > 0.9 * hi
    assert 5 <= layer.tau_u.min() and layer.tau_u.max() <= 25
    assert 60 <= layer.tau_w.min() and layer.tau_w.max() <= 300
    cfg, p = layer.dynamics()
    torch.testing.assert_close(p.beta, torch.exp(-1 / layer.tau_u))
    torch.testing.assert_close(p.rho, torch.exp(-1 / layer.tau_w))
    torch.testing.assert_close(p.couple, 120 * layer.a)
    assert cfg.surrogate.name == "slayer_exp" and nm.nn.EFAdLIF(3).q == 60.0
    # dt converts the ranges from seconds to steps
    assert nm.nn.SEAdLIF(2, tau_u_range=(0.02, 0.1), tau_w_range=(0.24, 1.2), dt=0.004).tau_u_range == \
        pytest.approx((5.0, 25.0))
    with pytest.raises(ConfigError, match="tau_u_range"):
        nm.nn.SEAdLIF(2, tau_u_range=(25, 5))
    with pytest.raises(ConfigError, match="features"):
        nm.nn.SEAdLIF(0)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "reference"])
@pytest.mark.parametrize("scheme", ["se", "ef"])
def test_t11_backends_equal_reference_on_random_sequences(backend, scheme):
    """T11: [T = 100, B = 8, N = 64], float32, per-neuron parameters, a carried-in state: spikes identical,
    gradients of every input within 1e-5 relative."""
    T, B, N = (100, 8, 64) if backend != "triton" else (40, 4, 32)  # the Triton interpreter is slow
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(T, B, N, generator=g) * 1.5 + 0.9).requires_grad_()
    tau_u = (5 + 20 * torch.rand(N, generator=g)).requires_grad_()
    tau_w = (60 + 240 * torch.rand(N, generator=g)).requires_grad_()
    a = torch.rand(N, generator=g).requires_grad_()
    b = (2 * torch.rand(N, generator=g)).requires_grad_()
    thr = (0.8 + 0.4 * torch.rand(N, generator=g)).requires_grad_()
    v0 = (0.5 * torch.randn(B, N, generator=g)).requires_grad_()
    w0 = (0.3 * torch.randn(B, N, generator=g)).requires_grad_()
    z0 = (torch.rand(B, N, generator=g) > 0.5).float().requires_grad_()
    w_out = torch.randn(T, B, N, generator=g)
    w_mem = torch.randn(T, B, N, generator=g)
    q = 120.0 if scheme == "se" else 60.0
    leaves = [x, tau_u, tau_w, a, b, thr, v0, w0] + ([z0] if scheme == "ef" else [])

    def go(name):
        p = DynamicsParams(torch.exp(-1 / tau_u), thr, rho=torch.exp(-1 / tau_w), adapt=q * b, couple=q * a)
        state = NeuronState(v0, z0 if scheme == "ef" else None, w0)
        out, mem, st = (kernels.reference.run(x, p, _cfg(scheme), state, True) if name == "reference"
                        else _run(name, x, p, _cfg(scheme), state))
        loss = (out * w_out).sum() + (mem * w_mem).sum() + st.v.sum() + st.a.sum()
        return out.detach(), mem.detach(), torch.autograd.grad(loss, leaves)

    ref, got = go("reference"), go(backend)
    assert 0 < ref[0].mean() < 0.5
    assert torch.equal(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1], rtol=1e-5, atol=1e-5)
    for name, gg, rr in zip(["x", "tau_u", "tau_w", "a", "b", "thr", "v0", "w0", "z0"], got[2], ref[2]):
        torch.testing.assert_close(gg, rr, rtol=1e-5, atol=1e-5 * max(1.0, rr.abs().max().item()), msg=name)


def test_layer_is_a_neuron_for_protocol_metrics_streaming_and_energy():
    torch.manual_seed(0)  # before building: the biases and neuron parameters decide whether the last layer fires
    model = torch.nn.Sequential(nm.nn.Linear(5, 6), nm.nn.SEAdLIF(6), nm.nn.Linear(6, 3), nm.nn.EFAdLIF(3))
    assert nm.nn.protocol.declaration(model[1]) == nm.nn.LayerDecl(nm.nn.Role.NEURON, "SEAdLIF")
    assert [n for n, _ in nm.train.metrics.spiking_layers(model)] == ["1", "3"]
    torch.manual_seed(0)
    with torch.no_grad():
        for lin in (model[0], model[2]):
            lin.weight.uniform_(0.5, 1.5)
    x = (torch.rand(20, 2, 5) < 0.5).float() * 3
    # streaming in chunks equals the whole sequence
    stream = nm.nn.Streaming(model)
    full = model(x)
    assert torch.equal(torch.cat([stream(chunk) for chunk in x.split(7)]), full)
    assert full.sum() > 0
    # the energy report charges two state updates (membrane, adaptation current) per neuron and step
    from neuromorph import energy

    with energy.EnergyMonitor(model) as mon:
        model(x)
    recs = {r.name: r for r in mon.layers}
    assert recs["1"].neuron_updates == 2 * 20 * 2 * 6
    assert "adaptation current" in energy.report.NEURON_UPDATE_RULE


def test_export_refuses_adaptive_neurons_by_name():
    model = torch.nn.Sequential(nm.nn.Linear(5, 6), nm.nn.SEAdLIF(6))
    with pytest.raises(ExportError, match=r"layer '1' \(SEAdLIF\).*adaptation current"):
        nm.export.nir.to_nir(model, torch.zeros(4, 1, 5))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b not in ("reference", "fused-torch")])
@pytest.mark.parametrize("cls", [nm.nn.SEAdLIF, nm.nn.EFAdLIF])
def test_t11_recurrent_network_backends_equal_reference(backend, cls):
    """T11 with recurrence: ``Recurrent(SEAdLIF)`` / ``Recurrent(EFAdLIF)`` on [T = 100, B = 8, N = 64]: the
    fused recurrent kernel (and Triton, stepped) give the reference's spikes and gradients."""
    T, B, N = (100, 8, 64) if backend != "triton" else (20, 2, 16)
    dtype = torch.float64 if backend == "fused" else torch.float32

    def build(name):
        torch.manual_seed(3)
        layer = nm.nn.Recurrent(cls(N, backend=name), N, bias=True).to(dtype)
        torch.nn.init.orthogonal_(layer.weight)
        return layer

    g = torch.Generator().manual_seed(5)
    x = torch.randn(T, B, N, generator=g, dtype=dtype) * 1.5 + 0.7
    w = torch.randn(T, B, N, generator=g, dtype=dtype)
    res = []
    for name in ("reference", backend):
        layer = build(name)
        xx = x.clone().requires_grad_()
        out = layer(xx)
        params = [xx, *layer.parameters()]
        res.append((out.detach(), torch.autograd.grad((out * w).sum(), params)))
    (ref_out, ref_g), (out, grads) = res
    assert 0 < ref_out.mean() < 0.5
    assert torch.equal(out, ref_out)
    tol = 1e-9 if dtype == torch.float64 else 1e-5
    for gg, rr in zip(grads, ref_g):
        torch.testing.assert_close(gg, rr, rtol=tol, atol=tol * max(1.0, rr.abs().max().item()))


def test_recurrent_se_adlif_net_trains_a_few_steps():
    """A two-layer recurrent SE-adLIF network learns a toy task in a few Adam steps with the constraints
    projected after each step (loss falls, parameters stay in range)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(nm.nn.Linear(6, 16), nm.nn.Recurrent(nm.nn.SEAdLIF(16), 16),
                              nm.nn.Linear(16, 2), nm.nn.LI(tau=15.0))
    g = torch.Generator().manual_seed(1)
    y = torch.arange(32) % 2
    rates = torch.tensor([[0.6, 0.6, 0.6, 0.05, 0.05, 0.05], [0.05, 0.05, 0.05, 0.6, 0.6, 0.6]])
    x = (torch.rand(30, 32, 6, generator=g) < rates[y]).float()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        scores = net(x).sum(0)
        loss = torch.nn.functional.cross_entropy(scores, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.5)
        opt.step()
        nm.nn.apply_constraints(net)
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert bool((scores.argmax(1) == y).all())
    adlif = net[1].neuron
    assert adlif.a.min() >= 0 and adlif.a.max() <= 1 and adlif.b.max() <= 2


def test_energy_charges_the_adaptation_update_inside_a_recurrent_layer():
    from neuromorph import energy

    model = torch.nn.Sequential(nm.nn.Linear(5, 6), nm.nn.Recurrent(nm.nn.SEAdLIF(6), 6),
                                nm.nn.Linear(6, 4), nm.nn.Recurrent(nm.nn.LIF(shape=(4,)), 4))
    with energy.EnergyMonitor(model) as mon:
        model(torch.rand(10, 3, 5))
    recs = {r.name: r for r in mon.layers}
    assert recs["1"].neuron_updates == 2 * 10 * 3 * 6
    assert recs["3"].neuron_updates == 10 * 3 * 4


@pytest.mark.parametrize("cls", [nm.nn.SEAdLIF, nm.nn.EFAdLIF])
def test_recurrent_adlif_streams_in_chunks_like_the_whole_sequence(cls):
    """The carried state (membrane, adaptation current, EF's last spike, the recurrent spikes) makes a
    sequence fed in chunks give the spikes of the whole sequence."""
    torch.manual_seed(2)
    net = torch.nn.Sequential(nm.nn.Linear(5, 12), nm.nn.Recurrent(cls(12), 12))
    with torch.no_grad():
        net[0].weight.uniform_(0.2, 1.2)
    x = (torch.rand(40, 3, 5) < 0.4).float() * 2
    full = net(x)
    assert full.sum() > 0
    stream = nm.nn.Streaming(net)
    assert torch.equal(torch.cat([stream(c) for c in x.split(9)]), full)


def _saved_copies_of(spikes_of, run):
    """The tensors the autograd graph of ``run()`` saves that equal its spike train but are not the output
    itself (a copy kept for the backward)."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = run()
    s = spikes_of(out)
    return [t for t in saved if t.numel() == s.numel() and t.data_ptr() != s.data_ptr()
            and torch.equal(t.reshape(s.shape), s)]


@pytest.mark.parametrize("backend", ["fused", "triton", "recurrent"])
def test_ef_adlif_saves_no_copy_of_its_spikes(backend):
    """EF-adLIF carries s_{t-1} in its state slot i; the backward fires it again from the saved h_{t-1}
    (bit-equal), so the forward keeps no [T, B, N] copy of the spikes (3.1 MiB per layer at T=100, B=32,
    N=256 in float32)."""
    if backend == "triton" and not kernels.triton_available():
        pytest.skip("Triton not available")
    torch.manual_seed(0)
    layer = nm.nn.EFAdLIF(12, backend="fused" if backend == "recurrent" else backend)
    x = (torch.rand(30, 2, 12) * 12).requires_grad_()
    cfg, p = layer.dynamics()
    if backend == "recurrent":
        V = (torch.randn(12, 12) * 0.3).requires_grad_()
        from neuromorph.kernels import recurrent

        run = lambda: recurrent.run(x, V, p, cfg, backend="fused")  # noqa: E731
        spikes_of = lambda res: res[0]  # noqa: E731
    else:
        run = lambda: layer(x)  # noqa: E731
        spikes_of = lambda res: res  # noqa: E731
    assert float(spikes_of(run()).detach().sum()) > 20  # it fires, so a copy would be seen
    assert _saved_copies_of(spikes_of, run) == []
