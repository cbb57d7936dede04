"""Synop counts equal SpikingJelly's operation counter (``op_counter.SynOpCounter``) on the same model."""

from __future__ import annotations

import pytest
import torch

import neuromorph.energy as ne
from neuromorph.nn import register_layer, unregister_layer

pytestmark = pytest.mark.peers

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

op_counter = pytest.importorskip("spikingjelly.activation_based.op_counter")


def _sj_counts(net, x):
    functional.reset_net(net)
    counter = op_counter.SynOpCounter()
    with op_counter.DispatchCounterMode([counter]):
        net(x)
    functional.reset_net(net)
    return {scope: sum(ops.values()) for scope, ops in counter.get_counts().items()}


@pytest.fixture
def sj_neurons():
    register_layer(neuron.BaseNode, "neuron")  # the one call that declares a peer library's neurons
    yield
    unregister_layer(neuron.BaseNode)


def test_conv_pool_linear_network_equals_spikingjelly(sj_neurons):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layer.Conv2d(2, 6, 3, stride=2, padding=1, step_mode="m"),
        neuron.IFNode(step_mode="m"),
        layer.MaxPool2d(2, step_mode="m"),
        layer.Conv2d(6, 8, 3, stride=1, padding=1, groups=2, step_mode="m"),
        neuron.IFNode(step_mode="m"),
        layer.Flatten(step_mode="m"),
        layer.Linear(8 * 4 * 4, 10, step_mode="m"),
        neuron.IFNode(step_mode="m"),
    )
    with torch.no_grad():
        for m in net:
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(4.0)  # make the hidden layers fire
    x = (torch.rand(4, 3, 2, 16, 16) < 0.3).float()  # [T, B, C, H, W] spikes
    expected = _sj_counts(net, x)
    functional.reset_net(net)
    report = ne.measure(net, x)
    functional.reset_net(net)
    ours = {r.name: r for r in report.layers}
    for idx in ("0", "3", "6"):
        assert ours[idx].input_type == "spikes"
        assert ours[idx].synops > 0
        assert ours[idx].synops == expected[f"Sequential.{idx}"], idx
    # SpikingJelly's counter has no rule for pooling: ours reports it separately as accumulates
    assert ours["2"].role == "pool" and ours["2"].synops == 0
    assert ours["1"].neuron_updates == 4 * 3 * 6 * 8 * 8


def test_dilated_conv1d_equals_spikingjelly():
    torch.manual_seed(1)
    conv = torch.nn.Conv1d(4, 6, 5, stride=3, padding=2, dilation=2, groups=2)
    with torch.no_grad():
        conv.weight[conv.weight.abs() < 0.05] = 0.0  # pruned synapses: SJ counts them, see below
    x = (torch.rand(6, 4, 30) < 0.4).float()
    ours = ne.measure(conv, x).layers[0].synops
    dense = torch.nn.Conv1d(4, 6, 5, stride=3, padding=2, dilation=2, groups=2)  # no zero weights
    assert ne.measure(dense, x).layers[0].synops == _sj_counts(dense, x)["Global"]
    # SJ counts every synapse; ours only those with a nonzero weight, so pruning lowers ours
    assert ours < _sj_counts(conv, x)["Global"]
