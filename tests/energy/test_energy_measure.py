"""measure(): neuron updates, masking, silent networks, model neutrality, profiles, reports, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

import neuromorph.energy as ne
from neuromorph.errors import ConfigError, DataFormatError, HardwareProfileError, NonFiniteError, ShapeError
from neuromorph.nn import SpikeMask, register_layer, unregister_layer


class StepIF(torch.nn.Module):
    """A plain integrate-and-fire neuron on [T, B, ...] (soft reset, threshold 1), written here so that
    these tests do not depend on the core's neurons; the layer protocol learns it through register_layer."""

    def forward(self, x):
        v = torch.zeros_like(x[0])
        out = []
        for xt in x:
            v = v + xt
            s = (v > 1.0).to(x.dtype)
            v = v - s
            out.append(s)
        return torch.stack(out)


@pytest.fixture
def step_if_rule():
    register_layer(StepIF, "neuron")
    yield
    unregister_layer(StepIF)


def _net(seed=0, bias=True):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 8, bias=bias), StepIF(), SpikeMask(0.0), torch.nn.Linear(8, 4, bias=bias), StepIF()
    )


def test_neuron_updates_spikes_and_rates(step_if_rule):
    net = _net()
    x = torch.rand(5, 3, 6) * 2  # analog input: the first Linear is an encoding layer (MACs)
    report = ne.measure(net, x, hardware="cmos45nm")
    by = {r.name: r for r in report.layers}
    assert set(by) == {"0", "1", "2", "3", "4"}
    h = net[1](net[0](x))
    assert by["0"].macs == 5 * 3 * 6 * 8 and by["0"].synops == 0
    assert by["1"].neuron_updates == 5 * 3 * 8
    assert by["1"].spikes_out == h.sum().item()
    assert by["1"].spikes_per_step == h.sum(dim=(1, 2)).tolist()
    assert by["1"].rate == pytest.approx(h.mean().item())
    assert by["1"].rate_per_step() == pytest.approx(h.mean(dim=(1, 2)).tolist())
    assert by["3"].synops == h.sum().item() * 4  # every hidden spike reaches 4 outputs
    totals = report.totals()
    assert totals["neuron_updates"] == 5 * (8 + 4)  # per inference
    # energy: cmos45nm fp32 synop = 0.9 pJ, mac = 4.6 pJ, neuron update = 4.6 pJ (mult + add)
    expected = (by["0"].macs * 4.6 + by["3"].synops * 0.9 + (by["1"].neuron_updates + by["4"].neuron_updates) * 4.6) / 3
    assert report.total_energy_pj() == pytest.approx(expected)
    assert report.ann_energy_pj == pytest.approx(5 * (6 * 8 + 8 * 4) * 4.6)  # the ANN runs all T = 5 steps
    assert report.ratio() == pytest.approx(expected / report.ann_energy_pj)


def test_silent_network_costs_only_neuron_updates(step_if_rule):
    net = _net(bias=False)  # a bias would drive the neurons without input
    x = torch.zeros(4, 2, 6)  # no input spikes: nothing fires anywhere
    for hw in ("cmos45nm", "loihi"):
        report = ne.measure(net, x, hardware=hw)
        t = report.totals()
        assert t["spikes"] == 0 and t["synops"] == 0 and t["macs"] == 0 and t["acs"] == 0
        assert t["neuron_updates"] == 4 * (8 + 4)
        # StepIF's state is not visible to the monitor: its updates count as active (upper bound), flagged
        assert report.untracked_activity() == ["1", "4"] and t["active_updates"] == t["neuron_updates"]
        per_update = ne.load_profile(hw).energy_pj("neuron_update" if hw == "cmos45nm" else "neuron_update_active")
        assert report.total_energy_pj() == pytest.approx(t["neuron_updates"] * per_update)
        if hw == "loihi":  # the 52-81 pJ band of untracked updates is reported
            assert report.energy_band_pj() == pytest.approx((t["neuron_updates"] * 52.0, t["neuron_updates"] * 81.0))
            assert "total between" in report.table() and report.to_dict()["energy_pj_band"]["loihi"]
        else:
            assert report.energy_band_pj() is None


def test_masked_spikes_are_counted_on_the_tensor_fed_forward(step_if_rule):
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(6, 50), StepIF(), SpikeMask(0.75, seed=1), torch.nn.Linear(50, 7))
    x = torch.rand(6, 4, 6) * 3
    seen = {}
    net[2].register_forward_hook(lambda m, i, o: seen.setdefault("masked", o.clone()))
    report = ne.measure(net, x)
    by = {r.name: r for r in report.layers}
    masked = seen["masked"]
    assert by["2"].role == "mask"
    assert by["2"].spikes_in == by["1"].spikes_out
    assert by["2"].spikes_out == masked.sum().item()
    assert by["3"].synops == masked.sum().item() * 7  # exact: the spikes that survived the mask


def test_synops_scale_with_keep_rate_on_average():
    torch.manual_seed(0)
    lin = torch.nn.Linear(200, 10)
    spikes = torch.ones(10, 8, 200)  # 16000 spikes, fan-out 10 each
    full = ne.measure(lin, spikes).layers[0].synops
    assert full == 16000 * 10
    for p in (0.25, 0.5, 0.9):
        net = torch.nn.Sequential(SpikeMask(p, seed=7), lin)
        counts = [ne.measure(net, spikes).layers[1].synops for _ in range(5)]
        mean = sum(counts) / len(counts)
        # each run keeps Binomial(16000, 1-p) spikes, x10 synops: allow 6 standard deviations of the mean
        sd = 10 * math.sqrt(16000 * p * (1 - p) / len(counts))
        assert abs(mean - full * (1 - p)) <= 6 * sd
        assert all(c % 10 == 0 for c in counts)  # whole spikes times the exact fan-out


def test_monitor_leaves_the_model_unchanged(step_if_rule):
    net = _net()
    x = torch.rand(5, 3, 6) * 2
    before = net(x)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    ne.measure(net, x)
    after = net(x)
    assert torch.equal(before, after)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    for m in net.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_unknown_layer_is_named():
    class Mystery(torch.nn.Module):
        def forward(self, x):
            return torch.tanh(x)

    net = torch.nn.Sequential(torch.nn.Linear(3, 3), Mystery())
    with pytest.raises(ConfigError, match=r"unknown layer '1' \(Mystery\)"):
        ne.measure(net, torch.rand(2, 1, 3))
    register_layer(Mystery, "activation")  # element-wise and real-valued: not priced
    try:
        assert [r.name for r in ne.measure(net, torch.rand(2, 1, 3)).layers] == ["0"]
    finally:
        unregister_layer(Mystery)


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ConfigError, match="cmos45nm.*loihi.*loihi2"):
        ne.measure(torch.nn.Linear(2, 2), torch.ones(1, 1, 2), hardware="truenorth")


def test_profile_missing_a_needed_constant_is_named(step_if_rule):
    net = _net()
    # loihi has no MAC: the analog-fed first layer needs one
    with pytest.raises(ConfigError, match=r"'mac'.*layer '0' \(Linear\)"):
        ne.measure(net, torch.rand(2, 1, 6) * 2, hardware="loihi")
    # loihi2 publishes nothing: even neuron updates are unknown
    with pytest.raises(ConfigError, match=r"loihi2.*'neuron_update'"):
        ne.measure(net, torch.zeros(2, 1, 6), hardware="loihi2")


def test_profiles_carry_sources_and_precisions():
    assert {"cmos45nm", "loihi", "loihi2"} <= set(ne.list_profiles())
    cm = ne.load_profile("cmos45nm")
    assert cm.energy_pj("mac") == pytest.approx(4.6) and cm.energy_pj("synop") == pytest.approx(0.9)
    assert ne.load_profile("cmos45nm:fp16").energy_pj("mac") == pytest.approx(1.5)
    assert ne.load_profile("cmos45nm", precision="int8").energy_pj("mac") == pytest.approx(0.23)
    lo = ne.load_profile("loihi")
    assert lo.energy_pj("synop") == pytest.approx(23.6) and not lo.has("mac")
    for p in (cm, lo):
        for c in p.constants.values():
            assert c.source and c.confirmed is False  # nothing here was checked against the primary PDF
    assert not ne.load_profile("loihi2").ops
    with pytest.raises(ConfigError, match="precision 'fp64'"):
        ne.load_profile("cmos45nm:fp64")


def test_user_profile_file(tmp_path):
    good = tmp_path / "mychip.toml"
    good.write_text(
        '[energy]\nname = "mychip"\nunit = "fJ"\n'
        '[energy.constants.acc]\nvalue = 500\nsource = "datasheet table 3"\nconfirmed = true\n'
        '[energy.ops.default]\nsynop = ["acc"]\nneuron_update = ["acc", "acc"]\n'
    )
    p = ne.load_profile(good)
    assert p.energy_pj("synop") == pytest.approx(0.5) and p.energy_pj("neuron_update") == pytest.approx(1.0)
    report = ne.measure(torch.nn.Linear(3, 2), torch.ones(2, 1, 3), hardware=str(good), ann_hardware=None)
    assert report.total_energy_pj() == pytest.approx(2 * 3 * 2 * 0.5)
    assert report.ratio() is None
    bad = tmp_path / "bad.toml"
    bad.write_text('[energy]\n[energy.constants.x]\nvalue = 1.0\n')
    with pytest.raises(HardwareProfileError, match=r"bad\.toml.*\[energy\.constants\.x\] needs 'value' and 'source'"):
        ne.load_profile(bad)
    for text, table in (("[energy]\nconstants = 3\n", r"\[energy\.constants\]"),
                        ("[energy]\n[energy.ops]\nfp32 = 3\n", r"\[energy\.ops\.fp32\]")):
        bad.write_text(text)  # a scalar where a table belongs: the package's error, not AttributeError
        with pytest.raises(HardwareProfileError, match=table + " must be a table"):
            ne.load_profile(bad)
    bad.write_text('[energy]\n[energy.constants.x]\nvalue = 1.0\nsource = "s"\n[energy.ops.default]\nsynop = ["y"]\n')
    with pytest.raises(HardwareProfileError, match="undefined constant 'y'"):
        ne.load_profile(bad)


def test_bad_inputs():
    lin = torch.nn.Linear(3, 2)
    with pytest.raises(ShapeError):
        ne.measure(lin, torch.ones(3))
    with pytest.raises(NonFiniteError):
        ne.measure(lin, torch.full((2, 1, 3), float("nan")))
    with pytest.raises(ConfigError, match="at least one"):
        ne.measure(lin, torch.ones(2, 1, 3), hardware=" , ")


def test_report_outputs(tmp_path, step_if_rule):
    net = _net()
    x = torch.rand(5, 3, 6) * 2
    batches = [(x[:, :2], torch.zeros(2)), (x[:, 2:], torch.zeros(1))]  # a loader of (x, y)
    report = ne.measure(net, batches, hardware="cmos45nm,cmos45nm:int8")
    single = ne.measure(net, x, hardware="cmos45nm")
    assert report.samples == 3
    assert report.totals() == pytest.approx(single.totals())
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == data
    assert set(data["energy_pj_per_inference"]) == {"cmos45nm:fp32", "cmos45nm:int8"}
    assert data["layers"][0]["name"] == "0" and "energy_pj" in data["layers"][0]
    assert data["snn_ann_ratio"]["cmos45nm:fp32"] == pytest.approx(report.ratio("cmos45nm:fp32"))
    # each profile is compared with the ANN on its own MAC (int8 with int8), Loihi (no MAC) with 45 nm fp32
    ann_macs = report.totals()["ann_macs"]
    assert report.ratio("cmos45nm:int8") == pytest.approx(report.total_energy_pj("cmos45nm:int8") / (ann_macs * 0.23))
    assert data["ann"]["compared_with"]["cmos45nm:int8"]["hardware"] == "cmos45nm:int8"
    silent = ne.measure(net, torch.zeros(2, 1, 6), hardware="loihi")
    assert silent.ann_energy_for("loihi") == (pytest.approx(silent.totals()["ann_macs"] * 4.6), "cmos45nm:fp32")
    table = report.table()
    assert "total" in table and "SNN/ANN" in table and "cmos45nm:int8" in table
    png = report.plot(tmp_path / "e.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_core_if_neuron_hand_computed_on_loihi():
    import neuromorph.nn as nm_nn

    # IF, threshold 1, soft reset, constant input 0.5: v = 0.5, 1.0 (no: strict >), 1.5 (fire, 0.5), 1.0, 1.5 (fire)
    neuron = nm_nn.IF(threshold=1.0, reset="soft")
    lin = nm_nn.Linear(1, 3, bias=False)
    net = torch.nn.Sequential(neuron, lin)
    x = torch.full((5, 1, 1), 0.5)
    report = ne.measure(net, x, hardware="loihi", ann_hardware=None)
    by = {r.name: r for r in report.layers}
    assert by["0"].spikes_per_step == [0, 0, 1, 0, 1]
    assert by["0"].neuron_updates == 5
    assert by["1"].synops == 2 * 3
    # input at every step: 5 active updates. Loihi (Davies et al. 2018, Table 2): 5 x 81 pJ + 2 emitted
    # spikes x 1.7 pJ (within-tile spike) + 6 synops x 23.6 pJ
    assert by["0"].active_updates == 5 and by["0"].activity == "tracked"
    assert report.energy_pj["loihi"][0] == pytest.approx(5 * 81.0 + 2 * 1.7)
    assert report.total_energy_pj("loihi") == pytest.approx(5 * 81.0 + 2 * 1.7 + 6 * 23.6)


def test_converted_masked_spiking_transformer():
    """A converted MST (QCFS -> IF, spike·λ outputs): graded spikes count as spikes, Q·Kᵀ as coincident
    MACs, and the ANN equivalent equals a hand count of the network's MACs."""
    from neuromorph.models import MaskedSpikingTransformer
    from neuromorph.nn import convert_to_snn

    torch.manual_seed(0)
    ann = MaskedSpikingTransformer(in_channels=1, image_size=8, num_classes=10, patch_size=2, dim=16, depth=1,
                                   heads=2, mlp_ratio=2, mask_ratio=0.0).eval()
    snn = convert_to_snn(ann)
    x = torch.rand(3, 1, 8, 8)
    report = ne.measure(snn, x.unsqueeze(0).expand(4, *x.shape))
    tokens, d = 16, 16
    per_block = 4 * tokens * d * d + 2 * tokens * tokens * d + 2 * tokens * d * (2 * d)  # q,k,v,proj; QK, AV; MLP
    assert report.totals()["ann_macs"] == 4 * (tokens * d * 4 + per_block + d * 10)  # + patch conv + head, T = 4 steps
    by = {r.name: r for r in report.layers}
    assert by["model.blocks.0.attn.q.0"].input_type == "spikes" and by["model.blocks.0.attn.q.0"].synops > 0
    assert by["model.blocks.0.attn/matmul#0"].input_type == "spikes x spikes"
    assert by["model.patch.0"].input_type == "real"  # the image, presented at every step: MACs
    assert by["model.patch.0"].macs == 4 * 3 * tokens * d * 4
