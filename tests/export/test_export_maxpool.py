"""Max pooling of spikes exports exactly: NIR SumPool2d + IF gate, Loihi unit-weight depthwise conv + gate
layer. Every spike is compared: float model vs NIR round trip, and float model vs the bit-accurate Loihi
simulation of a model whose parameters Loihi represents exactly. Max pooling of anything but spikes is
refused, naming the layer."""

import re

import nir
import numpy as np
import pytest
import torch

import neuromorph.nn as nnm
from neuromorph.errors import ExportError, HardwareConstraintError
from neuromorph.export.constraints import check_model
from neuromorph.export.lava import to_lava
from neuromorph.export.loihi import fidelity_report, simulate
from neuromorph.export.netx import read_netx
from neuromorph.export.nir import from_nir, to_nir, write_nir

from ._models import maxpool_net, outputs_of


def _counts(steps=6, batch=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((steps, batch, 2, 16, 16), 0.4), generator=g)


def test_maxpool_of_spikes_round_trips_through_a_nir_file_spike_for_spike(tmp_path):
    m, x = maxpool_net(), _counts()
    g = to_nir(m, x)
    for name, k, s, p in (("2", 2, 2, 0), ("5", 3, 2, 1)):
        pool, gate = g.nodes[f"{name}_sum"], g.nodes[name]
        assert isinstance(pool, nir.SumPool2d) and isinstance(gate, nir.IF)
        assert (list(pool.kernel_size), list(pool.stride), list(pool.padding)) == ([k, k], [s, s], [p, p])
        assert np.all(gate.v_threshold == 0.5) and np.all(gate.v_reset == 0)
        assert gate.metadata["neuromorph"]["role"] == "maxpool_gate"
        assert (f"{name}_sum", name) in g.edges
    path = write_nir(g, tmp_path / "m.nir")
    back = from_nir(path)
    layers = ["1", "2", "4", "5"]
    ours, y = outputs_of(m, x, layers)
    theirs, y2 = outputs_of(back, x, [f"nodes.{n}" for n in layers])
    for n in layers:
        assert ours[n].sum() > 100, n  # the test input makes every layer spike
        torch.testing.assert_close(theirs[f"nodes.{n}"], ours[n], rtol=0, atol=0)
    torch.testing.assert_close(y2, y, rtol=0, atol=0)
    # exported again, the imported module gives the same graph (its SumPool2d is AvgPool2d(divisor_override=1))
    again = to_nir(back, x)
    assert sorted(type(v).__name__ for v in again.nodes.values()) == sorted(type(v).__name__ for v in g.nodes.values())


def test_maxpool_net_on_loihi_equals_the_float_model_spike_for_spike(tmp_path):
    m, x = maxpool_net(), _counts()
    path = to_lava(m, tmp_path / "m.h5", x, check="loihi2")
    net = read_netx(path)
    assert [(l.kind, l.groups, l.extra.get("role")) for l in net.layers] == [
        ("conv", 1, None), ("conv", 6, "maxpool_gate"), ("conv", 1, None), ("conv", 8, "maxpool_gate"), ("dense", 1, None)]
    for gate, (k, s, p) in ((net.layers[1], (2, 2, 0)), (net.layers[3], (3, 2, 1))):
        # unit weights over the window, threshold half a weight, no leak: fires iff some input in the window fired
        assert gate.weight.shape[1:] == (1, k, k) and np.all(gate.weight == 64) and gate.v_th_mant == 32
        assert (gate.stride, gate.padding, gate.v_decay, gate.i_decay) == ((s, s), (p, p), 0, 4096)
    sim = simulate(path, x)
    outs, y = outputs_of(m, x, ["1", "2", "4", "5"])
    for li, name in enumerate(["1", "2", "4", "5"]):
        np.testing.assert_array_equal(sim.aligned(li), outs[name].numpy(), err_msg=f"layer {name}")
        # hardware time: layer li delivers li + 1 steps late, so each gate adds one step of latency
        assert not sim.spikes[li][: li + 1].any()
    np.testing.assert_array_equal(sim.aligned_voltage(), y.numpy())  # the readout, in real units, exactly
    # the gate layer of the simulation is the max pooling of the previous simulated layer, one step later
    prev = torch.from_numpy(sim.spikes[0]).double()
    pooled = torch.nn.functional.max_pool2d(prev.flatten(0, 1), 2).reshape(sim.spikes[1].shape)
    np.testing.assert_array_equal(sim.spikes[1][1:], pooled[:-1].numpy())
    rows = fidelity_report(m, path, x).layers
    assert [r["match_rate"] for r in rows] == [1.0, 1.0, 1.0, 1.0, None]
    # the constraint report says what the mapping costs
    rep = check_model(m, x, "loihi2")
    assert rep.ok
    gates = [r for r in rep.rows if r["check"] == "maxpool_gate"]
    assert [r["layer"] for r in gates] == ["2_sum->2", "5_sum->5"]
    assert gates[0]["value"] == "+1 layer (384 neurons), +1 step latency"
    assert [r["value"] for r in rep.rows if r["check"] == "latency_steps"] == ["5 (2 from max-pool gates)"]


class _PoolFirst(torch.nn.Module):
    """Max pooling of the raw event counts (not spikes)."""

    def __init__(self):
        super().__init__()
        self.pool = nnm.MaxPool2d(2)
        self.flat = nnm.Flatten()
        self.fc = nnm.Linear(2 * 8 * 8, 3)
        self.lif = nnm.LIF(reset="hard")

    def forward(self, x):
        return self.lif(self.fc(self.flat(self.pool(x))))


def test_maxpool_of_non_spikes_is_refused_naming_the_layer(tmp_path):
    x = _counts(steps=3, batch=1)
    after_avg = torch.nn.Sequential(nnm.Conv2d(2, 4, 3, padding=1), nnm.LIF(reset="hard"), nnm.AvgPool2d(2), nnm.MaxPool2d(2),
                                    nnm.Flatten(), nnm.Linear(4 * 4 * 4, 3), nnm.LIF(reset="hard")).eval()
    after_conv = torch.nn.Sequential(nnm.Conv2d(2, 4, 3, padding=1), nnm.MaxPool2d(2), nnm.LIF(reset="hard")).eval()
    cases = [(_PoolFirst().eval(), "pool", "the network input"), (after_avg, "3", "node '2' (AvgPool2d)"), (after_conv, "1", "synapse '0'")]
    for model, layer, source in cases:
        with pytest.raises(ExportError, match=rf"layer '{layer}': MaxPool2d .* binary spikes .* comes from {re.escape(source)}"):
            to_nir(model, x)
        with pytest.raises(HardwareConstraintError, match=f"layer '{layer}'"):
            to_lava(model, tmp_path / "x.h5", x, check="loihi2")
        rep = check_model(model, x, "loihi2")
        assert not rep.ok and [(r["layer"], r["check"]) for r in rep.violations()] == [(layer, "mapping")]
    assert not (tmp_path / "x.h5").exists()


def test_average_pooling_folds_into_a_dense_layer_exactly():
    # two stacked poolings of a 9x9 map (9 -> 4 -> 2: the last row/column dropped) folded into the readout
    from neuromorph.export.lava import graph_to_layers

    torch.manual_seed(0)
    m = torch.nn.Sequential(nnm.Conv2d(2, 3, 3, padding=1), nnm.LIF(reset="hard"), nnm.AvgPool2d(2), nnm.AvgPool2d(2), nnm.Flatten(),
                            nnm.Linear(3 * 2 * 2, 4), nnm.LIF(reset="hard")).eval()
    _, layers = graph_to_layers(to_nir(m, torch.zeros(2, 1, 2, 9, 9)))
    s = (torch.rand(5, 3, 9, 9) < 0.5).double()
    ref = torch.nn.functional.avg_pool2d(torch.nn.functional.avg_pool2d(s, 2), 2).flatten(1) @ m[5].weight.double().T
    got = s.flatten(1) @ torch.from_numpy(layers[1].weight).T
    assert layers[1].weight.shape == (4, 3 * 9 * 9)
    torch.testing.assert_close(got, ref.detach(), rtol=0, atol=1e-15)
