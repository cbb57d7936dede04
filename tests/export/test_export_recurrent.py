"""A recurrent layer in NIR: neuron -> Affine/Linear(V) -> the same neuron, and back to nn.Recurrent."""

import nir
import numpy as np
import pytest
import torch

import neuromorph.nn as nnm
from neuromorph.errors import ExportError
from neuromorph.export.nir import from_nir, to_nir, write_nir


def _net(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        nnm.Linear(8, 6), nnm.Recurrent(nnm.CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.3, reset="hard"), 6, bias=True),
        nnm.Linear(6, 4), nnm.Recurrent(nnm.LIF(tau=2.0, threshold=0.4, reset="hard"), 4)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3)
    return net


def test_graph_has_the_recurrent_edges(tmp_path):
    net = _net()
    x = (torch.rand(20, 3, 8) < 0.4).float()
    g = nir.read(write_nir(to_nir(net, x), tmp_path / "rec.nir"))
    assert isinstance(g.nodes["1"], nir.CubaLIF) and isinstance(g.nodes["3"], nir.LIF)
    assert isinstance(g.nodes["1_rec"], nir.Affine) and isinstance(g.nodes["3_rec"], nir.Linear)  # bias / none
    assert {("1", "1_rec"), ("1_rec", "1"), ("3", "3_rec"), ("3_rec", "3")} <= set(g.edges)
    np.testing.assert_array_equal(g.nodes["1_rec"].weight, net[1].weight.detach().numpy())
    np.testing.assert_array_equal(g.nodes["1_rec"].bias, net[1].bias.detach().numpy())


def test_round_trip_gives_the_same_spikes(tmp_path):
    net = _net()
    x = (torch.rand(25, 3, 8) < 0.4).float()
    ref = net(x)
    assert ref.sum() > 20
    back = from_nir(write_nir(to_nir(net, x), tmp_path / "rec.nir"))
    assert torch.equal(back(x), ref)
    assert sum(isinstance(m, nnm.Recurrent) for m in back.modules()) == 2
    with torch.no_grad():  # the recurrence is in the spikes: without it they differ
        net[1].weight.zero_()
    assert not torch.equal(net(x), ref)


def test_unsupported_recurrent_neuron_is_refused_by_name():
    net = torch.nn.Sequential(nnm.Linear(4, 3), nnm.Recurrent(nnm.ALIF(), 3))
    with pytest.raises(ExportError, match="'1'.*ALIF"):
        to_nir(net, torch.zeros(5, 1, 4))


def test_other_cycles_are_refused():
    w = np.eye(3)
    g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([3])}), "a": nir.Linear(weight=w), "b": nir.Linear(weight=w),
                            "output": nir.Output({"output": np.array([3])})},
                     edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")], metadata={"dt": 1e-4})
    with pytest.raises(ExportError, match="cycle"):
        from_nir(g)


def test_lava_export_refuses_a_recurrent_layer_by_name(tmp_path):
    from neuromorph.export.lava import to_lava

    net = _net()
    with pytest.raises(ExportError, match="layer '1' is recurrent"):
        to_lava(net, tmp_path / "rec.net", torch.zeros(5, 1, 8))


def test_the_neurons_dt_is_the_graphs():
    net = torch.nn.Sequential(nnm.Linear(4, 3), nnm.Recurrent(nnm.LIF(tau=2e-3, dt=1e-3, reset="hard"), 3))
    g = to_nir(net, torch.zeros(5, 1, 4))
    assert g.metadata["dt"] == 1e-3 and np.allclose(g.nodes["1"].tau, 2e-3)
