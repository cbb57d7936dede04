"""Max pooling of spikes in the energy report: the Loihi export adds a gate layer (one IF neuron per pooled
output, updated every step); the report charges those updates on Loihi (active/inactive), as many as the
exported netx file has gate neurons, and states the rule; profiles without the active/inactive split do not
charge them."""

import json

import pytest
import torch

import neuromorph.nn as nnm
from neuromorph.energy import measure
from neuromorph.energy.report import MAXPOOL_GATE_RULE
from neuromorph.export.lava import to_lava
from neuromorph.export.netx import read_netx
from neuromorph.hardware_profile import load_profile


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        nnm.Conv2d(2, 6, 3, padding=1, bias=False), nnm.LIF(tau=2.0, threshold=0.5, reset="hard"), nnm.MaxPool2d(2),
        nnm.Conv2d(6, 8, 3, padding=1, bias=False), nnm.LIF(tau=2.0, threshold=0.5, reset="hard"),
        nnm.MaxPool2d(3, stride=2, padding=1), nnm.Flatten(), nnm.Linear(8 * 4 * 4, 5, bias=False),
    )
    with torch.no_grad():
        m[0].weight.mul_(3.0)
        m[3].weight.mul_(3.0)
    return m.eval()


def _x(T=6, B=3):
    return (torch.rand(T, B, 2, 16, 16, generator=torch.Generator().manual_seed(1)) < 0.3).float()


def test_gate_updates_are_the_netx_gate_neurons_and_are_priced_on_loihi(tmp_path):
    model, x = _model(), _x()
    T, B = x.shape[:2]
    pooled = {}
    for name in ("2", "5"):
        model[int(name)].register_forward_hook(lambda m, i, o, name=name: pooled.__setitem__(name, o.detach().clone()))
    rep = measure(model, x, hardware=["loihi", "cmos45nm"], allow_missing=True)
    recs = {r.name: r for r in rep.layers}
    # one update per pooled output per step and sample; active where a spike fell in the window
    for name, out in pooled.items():
        assert recs[name].gate_updates == out.numel() == T * B * out[0, 0].numel()
        assert recs[name].gate_active_updates == float(torch.count_nonzero(out))
        assert 0 < recs[name].gate_active_updates < recs[name].gate_updates  # both prices are exercised
    # as many gate neurons as the exported netx file has
    net = read_netx(to_lava(model, tmp_path / "m.net.h5", x))
    gate_neurons = [int(torch.tensor(l.shape).prod()) for l in net.layers if l.extra.get("role") == "maxpool_gate"]
    assert [recs[n].gate_updates / (T * B) for n in ("2", "5")] == gate_neurons
    # priced on Loihi (81 pJ active, 52 pJ inactive) on top of the pooling's accumulates; not on cmos45nm
    loihi, cmos = load_profile("loihi"), load_profile("cmos45nm")
    labels = list(rep.energy_pj)
    i = [r.name for r in rep.layers].index("2")
    r = recs["2"]
    assert r.acs > 0 and r.synops == r.macs == r.neuron_updates == 0
    want = (r.acs * loihi.energy_pj("ac") + r.gate_active_updates * 81.0 + (r.gate_updates - r.gate_active_updates) * 52.0) / B
    assert rep.energy_pj["loihi"][i] == pytest.approx(want, rel=1e-12)
    cmos_label = next(l for l in labels if l.startswith("cmos45nm"))
    assert rep.energy_pj[cmos_label][i] == pytest.approx(r.acs * cmos.energy_pj("ac") / B, rel=1e-12)
    # the report says so
    d = json.loads(rep.to_json())
    assert d["maxpool_gate_rule"] == MAXPOOL_GATE_RULE
    assert d["layers"][i]["maxpool_gate_updates"] == r.gate_updates
    text = rep.table()
    assert "max-pool gates (2, 5): 3072 updates per inference, 948 active, not in the counts above" in text
    assert (recs["2"].gate_updates + recs["5"].gate_updates) / B == 6 * (6 * 8 * 8 + 8 * 4 * 4) == 3072
    assert MAXPOOL_GATE_RULE in text


def test_max_pooling_of_real_values_has_no_gates():
    model = torch.nn.Sequential(nnm.MaxPool2d(2), nnm.Flatten(), nnm.Linear(2 * 8 * 8, 3)).eval()
    rep = measure(model, torch.rand(4, 2, 2, 16, 16), hardware="loihi", allow_missing=True)
    assert all(r.gate_updates == 0 for r in rep.layers)
    assert "maxpool_gate_rule" not in rep.to_dict() and "max-pool gates" not in rep.table()
