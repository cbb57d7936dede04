"""The energy report counts a recurrent layer's own synapses (nn.Recurrent: input x_t + V s_{t-1})."""

import torch

import neuromorph as nm
import neuromorph.energy as ne


def _chain():
    """Neuron 0 -> 1 -> 2 through the recurrent weights (column fan-out [1, 1, 0]); hard reset, no leak of input."""
    layer = nm.nn.Recurrent(nm.nn.LIF(tau=2.0, threshold=0.5, reset="hard", decay_input=False), 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    return layer


def test_recurrent_synops_hand_computed():
    layer = _chain()
    x = torch.zeros(4, 2, 3)  # [T, B, N]; sample 1 stays silent
    x[0, 0, 0] = 1.0
    out = layer(x)
    # a spike travels 0 (t=0) -> 1 (t=1) -> 2 (t=2); the recurrent weights carry the first two: 2 synops
    assert out[:, 0].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]] and out[:, 1].sum() == 0
    report = ne.measure(layer, x, hardware="cmos45nm")
    by_name = {r.name: r for r in report.layers}
    assert set(by_name) == {"Recurrent", "Recurrent.recurrent"}
    neuron, rec = by_name["Recurrent"], by_name["Recurrent.recurrent"]
    assert rec.role == "synaptic" and rec.synops == 2 and rec.spikes_in == 3  # totals over the 2 samples
    assert rec.synops_per_step == [0.0, 1.0, 1.0, 0.0]
    assert neuron.spikes_out == 3 and neuron.neuron_updates == 4 * 2 * 3
    assert rec.dense_macs == 4 * 2 * 2  # the ANN equivalent: every nonzero weight at every step
    assert "Recurrent.recurrent" in report.table()


def test_recurrent_synops_follow_the_spikes_of_a_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), nm.nn.Recurrent(nm.nn.LIF(tau=3.0, threshold=0.3, reset="hard"), 6))
    with torch.no_grad():
        net[1].weight.mul_(3)
        net[1].weight[:, 2] = 0  # neuron 2 feeds nothing back
    x = (torch.rand(12, 4, 5) < 0.5).float()
    s = net(x)
    fan = (net[1].weight != 0).sum(0).double()
    want = float((s.detach()[:-1].double() * fan).sum())
    rec = {r.name: r for r in ne.measure(net, x, hardware="cmos45nm").layers}["1.recurrent"]
    assert rec.synops == want and want > 0
