"""One hardware profile for energy, export and quantisation; Loihi 1 active/inactive neuron updates;
like-with-like ANN baselines; "n/a" where a profile has no energies."""

from __future__ import annotations

import json

import pytest
import torch

import neuromorph.energy as ne
import neuromorph.nn as nm_nn
from neuromorph import hardware_profile as hp
from neuromorph.errors import ConfigError, HardwareProfileError


# --------------------------------------------------------------------------------------- one profile


def test_one_loader_and_one_type_for_energy_and_export():
    import neuromorph.export as nx
    from neuromorph.export import constraints, netx

    assert ne.load_profile is hp.load_profile and nx.load_profile is hp.load_profile
    assert ne.HardwareProfile is hp.HardwareProfile
    lo = hp.load_profile("loihi")
    # energy, constraints and neuron model of one file in one object, every value with its source
    assert lo.energy_pj("synop") == pytest.approx(23.6) and lo.limit("max_delay") == 62
    assert lo.neuron["accepts"] and all(c.source for c in lo.constraints.values())
    # the netx/Loihi fixed-point limits are the profile's, not constants of their own
    lava = hp.load_profile("loihi2")
    assert netx.MAX_DELAY == lava.limit("max_delay")
    assert netx.DECAY_UNITY == 1 << lava.limit("decay_bits")
    assert netx.MAX_VTH_MANT == (1 << lava.limit("threshold_mantissa_bits")) - 1
    assert netx.BIAS_RANGE == (-(1 << 12), (1 << 12) - 1) and lava.limit("bias_mantissa_bits") == 13
    assert netx.WEIGHT_RANGE == (-128, 127) and netx.STATE_BITS == 24 and netx.MSB_SHIFT == 6
    # Loihi 1 and 2 share Lava's fixed-point neuron: both files must agree on it
    for key in ("weight_bits", "state_bits", "threshold_mantissa_bits", "decay_bits", "bias_mantissa_bits",
                "msb_shift_bits", "max_delay"):
        assert lo.limit(key) == lava.limit(key), key


def test_one_error_for_a_missing_or_bad_profile(tmp_path):
    from neuromorph.export.constraints import check_model

    net = torch.nn.Sequential(nm_nn.Linear(3, 2, bias=False), nm_nn.LIF(reset="hard")).eval()
    x = torch.ones(2, 1, 3)
    errors = []
    for call in (lambda: ne.measure(net, x, hardware="truenorth"), lambda: check_model(net, x, "truenorth")):
        with pytest.raises(HardwareProfileError) as info:
            call()
        errors.append(str(info.value))
    assert errors[0] == errors[1] and "'truenorth' is unknown" in errors[0] and "loihi2" in errors[0]
    assert issubclass(HardwareProfileError, ConfigError)
    bad = tmp_path / "chip.toml"
    bad.write_text('[constraints.max_fan_in]\nvalue = "many"\nsource = "none"\n')
    for call in (lambda: hp.load_profile(bad), lambda: check_model(net, x, str(bad)),
                 lambda: ne.measure(net, x, hardware=str(bad))):
        with pytest.raises(HardwareProfileError, match=r"'chip' \(.*chip\.toml\): \[constraints\.max_fan_in\] value='many'") as info:
            call()
        assert info.value.file == str(bad) and info.value.field == "constraints.max_fan_in"
    # an energy-only file cannot be checked against, a constraints-only file cannot price anything
    energy_only = tmp_path / "e.toml"
    energy_only.write_text('[energy]\n[energy.constants.a]\nvalue = 1.0\nsource = "s"\n[energy.ops.default]\nsynop = ["a"]\n')
    with pytest.raises(HardwareProfileError, match=r"e\.toml.*no \[constraints\] table"):
        check_model(net, x, str(energy_only))
    cons_only = tmp_path / "c.toml"
    cons_only.write_text('[constraints.max_delay]\nvalue = 4\nsource = "s"\n')
    with pytest.raises(HardwareProfileError, match=r"c\.toml.*no \[energy\] table"):
        ne.measure(net, x, hardware=str(cons_only))
    # half a neuron-update split is refused by name
    half = tmp_path / "h.toml"
    half.write_text('[energy]\n[energy.constants.a]\nvalue = 1.0\nsource = "s"\n[energy.ops.default]\nneuron_update_active = ["a"]\n')
    with pytest.raises(HardwareProfileError, match="both neuron_update_active and neuron_update_inactive"):
        hp.load_profile(half)
    with pytest.raises(HardwareProfileError, match="does not exist"):
        hp.load_profile(tmp_path / "missing.toml")


def test_loihi1_constants_are_davies_table2_with_sources():
    lo = hp.load_profile("loihi")
    expected = {"synop": 23.6, "neuron_update_active": 81.0, "neuron_update_inactive": 52.0, "spike": 1.7}
    assert {op: lo.energy_pj(op) for op in expected} == pytest.approx(expected)
    assert lo.constants["tile_hop_ew"].value_pj == 3.0 and lo.constants["tile_hop_ns"].value_pj == 4.0
    for op in expected:
        assert all("Davies et al., IEEE Micro 38(1), 2018, Table 2" in s["source"] for s in lo.energy_sources(op))
    assert not lo.has("neuron_update") and not lo.has("mac")
    # Loihi 2: no published per-operation energy, so none is invented
    assert not hp.load_profile("loihi2").ops and not hp.load_profile("loihi2").constants


# ------------------------------------------------------------------------ active / inactive updates


def test_active_and_inactive_updates_hand_computed():
    """IF (no leak), threshold 1, hard reset; one neuron gets 0.5 at t=0 and 0.6 at t=3, another none:
    neuron 0: t0 input (v 0 -> 0.5), t1 t2 nothing changes, t3 input (fires, v -> 0), t4 t5 at rest:
    2 active, 4 inactive; neuron 1 never leaves rest: 6 inactive."""
    neuron = nm_nn.IF(threshold=1.0, reset="hard")
    x = torch.zeros(6, 1, 2)
    x[0, 0, 0], x[3, 0, 0] = 0.5, 0.6
    report = ne.measure(torch.nn.Sequential(neuron), x, hardware="loihi,cmos45nm", ann_hardware=None)
    rec = report.layers[0]
    assert rec.neuron_updates == 12 and rec.active_updates == 2 and rec.activity == "tracked"
    assert rec.spikes_out == 1
    t = report.totals()
    assert (t["active_updates"], t["inactive_updates"]) == (2, 10)
    # Loihi: 2 x 81 + 10 x 52 pJ + one within-tile spike 1.7 pJ; 45 nm charges every update alike
    assert report.total_energy_pj("loihi") == pytest.approx(2 * 81 + 10 * 52 + 1.7)
    assert report.total_energy_pj("cmos45nm:fp32") == pytest.approx(12 * 4.6)
    # the rule is stated in the table and in the JSON
    assert "2 active, 10 inactive" in report.table() and "received nonzero input" in report.table()
    data = json.loads(report.to_json())
    assert "changed in it" in data["neuron_update_rule"]
    assert data["layers"][0]["active_updates"] == 2 and data["layers"][0]["inactive_updates"] == 10


def test_a_changing_current_or_leak_is_an_active_update():
    # CubaLIF: input 1 at t=0 only. t1: i 1 -> 0.5 while v = 0.5*1 + 0.5 = 1 stays: active by the current
    cuba = nm_nn.CubaLIF(tau_mem=2.0, tau_syn=2.0, threshold=5.0)
    x = torch.zeros(3, 1, 1)
    x[0] = 1.0
    assert ne.measure(torch.nn.Sequential(cuba), x, ann_hardware=None).layers[0].active_updates == 3
    # LIF: the membrane leaks after the input, a state change at every step
    lif = nm_nn.LIF(tau=2.0, threshold=5.0)
    assert ne.measure(torch.nn.Sequential(lif), x, ann_hardware=None).layers[0].active_updates == 3
    # streaming neurons start from the state passed in: a resting state and no input is all inactive
    stream = nm_nn.LIF(tau=2.0, streaming=True)
    rec = ne.measure(torch.nn.Sequential(stream), torch.zeros(4, 2, 3), ann_hardware=None).layers[0]
    assert rec.neuron_updates == 24 and rec.active_updates == 0


def test_activity_replay_leaves_training_statistics_alone():
    torch.manual_seed(0)
    a, b = nm_nn.MPBNLIF(4, tau=2.0), nm_nn.MPBNLIF(4, tau=2.0)
    b.load_state_dict(a.state_dict())
    x = torch.rand(5, 3, 4) * 2
    # measure() runs a model left in training mode in eval mode (neither the forward nor the replay may
    # touch the running statistics) and restores the mode
    with pytest.warns(UserWarning, match="training mode"):
        rec = ne.measure(torch.nn.Sequential(b), x, ann_hardware=None).layers[0]
    assert b.training
    assert rec.activity == "tracked" and 0 < rec.active_updates <= rec.neuron_updates
    for (name, u), (_, v) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(u, v), name


# ------------------------------------------------------------------ like-with-like ANN, n/a ratios


def test_ann_baseline_sees_the_whole_sequence_and_loihi2_gives_no_ratio():
    torch.manual_seed(0)
    steps = 7
    net = torch.nn.Sequential(nm_nn.Linear(10, 6), nm_nn.LIF(tau=2.0), nm_nn.Linear(6, 3), nm_nn.LI(tau=2.0)).eval()
    x = (torch.rand(steps, 2, 10) < 0.5).float()
    report = ne.measure(net, x, hardware="loihi,loihi2,cmos45nm", allow_missing=True)
    t = report.totals()
    per_step = 10 * 6 + 6 * 3
    assert t["ann_macs"] == steps * per_step and t["ann_macs_per_step"] == per_step
    assert report.ann_energy_pj == pytest.approx(steps * per_step * 4.6)
    assert report.ratio("loihi") == pytest.approx(report.total_energy_pj("loihi") / (steps * per_step * 4.6))
    # loihi2 prices nothing: its total is partial (0), its ratio n/a, never 0
    assert report.missing["loihi2"] and report.ratio("loihi2") is None
    table = report.table()
    assert "SNN/ANN energy ratio [loihi2]: n/a" in table and f"x T = {steps}" in table
    data = report.to_dict()
    assert data["snn_ann_ratio"]["loihi2"] is None and "same sequence" in data["ann"]["assumption"]
    assert data["energy_pj_per_inference"]["loihi2"] is None and data["energy_pj_per_inference"]["loihi"] > 0
    assert data["ann"]["macs_per_step"] == per_step and data["ann"]["time_steps"] == steps


def test_energy_report_example_shows_firing_hidden_layers(tmp_path):
    """examples/energy_report.py runs as a user runs it and every hidden layer of its network fires."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "energy_report.py"
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, str(example)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rates = dict(item.split(": ") for item in proc.stdout.split("hidden firing rates: ")[1].splitlines()[0].split(", "))
    assert len(rates) == 2 and all(float(r) > 0.01 for r in rates.values())
    assert "SNN/ANN energy ratio [loihi]" in proc.stdout and "inactive per inference" in proc.stdout
    data = json.loads((tmp_path / "energy.json").read_text())
    assert data["neurobench"]["SynapticOperations"]["Effective_ACs"] == data["totals_per_inference"]["synops"]
    assert (tmp_path / "energy.png").read_bytes()[:4] == b"\x89PNG"
