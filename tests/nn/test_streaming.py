"""nm.nn.Streaming: a whole Sequential run step by step (or in chunks) gives exactly the spikes of the
whole sequence run at once; what cannot be streamed is refused by name."""

from __future__ import annotations

import pytest
import torch

import neuromorph as nm
from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn import Streaming


def conv_net() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        nm.nn.Conv2d(2, 4, 3, padding=1), nm.nn.LIF(tau=2.0, threshold=0.3), nm.nn.AvgPool2d(2),
        nm.nn.Flatten(), nm.nn.Linear(4 * 8 * 8, 10), nm.nn.CubaLIF(threshold=0.2), nm.nn.Linear(10, 5), nm.nn.LI(),
    ).eval()


def mlp(streaming: bool = False) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        nm.nn.Linear(20, 32), nm.nn.ALIF(tau=3.0, threshold=0.4, streaming=streaming),
        torch.nn.Sequential(nm.nn.Linear(32, 16), nm.nn.IF(threshold=0.5, reset="hard", streaming=streaming)),
        nm.nn.Linear(16, 4), nm.nn.LIF(tau=2.0, threshold=0.2, streaming=streaming),
    ).eval()


def _spikes(net: torch.nn.Module, run) -> dict[str, torch.Tensor]:
    """Output of every neuron layer of ``net`` while ``run()`` drives it, concatenated over calls."""
    rec: dict[str, list[torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: rec.setdefault(k, []).append(o[0] if isinstance(o, tuple) else o))
             for k, m in net.named_modules() if isinstance(m, nm.nn.SpikingNeuron)]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return {k: torch.cat(v) for k, v in rec.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv_net_step_by_step_equals_whole_sequence(dtype):
    torch.manual_seed(0)
    net = conv_net().to(dtype)
    x = (torch.rand(12, 3, 2, 16, 16) < 0.3).to(dtype)
    whole = _spikes(net, lambda: net(x))
    stream = Streaming(net)
    steps = _spikes(net, lambda: [stream.step(x[t]) for t in range(12)])
    stream.reset()
    chunks = _spikes(net, lambda: [stream(x[a:b]) for a, b in ((0, 5), (5, 6), (6, 12))])
    assert whole["1"].sum() > 100 and whole["5"].sum() > 10  # the layers do spike
    for name in ("1", "5"):  # spikes: exactly equal
        assert torch.equal(steps[name], whole[name]) and torch.equal(chunks[name], whole[name]), name
    # the LI readout's membrane: exact in float64; float32 GEMMs of a different batch shape round differently
    if dtype == torch.float64:
        assert torch.equal(steps["7"], whole["7"])
    torch.testing.assert_close(steps["7"], whole["7"])


def test_mlp_with_streaming_neurons_and_nested_sequential():
    """Neurons built with streaming=True return (spikes, state): plain Sequential fails on them, Streaming runs them."""
    torch.manual_seed(1)
    reference, streamed = mlp(streaming=False), mlp(streaming=True)
    streamed.load_state_dict(reference.state_dict())
    x = (torch.rand(15, 4, 20) < 0.4).float()
    with pytest.raises(TypeError, match="not tuple"):
        streamed(x)
    whole = reference(x)
    stream = Streaming(streamed)
    with torch.no_grad():
        steps = torch.stack([stream.step(x[t]) for t in range(15)])
    assert whole.sum() > 5 and torch.equal(steps, whole)
    assert set(stream.states) == {"1", "2.1", "4"} and all(m.streaming for m in streamed.modules()
                                                            if isinstance(m, nm.nn.SpikingNeuron))
    with pytest.raises(ShapeError, match="reset"):  # a batch of another size needs a new sequence
        stream.step(x[0, :2])
    stream.reset()
    assert stream.step(x[0, :2]).shape == (2, 4)


def test_refuses_what_cannot_be_streamed():
    with pytest.raises(ConfigError, match="mixes time steps"):  # (DelayedLinear streams: tests/nn/test_delays_inference.py)
        Streaming(torch.nn.Sequential(nm.nn.DeltaActivation(4), nm.nn.LIF()))

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nm.nn.Linear(4, 4), nm.nn.LIF()

        def forward(self, x):
            return self.lif(self.fc(x))

    with pytest.raises(ConfigError, match=r"'0' \(Block\) holds neurons.*0.lif"):
        Streaming(torch.nn.Sequential(Block()))
    with pytest.raises(ConfigError, match="Sequential"):
        Streaming(Block())


class RunningSum(torch.nn.Module):
    """A user's layer (this module only) whose output at t sums inputs 0..t within one call: it declares
    so in the layer protocol, without subclassing anything of neuromorph's."""

    layer_decl = nm.nn.LayerDecl("synapse", "running_sum", mixes_time=True)

    def forward(self, x):
        return x.cumsum(0)


class Doubler(torch.nn.Module):
    layer_decl = nm.nn.LayerDecl("activation", "double")  # step-local: may be streamed

    def forward(self, x):
        return 2 * x


def test_time_mixing_is_read_from_the_layer_protocol():
    with pytest.raises(ConfigError, match=r"layer '1' \(RunningSum\) mixes time steps"):
        Streaming(torch.nn.Sequential(nm.nn.Linear(4, 4), RunningSum(), nm.nn.LIF()))
    for layer in (nm.nn.DeltaActivation(4), torch.nn.GRU(4, 4)):
        with pytest.raises(ConfigError, match="mixes time steps"):
            Streaming(torch.nn.Sequential(layer))
    # a declared step-local layer streams, and the chunks give the whole sequence's spikes
    net = torch.nn.Sequential(nm.nn.Linear(4, 6), Doubler(), nm.nn.LIF(tau=2.0, threshold=0.5)).eval()
    x = torch.rand(7, 3, 4)
    stream = Streaming(net)
    assert torch.equal(torch.cat([stream(x[:3]), stream(x[3:])]), net(x))
    nm.nn.register_layer(Doubler, "activation", "double", mixes_time=True)
    try:
        with pytest.raises(ConfigError, match="Doubler"):
            Streaming(net)
    finally:
        nm.nn.unregister_layer(Doubler)


def test_streaming_checks_a_declared_layout():
    net = nm.nn.expect_input(conv_net(), (2, 16, 16))
    stream = Streaming(net)
    assert stream.step(torch.zeros(3, 2, 16, 16)).shape == (3, 5)
    with pytest.raises(ShapeError, match="no time axis"):
        stream(torch.zeros(3, 2, 16, 16))  # one step given as a chunk: .step() is meant


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eval_batch_norm_and_dropout_stream_as_the_whole_sequence(dtype):
    """Streaming runs eval-mode BatchNorm1d and dropout without their module call: the same bits as the whole
    sequence; with a hook on the layer, the module is called (and its hook runs) at every step."""
    torch.manual_seed(5)
    net = torch.nn.Sequential(nm.nn.BatchNorm1d(10), nm.nn.LIF(tau=2.0, threshold=0.5), nm.nn.SequenceDropout(0.3),
                              torch.nn.Dropout(0.2)).to(dtype)
    bn = net[0]
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.2, 3.0)
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.uniform_(-0.3, 0.3)
    net.eval()
    x = torch.rand(20, 3, 10, dtype=dtype) * (torch.rand(20, 3, 10) < 0.5)
    with torch.no_grad():
        whole = net(x)
        normed = bn(x)
        stream = Streaming(net)
        steps = torch.stack([stream.step(x[t]) for t in range(20)])
        calls = []
        hook = bn.register_forward_hook(lambda m, i, o: calls.append(o))
        stream.reset()
        hooked = torch.stack([stream.step(x[t]) for t in range(20)])
        hook.remove()
    assert whole.sum() > 20 and torch.equal(steps, whole) and torch.equal(hooked, whole)
    assert len(calls) == 20 and torch.equal(torch.cat(calls), normed)


def test_streamed_linear_steps_match_the_layers_own_forward():
    """Streaming steps an nm.nn.Linear without its forward's Python work: the outputs, ``last_path`` and
    ``last_density`` of every step equal what the layer's own forward gives on that step, below and above
    the crossover, for a narrow layer, under synapse_backend overrides and while count_work counts."""
    import contextlib

    from neuromorph.kernels import sparse

    torch.manual_seed(6)
    wide, narrow = nm.nn.Linear(40, 96), nm.nn.Linear(40, 8)
    dense = nm.nn.Linear(40, 96, backend="dense")
    dense.load_state_dict(wide.state_dict())
    net = torch.nn.Sequential(wide)
    x = (torch.rand(30, 1, 40) < torch.linspace(0.02, 0.4, 30).view(30, 1, 1)).float()  # crosses 0.12
    for layer in (wide, narrow, dense):
        net = torch.nn.Sequential(layer).eval()
        for ctx in (None, "dense", "sparse"):
            stream = Streaming(net)
            with torch.no_grad(), (sparse.synapse_backend(ctx) if ctx else contextlib.nullcontext()):
                got, expect = [], []
                for t in range(30):
                    got.append((stream.step(x[t]), layer.last_path, layer.last_density))
                    expect.append((layer(x[t:t + 1])[0], layer.last_path, layer.last_density))
            assert isinstance(stream._plans["0"], nm.nn.streaming._LinearStep)  # the fast step ran
            for (y, path, dens), (y0, path0, dens0) in zip(got, expect):
                assert torch.equal(y, y0) and path == path0
                assert (dens != dens) if dens0 != dens0 else dens == dens0
            if layer is wide and ctx is None:
                assert {p for _, p, _ in got} == {"sparse", "dense"}  # both sides of the crossover were stepped
    stream = Streaming(torch.nn.Sequential(wide).eval())
    with torch.no_grad(), sparse.count_work() as work:
        stream.step(x[0])
    assert work.calls == 1 and work.events == int(x[0].count_nonzero())  # counted: the layer's own forward ran
