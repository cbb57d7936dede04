"""neuromorph -> NIR -> neuromorph round trips on the reference models, peers importing our NIR files,
and the errors for what NIR cannot hold."""

import warnings

import nir
import numpy as np
import pytest
import torch

import neuromorph.nn as nnm
from neuromorph.errors import ConfigError, DataFormatError, ExportError, ShapeError
from neuromorph.export.nir import from_nir, to_nir

from ._models import nmnist_frames, nmnist_net, shd_delay_net


def _spikes(model, x):
    """Outputs of every spiking neuron plus the model output (no grad)."""
    outs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o)) for m in model.modules()
             if isinstance(m, nnm.SpikingNeuron) or type(m).__name__ in ("NIRNeuron", "MPBNLIF")]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    return outs, y


def test_nmnist_conv_net_round_trip_through_file(shared_data, tmp_path):
    x, _ = nmnist_frames(shared_data)
    m = nmnist_net()
    g = to_nir(m, x)
    # BatchNorm folded into the conv: no BN node; time constants in seconds with dt
    kinds = sorted(type(n).__name__ for n in g.nodes.values())
    assert kinds == sorted(["Input", "Output", "Conv2d", "LIF", "AvgPool2d", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Linear", "LIF"])
    lif = g.nodes["2"]
    np.testing.assert_allclose(lif.tau, 2.0 * g.metadata["dt"])
    np.testing.assert_allclose(lif.r, 1.0)  # decay_input=True
    path = tmp_path / "nmnist.nir"
    nir.write(path, g)
    back = from_nir(nir.read(path))
    assert sum(isinstance(mod, nnm.LIF) for mod in back.modules()) == 3  # core layers: trainable, seen by monitors
    ref_s, ref_y = _spikes(m, x)
    got_s, got_y = _spikes(back, x)
    assert len(got_s) == 3 and sum(float(s.sum()) for s in ref_s) > 100
    for a, b in zip(ref_s, got_s):
        assert torch.equal(a, b)
    assert torch.equal(ref_y, got_y)


def test_shd_delay_net_round_trip(tmp_path):
    m = shd_delay_net()
    torch.manual_seed(1)
    x = (torch.rand(30, 3, 20) < 0.3).float()
    g = to_nir(m, x)
    delays = [n for n in g.nodes.values() if isinstance(n, nir.Delay)]
    assert delays, "integer delays must become NIR Delay nodes"
    steps = {int(n.metadata["neuromorph"]["delay_steps"]) for n in delays}
    assert steps <= set(range(7)) and len(steps) > 3
    for d in delays:  # physical units
        np.testing.assert_allclose(d.delay, d.metadata["neuromorph"]["delay_steps"] * g.metadata["dt"])
    path = tmp_path / "shd.nir"
    nir.write(path, g)
    back = from_nir(path)
    ref_s, ref_y = _spikes(m, x)
    got_s, got_y = _spikes(back, x)
    assert ref_y.shape == got_y.shape == (30 + 3 * 3, 3, 4)  # each DelayedLinear adds (K-1)/2 steps
    assert sum(float(s.sum()) for s in ref_s[:2]) > 20
    for a, b in zip(ref_s[:2], got_s[:2]):
        assert torch.equal(a, b)
    # the readout membrane: same sums in another order (per-delay branches vs one conv1d)
    torch.testing.assert_close(got_y, ref_y, rtol=1e-5, atol=1e-5)


def test_soft_reset_never_silent():
    m = torch.nn.Sequential(nnm.Linear(6, 5), nnm.LIF(tau=2.0, threshold=0.3, reset="soft")).eval()
    x = (torch.rand(12, 2, 6) < 0.5).float()
    with pytest.raises(ExportError, match=r"layer '1'.*soft reset"):
        to_nir(m, x)
    with pytest.warns(UserWarning, match="soft reset.*different spikes"):
        g = to_nir(m, x, strict=False)
    assert g.nodes["1"].metadata["neuromorph"]["reset"] == "soft"
    # our own import restores the soft reset from the metadata: identical spikes
    with torch.no_grad():
        assert torch.equal(from_nir(g)(x), m(x))


def test_dt_defaults_to_the_neurons_dt():
    m = torch.nn.Sequential(nnm.Linear(3, 2), nnm.LIF(tau=0.02, dt=0.01, reset="hard")).eval()  # tau 20 ms = 2 steps
    g = to_nir(m, torch.ones(4, 1, 3))
    assert g.metadata["dt"] == 0.01
    np.testing.assert_allclose(g.nodes["1"].tau, 0.02)
    assert to_nir(m, torch.ones(4, 1, 3), dt=1e-3).metadata["dt"] == 1e-3


def test_mpbn_is_folded_on_a_copy():
    torch.manual_seed(0)
    m = torch.nn.Sequential(nnm.Linear(6, 5), nnm.MPBNLIF(5))
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.rand(4, 8, 6) * 2)
    m.eval()
    x = (torch.rand(10, 2, 6) < 0.5).float()
    g = to_nir(m, x)
    assert m[1].mpbn is not None, "the user's model must stay unfolded"
    thr = g.nodes["1"].v_threshold
    assert thr.shape == (5,) and np.unique(thr).size == 5  # per-neuron thresholds after folding
    with torch.no_grad():
        assert torch.equal(from_nir(g)(x), m(x))


def test_cuba_if_li_and_per_neuron_thresholds():
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        nnm.Linear(6, 5), nnm.CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.5, reset="hard"),
        nnm.Linear(5, 4), nnm.IF(threshold=torch.tensor([0.2, 0.4, 0.6, 0.8]), reset="hard", shape=(4,)),
        nnm.Linear(4, 3), nnm.LI(tau=4.0),
    ).eval()
    x = (torch.rand(25, 3, 6) < 0.5).float()
    g = to_nir(m, x)
    assert isinstance(g.nodes["1"], nir.CubaLIF) and isinstance(g.nodes["3"], nir.IF) and isinstance(g.nodes["5"], nir.LI)
    np.testing.assert_allclose(g.nodes["3"].v_threshold, [0.2, 0.4, 0.6, 0.8])
    ref_s, ref_y = _spikes(m, x)
    got_s, got_y = _spikes(from_nir(g), x)
    assert float(ref_s[0].sum()) > 0 and float(ref_s[1].sum()) > 0
    for a, b in zip(ref_s, got_s):
        assert torch.equal(a, b)
    assert torch.equal(ref_y, got_y)


class _Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nnm.Linear(4, 4)
        self.lif = nnm.LIF(reset="hard")

    def forward(self, x):
        return self.lif(self.fc(x) + x)


def test_bad_models_raise_naming_the_layer():
    x = torch.ones(4, 2, 4)
    pool = torch.nn.Sequential(nnm.MaxPool2d(2), nnm.Flatten(), nnm.Linear(4, 2), nnm.LIF(reset="hard")).eval()
    with pytest.raises(ExportError, match=r"layer '0'.*MaxPool2d.*NIR"):
        to_nir(pool, torch.ones(3, 1, 1, 4, 4))
    alif = torch.nn.Sequential(nnm.Linear(4, 3), nnm.ALIF(reset="hard")).eval()
    with pytest.raises(ExportError, match=r"layer '1'.*ALIF"):
        to_nir(alif, x)
    with pytest.raises(ExportError, match=r"layer 'lif'.*outside a module"):
        to_nir(_Residual().eval(), x)
    def chain(mid):
        m = torch.nn.Sequential(nnm.Linear(4, 3), nnm.LIF(tau=1.5, reset="hard"), mid, nnm.Linear(3, 2), nnm.LIF(reset="hard")).eval()
        with torch.no_grad():
            m[0].weight.fill_(1.0)
        return m

    g = to_nir(chain(torch.nn.ReLU()), x)  # ReLU leaves 0/1 spikes unchanged: exported as a pass-through
    assert ("1", "3") in g.edges and "2" not in g.nodes
    with pytest.raises(ExportError, match=r"layer '2' \(SpikeMask\) has no NIR mapping"):
        to_nir(chain(nnm.SpikeMask(0.5, seed=0)), torch.zeros(4, 2, 4))  # refused even where the sample hides it
    with pytest.raises(ExportError, match=r"layer '0' \(ReLU\).*spiking neuron"):
        to_nir(torch.nn.Sequential(torch.nn.ReLU(), nnm.Linear(4, 2), nnm.LIF(reset="hard")).eval(), x)
    unknown = torch.nn.Sequential(nnm.Linear(4, 3), torch.nn.GELU(), nnm.LIF(reset="hard")).eval()
    with pytest.raises(ExportError, match=r"layer '1' \(GELU\) has no NIR mapping"):
        to_nir(unknown, x)
    with pytest.raises(ShapeError):
        to_nir(torch.nn.Sequential(nnm.Linear(4, 3)).eval(), torch.ones(4, 4))
    real_delays = torch.nn.Sequential(nnm.DelayedLinear(4, 3, 5), nnm.LIF(reset="hard")).eval()
    with pytest.raises(ExportError, match=r"layer '0'.*round_delays"):
        to_nir(real_delays, x)
    g = to_nir(torch.nn.Sequential(nnm.Linear(4, 3), nnm.LIF(reset="hard")).eval(), x)
    g.metadata.pop("dt")
    with pytest.raises(ConfigError, match="dt"):
        from_nir(g)
    with pytest.raises(ConfigError, match="dt"):
        from_nir(g, dt=-1e-3)


def test_from_nir_rejects_missing_and_foreign_files(tmp_path):
    bad = tmp_path / "garbage.nir"
    bad.write_bytes(b"not a NIR file" * 10)
    for path in (tmp_path / "absent.nir", bad):
        with pytest.raises(DataFormatError, match=path.name):
            from_nir(path)


@pytest.mark.peers
def test_snntorch_imports_our_file_with_identical_spikes(tmp_path):
    snntorch_nir = pytest.importorskip("snntorch.import_nir")
    torch.manual_seed(3)
    m = torch.nn.Sequential(nnm.Linear(8, 6, bias=False), nnm.LIF(tau=2.0, threshold=0.4, reset="hard"),
                            nnm.Linear(6, 3, bias=False), nnm.LIF(tau=4.0, threshold=0.3, reset="hard")).eval()
    with torch.no_grad():
        m[0].weight.mul_(4.0)
        m[2].weight.mul_(4.0)
    x = (torch.rand(30, 2, 8) < 0.5).float()
    path = tmp_path / "m.nir"
    nir.write(path, to_nir(m, x))  # default dt = 1e-4 s, the value snnTorch's importer assumes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = snntorch_nir.import_from_nir(nir.read(path))
    state = None
    outs = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = net(x[t], state)
            outs.append(y)
        ref = m(x)
    got = torch.stack(outs)
    assert float(ref.sum()) > 5
    assert torch.equal(got, ref)


@pytest.mark.peers
def test_norse_imports_our_file_with_identical_spikes(tmp_path):
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(4)
    m = torch.nn.Sequential(nnm.Linear(8, 6, bias=False), nnm.LIF(tau=2.0, threshold=0.2, reset="hard"),
                            nnm.Linear(6, 3, bias=False), nnm.LIF(tau=4.0, threshold=0.1, reset="hard")).eval()
    with torch.no_grad():
        m[0].weight.mul_(4.0)
        m[2].weight.mul_(4.0)
    x = (torch.rand(30, 2, 8) < 0.5).float()
    dt = 1e-3
    path = tmp_path / "m.nir"
    nir.write(path, to_nir(m, x, dt=dt))
    net = norse.from_nir(nir.read(path), dt=dt)
    state = None
    outs = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = net(x[t], state)
            outs.append(y)
        ref = m(x)
    got = torch.stack(outs)
    assert float(ref.sum()) > 5
    assert torch.equal(got, ref)


def test_conv1d_round_trip_and_no_lava_mapping(tmp_path):
    torch.manual_seed(6)
    m = torch.nn.Sequential(nnm.Conv1d(2, 4, 3, padding=1, stride=2), nnm.LIF(tau=2.0, threshold=0.2, reset="hard"),
                            nnm.Flatten(), nnm.Linear(4 * 5, 3), nnm.LIF(tau=2.0, threshold=0.2, reset="hard")).eval()
    x = (torch.rand(15, 2, 2, 10) < 0.5).float()
    g = to_nir(m, x)
    assert isinstance(g.nodes["0"], nir.Conv1d)
    ref_s, ref_y = _spikes(m, x)
    got_s, got_y = _spikes(from_nir(g), x)
    assert float(ref_s[0].sum()) > 0
    for a, b in zip(ref_s, got_s):
        assert torch.equal(a, b)
    from neuromorph.export.lava import to_lava

    with pytest.raises(ExportError, match=r"Conv1d node '0'.*netx"):
        to_lava(m, tmp_path / "c1.h5", x)


def test_foreign_graph_with_sum_pooling_and_no_metadata():
    """A graph written by another tool (no neuromorph metadata): SumPool2d, Affine and a NIR LIF with
    R = 1 run as neuromorph's LIF with decay_input=True, tau = tau_s / dt."""
    rng = np.random.default_rng(0)
    W = rng.normal(0, 1, (3, 2 * 2 * 2)).astype(np.float32)
    b = rng.normal(0, 0.1, 3).astype(np.float32)
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input({"input": np.array([2, 4, 4])}),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0, end_dim=-1),
            "fc": nir.Affine(weight=W, bias=b),
            "lif": nir.LIF(tau=np.full(3, 3e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3)),
            "out": nir.Output({"output": np.array([3])}),
        },
        edges=[("in", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "out")],
    )
    m = from_nir(g, dt=1e-3)
    x = (torch.rand(20, 2, 2, 4, 4) < 0.5).float()
    pooled = x.reshape(20, 2, 2, 2, 2, 2, 2).sum((4, 6)).reshape(20, 2, 8)  # 2x2 sum pooling by hand
    lif = nnm.LIF(tau=3.0, threshold=0.5, reset="hard", decay_input=True)
    with torch.no_grad():
        ref = lif(pooled @ torch.from_numpy(W).T + torch.from_numpy(b))
        got = m(x)
    assert float(ref.sum()) > 0
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
