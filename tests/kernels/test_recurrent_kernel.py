"""The recurrent dynamics (input current x_t + V s_{t-1}): the fused kernel equals the step-by-step
autograd reference and an independent plain-torch loop, in spikes and gradients; finite differences."""

import math

import pytest
import torch

from neuromorph import kernels
from neuromorph.functional.surrogate import get_surrogate
from neuromorph.kernels import DynamicsConfig, DynamicsParams, recurrent
from neuromorph.nn import ALIF, LIF, CubaLIF, Recurrent

T, B, N = 30, 3, 12


def _layer(kind, backend, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    common = dict(backend=backend, shape=(N,))
    if kind == "lif_hard":
        n = LIF(tau=3.0, threshold=0.7, reset="hard", learn_tau=True, learn_threshold=True, **common)
    elif kind == "lif_soft":
        n = LIF(tau=4.0, threshold=0.8, reset="soft", decay_input=False, learn_tau=True, surrogate="sigmoid", **common)
    elif kind == "lif_detach":
        n = LIF(tau=2.5, threshold=0.6, reset="hard", detach_reset=True, learn_tau=True, **common)
    elif kind == "cuba":
        n = CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.5, learn_tau=True, learn_threshold=True, **common)
    else:
        n = ALIF(tau=3.0, tau_adapt=6.0, adapt_increment=0.2, threshold=0.5, learn_tau=True, learn_adaptation=True,
                 **common)
    layer = Recurrent(n, N, bias=True).to(dtype)
    with torch.no_grad():
        layer.weight.mul_(4.0)  # strong recurrence: the spikes depend on it
        layer.bias.uniform_(-0.2, 0.2)
    return layer


def _x(dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, B, N, generator=g, dtype=dtype) * 1.2 + 0.2).requires_grad_()


KINDS = ["lif_hard", "lif_soft", "lif_detach", "cuba", "alif"]


@pytest.mark.parametrize("kind", KINDS)
def test_fused_equals_reference_steps_spikes_and_gradients(kind):
    fused, ref = _layer(kind, "fused"), _layer(kind, "reference")
    ref.load_state_dict(fused.state_dict())
    x = _x()
    of, orf = fused(x), ref(x)
    assert torch.equal(of, orf)
    assert 0.05 < of.mean() < 0.7  # the case exercises spikes and the recurrence
    w = torch.randn_like(of)
    leaves_f, leaves_r = [x, *fused.parameters()], [x, *ref.parameters()]
    gf = torch.autograd.grad((of * w).sum(), leaves_f)
    gr = torch.autograd.grad((orf * w).sum(), leaves_r)
    for (name, _), a, b in zip([("x", None), *fused.named_parameters()], gf, gr):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10), name
    assert gf[1].abs().sum() > 0  # the recurrent weight receives a gradient


def test_recurrence_changes_the_spikes():
    layer = _layer("lif_hard", "fused")
    x = _x()
    out = layer(x)
    with torch.no_grad():
        layer.weight.zero_()
    assert not torch.equal(out, layer(x))
    assert torch.equal(layer(x), layer.neuron(x + layer.bias))  # V = 0: the plain neuron


def test_float32_spikes_equal_reference():
    fused, ref = _layer("cuba", "fused", torch.float32), _layer("cuba", "reference", torch.float32)
    ref.load_state_dict(fused.state_dict())
    x = _x(torch.float32).detach()
    assert torch.equal(fused(x), ref(x))


class _Atan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, alpha):
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        a = ctx.alpha
        return g * (a / 2) / (1 + (math.pi / 2 * a * u) ** 2), None


def test_fused_gradients_equal_a_plain_torch_loop():
    """An RLeaky-style loop written here with torch only (hard reset, atan surrogate)."""
    layer = _layer("lif_hard", "fused")
    x = _x()
    out = layer(x)
    V = layer.weight.detach().clone().requires_grad_()
    tau = layer.neuron.tau.detach().clone().requires_grad_()
    thr = layer.neuron.threshold.detach().clone().requires_grad_()
    alpha = layer.neuron.surrogate.alpha
    v = torch.zeros(B, N, dtype=x.dtype)
    s = torch.zeros(B, N, dtype=x.dtype)
    outs = []
    for t in range(T):
        y = x[t] + layer.bias.detach() + s @ V.t()
        beta = 1 - 1 / tau
        h = beta * v + (1 - beta) * y
        s = _Atan.apply(h - thr, alpha)
        v = h * (1 - s)
        outs.append(s)
    plain = torch.stack(outs)
    assert torch.equal(out, plain)
    w = torch.randn_like(out)
    g1 = torch.autograd.grad((out * w).sum(), [x, layer.weight, layer.neuron.tau, layer.neuron.threshold])
    g2 = torch.autograd.grad((plain * w).sum(), [x, V, tau, thr])
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cuba", [False, True])
def test_fused_kernel_matches_finite_differences(cuba):
    """gradcheck in float64 on the final membrane: a narrow rectangular surrogate is zero at every step of
    this input (no membrane within 1e-4 of the threshold), so the exact derivative is the surrogate one."""
    cfg = DynamicsConfig(reset="hard", detach_reset=True, surrogate=get_surrogate("rectangular", 1e-4), cuba=cuba)
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(12, 2, 5, generator=g, dtype=torch.float64) + 0.4).requires_grad_()
    V = (torch.randn(5, 5, generator=g, dtype=torch.float64) * 0.8).requires_grad_()
    beta = torch.full((5,), 0.7, dtype=torch.float64, requires_grad=True)
    kappa = torch.full((5,), 0.5, dtype=torch.float64, requires_grad=True) if cuba else None
    thr = torch.full((5,), 0.6, dtype=torch.float64)

    def final_v(x, V, beta, *k):
        out, st = recurrent.run(x, V, DynamicsParams(beta, thr, k[0] if k else None), cfg, backend="fused")
        return st.neuron.v, out.sum().detach()

    spikes = final_v(x, V, beta, *([kappa] if cuba else []))[1]
    assert spikes > 5  # the recurrence is active
    args = (x, V, beta, kappa) if cuba else (x, V, beta)
    assert torch.autograd.gradcheck(lambda *a: final_v(*a)[0], args, eps=1e-7, atol=1e-6)


def test_step_loop_is_taken_where_the_kernel_does_not_apply():
    cfg = DynamicsConfig(reset="hard")
    x = torch.randn(4, 2, 3, dtype=torch.float16)
    assert not recurrent.fused_supported(x, DynamicsParams(torch.tensor(0.5), torch.tensor(1.0)), cfg)
    assert recurrent.fused_supported(x.double(), DynamicsParams(torch.tensor(0.5), torch.tensor(1.0)), cfg)
    assert not recurrent.fused_supported(x.double(), DynamicsParams(torch.tensor(0.5), torch.tensor(1.0)),
                                         DynamicsConfig(reset="none", fire=False))


@pytest.mark.skipif(not kernels.triton_available(), reason="Triton not available (set TRITON_INTERPRET=1 to run on CPU)")
def test_triton_backend_equals_fused():
    """The Triton backend steps through time (one kernel launch per step); spikes and gradients as fused."""
    fused, tri = _layer("lif_hard", "fused", torch.float32), _layer("lif_hard", "triton", torch.float32)
    tri.load_state_dict(fused.state_dict())
    x = _x(torch.float32)
    of, ot = fused(x), tri(x)
    assert torch.equal(of, ot)
    w = torch.randn_like(of)
    gf = torch.autograd.grad((of * w).sum(), [x, *fused.parameters()])
    gt = torch.autograd.grad((ot * w).sum(), [x, *tri.parameters()])
    for a, b in zip(gf, gt):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_dv_spike_by_spike_equals_the_dense_product(monkeypatch):
    """Both ways of computing dL/dV (event-driven in the loop for sparse spikes, one product otherwise)."""
    layer = _layer("alif", "fused")
    x = _x()
    grads = []
    for rate in (0.0, 1.0):  # never / always event-driven
        monkeypatch.setattr(recurrent, "_EVENT_DV_RATE", rate)
        out = layer(x)
        grads.append(torch.autograd.grad((out * torch.linspace(-1, 1, T).view(T, 1, 1)).sum(), layer.weight)[0])
    assert torch.allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12) and grads[0].abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS + ["se_adlif", "ef_adlif"])
def test_fused_layers_take_the_fused_kernel_not_the_step_loop(kind, monkeypatch):
    """``fused_supported`` falls back to the (much slower) step loop when the dynamics' signatures change;
    every neuron of the package must still take the compiled kernel, so a silent fallback fails here."""
    from neuromorph.nn import EFAdLIF, SEAdLIF

    if kind in ("se_adlif", "ef_adlif"):
        torch.manual_seed(0)
        layer = Recurrent((SEAdLIF if kind == "se_adlif" else EFAdLIF)(N, backend="fused"), N).double()
    else:
        layer = _layer(kind, "fused")

    def no_loop(*a, **k):
        raise AssertionError("the step loop ran instead of the fused recurrent kernel")

    monkeypatch.setattr(recurrent, "run_steps", no_loop)
    out = layer(_x())
    out.sum().backward()
    assert out.shape == (T, B, N)
