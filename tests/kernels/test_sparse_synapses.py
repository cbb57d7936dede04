"""Event-driven synapses (neuromorph.kernels.sparse, nm.nn.Linear backend='auto'|'sparse'|'dense').

The sparse path must give the dense path's outputs and gradients to float rounding (bit-equal on dyadic
data), for binary spikes and counts, in float32 and float64, inside networks with every reset and
surrogate; choose itself by input density; and leave export, energy counts and streaming unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuromorph as nm
from neuromorph.errors import ConfigError
from neuromorph.kernels import sparse

TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def _inputs(kind: str, shape, dtype, density=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    active = torch.rand(shape, generator=g) < density
    if kind == "binary":
        return active.to(dtype)
    if kind == "counts":  # binned events: 1..5 per bin
        return (active * torch.randint(1, 6, shape, generator=g)).to(dtype)
    if kind == "dropout":  # spikes scaled by 1/(1-p)
        return active.to(dtype) / 0.7
    raise ValueError(kind)


def _grads(fn, x, w, b, g):
    for t in (x, w, b):
        t.grad = None
    y = fn(x, w, b)
    y.backward(g)
    return y.detach(), x.grad.clone(), w.grad.clone(), b.grad.clone()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["binary", "counts", "dropout"])
@pytest.mark.parametrize("rows", [(3,), (40, 8)])  # few rows: serial kernels; 320 rows: parallel ones
def test_linear_equals_dense(dtype, kind, rows):
    torch.manual_seed(1)
    x = _inputs(kind, (*rows, 50), dtype).requires_grad_()
    w = torch.randn(30, 50, dtype=dtype, requires_grad=True)
    b = torch.randn(30, dtype=dtype, requires_grad=True)
    g = torch.randn(*rows, 30, dtype=dtype)
    with torch.autograd.set_grad_enabled(True):
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            got = _grads(sparse.linear, x, w, b, g)
        finally:
            torch.set_num_threads(threads)
    want = _grads(torch.nn.functional.linear, x, w, b, g)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, **TOL[dtype])


def test_dyadic_data_is_bit_equal():
    """P7: weights k/256 and integer inputs make every partial sum exact, so both paths agree bit for bit."""
    torch.manual_seed(2)
    x = _inputs("counts", (20, 6, 64), torch.float32).requires_grad_()
    w = (torch.randint(-256, 257, (16, 64)) / 256.0).requires_grad_()
    b = (torch.randint(-256, 257, (16,)) / 256.0).requires_grad_()
    g = torch.randint(-8, 9, (20, 6, 16)).float()
    got = _grads(sparse.linear, x, w, b, g)
    want = _grads(torch.nn.functional.linear, x, w, b, g)
    for a, e in zip(got, want):
        assert torch.equal(a, e)


def test_empty_input_gives_bias_and_zero_weight_gradient():
    """P5: no active input: output = bias, dW exactly 0, no NaN."""
    x = torch.zeros(7, 3, 12, requires_grad=True)
    lin = nm.nn.Linear(12, 5, backend="sparse")
    y = lin(x)
    assert torch.equal(y, lin.bias.detach().expand(7, 3, 5))
    y.sum().backward()
    assert torch.equal(lin.weight.grad, torch.zeros_like(lin.weight))
    assert torch.equal(lin.bias.grad, torch.full((5,), 21.0))
    assert torch.isfinite(x.grad).all()


def test_deterministic():
    """P8: the weight gradient is summed per input column in a fixed order (no atomics): bit-identical runs."""
    x = _inputs("binary", (50, 16, 80), torch.float32, 0.2)
    out = []
    for _ in range(2):
        lin = nm.nn.Linear(80, 40, backend="sparse")
        torch.nn.init.constant_(lin.bias, 0.25)
        with torch.no_grad():
            lin.weight.copy_(torch.linspace(-1, 1, 3200).reshape(40, 80).sin())
        lin(x).pow(2).sum().backward()
        out.append(lin.weight.grad.clone())
    assert torch.equal(out[0], out[1])


# ---------------------------------------------------------------------------------- inside a network
def _net(backend: str, reset: str, surrogate: str, dtype, detach: bool = False):
    torch.manual_seed(3)
    kw = dict(reset=reset, surrogate=surrogate, detach_reset=detach)
    net = torch.nn.Sequential(
        nm.nn.Linear(40, 24, backend=backend), nm.nn.LIF(tau=2.0, threshold=0.3, **kw),
        nm.nn.Linear(24, 16, backend=backend), nm.nn.LIF(tau=3.0, threshold=0.25, **kw),
        nm.nn.Linear(16, 5, backend=backend), nm.nn.LI(tau=2.0),
    )
    return net.to(dtype)


def _run(net, x):
    net.zero_grad(set_to_none=True)
    spikes = []
    hooks = [m.register_forward_hook(lambda m, i, o: spikes.append(o.detach())) for m in net
             if isinstance(m, nm.nn.LIF)]
    out = net(x)
    for h in hooks:
        h.remove()
    (out.mean(0) * torch.arange(1.0, 6.0, dtype=x.dtype)).sum().backward()
    return spikes, out.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset,detach", [("soft", False), ("hard", False), ("none", False), ("soft", True)])
@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "fast_sigmoid", "triangle", "rectangular"])
def test_network_spikes_and_gradients_equal_dense(dtype, reset, detach, surrogate):
    """P1/P6: same spikes, outputs and parameter gradients with sparse and dense synapses."""
    x = _inputs("counts", (30, 4, 40), dtype, 0.15)
    sd, od, gd = _run(_net("dense", reset, surrogate, dtype, detach), x)
    ss, os_, gs = _run(_net("sparse", reset, surrogate, dtype, detach), x)
    assert all(torch.equal(a, b) for a, b in zip(ss, sd))
    assert sum(float(s.sum()) for s in sd) > 0  # the hidden layers fire, so their synapses are exercised
    torch.testing.assert_close(os_, od, **TOL[dtype])
    for name in gd:
        torch.testing.assert_close(gs[name], gd[name], **TOL[dtype], msg=name)


def test_network_with_mpr_and_reference_neurons():
    """The sparse synapses against the reference (plain autograd) neuron backend."""
    x = _inputs("binary", (25, 3, 40), torch.float64, 0.2)
    dense = _net("dense", "soft", "atan", torch.float64)
    for m in dense:
        if isinstance(m, nm.nn.LIF):
            m.backend = "reference"
    sd, od, gd = _run(dense, x)
    ss, os_, gs = _run(_net("sparse", "soft", "atan", torch.float64), x)
    assert all(torch.equal(a, b) for a, b in zip(ss, sd))
    for name in gd:
        torch.testing.assert_close(gs[name], gd[name], rtol=1e-12, atol=1e-12)


def test_switching_between_paths_during_training_matches_all_dense():
    """P10: an optimiser run whose layers flip between dense and sparse ends at the all-dense parameters."""
    x = _inputs("binary", (20, 8, 40), torch.float32, 0.1)
    y = torch.randint(0, 5, (8,))
    params = []
    for flip in (False, True):
        net = _net("dense", "soft", "atan", torch.float32)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for step in range(8):
            for m in net:
                if isinstance(m, nm.nn.Linear):
                    m.backend = ("sparse" if step % 2 else "dense") if flip else "dense"
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x).mean(0), y).backward()
            opt.step()
        params.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    torch.testing.assert_close(params[1], params[0], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------- the automatic choice
def test_auto_picks_by_density_and_overrides_work():
    lin = nm.nn.Linear(100, 64)
    assert lin.backend == "auto"
    lin(_inputs("binary", (10, 4, 100), torch.float32, 0.01))
    assert lin.last_path == "sparse" and 0 < lin.last_density < sparse.crossover_for(64, training=True)
    lin(torch.randn(10, 4, 100))  # real-valued input: dense
    assert lin.last_path == "dense" and lin.last_density == 1.0
    low = nm.nn.Linear(100, 64, crossover=0.001)
    low(_inputs("binary", (10, 4, 100), torch.float32, 0.01))
    assert low.last_path == "dense"
    forced = nm.nn.Linear(100, 10, backend="sparse")
    forced(torch.randn(3, 100))
    assert forced.last_path == "sparse"
    never = nm.nn.Linear(100, 64, backend="dense")
    never(torch.zeros(3, 100))
    assert never.last_path == "dense"


def test_default_crossover_follows_width_and_mode():
    """Narrow layers (the scan of the input is not repaid) cross over at lower densities, down to dense;
    with the register sums the forward gains more than the backward, so inference crosses over later."""
    assert sparse.crossover_for(12, True) == 0.0 == sparse.crossover_for(4, False)
    assert 0 < sparse.crossover_for(20, True) < sparse.crossover_for(256, True) < sparse.DEFAULT_CROSSOVER["train"]
    assert 0.1 < sparse.crossover_for(20, True) < 0.2  # measured 0.13-0.20 for 256 -> 20 in training
    assert sparse.crossover_for(256, True) < sparse.crossover_for(256, False) < sparse.DEFAULT_CROSSOVER["infer"]
    narrow = nm.nn.Linear(100, 3)
    narrow(_inputs("binary", (10, 4, 100), torch.float32, 0.001))
    assert narrow.last_path == "dense"
    wide = nm.nn.Linear(100, 256)
    # every row exactly k of 100 inputs active, between the training and the inference crossover
    k = int(100 * (sparse.crossover_for(256, True) + sparse.crossover_for(256, False)) / 2)
    assert sparse.crossover_for(256, True) < k / 100 < sparse.crossover_for(256, False)
    x = torch.zeros(10, 4, 100)
    x[..., :k] = 1.0
    wide(x)
    assert wide.last_path == "dense" and wide.last_density == k / 100
    with torch.no_grad():
        wide(x)
    assert wide.last_path == "sparse"


def test_auto_falls_back_where_the_kernels_do_not_run():
    lin = nm.nn.Linear(16, 4).to(torch.bfloat16)
    lin(torch.zeros(2, 3, 16, dtype=torch.bfloat16))
    assert lin.last_path == "dense"
    with pytest.raises(ConfigError, match="backend='sparse'"):
        nm.nn.Linear(16, 4, backend="sparse").to(torch.bfloat16)(torch.zeros(2, 16, dtype=torch.bfloat16))
    with pytest.raises(ConfigError, match="backend"):
        nm.nn.Linear(16, 4, backend="csr")
    with pytest.raises(ConfigError, match="crossover"):
        nm.nn.Linear(16, 4, crossover=2.0)


def test_layer_protocol_still_describes_a_linear_synapse():
    decl = nm.nn.protocol.declaration(nm.nn.Linear(3, 2, backend="sparse"))
    assert decl.role == nm.nn.Role.SYNAPSE and decl.op == "linear"


# ---------------------------------------------------------------------------------- export, energy, streaming
def _model(backend):
    torch.manual_seed(4)
    return torch.nn.Sequential(nm.nn.Linear(40, 24, backend=backend), nm.nn.LIF(tau=2.0, threshold=0.3, reset="hard"),
                               nm.nn.Linear(24, 5, backend=backend), nm.nn.LI(tau=2.0))


def test_nir_export_identical_with_sparse_synapses():
    from neuromorph.export.nir import to_nir

    x = _inputs("binary", (12, 2, 40), torch.float32, 0.1)
    graphs = [to_nir(_model(b), x, strict=False) for b in ("dense", "sparse")]
    assert graphs[0].nodes.keys() == graphs[1].nodes.keys()
    assert sorted(graphs[0].edges) == sorted(graphs[1].edges)
    for key, node in graphs[0].nodes.items():
        other = graphs[1].nodes[key]
        assert type(node) is type(other)
        for field, value in vars(node).items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, vars(other)[field]), (key, field)


def test_kernel_work_equals_energy_report_synops():
    """The kernel's accumulates (events × out, dense weights) are the report's synops of those layers."""
    x = _inputs("binary", (15, 3, 40), torch.float32, 0.1)
    model = _model("sparse")
    with sparse.count_work() as work:
        report = nm.energy.measure(model, x, hardware="cmos45nm", ann_hardware=None)
    synops = sum(r.synops for r in report.layers)  # neurons and the readout add none
    assert work.calls == 2 and work.events > 0
    assert work.accumulates == synops == work.synops


def test_kernel_synops_count_event_counts_like_the_report():
    x = _inputs("counts", (15, 3, 40), torch.float32, 0.1)
    model = torch.nn.Sequential(nm.nn.Linear(40, 5, backend="sparse"), nm.nn.LI())
    with sparse.count_work() as work:
        report = nm.energy.measure(model, x, hardware="cmos45nm", ann_hardware=None)
    assert work.synops == sum(r.synops for r in report.layers) > work.accumulates


def test_streaming_uses_sparse_synapses_and_equals_whole_sequence():
    torch.manual_seed(5)
    model = torch.nn.Sequential(nm.nn.Linear(40, 128), nm.nn.LIF(tau=2.0, threshold=0.3, reset="hard"),
                                nm.nn.Linear(128, 5), nm.nn.LI(tau=2.0)).eval()
    x = _inputs("binary", (16, 1, 40), torch.float32, 0.05)
    with torch.no_grad():
        whole = model(x)
        stream = nm.nn.Streaming(model)
        steps = torch.stack([stream.step(x[t]) for t in range(x.shape[0])])
    assert model[0].last_path == "sparse"
    torch.testing.assert_close(steps, whole, rtol=0, atol=1e-6)


def test_synapse_backend_context_overrides_auto_layers_only():
    auto, fixed = nm.nn.Linear(50, 64), nm.nn.Linear(50, 64, backend="sparse")
    x = _inputs("binary", (6, 2, 50), torch.float32, 0.05)
    with sparse.synapse_backend("dense"):
        auto(x)
        fixed(x)
    assert (auto.last_path, fixed.last_path) == ("dense", "sparse")
    auto(x)
    assert auto.last_path == "sparse"


@pytest.mark.parametrize("kind", ["binary", "counts"])
def test_weight_gradient_is_the_same_bits_at_any_thread_count(kind):
    """The weight gradient sums, for each input, the rows of g where it fired in increasing row order, in
    parallel over the inputs: the same bits on every call and at every thread count (no atomics, no
    per-thread partial sums), each sum the float64 product's terms rounded one by one; the bias gradient
    is summed the same way, over all rows."""
    x = _inputs(kind, (40, 8, 60), torch.float32, 0.2)
    g = torch.randn(40, 8, 20)
    want = (g.reshape(-1, 20).double().t() @ x.reshape(-1, 60).double()).float()
    threads = torch.get_num_threads()
    grads = []
    for n in (1, 2, 1, 2):
        torch.set_num_threads(n)
        try:
            w = torch.randn(20, 60, generator=torch.Generator().manual_seed(0), requires_grad=True)
            b = torch.zeros(20, requires_grad=True)
            sparse.linear(x, w, b).backward(g)
            grads.append((w.grad, b.grad))
        finally:
            torch.set_num_threads(threads)
    for gw, gb in grads[1:]:
        assert torch.equal(gw, grads[0][0]) and torch.equal(gb, grads[0][1])
    torch.testing.assert_close(grads[0][0], want, **TOL[torch.float32])
    torch.testing.assert_close(grads[0][1], g.reshape(-1, 20).double().sum(0).float(), **TOL[torch.float32])


def test_listing_by_input_is_the_transpose_plus_a_bias_column():
    """The weight gradient's listing by input: for each input, the rows where it is nonzero in increasing
    order with their values, then one column listing every row with value 1 (the bias)."""
    x = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0], [0.0, 0.0, 0.0], [4.0, 5.0, 0.0]])
    indptr, idx, val = sparse.Rows(x).csr()
    for parts in (1, 2, 3, 4):  # runs of rows counted and filled on their own, then in order
        colptr, rows, vals = np.empty(5, np.int64), np.empty(5 + 4, np.int32), np.empty(5 + 4, np.float32)
        sparse._kernel("by_input", 4 if parts > 1 else 0)(indptr, idx, val, colptr, rows, vals, parts)
        assert colptr.tolist() == [0, 2, 4, 5, 9]
        assert rows.tolist() == [1, 3, 0, 3, 1, 0, 1, 2, 3]
        assert vals.tolist() == [1.0, 4.0, 2.0, 5.0, 3.0, 1.0, 1.0, 1.0, 1.0]


def test_binary_input_stores_no_values_and_gives_the_same_bits():
    """Spikes (every nonzero entry 1) are listed without their values, half the stores and memory of the
    listing; the forward and weight gradient add the columns instead of scaling them, the same bits."""
    x = _inputs("binary", (40, 8, 60), torch.float32, 0.1).reshape(-1, 60)
    rows = sparse.Rows(x)
    indptr, idx, val = rows.csr()
    assert rows.binary and val.shape == (0,) and idx.shape == (int(x.count_nonzero()),)
    valued = sparse.Rows(x)
    valued.binary = False
    v_indptr, v_idx, v_val = valued.csr()
    assert np.array_equal(idx, v_idx) and np.all(v_val == 1)
    w, b, g = torch.randn(20, 60), torch.randn(20), torch.randn(320, 20)
    fwd = [sparse._forward_product(c, w, b, 320) for c in ((indptr, idx, val), (v_indptr, v_idx, v_val))]
    assert torch.equal(fwd[0], fwd[1])
    dw = [np.empty((20, 60), np.float32) for _ in range(2)]
    for c, d in zip(((indptr, idx, val), (v_indptr, v_idx, v_val)), dw):
        sparse._weight_grad_into(c, g.numpy(), d)
    assert np.array_equal(dw[0], dw[1])
    assert not sparse.Rows(x * 2).binary and sparse.Rows(x * 2).csr()[2].shape == idx.shape


@pytest.mark.parametrize("rows", [(1, 1), (3,), (40, 8)])  # streaming step, few rows (weight read as is), many
def test_inference_path_equals_training_path_bit_for_bit(rows):
    """Without gradients the product scans the input instead of listing its events; it adds the same terms
    in the same order, so it gives the training forward's bits (and so streaming gives the whole sequence's)."""
    x = _inputs("counts", (*rows, 70), torch.float32, 0.1)
    lin = nm.nn.Linear(70, 33, backend="sparse")
    with torch.no_grad():
        infer = lin(x)
    train = lin(x.clone().requires_grad_())
    assert torch.equal(infer, train.detach())
    torch.testing.assert_close(infer, torch.nn.functional.linear(x, lin.weight, lin.bias).detach(), **TOL[torch.float32])


def test_tracing_runs_the_dense_product():
    """A traced graph cannot call the numba kernels: under torch.jit.trace auto layers use the dense product."""
    lin = nm.nn.Linear(60, 64).eval()
    x = _inputs("binary", (5, 2, 60), torch.float32, 0.05)
    other = _inputs("binary", (5, 2, 60), torch.float32, 0.05, seed=1)
    with torch.no_grad():
        traced = torch.jit.trace(lin, x)
        torch.testing.assert_close(traced(other), lin(other), **TOL[torch.float32])  # not a traced constant
    assert lin.last_path == "sparse"


needs_compress = pytest.mark.skipif(__import__("llvmlite").binding.llvm_version_info < (19,),
                                    reason="the vector listing needs LLVM 19+ (llvm.experimental.vector.compress)")


@needs_compress
@pytest.mark.parametrize("n_in", [1, 15, 16, 17, 48, 700])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 1.0])
@pytest.mark.parametrize("kind", ["binary", "counts"])
def test_vector_listing_equals_the_scalar_listing(n_in, density, kind):
    """The 16-lane listing (compare, compress, masked store) gives the scalar loop's lists exactly: every
    row length around the 16-lane step, silent and full rows, NaN listed and -0.0 not (as ``x != 0``), and
    it never writes past a row's slots (the sentinel after the last one survives). It compiles everywhere
    (LLVM expands the compress where AVX-512 lacks); the layers use it only with AVX-512 (VECTOR_LISTING)."""
    x = _inputs(kind, (97, n_in), torch.float32, density, seed=n_in)
    x[5] = 0.0
    x[7, : min(3, n_in)] = -0.0
    if n_in > 4:
        x[9, 4] = float("nan")
    rows = sparse.Rows(x)
    nnz = rows.nnz
    lists = []
    for name in ("fill_csr", "fill_csr16"):
        for parallel_rows in (0, 97):  # the serial and the parallel build
            idx = np.full(nnz + 1, -7, np.int32)
            val = np.full((0 if rows.binary else nnz) + 1, -7.0, np.float32)
            sparse._kernel(name, parallel_rows)(x.numpy(), rows.indptr, idx[:nnz], val[:-1])
            assert idx[-1] == -7 and val[-1] == -7.0
            lists.append((idx[:nnz], val[:-1]))
    for idx, val in lists[1:]:
        assert np.array_equal(idx, lists[0][0]) and np.array_equal(val, lists[0][1], equal_nan=True)
    if n_in > 4 and density < 1.0:
        assert not rows.binary and np.isnan(lists[0][1]).sum() == 1


@needs_compress
def test_vector_listing_is_chosen_by_the_compile_target(monkeypatch):
    """The 16-lane listing runs only where numba compiles for AVX-512F; elsewhere LLVM's scalar expansion
    of the compress is slower than the scalar loop, which is then kept."""
    from numba.core import config

    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+fma,-avx512f")
    assert not sparse._vector_compress_available()
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,+avx512bw")
    assert sparse._vector_compress_available()


@needs_compress
@pytest.mark.parametrize("n_in,n_out,density,kind", [(700, 256, 0.05, "binary"), (256, 256, 0.13, "counts"),
                                                     (256, 20, 0.05, "binary"), (64, 129, 0.2, "counts"),
                                                     (30, 7, 0.3, "binary"), (9, 64, 1.0, "counts")])
def test_register_forward_gives_the_same_bits(n_in, n_out, density, kind):
    """The float32 forward that keeps each row's sums in vector registers (64 outputs per pass, then the
    rest in masked 16-lane steps) adds the same terms in the same order as the scalar loop: the same bits,
    in the serial and the parallel build, for widths that are and are not multiples of 16 and 64."""
    x = _inputs(kind, (130, n_in), torch.float32, density, seed=n_out)
    x[3] = 0.0
    csr = sparse.Rows(x).csr()
    w, b = torch.randn(n_out, n_in), torch.randn(n_out)
    wt = w.t().contiguous().numpy()
    for rows in (0, 130):
        want, got = (np.full((130, n_out), np.nan, np.float32) for _ in range(2))
        sparse._kernel("forward", rows)(*csr, wt, b.numpy(), want)
        sparse._kernel("forward16", rows)(*csr, wt, b.numpy(), got)
        assert np.array_equal(got, want) and not np.isnan(got).any()
    assert np.array_equal(got[3], b.numpy())


@needs_compress
def test_vector_kernels_compile_only_for_float32_rows():
    """The 16-lane kernels read their arrays as float32/int32 buffers: float64 data (which the layers send
    to the scalar loops) must fail to compile rather than be misread."""
    from numba.core.errors import TypingError

    indptr = np.zeros(4, np.int64)
    with pytest.raises(TypingError):
        sparse._kernel("fill_csr16", 0)(np.zeros((3, 20)), indptr, np.empty(0, np.int32), np.empty(0))
    with pytest.raises(TypingError):
        sparse._kernel("forward16", 0)(indptr, np.empty(0, np.int32), np.empty(0), np.zeros((20, 5)), np.zeros(5),
                                       np.zeros((3, 5)))
    lin = nm.nn.Linear(20, 70, backend="sparse").double()  # float64 layers take the scalar loops
    x = _inputs("counts", (6, 2, 20), torch.float64, 0.3)
    torch.testing.assert_close(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias), **TOL[torch.float64])


@needs_compress
@pytest.mark.parametrize("name", ["fill_csr", "fill_csr16"])
def test_listing_never_writes_past_a_rows_slots(name):
    """A row is listed into the slots its count gave it and never past them, even if the listing saw more
    nonzero entries than the count did (a denormal read as zero by a thread that flushes denormals): the
    slots after it may be another thread's row."""
    x = torch.zeros(2, 40)
    x[0, [1, 2, 5, 8, 11, 17, 18, 30]] = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    indptr = np.array([0, 3, 3], np.int64)  # a count of 3 for row 0; row 1 silent
    idx, val = np.full(4, -7, np.int32), np.full(4, -7.0, np.float32)
    sparse._kernel(name, 0)(x.numpy(), indptr, idx[:3], val[:3])
    assert idx.tolist() == [1, 2, 5, -7] and val.tolist() == [1.0, 2.0, 3.0, -7.0]
