"""The report's synaptic operations and activation sparsity against NeuroBench 2.3 itself.

NeuroBench runs the same model on the same inputs through its own hooks (``TorchModel``,
``SynapticOperations``, ``ActivationSparsity``); its models take batch-first data, so the network is
wrapped in a module that makes it time-major. Skipped when neurobench cannot be imported.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

import neuromorph.energy as ne
import neuromorph.nn as nm_nn

try:  # a neurobench installed with its dependencies may fail on torchaudio with more than ImportError
    import neurobench.metrics.workload as nb_workload
    import neurobench.models as nb_models
except Exception as exc:  # noqa: BLE001
    pytest.skip(f"neurobench is not importable (peers extra, see scripts/setup.sh): {exc}", allow_module_level=True)


class BatchFirst(torch.nn.Module):
    """NeuroBench feeds [B, T, ...]; neuromorph networks are time-major [T, B, ...]."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.transpose(0, 1))


def _neurobench(net: torch.nn.Module, batches: list[torch.Tensor]) -> dict:
    """NeuroBench's metrics over time-major ``batches``, accumulated as its Benchmark does."""
    model = nb_models.TorchModel(BatchFirst(net))
    model.add_activation_module(nm_nn.SpikingNeuron)
    model.register_hooks()
    syn, act = nb_workload.SynapticOperations(), nb_workload.ActivationSparsity()
    total = sum(x.shape[1] for x in batches)
    sparsity, ops = 0.0, None
    with torch.no_grad():
        for x in batches:
            data = (x.transpose(0, 1).contiguous(), torch.zeros(x.shape[1]))
            model.reset_hooks()
            preds = model(data[0])
            ops = syn(model, preds, data)
            sparsity += act(model, preds, data) * x.shape[1] / total
    model.cleanup_hooks()
    return {"SynapticOperations": ops, "ActivationSparsity": sparsity}


def _conv_net(seed: int = 0, pool: torch.nn.Module | None = None) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        nm_nn.Conv2d(2, 4, 3, stride=1, padding=1), nm_nn.LIF(tau=2.0, reset="hard"),
        pool if pool is not None else nm_nn.MaxPool2d(2), nm_nn.Flatten(),
        nm_nn.Linear(4 * 4 * 4, 16), nm_nn.LIF(tau=2.0, reset="hard"), nm_nn.Linear(16, 5), nm_nn.LI(tau=2.0),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(3.0)  # every layer fires
        net[4].weight[:, :7] = 0.0  # pruned synapses: effective counts skip them, Dense does not
    return net.eval()


def test_binary_spikes_equal_neurobench_exactly():
    net = _conv_net()
    torch.manual_seed(1)
    x = (torch.rand(6, 5, 2, 8, 8) < 0.3).float()
    batches = [x[:, :3], x[:, 3:]]
    nb = _neurobench(net, batches)
    report = ne.measure(net, batches, hardware="loihi", ann_hardware=None)
    ours = report.neurobench()
    assert ours["SynapticOperations"] == pytest.approx(nb["SynapticOperations"], rel=1e-12)
    assert ours["ActivationSparsity"] == pytest.approx(nb["ActivationSparsity"], rel=1e-12)
    # binary spikes everywhere: the report's own synops are NeuroBench's Effective_ACs, and it has no MACs
    t = report.totals()
    assert nb["SynapticOperations"]["Effective_ACs"] > 0 and nb["SynapticOperations"]["Effective_MACs"] == 0
    assert t["synops"] == pytest.approx(nb["SynapticOperations"]["Effective_ACs"], rel=1e-12)
    assert t["macs"] == 0 and 0 < t["activation_sparsity"] < 1
    assert t["activation_sparsity"] == pytest.approx(nb["ActivationSparsity"], rel=1e-12)
    # Dense counts every synapse at every step, the 7 x 16 pruned ones too (the ANN equivalent does not)
    dense_linear = 6 * (64 * 16 + 16 * 5)
    assert ours["layers"]["4"]["Dense"] == 6 * 64 * 16
    assert t["ann_macs"] == nb["SynapticOperations"]["Dense"] - 6 * 7 * 16
    assert nb["SynapticOperations"]["Dense"] - dense_linear == ours["layers"]["0"]["Dense"]
    assert ours["differences"]["not_counted_by_neurobench"] == ["2"]  # the pooling layer


def test_event_counts_and_real_values_differ_exactly_where_documented():
    """Event counts (binned frames with 2 or 3 events in one bin): the report counts each event
    (count x fan-out synops), NeuroBench one MAC per nonzero input; real values: dense MACs here unless
    skip_zeros, nonzero inputs only in NeuroBench. AvgPool of spikes feeds scaled counts forward."""
    net = _conv_net(2, pool=nm_nn.AvgPool2d(2))
    torch.manual_seed(3)
    counts = torch.randint(0, 4, (4, 3, 2, 8, 8)).float() * (torch.rand(4, 3, 2, 8, 8) < 0.4)
    nb = _neurobench(net, [counts])
    report = ne.measure(net, counts, hardware="cmos45nm", ann_hardware=None)
    ours, t = report.neurobench(), report.totals()
    assert ours["SynapticOperations"] == pytest.approx(nb["SynapticOperations"], rel=1e-12)
    assert ours["ActivationSparsity"] == pytest.approx(nb["ActivationSparsity"], rel=1e-12)
    # the exact difference, computed by hand from the inputs of the two synaptic layers
    fan0 = ne.conv_fanout(lambda i, w: torch.nn.functional.conv2d(i, w, padding=1), net[0].weight, (2, 8, 8))
    first_counts = float((counts.double() * fan0).sum())  # this report: every event is a spike
    first_nonzero = float(((counts != 0).double() * fan0).sum())  # NeuroBench: one MAC per nonzero input
    seen = {}
    hook = net[4].register_forward_pre_hook(lambda m, i: seen.setdefault("x", i[0].clone()))
    net(counts)
    hook.remove()
    pooled = seen["x"].detach().double() * 4  # average pooling of spikes: events per window (counts), scaled by 1/4
    fan4 = (net[4].weight != 0).sum(0).double()
    second_counts = float((pooled * fan4).sum())
    second_nonzero = float(((pooled != 0).double() * fan4).sum())
    assert nb["SynapticOperations"]["Effective_MACs"] * 3 == pytest.approx(first_nonzero + second_nonzero)
    # NeuroBench's ACs are the last layer's (binary spikes); everything else it counts as MACs
    assert t["synops"] - nb["SynapticOperations"]["Effective_ACs"] == pytest.approx((first_counts + second_counts) / 3)
    assert ours["differences"]["synops_minus_Effective_ACs"] == pytest.approx(t["synops"] - nb["SynapticOperations"]["Effective_ACs"])
    assert first_counts > first_nonzero  # the difference is real in this data
    # real-valued input: dense MACs at every position here; with skip_zeros exactly NeuroBench's count
    analog = torch.rand(3, 2, 2, 8, 8) * (torch.rand(3, 2, 2, 8, 8) < 0.5)
    nb = _neurobench(net, [analog])
    dense = ne.measure(net, analog, hardware="cmos45nm", ann_hardware=None)
    sparse = ne.measure(net, analog, hardware="cmos45nm", ann_hardware=None, skip_zeros=True)
    assert dense.neurobench()["SynapticOperations"] == pytest.approx(nb["SynapticOperations"], rel=1e-12)
    # the first layer is the one fed real values (layer 4 gets pooled spikes: event counts, synops here)
    first_nonzero = float(((analog != 0).double() * fan0).sum()) / 2
    assert sparse.totals()["macs"] == pytest.approx(first_nonzero)  # NeuroBench's rule for this layer
    assert dense.totals()["macs"] == 3 * float(fan0.sum())  # zeros are multiplied too: T x every synapse
    assert dense.totals()["macs"] > first_nonzero


def test_cli_format_neurobench(tmp_path):
    """A user runs ``neuromorph energy CKPT --format neurobench`` on a recipe model (event-count input)."""
    import subprocess
    import sys

    from neuromorph.models.nmnist import NMNISTConvSNN
    from neuromorph.train import checkpoint as ck

    kwargs = {"channels": [4], "input_size": 8, "n_classes": 3}
    torch.manual_seed(0)
    net = NMNISTConvSNN(**kwargs).eval()
    with torch.no_grad():
        net.net[0].weight.mul_(4.0)  # the hidden layer fires
    path = ck.save_checkpoint(tmp_path / "best.pt", net, "neuromorph.models.nmnist:NMNISTConvSNN", kwargs, info={"epoch": 1})
    torch.manual_seed(4)
    x = torch.randint(0, 3, (5, 4, 2, 8, 8)).float() * (torch.rand(5, 4, 2, 8, 8) < 0.4)  # event counts
    torch.save(x, tmp_path / "x.pt")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-m", "neuromorph", "energy", str(path), "--inputs", str(tmp_path / "x.pt"),
                           "--format", "neurobench", "--batch-size", "2"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    nb = _neurobench(net, [x[:, :2], x[:, 2:]])
    assert data["SynapticOperations"] == pytest.approx(nb["SynapticOperations"], rel=1e-12)
    assert data["ActivationSparsity"] == pytest.approx(nb["ActivationSparsity"], rel=1e-12)
    assert nb["SynapticOperations"]["Effective_MACs"] > 0 and nb["SynapticOperations"]["Effective_ACs"] > 0
    assert data["samples"] == 4 and data["differences"]["synops_minus_Effective_ACs"] > 0
