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


def _lava_net(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        nnm.Linear(8, 6, bias=False), nnm.Recurrent(nnm.LIF(tau=4.0, threshold=0.5, reset="hard"), 6),
        nnm.Linear(6, 4, bias=False), nnm.Recurrent(nnm.CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.3, reset="hard"), 4),
    ).eval()
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[1].weight.mul_(2)
        net[3].weight.mul_(2)
    return net


def test_lava_exports_recurrent_lif_and_cubalif_as_netx_dense_rec(tmp_path):
    import h5py

    from neuromorph.export.lava import to_lava
    from neuromorph.export.loihi import fidelity_report, simulate
    from neuromorph.export.netx import read_netx

    net = _lava_net()
    x = (torch.rand(40, 4, 8) < 0.4).float()
    path = to_lava(net, tmp_path / "rec.net", x)
    # the layout lava-dl 0.6's netx reads (hdf5.py create_dense with rec=True): type 'dense_rec', 'weight'
    # [out, in] and 'weight_rec' [out, out], integers netx's optimize_weight_bits keeps as they are when it
    # fits the two side by side (np.hstack) into one 8-bit mantissa
    with h5py.File(path, "r") as f:
        types = [f["layer"][str(i)]["type"][0] for i in range(len(f["layer"]))]
        assert types == [b"input", b"dense_rec", b"dense_rec"]
        for i, (n_in, n) in ((1, (8, 6)), (2, (6, 4))):
            g = f["layer"][str(i)]
            w, w_rec = g["weight"][()], g["weight_rec"][()]
            assert w.shape == (n, n_in) and w_rec.shape == (n, n) and w.dtype.kind == w_rec.dtype.kind == "i"
            joint = np.hstack((w, w_rec))
            assert joint.min() >= -128 and joint.max() <= 127 and np.abs(joint).max() >= 64
            assert g["neuron"]["type"][0] == b"CUBA"
    q = read_netx(path)
    assert [l.weight_rec.shape for l in q.layers] == [(6, 6), (4, 4)]
    # V shares the input weights' scale: c / θ · 2^k (c = 1/τ with decay_input, else 1)
    k = -q.layers[0].weight_exponent
    c = 1 / 4.0 if net[1].neuron.decay_input else 1.0
    f = c / 0.5 * 2.0**k
    np.testing.assert_array_equal(q.layers[0].weight, np.rint(net[0].weight.detach().numpy() * f))
    np.testing.assert_array_equal(q.layers[0].weight_rec, np.rint(net[1].weight.detach().numpy() * f))
    # the integer simulation follows the float model spike for spike up to quantisation
    rep = fidelity_report(net, path, x)
    assert rep.layers[0]["spikes_float"] > 50 and rep.layers[1]["spikes_float"] > 20, rep.layers
    assert all(r["match_rate"] >= 0.97 for r in rep.layers), rep.layers
    # ... and the recurrence is in those spikes: without weight_rec the first layer fires differently
    sim = simulate(path, x).aligned(0)
    flat = tmp_path / "norec.net"
    from neuromorph.export.netx import write_netx

    q.layers[0].weight_rec = np.zeros_like(q.layers[0].weight_rec)
    write_netx(q, flat)
    assert not np.array_equal(simulate(flat, x).aligned(0), sim)


def test_simulator_feeds_dense_rec_spikes_back_one_step_later(tmp_path):
    from neuromorph.export.loihi import simulate
    from neuromorph.export.netx import NetxLayer, NetxNetwork, write_netx

    # 2 neurons, no leak, u = input each step; n0 gets 100 from the input at each step after an input spike,
    # threshold 150 << 6. Recurrent: n0's spike adds 200 to n1 one step later; n1's adds -100 to n0
    layer = NetxLayer(kind="dense", weight=np.array([[100], [0]]), shape=(2,), i_decay=4096, v_decay=0, v_th_mant=150,
                      weight_rec=np.array([[0, -100], [200, 0]]))
    p = tmp_path / "rec.h5"
    write_netx(NetxNetwork(input_shape=(1,), layers=[layer]), p)
    x = np.array([[1], [1], [1], [1], [0], [0]])
    # a_ff[t] = W x[t-1]: n0 gets 100 at t = 1..4
    # t1: v0 = 6400;  t2: v0 = 12800 > 9600 spike -> 0;  t3: v0 = 6400, v1 = 200 << 6 = 12800 spike -> 0
    # t4: v0 = 6400 + 6400 - 6400 (n1's spike at t3) = 6400;  t5: v0 = 6400 (no input), v1 = 0
    res = simulate(p, x)
    s = res.spikes[0][:, 0]
    np.testing.assert_array_equal(s[:, 0], [0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(s[:, 1], [0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(res.voltage[:, 0, 0], [0, 6400, 12800, 6400, 6400, 6400, 6400])


def test_lava_export_refuses_what_netx_dense_rec_cannot_hold(tmp_path):
    from neuromorph.errors import HardwareConstraintError
    from neuromorph.export.lava import to_lava

    # an adaptive neuron has no NIR node (and no Loihi CUBA mapping): refused by name
    net = torch.nn.Sequential(nnm.Linear(4, 3), nnm.Recurrent(nnm.SEAdLIF(3), 3))
    with pytest.raises(ExportError, match="'1'.*SEAdLIF"):
        to_lava(net, tmp_path / "ad.net", torch.zeros(5, 1, 4))
    # a CubaLIF bias (here the recurrent one) enters the current, Loihi adds it to v
    with pytest.raises(HardwareConstraintError, match="CubaLIF bias"):
        to_lava(_net(), tmp_path / "rec.net", torch.zeros(5, 1, 8))
    assert not (tmp_path / "rec.net").exists()


def test_the_neurons_dt_is_the_graphs():
    net = torch.nn.Sequential(nnm.Linear(4, 3), nnm.Recurrent(nnm.LIF(tau=2e-3, dt=1e-3, reset="hard"), 3))
    g = to_nir(net, torch.zeros(5, 1, 4))
    assert g.metadata["dt"] == 1e-3 and np.allclose(g.nodes["1"].tau, 2e-3)
