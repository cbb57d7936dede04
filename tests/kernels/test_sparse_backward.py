"""The sparse input gradient (METHODS-sparse §4.3 step 4): with a compact-support surrogate a neuron layer's
spikes carry the set A of entries where its backward multiplies ∂L/∂s by a nonzero surrogate factor, and
the event-driven Linear that consumes them computes ∂L/∂x only on A (0 elsewhere).

Properties P1 (parameter gradients equal the dense path's), P2 (∂L/∂x equal on A, 0 off it), P3 (window
edges), P4 (non-compact surrogates: an explicit request is refused, auto runs dense; ``truncate``), P5
(empty A) and P9 (memory).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import neuromorph as nm
from neuromorph.errors import ConfigError
from neuromorph.functional.surrogate import get_surrogate
from neuromorph.kernels import sparse

TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}


@pytest.fixture
def always_sparse_dx(monkeypatch):
    """Run the entry-by-entry input gradient whatever the active fraction, and count its uses."""
    monkeypatch.setattr(sparse, "DX_CROSSOVER", 1.0)
    monkeypatch.setattr(sparse, "DX_MIN_OUT", 1)
    used = []
    real = sparse.input_grad

    def spy(g, weight, active):
        used.append(active is not None)
        return real(g, weight, active)

    monkeypatch.setattr(sparse, "input_grad", spy)
    return used


def _spikes(shape, density, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).to(dtype)


def _network(path: str, layers: int, surrogate: str, alpha, reset: str, detach: bool, per_neuron: bool, dtype,
             truncate=None, neuron_backend="auto"):
    """Input currents -> LIF -> [Linear -> LIF] x layers -> Linear -> LI, every neuron parameter learned.
    ``path="sparse"``: event-driven synapses and spikes that carry their active set; ``"dense"``: neither;
    ``"dense-forward"``: spikes with their active set into ``backend="auto"`` synapses whose forward runs dense
    (``crossover=0``: the input is counted, never sparse enough)."""
    torch.manual_seed(7)
    widths = [30, 24, 18, 12][: layers + 1]
    sb = False if path == "dense" else None
    kw = dict(backend="auto", crossover=0.0) if path == "dense-forward" else dict(backend=path)

    def lif(n, k):
        tau = torch.linspace(1.5, 4.0, n) if per_neuron else 2.0 + k
        return nm.nn.LIF(tau=tau, threshold=0.4, reset=reset, detach_reset=detach, surrogate=surrogate, alpha=alpha,
                         truncate=truncate, learn_tau=True, learn_threshold=True, shape=(n,) if per_neuron else None,
                         sparse_backward=sb, backend=neuron_backend)

    mods = [lif(widths[0], 0)]
    for k in range(layers):
        lin = nm.nn.Linear(widths[k], widths[k + 1], **kw)
        with torch.no_grad():
            lin.weight.mul_(2.5)  # so that every hidden layer fires
        mods += [lin, lif(widths[k + 1], k + 1)]
    mods += [nm.nn.Linear(widths[layers], 5, backend="dense"), nm.nn.LI(tau=2.0)]
    return torch.nn.Sequential(*mods).to(dtype)


def _gradients(net, x):
    net.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    out = net(x)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return {**{n: p.grad.clone() for n, p in net.named_parameters()}, "input": x.grad.clone()}


def _currents(dtype, T=25, B=3, n=30, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n, generator=g) * 1.2).to(dtype)


def _assert_grads_close(got, want, dtype):
    for name, w in want.items():
        scale = float(w.abs().max())
        if dtype == torch.float64:
            torch.testing.assert_close(got[name], w, rtol=0, atol=1e-12 * max(scale, 1e-300), msg=name)
        else:
            torch.testing.assert_close(got[name], w, rtol=1e-5, atol=1e-6 * max(scale, 1e-30), msg=name)


# ---------------------------------------------------------------------------------------------- P1
SURROGATES = [("triangle", 0.4), ("rectangular", 0.6), ("mpr", 3.0)]
RESETS = [("soft", False), ("soft", True), ("hard", False), ("hard", True), ("none", False)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("surrogate,alpha", SURROGATES)
@pytest.mark.parametrize("reset,detach", RESETS)
def test_parameter_gradients_equal_dense(dtype, surrogate, alpha, reset, detach, always_sparse_dx):
    """P1: with the sparse input gradient every parameter gradient (and the network input's) equals the
    dense path's; 1-3 hidden layers, scalar and per-neuron τ (chosen per case so the grid stays small)."""
    case = SURROGATES.index((surrogate, alpha)) * len(RESETS) + RESETS.index((reset, detach))
    layers, per_neuron = 1 + case % 3, bool(case % 2)
    x = _currents(dtype)
    want = _gradients(_network("dense", layers, surrogate, alpha, reset, detach, per_neuron, dtype), x)
    got = _gradients(_network("sparse", layers, surrogate, alpha, reset, detach, per_neuron, dtype), x)
    assert sum(always_sparse_dx) == layers  # each hidden synapse ran the restricted input gradient
    _assert_grads_close(got, want, dtype)
    assert float(want["1.weight"].abs().max()) > 0


@pytest.mark.parametrize("layers,per_neuron", [(1, True), (2, False), (3, True)])
def test_parameter_gradients_equal_reference_backend(layers, per_neuron, always_sparse_dx):
    """P1 against the independent ground truth: plain autograd neurons, dense synapses (float64)."""
    x = _currents(torch.float64)
    want = _gradients(_network("dense", layers, "triangle", 0.4, "hard", False, per_neuron, torch.float64,
                               neuron_backend="reference"), x)
    got = _gradients(_network("sparse", layers, "triangle", 0.4, "hard", False, per_neuron, torch.float64), x)
    assert sum(always_sparse_dx) == layers
    _assert_grads_close(got, want, torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("surrogate,alpha", SURROGATES)
@pytest.mark.parametrize("reset,detach", RESETS)
def test_dense_forward_restricts_the_input_gradient_too(dtype, surrogate, alpha, reset, detach, always_sparse_dx):
    """P1 when the synapses' forward runs the dense product: the input gradient is still computed on the
    producer's active set only (it does not depend on the forward path), and every parameter gradient (and
    the network input's) equals the dense path's."""
    case = SURROGATES.index((surrogate, alpha)) * len(RESETS) + RESETS.index((reset, detach))
    layers, per_neuron = 1 + case % 3, bool(case % 2)
    x = _currents(dtype)
    want = _gradients(_network("dense", layers, surrogate, alpha, reset, detach, per_neuron, dtype), x)
    net = _network("dense-forward", layers, surrogate, alpha, reset, detach, per_neuron, dtype)
    got = _gradients(net, x)
    hidden = [m for m in net if isinstance(m, nm.nn.Linear)][:-1]
    assert [m.last_path for m in hidden] == ["dense"] * layers
    assert sum(always_sparse_dx) == layers  # ... and each ran the restricted input gradient
    _assert_grads_close(got, want, dtype)
    assert float(want["1.weight"].abs().max()) > 0


# ---------------------------------------------------------------------------------------------- P2
def _lif_window(x, tau, theta, alpha):
    """The test's own LIF (soft reset, decay_input) in float64: the triangle window |h − θ| < α per entry."""
    beta = 1 - 1 / tau
    v = torch.zeros_like(x[0])
    inside = []
    for t in range(x.shape[0]):
        h = beta * v + (1 - beta) * x[t]
        s = (h > theta).to(x.dtype)
        inside.append((h - theta).abs() < alpha)
        v = h - s * theta
    return torch.stack(inside)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_input_gradient_equals_dense_on_active_set_and_zero_off_it(dtype, always_sparse_dx):
    """P2: ∂L/∂s of the producing layer equals the dense one on A and is exactly 0 off A."""
    x = _currents(torch.float64, T=30, B=4, n=40) * 2
    grads = []
    for path in ("dense", "sparse"):
        torch.manual_seed(3)
        pre = nm.nn.LIF(tau=2.0, threshold=0.5, surrogate="triangle", alpha=0.25, learn_threshold=True,
                        sparse_backward=None if path == "sparse" else False).to(dtype)
        lin = nm.nn.Linear(40, 16, backend=path).to(dtype)
        post = nm.nn.LIF(tau=2.0, threshold=0.3, surrogate="triangle", alpha=0.25).to(dtype)
        s = pre(x.to(dtype))
        s.retain_grad()
        post(lin(s)).sum().backward()
        grads.append(s.grad)
    dense, sp = grads
    window = _lif_window(x, 2.0, 0.5, 0.25)
    assert 0 < int(window.sum()) < window.numel() // 2  # a proper subset
    assert sum(always_sparse_dx) == 1
    torch.testing.assert_close(sp[window], dense[window], **TOL[dtype])
    assert torch.equal(sp[~window], torch.zeros_like(sp[~window]))
    assert (dense[~window] != 0).float().mean() > 0.5  # the dense path does compute them


def _spike_grads(path: str, dtype, backend: str = "auto"):
    """∂L/∂s of a triangle LIF whose spikes feed a Linear: ``path`` "dense" (no active set, dense synapse),
    "sparse" (event-driven forward), "auto" (the default layer) or "dense-forward" (active set, the forward
    forced dense by crossover=0, layer ``backend``);
    also returns the Linear's weight and bias gradients and the path its forward took."""
    x = _currents(torch.float64, T=30, B=4, n=40) * 2
    torch.manual_seed(3)
    pre = nm.nn.LIF(tau=2.0, threshold=0.5, surrogate="triangle", alpha=0.25, learn_threshold=True,
                    sparse_backward=False if path == "dense" else None).to(dtype)
    kw = dict(backend=backend, crossover=0.0) if path == "dense-forward" else dict(backend=path)
    lin = nm.nn.Linear(40, 16, **kw).to(dtype)  # path "auto": the default layer
    post = nm.nn.LIF(tau=2.0, threshold=0.3, surrogate="triangle", alpha=0.25).to(dtype)
    s = pre(x.to(dtype))
    s.retain_grad()
    post(lin(s)).sum().backward()
    return s.grad, lin.weight.grad, lin.bias.grad, lin.last_path, _lif_window(x, 2.0, 0.5, 0.25)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_forward_input_gradient_on_active_set_and_zero_off_it(dtype, always_sparse_dx):
    """P2 for a Linear whose forward ran dense: ∂L/∂s equals the dense one on A and is exactly 0 off A (the
    "don't care" contract of the event-driven path); dW and db equal the dense ones."""
    dense, gw_d, gb_d, _, window = _spike_grads("dense", dtype)
    sp, gw, gb, path, _ = _spike_grads("dense-forward", dtype)
    assert path == "dense" and sum(always_sparse_dx) == 1
    assert 0 < int(window.sum()) < window.numel() // 2
    torch.testing.assert_close(sp[window], dense[window], **TOL[dtype])
    assert torch.equal(sp[~window], torch.zeros_like(sp[~window]))
    assert (dense[~window] != 0).float().mean() > 0.5
    torch.testing.assert_close(gw, gw_d, **TOL[dtype])
    torch.testing.assert_close(gb, gb_d, **TOL[dtype])


def test_explicit_dense_keeps_the_dense_input_gradient(always_sparse_dx):
    """An explicit dense request, the layer's ``backend="dense"`` or ``synapse_backend("dense")`` over an auto
    layer, is the dense reference everywhere: the input gradient is the full product, even though the
    spikes carry an active set."""
    dense, *_ = _spike_grads("dense", torch.float64)
    got = [_spike_grads("dense-forward", torch.float64, backend="dense")[0]]
    with sparse.synapse_backend("dense"):
        got.append(_spike_grads("dense-forward", torch.float64)[0])
        got.append(_spike_grads("auto", torch.float64)[0])
    assert sum(always_sparse_dx) == 0
    for g in got:
        torch.testing.assert_close(g, dense, rtol=1e-12, atol=1e-12)
        assert (g != 0).float().mean() > 0.5


# ---------------------------------------------------------------------------------------------- P3
@pytest.mark.parametrize("surrogate,alpha,edge,edge_active", [("triangle", 0.5, 0.5, False),
                                                              ("rectangular", 1.0, 0.5, False),
                                                              ("mpr", 3.0, 0.5, True)])
def test_window_edges(surrogate, alpha, edge, edge_active, always_sparse_dx):
    """P3: h − θ exactly at the window's edge (dyadic values): rectangular edges are inactive (open window),
    mpr edges active (closed), triangle edges carry σ' = 0; gradients still equal the dense path's."""
    theta = 1.0
    offsets = torch.tensor([-edge, edge, -edge / 2, edge / 2, -2 * edge, 2 * edge, 0.0, edge * 0.75])
    # IF neuron, one step, no reset: h = x exactly; every batch row holds every offset once
    x = (theta + offsets).repeat(4, 1).unsqueeze(0).to(torch.float64)
    results = []
    for path in ("dense", "sparse"):
        torch.manual_seed(5)
        pre = nm.nn.IF(threshold=theta, reset="none", surrogate=surrogate, alpha=alpha,
                       sparse_backward=None if path == "sparse" else False).double()
        lin = nm.nn.Linear(8, 6, backend=path).double()
        post = nm.nn.LIF(tau=2.0, threshold=0.5, surrogate="triangle", alpha=8.0).double()  # every entry active
        xi = x.clone().requires_grad_()
        s = pre(xi)
        if path == "sparse":
            act = sparse.active_of(s)
            mask = torch.zeros(act.shape, dtype=torch.bool)
            for r in range(act.shape[0]):
                mask[r, act.idx[act.indptr[r]:act.indptr[r + 1]]] = True
            results.append(mask[0])
        (post(lin(s)) * torch.arange(6.0, dtype=torch.float64)).sum().backward()
        results.append((xi.grad.clone(), lin.weight.grad.clone()))
    (gx_d, gw_d), active, (gx_s, gw_s) = results
    assert bool(active[0]) == bool(active[1]) == edge_active  # the edges -edge, +edge
    assert active[2:4].all() and not active[4:6].any() and active[6:].all()
    assert torch.equal(gx_s, gx_d) and torch.equal(gw_s, gw_d)  # dyadic, one term per entry: bit-equal
    assert sum(always_sparse_dx) == 1


# ---------------------------------------------------------------------------------------------- P4
@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "fast_sigmoid", "slayer_exp"])
def test_non_compact_surrogate_is_refused_when_asked_and_dense_under_auto(surrogate):
    """P4: asking for the sparse backward with an unbounded surrogate is a ConfigError naming the layer;
    by default the spikes carry no active set and the input gradient is the dense one."""
    with pytest.raises(ConfigError, match=rf"LIF\(surrogate={surrogate}\).*compact support"):
        nm.nn.LIF(surrogate=surrogate, sparse_backward=True)
    pre, lin = nm.nn.LIF(tau=2.0, threshold=0.3, surrogate=surrogate), nm.nn.Linear(20, 8, backend="sparse")
    s = pre(_currents(torch.float32, n=20).requires_grad_())
    assert sparse.active_of(s) is None
    s.retain_grad()
    lin(s).sum().backward()
    torch.testing.assert_close(s.grad, torch.ones(*s.shape[:2], 8) @ lin.weight.detach())


@pytest.mark.parametrize("cls", ["IF", "LIF", "ALIF", "CubaLIF"])
def test_layer_accepts_sparse_backward_exactly_when_the_kernel_has_a_compact_backward(cls):
    """One rule: ``sparse_backward=True`` is accepted by a layer iff the fused kernel's predicate
    (``has_compact_backward``) holds for that layer's own dynamics configuration."""
    from neuromorph.functional.surrogate import SURROGATE_IDS
    from neuromorph.kernels.config import has_compact_backward

    layer_cls = getattr(nm.nn, cls)
    seen = set()
    for surrogate in SURROGATE_IDS:
        for truncate in (None, 0.3):
            for mpr in ((False, True) if cls in ("IF", "LIF") else (False,)):
                kw = dict(surrogate=surrogate, truncate=truncate, **({"mpr": True} if mpr else {}))
                expected = has_compact_backward(layer_cls(**kw).dynamics()[0])
                seen.add(expected)
                if expected:
                    assert layer_cls(**kw, sparse_backward=True).sparse_backward is True
                else:
                    with pytest.raises(ConfigError, match="compact support"):
                        layer_cls(**kw, sparse_backward=True)
    assert seen == {True, False}


def _truncated_reference_grads(x, cut):
    """Plain autograd with the test's own truncated SuperSpike derivative, σ'(u)·1[|u| < cut]."""

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u > 0).to(u.dtype)

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            d = 1 / (1 + 25 * u.abs()) ** 2
            return g * d * (u.abs() < cut).to(u.dtype) if cut is not None else g * d

    torch.manual_seed(11)
    lin1, lin2 = nm.nn.Linear(30, 20, backend="dense").double(), nm.nn.Linear(20, 5, backend="dense").double()
    with torch.no_grad():
        lin1.weight.mul_(3)
    xi = x.clone().requires_grad_()

    def lif(cur, theta):
        v, out = torch.zeros_like(cur[0]), []
        for t in range(cur.shape[0]):
            h = 0.5 * v + 0.5 * cur[t]
            s = Spike.apply(h - theta)
            v = h - s * theta
            out.append(s)
        return torch.stack(out)

    out = lin2(lif(lin1(lif(xi, 0.375)), 0.375))
    (out * torch.linspace(-1, 1, 5, dtype=out.dtype)).sum().backward()
    return [lin1.weight.grad, lin2.weight.grad, xi.grad]


def test_truncate_equals_truncated_dense_autograd_and_differs_from_untruncated(always_sparse_dx):
    """P4: ``truncate=B`` makes fast_sigmoid (α = 25) compact; the sparse path then equals dense autograd
    with σ'·1[|x| < B] (written out in this test) and differs from the untruncated gradient."""
    x = _currents(torch.float64) * 2
    torch.manual_seed(11)
    lin1, lin2 = nm.nn.Linear(30, 20, backend="sparse").double(), nm.nn.Linear(20, 5, backend="dense").double()
    with torch.no_grad():
        lin1.weight.mul_(3)
    kw = dict(tau=2.0, threshold=0.375, surrogate="fast_sigmoid", alpha=25.0, truncate=0.3, sparse_backward=True)
    n1, n2 = nm.nn.LIF(**kw).double(), nm.nn.LIF(**kw).double()
    xi = x.clone().requires_grad_()
    out = lin2(n2(lin1(n1(xi))))
    (out * torch.linspace(-1, 1, 5, dtype=out.dtype)).sum().backward()
    got = [lin1.weight.grad, lin2.weight.grad, xi.grad]
    assert sum(always_sparse_dx) == 1
    want = _truncated_reference_grads(x, 0.3)
    untruncated = _truncated_reference_grads(x, None)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12 * float(b.abs().max()))
    assert float((want[0] - untruncated[0]).abs().max()) > 1e-3 * float(untruncated[0].abs().max())
    assert get_surrogate("fast_sigmoid", 25.0, truncate=0.3).compact and not get_surrogate("fast_sigmoid").compact
    with pytest.raises(ConfigError, match="truncate"):
        get_surrogate("atan", truncate=-1.0)


# ---------------------------------------------------------------------------------------------- P5
def test_empty_active_set_gives_exact_zeros(always_sparse_dx):
    """P5: no neuron near threshold: the hidden gradients are exactly 0.0, no NaN, no error."""
    pre = nm.nn.LIF(tau=2.0, threshold=1.0, surrogate="triangle", alpha=0.1, learn_threshold=True)
    lin = nm.nn.Linear(20, 8, backend="sparse")
    post = nm.nn.LIF(tau=2.0, threshold=1.0, surrogate="triangle", alpha=0.1)
    s = pre(torch.zeros(10, 2, 20))
    assert sparse.active_of(s).nnz == 0
    post(lin(s)).sum().backward()
    assert torch.equal(pre.threshold.grad, torch.zeros(())) and torch.equal(lin.weight.grad, torch.zeros(8, 20))
    assert sum(always_sparse_dx) == 1


# ---------------------------------------------------------------------------------------------- side channel
def test_active_set_follows_dropout_and_not_in_place_changes():
    torch.manual_seed(0)
    pre = nm.nn.LIF(tau=2.0, threshold=0.5, surrogate="triangle", alpha=0.3, learn_threshold=True)
    s = pre(_currents(torch.float32))
    act = sparse.active_of(s)
    assert act is not None and 0 < act.density < 1
    for drop in (nm.nn.Dropout(0.3), nm.nn.SequenceDropout(0.3)):
        assert sparse.active_of(drop(s)) is act
    assert sparse.active_of(s.reshape(-1, s.shape[-1])) is None  # a new tensor: unknown, dense
    assert sparse.active_of(s * 2) is None
    dropped = nm.nn.Dropout(0.3)(s)
    dropped.mul_(2)  # modified in place after the set was attached: no longer trusted
    assert sparse.active_of(dropped) is None
    with torch.no_grad():
        assert sparse.active_of(pre(_currents(torch.float32))) is None  # inference records nothing
    off = nm.nn.LIF(tau=2.0, surrogate="triangle", learn_threshold=True, sparse_backward=False)
    assert sparse.active_of(off(_currents(torch.float32))) is None


def test_sparse_backward_needs_the_fused_cpu_backend():
    with pytest.raises(ConfigError, match="fused"):
        nm.nn.LIF(surrogate="triangle", sparse_backward=True, backend="reference")
    lif = nm.nn.LIF(surrogate="triangle", sparse_backward=True, learn_threshold=True).to(torch.bfloat16)
    with pytest.raises(ConfigError, match="LIF: sparse_backward=True"):
        lif(torch.zeros(2, 1, 3, dtype=torch.bfloat16))


# ---------------------------------------------------------------------------------------------- P9
_MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys, torch, neuromorph as nm
    torch.set_num_threads(1)

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) / 1024

    def run(path, T, B, density, value):
        torch.manual_seed(0)
        cur = (torch.rand(T, B, 700) < density).float() * value
        pre = nm.nn.LIF(tau=2.0, threshold=1.0, surrogate="triangle", alpha=0.25, learn_threshold=True,
                        sparse_backward=None if path == "sparse" else False)
        lin = nm.nn.Linear(700, 256, backend=path)
        post = nm.nn.LIF(tau=2.0, threshold=0.5, surrogate="triangle", alpha=0.25)
        before = status("VmRSS")
        s = pre(cur)
        act = nm.kernels.sparse.active_of(s)
        act = act.density if act else None  # no reference to the set itself
        rate = float(s.detach().mean())
        producer = []  # resident memory when the producer's backward starts (the synapse's is done)
        s.register_hook(lambda g: producer.append(status("VmRSS") - before))
        loss = post(lin(s)).sum()
        del s
        saved = status("VmRSS") - before
        open("/proc/self/clear_refs", "w").write("5")  # the high-water mark restarts here
        loss.backward()
        return {"peak": status("VmHWM") - before, "saved": saved, "active": act,
                "rate": rate, "producer": producer[0], "after": status("VmRSS") - before}

    density, value = float(sys.argv[1]), float(sys.argv[2])
    run("sparse", 4, 2, density, value), run("dense", 4, 2, density, value)  # compile outside the measurement
    print(json.dumps({p: run(p, 500, 64, density, value) for p in sys.argv[3:]}))
""")


def _memory(density: float, value: float) -> dict:
    """The script's measurements of both paths for input currents ``value`` at ``density``."""
    import json

    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(density), str(value), "sparse", "dense"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")
def test_backward_memory_not_above_dense():
    """P9: on a [T=500, B=64, 700 → 256] layer whose input neurons are active at ≤ 5 %, the peak memory
    during the backward (counted from before the forward, so the saved state is included) is no higher on
    the sparse path. Resident memory in a fresh process, every allocation above 64 KiB its own mapping."""
    res = _memory(0.05, 1.5)
    assert 0 < res["sparse"]["active"] <= 0.05 and res["dense"]["active"] is None
    assert res["sparse"]["peak"] <= res["dense"]["peak"], res
    assert res["sparse"]["saved"] < res["dense"]["saved"] - 50, res  # a list of active inputs, not the spikes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")
def test_saved_event_lists_are_freed_after_the_synapse_backward():
    """P9: the list of active inputs (and the active set) that the event-driven synapse saved is freed as
    soon as its own backward has run, like the dense path's saved input: when the producer's backward starts
    (where the step's peak is), the sparse path holds no more memory than the dense path, and nothing of it
    is left after the backward while the graph is still referenced. With 10 % input spikes, all of them
    active, the lists are 27 MB here (12 bytes per spike); they used to be kept with the graph until the loss
    was deleted."""
    res = _memory(0.1, 2.3)
    assert res["sparse"]["rate"] > 0.08 and res["sparse"]["active"] > 0.08, res
    assert res["sparse"]["producer"] <= res["dense"]["producer"] + 4, res
    assert res["sparse"]["after"] <= res["dense"]["after"] + 4, res
    assert res["sparse"]["peak"] <= res["dense"]["peak"], res


def _backends():
    names = ["reference", "fused"]
    if nm.kernels.triton_available():
        names.append("triton")
    return names


def test_truncated_surrogate_is_the_same_on_every_backend():
    """The truncation is part of the one definition: every backend gives the same gradients with it."""
    x = _currents(torch.float64) * 2
    grads = {}
    for backend in _backends():
        lif = nm.nn.LIF(tau=2.0, threshold=0.375, surrogate="fast_sigmoid", alpha=25.0, truncate=0.3,
                        learn_tau=True, learn_threshold=True, backend=backend).double()
        xi = x.clone().requires_grad_()
        (lif(xi) * torch.linspace(-1, 1, 30, dtype=torch.float64)).sum().backward()
        grads[backend] = [xi.grad, lif.tau.grad, lif.threshold.grad]
    for backend, got in grads.items():
        for a, b in zip(got, grads["reference"]):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=backend)
    assert float(grads["reference"][0].abs().max()) > 0 and (grads["reference"][0] == 0).any()


def test_the_active_set_is_not_part_of_the_tensor():
    """The set is kept beside the spikes (by identity), not in them: saving the spikes saves only their
    values, and the set goes away with the tensor."""
    import gc
    import io

    lif = nm.nn.LIF(tau=2.0, threshold=0.5, surrogate="triangle", alpha=0.3, learn_threshold=True)
    s = lif(_currents(torch.float32))
    assert sparse.active_of(s) is not None and not vars(s)
    buf = io.BytesIO()
    torch.save(s, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf, weights_only=True), s.detach())
    n = len(sparse._ACTIVE)
    del s
    gc.collect()
    assert len(sparse._ACTIVE) == n - 1
