"""nn.Recurrent: the layer a user builds, its declaration, streaming and errors."""

import pytest
import torch
from torch import nn

import neuromorph as nm
from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn import ALIF, LIF, CubaLIF, Recurrent, Role, Streaming
from neuromorph.nn.protocol import declaration, spiking_layers


def _net(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 10), Recurrent(LIF(tau=2.0, reset="hard"), 10, bias=True), nn.Linear(10, 6),
                        Recurrent(CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.5), 6),
                        nn.Linear(6, 5), Recurrent(ALIF(tau=3.0, threshold=0.4), 5))
    with torch.no_grad():
        for m in net:
            if isinstance(m, Recurrent):
                m.weight.mul_(3)
    return net


def test_declared_once_as_a_recurrent_neuron_of_its_kind():
    layer = Recurrent(CubaLIF(), 4)
    d = declaration(layer)
    assert (d.role, d.op, d.recurrent) == (Role.NEURON, "CubaLIF", True)
    assert not declaration(CubaLIF()).recurrent
    net = _net()
    assert [n for n, _ in spiking_layers(net)] == ["1", "3", "5"]  # the inner neurons are part of their layer


def test_weight_shape_and_parameters():
    layer = Recurrent(LIF(learn_tau=True), 7, bias=True)
    assert layer.weight.shape == (7, 7) and layer.bias.shape == (7,)
    assert {n for n, _ in layer.named_parameters()} == {"weight", "bias", "neuron.tau"}
    assert layer.weight.abs().max() <= 7 ** -0.5


def test_streaming_step_by_step_equals_the_whole_sequence():
    net = _net().eval()
    x = torch.rand(25, 3, 8) * 2
    whole = net(x)
    assert whole.sum() > 0
    stream = Streaming(net)
    steps = torch.stack([stream.step(x[t]) for t in range(x.shape[0])])
    assert torch.equal(steps, whole)
    stream.reset()
    chunks = torch.cat([stream(x[:7]), stream(x[7:8]), stream(x[8:])])
    assert torch.equal(chunks, whole)
    assert set(stream.states) == {"1", "3", "5"}


def test_streaming_layer_carries_state():
    layer = Recurrent(LIF(reset="hard"), 4, streaming=True)
    with torch.no_grad():
        layer.weight.fill_(0.6)
    x = torch.rand(10, 2, 4) * 1.5
    out, st = layer(x)
    a, st1 = layer(x[:4])
    b, _ = layer(x[4:], st1)
    assert torch.equal(torch.cat([a, b]), out)
    assert torch.equal(st.s, out[-1])


class _MyNeuron(nn.Module):
    """A user's neuron with its own forward and the streaming protocol (a hard-reset IF)."""

    layer_decl = nm.nn.LayerDecl(Role.NEURON, "IF")

    def __init__(self):
        super().__init__()
        self.streaming = False

    def forward(self, x, state=None):
        v = torch.zeros_like(x[0]) if state is None else state
        outs = []
        for t in range(x.shape[0]):
            v = v + x[t]
            s = (v > 1).to(x.dtype)
            v = v * (1 - s)
            outs.append(s)
        out = torch.stack(outs)
        return (out, v) if self.streaming else out


def test_any_declared_neuron_runs_through_its_own_forward():
    layer = Recurrent(_MyNeuron(), 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0], [0.0, 0.9, 0.0]]))
    x = torch.zeros(5, 1, 3)
    x[0, 0, 0] = 1.5
    x[:, 0, 1:] = 0.2
    out = layer(x)[:, 0]
    # neuron 0 fires at t=0; neuron 1 gets 0.2 + 0.9 at t=1 and fires; neuron 2 gets 0.2+0.2+0.9 at t=2 and fires
    assert out.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]]


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="spiking neuron"):
        Recurrent(nn.Linear(3, 3), 3)
    with pytest.raises(ConfigError, match="spiking neuron"):
        Recurrent(nm.nn.LI(), 3)
    with pytest.raises(ConfigError, match="shape"):
        Recurrent(LIF(shape=(4,)), 3)
    with pytest.raises(ShapeError, match=r"\[T, B, 3\]"):
        Recurrent(LIF(), 3)(torch.zeros(4, 2, 5))
    with pytest.raises(ConfigError, match="streaming=False"):
        Recurrent(LIF(), 3)(torch.zeros(4, 2, 3), "state")
