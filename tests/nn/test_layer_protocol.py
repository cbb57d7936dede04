"""The layer protocol: one answer to "what is this layer?" for NIR export, the energy report, the firing-rate
metrics and the plots. Every neuron class here is defined only in this file; the package is not touched."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import torch

import neuromorph.energy as ne
import neuromorph.nn as nnm
from neuromorph.errors import ConfigError, ExportError, UnknownLayerError
from neuromorph.export.nir import from_nir, to_nir
from neuromorph.nn import LayerDecl, NeuronSpec, Role, register_layer, unregister_layer
from neuromorph.nn.protocol import declaration, spiking_layers
from neuromorph.train.metrics import FiringRateMonitor
from neuromorph.train.plots import record_spikes


class CountingLIF(nnm.LIF):
    """A subclass of a neuromorph neuron (counts its calls): inherits the LIF declaration."""

    calls = 0

    def forward(self, x, state=None):
        type(self).calls += 1
        return super().forward(x, state)


class PlainIF(torch.nn.Module):
    """An integrate-and-fire neuron written from scratch (hard reset to 0, fires when v > threshold), with
    its parameters as a NeuronSpec but no declaration (like a class from another library)."""

    def __init__(self, threshold: float = 0.5):
        super().__init__()
        self.threshold = threshold

    def forward(self, x):
        v = torch.zeros_like(x[0])
        out = []
        for xt in x:
            v = v + xt
            s = (v > self.threshold).to(x.dtype)
            v = v * (1 - s)
            out.append(s)
        return torch.stack(out)

    def spec(self) -> NeuronSpec:
        return NeuronSpec(kind="IF", threshold=torch.tensor(self.threshold), reset="hard", v_reset=0.0)


class ScratchIF(PlainIF):
    """The same neuron declared through the protocol, without subclassing anything of neuromorph's."""

    layer_decl = LayerDecl(Role.NEURON, "IF")


class Heaviside(torch.nn.Module):
    """A stateless threshold unit declared as a neuron, with no NeuronSpec (no NIR equivalent)."""

    layer_decl = LayerDecl(Role.NEURON, "heaviside")

    def forward(self, x):
        return (x > 0.2).to(x.dtype)


class Mystery(torch.nn.Module):
    """A layer that declares nothing."""

    def forward(self, x):
        return torch.tanh(x)


def _net(neuron: torch.nn.Module, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(nnm.Linear(6, 8), neuron, nnm.Linear(8, 4), nnm.LI(tau=3.0)).eval()
    with torch.no_grad():
        net[0].weight.uniform_(0.0, 0.4)
    return net


def _input(seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return (torch.rand(12, 3, 6) < 0.5).float()


def _seen_everywhere(net: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The hidden neuron '1' is counted by the energy report and listed by the firing-rate metrics and the
    raster recorder, with its true spikes; the LI readout '3' is counted but is not a spiking layer."""
    with torch.no_grad():
        spikes = net[1](net[0](x))
    assert spikes.sum() > 5 and spikes.mean() < 1
    by = {r.name: r for r in ne.measure(net, x, hardware="cmos45nm").layers}
    assert by["1"].role == "neuron" and by["1"].neuron_updates == 12 * 3 * 8
    assert by["1"].spikes_out == spikes.sum().item()
    assert by["3"].role == "neuron" and by["3"].neuron_updates == 12 * 3 * 4 and by["3"].spikes_out == 0
    assert [name for name, _ in spiking_layers(net)] == ["1"]
    monitor = FiringRateMonitor(net)
    try:
        with torch.no_grad():
            net(x)
    finally:
        monitor.close()
    assert monitor.rates() == {"1": pytest.approx(spikes.mean().item())}
    assert torch.equal(record_spikes(net, x[:, :1])["1"], spikes[:, 0])
    return spikes


def test_subclass_of_a_neuron_is_counted_listed_and_exported():
    net = _net(CountingLIF(tau=2.0, threshold=0.3, reset="hard"))
    x = _input()
    _seen_everywhere(net, x)
    g = to_nir(net, x)
    assert isinstance(g.nodes["1"], nir.LIF) and isinstance(g.nodes["3"], nir.LI)
    with torch.no_grad():
        torch.testing.assert_close(from_nir(g)(x), net(x), rtol=1e-6, atol=1e-6)


def test_neuron_built_from_the_protocol_is_counted_listed_and_exported():
    net = _net(ScratchIF(threshold=0.5))
    x = _input()
    spikes = _seen_everywhere(net, x)
    g = to_nir(net, x)
    assert isinstance(g.nodes["1"], nir.IF) and np.all(g.nodes["1"].v_threshold == 0.5)
    back = from_nir(g)
    hidden = []
    back.nodes["1"].register_forward_hook(lambda _m, _i, o: hidden.append(o))
    with torch.no_grad():
        y = back(x)
    assert torch.equal(hidden[0], spikes)  # the core IF neuron reproduces every spike of the scratch one
    with torch.no_grad():
        torch.testing.assert_close(y, net(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("neuron", [Heaviside(), nnm.HoyerSpike()], ids=["protocol", "HoyerSpike"])
def test_neuron_without_nir_equivalent_is_counted_listed_and_refused_by_name(neuron):
    net = _net(neuron)
    x = _input()
    _seen_everywhere(net, x)
    kind = declaration(neuron).op
    with pytest.raises(ExportError, match=rf"layer '1' \({type(neuron).__name__}\): neuron kind '{kind}' has no NIR mapping"):
        to_nir(net, x)


def test_registered_foreign_class_is_seen_by_all_and_unknown_after_unregistering():
    net = _net(PlainIF(threshold=0.5))
    x = _input()
    with pytest.raises(UnknownLayerError, match="unknown layer '1' \\(PlainIF\\)"):
        spiking_layers(net)
    register_layer(PlainIF, "neuron", "IF")
    try:
        _seen_everywhere(net, x)
        assert isinstance(to_nir(net, x).nodes["1"], nir.IF)
    finally:
        unregister_layer(PlainIF)
    with pytest.raises(UnknownLayerError):
        ne.measure(net, x)


def test_undeclared_layer_gets_the_same_error_from_export_energy_metrics_and_plots():
    net = torch.nn.Sequential(nnm.Linear(6, 8), Mystery(), nnm.Linear(8, 4), nnm.LIF(reset="hard")).eval()
    x = _input()
    errors = []
    for use in (lambda: to_nir(net, x), lambda: ne.measure(net, x), lambda: spiking_layers(net),
                lambda: FiringRateMonitor(net), lambda: record_spikes(net, x[:, :1])):
        with pytest.raises(UnknownLayerError) as info:
            use()
        errors.append(str(info.value))
    assert len(set(errors)) == 1
    assert errors[0].startswith("unknown layer '1' (Mystery)") and "register_layer(Mystery" in errors[0]
    # one error, both kinds callers catch: a configuration problem and an export failure
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ExportError)
    for m in net.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_declarations_of_the_package_layers():
    want = {
        nnm.Linear(2, 2): ("synapse", "linear"), nnm.Conv2d(1, 1, 1): ("synapse", "conv2d"),
        nnm.DelayedLinear(2, 2, 3): ("synapse", "delayed_linear"), nnm.AvgPool2d(2): ("pooling", "avg_pool2d"),
        nnm.MaxPool2d(2): ("pooling", "max_pool2d"), nnm.BatchNorm1d(2): ("normalisation", "batch_norm"),
        nnm.MPBN(2): ("normalisation", "mpbn"), nnm.Flatten(): ("reshape", "flatten"),
        nnm.SequenceDropout(0.1): ("identity", "dropout"), nnm.SpikeMask(0.5): ("mask", "spike_mask"),
        nnm.LIF(): ("neuron", "LIF"), nnm.ALIF(): ("neuron", "ALIF"), nnm.MPBNLIF(2): ("neuron", "LIF"),
        nnm.LI(): ("readout", "LI"), nnm.HoyerSpike(): ("neuron", "HoyerSpike"),
        nnm.DeltaActivation(2): ("neuron", "delta"), nnm.QCFS(): ("activation", "qcfs"),
        nnm.QCFSNeuron(1.0): ("neuron", "QCFS_IF"), torch.nn.ReLU(): ("activation", "relu"),
    }
    for module, (role, op) in want.items():
        d = declaration(module)
        assert (d.role.value, d.op) == (role, op), type(module).__name__
    assert declaration(nnm.QCFSNeuron(1.0)).stepwise
    with pytest.raises(ConfigError, match="role='synaps'"):
        LayerDecl("synaps", "linear")
    with pytest.raises(ConfigError, match="not a torch.nn.Module"):
        register_layer(int, "neuron")


def _train_mode_net() -> torch.nn.Sequential:
    torch.manual_seed(0)
    net = torch.nn.Sequential(nnm.Linear(6, 8), nnm.BatchNorm1d(8), nnm.LIF(tau=2.0, threshold=0.3, reset="hard"),
                              nnm.Dropout(0.5), nnm.Linear(8, 4), nnm.LIF(reset="hard"))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.2, 0.2)
    return net


def test_training_mode_model_is_measured_and_exported_in_eval_mode_with_a_warning():
    x = _input()
    net = _train_mode_net()
    evaluated = _train_mode_net().eval()
    with pytest.warns(UserWarning, match=r"energy.measure: Sequential is in training mode.*layer '1', '3'"):
        report = ne.measure(net, x)
    assert all(m.training for m in net.modules())  # restored
    expect = ne.measure(evaluated, x)
    assert [r.to_dict() for r in report.layers] == [r.to_dict() for r in expect.layers]
    with pytest.warns(UserWarning, match=r"to_nir: Sequential is in training mode"):
        g = to_nir(net, x)
    assert all(m.training for m in net.modules())
    g_eval = to_nir(evaluated, x)
    assert g.edges == g_eval.edges
    for k, node in g_eval.nodes.items():
        for field in ("weight", "bias", "v_threshold"):
            if hasattr(node, field):
                np.testing.assert_array_equal(getattr(g.nodes[k], field), getattr(node, field))
    # a model whose layers compute the same in both modes is measured without a warning
    plain = torch.nn.Sequential(nnm.Linear(6, 8), nnm.LIF(reset="hard"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ne.measure(plain, x)
        to_nir(plain, x)
    assert plain.training


def test_adaptive_average_pooling_is_counted_by_its_windows():
    """AdaptiveAvgPool2d, declared as pooling, is counted: torch's windows for 5 -> 3 are [0, 2), [1, 4),
    [3, 5), so the input positions lie in 1, 2, 1, 2, 1 windows."""
    pool = nnm.AdaptiveAvgPool2d((1, 3))
    x = torch.zeros(2, 1, 1, 1, 5)  # [T, B, C, H, W] spikes
    x[0, 0, 0, 0, 1] = 1  # two windows
    x[1, 0, 0, 0, 0] = 1  # one window
    x[1, 0, 0, 0, 3] = 1  # two windows
    rec = ne.measure(pool, x).layers[0]
    assert rec.role == "pool" and rec.spikes_in == 3 and rec.acs == 2 + 1 + 2


def test_recurrent_ann_baseline_is_declared_and_costs_dense_macs():
    """A GRU (the sequence ANN baseline) is a declared synapse: trainable with the firing-rate metrics (it
    is no spiking layer), costed as dense MACs (3 gates x (in + hidden) x hidden per layer, step, sample),
    and refused by name by NIR export."""
    gru = torch.nn.GRU(4, 5, num_layers=2)
    net = torch.nn.Sequential(gru).eval()
    x = torch.rand(3, 2, 4)
    assert spiking_layers(net) == []
    rec = ne.measure(net, x).layers[0]
    assert rec.macs == 3 * 2 * (3 * 5 * (4 + 5) + 3 * 5 * (5 + 5)) and rec.synops == 0
    with pytest.raises(ExportError, match=r"layer '0' \(GRU\) has no NIR mapping"):
        to_nir(net, x)
