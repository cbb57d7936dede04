"""Event-driven inference of DelayedLinear with integer delays (neuromorph/kernels/sparse_delays.py): equal to
the dense rounded evaluation, chosen by itself in inference only, overridable like Linear's backend, its work
equal to the energy report's synops, and streamed step by step with the whole sequence's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuromorph as nm
from neuromorph.errors import ConfigError
from neuromorph.kernels import sparse, sparse_delays
from neuromorph.models.shd import SHDDelayNet


def rounded_layer(n_in: int, n_out: int, max_delay: int, dtype, *, bias: bool = False, seed: int = 0,
                  dyadic: bool = True, backend: str = "sparse") -> nm.nn.DelayedLinear:
    """A rounded layer with random integer delays that include 0 and K-1, some weights exactly 0."""
    torch.manual_seed(seed)
    layer = nm.nn.DelayedLinear(n_in, n_out, max_delay, bias=bias, dtype=dtype, backend=backend)
    k = layer.kernel_size
    delays = torch.randint(0, k, (n_out, n_in))
    delays[0, 0], delays[-1, -1] = 0, k - 1
    layer.set_delays(delays)
    layer.round_delays()
    with torch.no_grad():
        if dyadic:  # k/256: every sum below is exact, so any order of additions gives the same bits
            layer.weight.copy_(torch.randint(-128, 128, (n_out, n_in)).to(dtype) / 256)
            if bias:
                layer.bias.copy_(torch.randint(-64, 64, (n_out,)).to(dtype) / 256)
        layer.weight[:, 1] = 0.0  # zero weights: skipped by the kernel and by the energy report
    assert torch.equal(layer.integer_delays(), delays)
    return layer


def counts(shape, density: float, dtype, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    active = torch.rand(shape, generator=g) < density
    return (active * torch.randint(1, 5, shape, generator=g)).to(dtype)  # event counts 1..4


def dense(layer: nm.nn.DelayedLinear, x: torch.Tensor, method: str) -> torch.Tensor:
    """The dense evaluation by ``method``. (``synapse_backend("dense")`` alone would not do: it overrides
    ``backend="auto"`` only, and these layers say ``"sparse"``.)"""
    saved = layer.method, layer.backend
    layer.method, layer.backend = method, "dense"
    try:
        with torch.no_grad():
            y = layer(x)
        assert layer.last_path == "dense"
        return y
    finally:
        layer.method, layer.backend = saved


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [False, True])
def test_event_driven_equals_dense_rounded_evaluation(dtype, bias):
    layer = rounded_layer(30, 17, 7, dtype, bias=bias)
    x = counts((21, 3, 30), 0.15, dtype)
    x[:, 1, :] = 0  # a silent batch row
    x[-1, 0, 0] = 3  # an event at the last step through the delay-0 synapse (0, 0)
    with torch.no_grad():
        y = layer(x)
    assert layer.last_path == "sparse"
    assert y.shape == (21 + 3, 3, 17) and y.abs().sum() > 0
    for method in ("shift", "direct"):  # dyadic weights and counts: bit-equal
        assert torch.equal(y, dense(layer, x, method)), method
    torch.testing.assert_close(y, dense(layer, x, "spectral"))
    assert torch.equal(y[:, 1], layer.bias.detach().expand(24, 17) if bias else torch.zeros(24, 17, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_event_driven_real_weights_and_empty_input(dtype):
    layer = rounded_layer(25, 12, 9, dtype, dyadic=False, seed=3)
    x = counts((15, 4, 25), 0.2, dtype, seed=4)
    with torch.no_grad():
        y = layer(x)
    assert layer.last_path == "sparse"
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(y, dense(layer, x, "direct"), **tol)
    with torch.no_grad(), sparse.count_work() as work:
        empty = layer(torch.zeros(15, 4, 25, dtype=dtype))
        no_steps = layer(torch.zeros(0, 4, 25, dtype=dtype))
    assert torch.equal(empty, torch.zeros(19, 4, 12, dtype=dtype)) and work.accumulates == 0 and work.calls == 2
    assert torch.equal(no_steps, torch.zeros(4, 4, 12, dtype=dtype))


def test_same_bits_with_one_or_two_threads():
    layer = rounded_layer(40, 30, 11, torch.float32, dyadic=False)
    x = counts((30, 8, 40), 0.1, torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            one = layer(x)
        torch.set_num_threads(2)
        with torch.no_grad():
            two = layer(x)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def _both_kernels(packed, x, steps, count=True):
    """Outputs and per-sample work of the scalar and the lane kernel, called directly (``count=False``: no
    rows to count into, as when nobody asked for count_work)."""
    res = []
    for name in ("deliver", "deliver_lanes"):
        out = np.full((steps, x.shape[1], packed.out_features), np.nan, np.float32)  # every entry must be written
        work = np.zeros((x.shape[1] if count else 0, 2))
        sparse_delays._kernel(name, 1)(x.numpy(), packed.ptr, packed.offset, packed.delay, packed.weight,
                                        packed.kernel_size, out, work)
        res.append((out, work))
    return res


@pytest.mark.parametrize("steps,batch,max_delay", [(40, 19, 7), (7, 8, 11), (30, 13, 1)])
def test_lane_kernel_gives_the_scalar_kernels_bits_and_work(steps, batch, max_delay):
    """The float32 kernel that delivers to 8 samples at once adds the same terms in the same order as the scalar
    one: the same bits for real-valued weights and counts, a batch that is not a multiple of 8 (a short last
    block), fewer steps than the window, events at the last steps (deliveries past the output dropped), silent
    samples; and the same deliveries per sample."""
    layer = rounded_layer(70, 96, max_delay, torch.float32, dyadic=False, seed=steps)
    x = counts((steps, batch, 70), 0.08, torch.float32, seed=batch)
    x[-1, :, 0] = 2.0  # every sample fires at the last step
    x[:, 3] = 0  # but one, which is silent
    x[0, 5, 7] = float("nan")  # NaN reaches its own sample's outputs only
    packed = layer._packed(torch.float32)
    out_steps = steps + layer.output_extension
    (scalar, w_scalar), (lanes, w_lanes) = _both_kernels(packed, x, out_steps)
    assert np.array_equal(scalar, lanes, equal_nan=True)
    assert np.isnan(lanes[:, 5]).any() and not np.isnan(np.delete(lanes, 5, axis=1)).any()
    assert np.array_equal(w_scalar, w_lanes, equal_nan=True) and w_lanes[3].sum() == 0  # NaN: sample 5's synops
    strided = x.transpose(0, 1).contiguous().transpose(0, 1)  # batch-major data read time-major, in place
    assert np.array_equal(_both_kernels(packed, strided, out_steps)[1][0], lanes, equal_nan=True)
    uncounted = _both_kernels(packed, x, out_steps, count=False)
    assert all(np.array_equal(out, lanes, equal_nan=True) for out, _ in uncounted)


def test_lane_kernel_runs_where_it_pays_and_equals_the_dense_evaluation():
    """``deliver`` takes the lane kernel for float32 batches of 8 or more through wide layers (mean fan-out
    >= 64) with finite weights when the samples' events share their (step, input) blocks (more than
    ``LANE_COST`` events per block with any), and the scalar one otherwise; both equal the dense rounded
    evaluation (dyadic weights and counts: exact), at one and two threads."""
    layer = rounded_layer(40, 80, 9, torch.float32, seed=5)
    g = torch.Generator().manual_seed(6)
    busy = torch.rand(25, 1, 40, generator=g) < 0.15  # the same busy (step, input) pairs in every sample
    alike = counts((25, 17, 40), 0.8, torch.float32, seed=6) * busy
    independent = counts((25, 17, 40), 0.12, torch.float32, seed=7)
    calls = []
    real = sparse_delays._kernel
    threads = torch.get_num_threads()
    narrow = rounded_layer(40, 30, 9, torch.float32, seed=5)  # fan-out < 64
    try:
        sparse_delays._kernel = lambda name, rows: calls.append(name) or real(name, rows)
        for n in (1, 2):
            torch.set_num_threads(n)
            for x, kernel in ((alike, "deliver_lanes"), (independent, "deliver"), (alike[:, :7], "deliver")):
                calls.clear()
                with torch.no_grad():
                    y = layer(x)
                assert [c for c in calls if c.startswith("deliver")] == [kernel]
                assert torch.equal(y, dense(layer, x, "direct"))
            calls.clear()
            with torch.no_grad():
                y = narrow(alike)
            assert [c for c in calls if c.startswith("deliver")] == ["deliver"]
            assert torch.equal(y, dense(narrow, alike, "direct"))
    finally:
        sparse_delays._kernel = real
        torch.set_num_threads(threads)


def test_an_auto_call_reads_its_input_once_to_count(monkeypatch):
    """The auto rule prices the events and the kernel choice needs the shared blocks: one pass counts both
    (``event_counts``), and ``deliver`` takes them from the layer instead of counting again."""
    layer = rounded_layer(40, 80, 9, torch.float32, seed=5, backend="auto")
    g = torch.Generator().manual_seed(6)
    x = counts((25, 17, 40), 0.8, torch.float32, seed=6) * (torch.rand(25, 1, 40, generator=g) < 0.15)
    calls = []
    real = sparse_delays._kernel
    monkeypatch.setattr(sparse_delays, "_kernel", lambda name, rows: calls.append(name) or real(name, rows))
    with torch.no_grad():
        y = layer(x)
    assert layer.last_path == "sparse" and calls == ["lane_blocks", "deliver_lanes"]
    assert torch.equal(y, dense(layer, x, "direct"))
    assert sparse_delays.event_counts(x, layer._packed(torch.float32)) == (int(torch.count_nonzero(x)),
                                                                          real("lane_blocks", 1)(x.numpy())[1])
    assert sparse_delays.event_counts(x[:, :7], layer._packed(torch.float32))[1] is None  # scalar only: no blocks


def test_lane_blocks_counts_events_and_shared_blocks():
    x = torch.zeros(3, 10, 4)
    x[0, 0, 1] = x[0, 7, 1] = 1.0  # one block (samples 0-7), two events
    x[0, 8, 1] = 2.0  # the second block (samples 8-9)
    x[2, 3, 0] = -0.0  # not an event
    x[2, 3, 3] = float("nan")  # an event
    for n in (1, 3):
        assert sparse_delays._kernel("lane_blocks", n)(x.numpy()) == (4, 3)


def test_infinite_weights_keep_the_scalar_kernel():
    """An infinite weight times a lane without an event would be NaN: such weights (only reachable through
    ``pack`` directly; the layer packs finite weights only) keep the scalar kernel and its results."""
    w = torch.randn(96, 20)
    w[4, 2] = float("inf")
    packed = sparse_delays.pack(w, torch.randint(0, 3, (96, 20)), 3)
    assert not packed.finite
    x = counts((6, 9, 20), 0.3, torch.float32)
    x[:, 0, 2] = 1.0  # sample 0 sends the infinite weight
    y = sparse_delays.deliver(x, packed, 7)
    assert torch.isinf(y[:, 0, 4]).any() and not torch.isnan(y).any()


def test_chosen_in_inference_only_and_overridable():
    layer = rounded_layer(140, 64, 25, torch.float32, backend="auto")
    x = counts((12, 2, 140), 0.03, torch.float32)
    y = layer(x)  # gradients wanted: the dense path, unchanged training behaviour
    assert layer.last_path == "dense" and y.requires_grad
    with torch.no_grad():
        layer(x)
        assert layer.last_path == "sparse"
        with sparse.synapse_backend("dense"):
            layer(x)
            assert layer.last_path == "dense"
        layer(torch.ones(12, 2, 140))  # dense input: the dense method is cheaper
        assert layer.last_path == "dense"
        layer.set_sigma(0.5)  # a synapse spread over taps: not a single delay
        layer(x)
        assert layer.last_path == "dense"
        with pytest.raises(ConfigError, match="not integer"):
            nm.nn.DelayedLinear(140, 17, 7, form="max", backend="sparse")(x)
        with sparse.synapse_backend("sparse"), pytest.raises(ConfigError, match="not integer"):
            layer(x)
    with pytest.raises(ConfigError, match="gradient"):
        rounded_layer(140, 17, 7, torch.float32)(x)
    forced = rounded_layer(140, 17, 7, torch.float32, backend="dense")
    with torch.no_grad(), sparse.synapse_backend("sparse"):
        forced(x)
    assert forced.last_path == "dense"  # the context overrides "auto" layers only
    with pytest.raises(ConfigError, match="backend"):
        nm.nn.DelayedLinear(3, 3, 3, backend="events")


def test_rounded_delays_context_evaluates_event_driven_and_restores():
    torch.manual_seed(0)
    net = SHDDelayNet(n_inputs=140, n_classes=3, hidden=64, max_delay=25, dropout=0.0).eval()
    x = counts((20, 2, 140), 0.03, torch.float32)
    with nm.nn.rounded_delays(net), torch.no_grad():
        y = net(x)
        path = net[0].last_path
        with sparse.synapse_backend("dense"):
            yd = net(x)
    assert path == "sparse"
    torch.testing.assert_close(y, yd, rtol=1e-5, atol=1e-5)
    assert net[0].form == "gauss" and net(x).requires_grad  # training form restored, dense with gradients
    assert net[0].last_path == "dense"


@pytest.mark.parametrize("kind", ["spikes", "counts", "lanes"])
def test_kernel_work_equals_energy_report_synops(kind, monkeypatch):
    """``lanes``: a wide layer and 9 samples that fire alike, so the 8-sample kernel runs (and reports)."""
    n_out = 70 if kind == "lanes" else 17
    layer = rounded_layer(30, n_out, 7, torch.float32, dyadic=False)
    model = torch.nn.Sequential(layer, nm.nn.LI()).eval()
    x = counts((20, 3, 30), 0.15, torch.float32)
    if kind == "spikes":
        x = (x > 0).float()
    if kind == "lanes":
        x = x[:, :1].expand(20, 9, 30).clone()
        x[:, 8] = counts((20, 1, 30), 0.15, torch.float32, seed=2)[:, 0]  # a second block, one sample
        called = []
        real = sparse_delays._kernel
        monkeypatch.setattr(sparse_delays, "_kernel", lambda name, rows: called.append(name) or real(name, rows))
    with torch.no_grad(), sparse.count_work() as work:
        report = nm.energy.measure(model, x, hardware="cmos45nm", ann_hardware=None)
    synops = sum(r.synops for r in report.layers)
    if kind == "lanes":
        assert "deliver_lanes" in called
    # events near the end reach past the output window; the kernel drops them as the report does
    assert layer.last_path == "sparse" and work.calls == 1 and 0 < work.accumulates < work.events * n_out
    assert work.synops == synops
    if kind == "spikes":
        assert work.accumulates == synops
    else:
        assert work.synops > work.accumulates


# ---------------------------------------------------------------------------------------------- streaming
def test_delay_layer_stream_equals_whole_sequence_in_any_split():
    layer = rounded_layer(30, 17, 7, torch.float64, bias=True, dyadic=False)
    x = counts((21, 2, 30), 0.15, torch.float64)
    padded = torch.cat([x, torch.zeros(layer.output_extension, 2, 30, dtype=torch.float64)])
    with torch.no_grad():
        whole = layer(x)
        assert layer.last_path == "sparse"
        ys, state = [], None
        for a, b in ((0, 1), (1, 9), (9, 10), (10, 24)):
            y, state = layer.stream(padded[a:b], state)
            ys.append(y)
        layer.backend = "dense"
        yd, _ = layer.stream(padded)
    assert layer.last_path == "dense"
    assert torch.equal(torch.cat(ys), whole)  # the same terms in the same order: same bits
    torch.testing.assert_close(yd, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shd_delay_net_streams_and_equals_whole_sequence(dtype):
    torch.manual_seed(2)
    net = SHDDelayNet(n_inputs=12, n_classes=3, hidden=24, max_delay=5, dropout=0.0, threshold=0.5).to(dtype).eval()
    nm.nn.round_delays(net)
    for m in nm.nn.delays.delayed_layers(net):
        with torch.no_grad():
            m.weight.mul_(3)  # so that the hidden layers fire
    x = counts((30, 1, 12), 0.2, dtype)
    spikes: list[torch.Tensor] = []
    with torch.no_grad(), sparse.synapse_backend("sparse"):  # small layers: auto would price them dense
        whole = net(x)
        hook = net[2].register_forward_hook(lambda m, i, o: spikes.append(o))
        net(x)
        hook.remove()
        stream = nm.nn.Streaming(net)
        steps = torch.stack([stream.step(x[t]) for t in range(30)])
        stream.reset()
        chunks = torch.cat([stream(x[:7]), stream(x[7:8]), stream(x[8:])])
        with sparse.synapse_backend("dense"):
            stream.reset()
            dense_steps = torch.stack([stream.step(x[t]) for t in range(30)])
    assert spikes[0].sum() > 10  # the hidden layer fires
    assert torch.equal(steps, whole[:30]) and torch.equal(chunks, whole[:30])
    assert net[0].last_path == "dense"
    torch.testing.assert_close(dense_steps, whole[:30])
    assert set(stream.states) == {"0", "2", "4", "6", "8", "9"}


def test_streaming_follows_parameter_changes_and_gradients():
    """The streaming neuron step flattens the parameters once: a changed threshold must take effect at the
    next step, and with gradients wanted the ordinary (differentiable) path runs."""
    torch.manual_seed(4)
    net = torch.nn.Sequential(nm.nn.Linear(12, 16), nm.nn.LIF(tau=2.0, threshold=0.3, learn_tau=True), nm.nn.LI()).eval()
    x = counts((10, 2, 12), 0.3, torch.float32)
    with torch.no_grad():
        stream = nm.nn.Streaming(net)
        first = torch.stack([stream.step(x[t]) for t in range(5)])
        net[1].threshold.fill_(0.6)
        second = torch.stack([stream.step(x[t]) for t in range(5, 10)])
        ref = nm.nn.Streaming(net)
        net[1].threshold.fill_(0.3)
        expect_first = torch.stack([ref.step(x[t]) for t in range(5)])
        net[1].threshold.fill_(0.6)
        expect_second = torch.stack([ref.step(x[t]) for t in range(5, 10)])
        net[1].threshold.fill_(0.3)
        stale = nm.nn.Streaming(net)  # what a stale threshold would give
        stale = torch.stack([stale.step(x[t]) for t in range(10)])[5:]
    assert torch.equal(first, expect_first) and torch.equal(second, expect_second)
    assert not torch.equal(second, stale)
    with_grad = nm.nn.Streaming(net).step(x[0])
    assert with_grad.requires_grad  # learn_tau: the differentiable path


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_count_events_equals_count_nonzero(dtype):
    """The event count that prices the event-driven path equals ``torch.count_nonzero`` on contiguous and
    strided inputs (a batch slice), with -0.0 (zero) and NaN (nonzero) entries."""
    g = torch.Generator().manual_seed(4)
    x = ((torch.rand(23, 9, 31, generator=g) < 0.1) * torch.randint(1, 5, (23, 9, 31), generator=g)).to(dtype)
    x[0, 0, 0], x[1, 2, 3], x[2, 3, 4] = -0.0, float("nan"), -2.0
    for v in (x, x[:, 2:7], x[3:, ::2, 1:], x.transpose(0, 1), torch.zeros(0, 2, 3, dtype=dtype)):
        assert sparse_delays.count_events(v) == int(torch.count_nonzero(v))


def test_events_are_counted_only_when_the_price_depends_on_them(monkeypatch):
    """The auto rule prices nnz(x) events; when even an input without a zero would run event-driven (a
    streamed step of a wide layer) the count is skipped, the path and the outputs are the same."""
    layer = rounded_layer(140, 64, 25, torch.float32, backend="auto")
    x = counts((12, 1, 140), 0.05, torch.float32)
    with torch.no_grad():
        expect, state = layer.stream(x[:1])
        assert layer.last_path == "sparse"

        def refuse(v):
            raise AssertionError("counted")

        monkeypatch.setattr(sparse_delays, "count_events", refuse)
        got, _ = layer.stream(x[:1])  # 140 inputs x (63.5 synapses + overhead) priced below 140 x 25 x 64
        assert layer.last_path == "sparse" and torch.equal(got, expect)
        with pytest.raises(AssertionError, match="counted"):
            layer(x)  # the whole sequence: the spectral method is cheaper for a full input, so the count decides


def test_streaming_warns_that_hooks_on_a_delay_layer_do_not_run_and_count_work_counts_it():
    """An energy monitor hooks DelayedLinear's forward, which Streaming does not call: it used to miss the
    layer's synaptic operations silently. Streaming now warns once per layer, and count_work counts the
    streamed deliveries: every synapse of every input event (the stream keeps all deliveries in flight)."""
    torch.manual_seed(3)
    layer = rounded_layer(12, 8, 5, torch.float64, backend="sparse")
    net = torch.nn.Sequential(layer, nm.nn.LI())
    calls = []
    layer.register_forward_hook(lambda m, i, o: calls.append(1))
    x = counts((10, 2, 12), 0.3, torch.float64)
    stream = nm.nn.Streaming(net)
    with torch.no_grad(), sparse.count_work() as work:
        with pytest.warns(RuntimeWarning, match=r"hooks on layer '0' \(DelayedLinear\) do not run while streaming"):
            stream.step(x[0])
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # once per layer
            for t in range(1, 10):
                stream.step(x[t])
    assert calls == []
    fan = (layer.weight != 0).sum(0).to(torch.float64)  # nonzero synapses per input
    assert work.events == int(torch.count_nonzero(x))
    assert work.accumulates == int(((x != 0).to(torch.float64) * fan).sum())
    assert work.synops == float((x * fan).sum())
