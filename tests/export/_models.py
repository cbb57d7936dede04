"""Small reference-style models and real inputs shared by the export tests."""

from pathlib import Path

import numpy as np
import torch

import neuromorph.nn as nnm


def nmnist_net(seed: int = 0, reset: str = "hard") -> torch.nn.Module:
    """An N-MNIST conv net: conv -> BN -> LIF -> pool -> conv -> LIF -> pool -> flatten -> linear -> LIF."""
    torch.manual_seed(seed)
    m = torch.nn.Sequential(
        nnm.Conv2d(2, 8, 3, padding=1, bias=False),
        nnm.BatchNorm2d(8),
        nnm.LIF(tau=2.0, threshold=0.5, reset=reset),
        nnm.AvgPool2d(2),
        nnm.Conv2d(8, 8, 3, padding=1, bias=False),
        nnm.LIF(tau=3.0, threshold=0.3, reset=reset),
        nnm.AvgPool2d(2),
        nnm.Flatten(),
        nnm.Linear(8 * 8 * 8, 10, bias=False),
        nnm.LIF(tau=2.0, threshold=0.2, reset=reset),
    )
    with torch.no_grad():
        bn = m[1]
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.8, 1.5)
        bn.bias.uniform_(-0.05, 0.05)
        m[0].weight.mul_(2.0)
        m[4].weight.mul_(3.0)
        m[8].weight.mul_(3.0)
    return m.eval()


def nmnist_frames(shared_data: Path, n: int = 4, steps: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Real N-MNIST test samples as spike counts [steps, n, 2, 34, 34] and their labels."""
    from neuromorph.data.functional import to_frame
    from neuromorph.data.readers.atis import read_nmnist

    files = sorted((shared_data / "nmnist" / "Test").glob("*/*.bin"))[: n * 10 : 10][:n]
    frames, labels = [], []
    for f in files:
        ev = read_nmnist(f)
        frames.append(to_frame(ev, (34, 34, 2), n_time_bins=steps).astype(np.float32))
        labels.append(int(f.parent.name))
    return torch.from_numpy(np.stack(frames, 1)), torch.tensor(labels)


def shd_delay_net(seed: int = 0) -> torch.nn.Module:
    """The SHD delay network (models.shd) at a small size, with rounded delays and BatchNorm statistics."""
    from neuromorph.models.shd import SHDDelayNet

    torch.manual_seed(seed)
    m = SHDDelayNet(n_inputs=20, n_classes=4, hidden=16, n_hidden_layers=2, max_delay=7, delay_method="direct")
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
            if type(mod).__name__ == "DelayedLinear":
                mod.weight.mul_(2.0)
                mod.round_delays()
    return m.eval()


def maxpool_net(seed: int = 0) -> torch.nn.Module:
    """conv -> LIF(tau 2) -> MaxPool2d(2) -> conv -> LIF -> MaxPool2d(3, 2, 1) -> flatten -> linear readout, on
    [T, B, 2, 16, 16], with every parameter exact in Loihi's fixed point: weights are multiples of 1/64 below
    1 (with the LIF's input scale 1/2 folded in, multiples of 1/128: exact 8-bit mantissas at the exponent
    to_lava picks), threshold 1, tau 2 (vDecay 2048: halving a multiple of 64 stays exact for 6 steps), no bias. For T <= 6 the integer
    simulation must then equal the float model spike for spike."""
    torch.manual_seed(seed)
    m = torch.nn.Sequential(
        nnm.Conv2d(2, 6, 3, padding=1, bias=False), nnm.LIF(tau=2.0, reset="hard"), nnm.MaxPool2d(2),
        nnm.Conv2d(6, 8, 3, padding=1, bias=False), nnm.LIF(tau=2.0, reset="hard"), nnm.MaxPool2d(3, stride=2, padding=1),
        nnm.Flatten(), nnm.Linear(8 * 4 * 4, 5, bias=False),
    )
    with torch.no_grad():
        for i, (lo, hi) in ((0, (-24, 60)), (3, (-30, 50)), (7, (-40, 40))):
            m[i].weight.copy_(torch.randint(lo, hi, m[i].weight.shape).float() / 64)
    return m.eval()


def outputs_of(model: torch.nn.Module, x: torch.Tensor, names: list[str]) -> tuple[dict, torch.Tensor]:
    """Outputs of the named submodules of ``model`` on ``x`` (no grad), and the model's output."""
    mods = dict(model.named_modules())
    outs: dict = {}
    hooks = [mods[n].register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o)) for n in names]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    return outs, y
