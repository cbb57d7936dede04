"""The N-MNIST convolutional SNN on real N-MNIST recordings."""

import warnings

import pytest
import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.models import NMNISTConvSNN
from neuromorph.nn import LIF


def _real_frames(shared_data, per_class=3, n_bins=10):
    from neuromorph.data import ToFrame, read_nmnist

    to_frame = ToFrame((34, 34, 2), n_time_bins=n_bins)
    xs, ys = [], []
    for label in range(10):
        files = sorted((shared_data / "nmnist" / "Train" / str(label)).glob("*.bin"))[:per_class]
        for f in files:
            xs.append(torch.as_tensor(to_frame(read_nmnist(f)), dtype=torch.float32))  # [T, 2, 34, 34]
            ys.append(label)
    return torch.stack(xs, 1), torch.tensor(ys)  # [T, B, 2, 34, 34]


def test_shapes_parameters_and_neurons():
    m = NMNISTConvSNN()
    out = m(torch.rand(4, 3, 2, 34, 34))
    assert out.shape == (4, 3, 10)
    n_params = sum(p.numel() for p in m.parameters())
    assert n_params < 200_000  # trains in minutes on two CPU cores
    lifs = [x for x in m.modules() if isinstance(x, LIF)]
    assert len(lifs) == 3 and all(x.tau.item() == 2.0 for x in lifs)
    assert all(x.tau.item() == 3.0 for x in NMNISTConvSNN(tau=3.0).modules() if isinstance(x, LIF))


def test_input_layout_is_declared_and_batch_first_input_is_caught():
    """The model declares its layout with nm.nn.expect_input (as a model loaded from a checkpoint does):
    batch-first input [B, T, 2, 34, 34] is caught, float (with the model's T) or integer counts."""
    from neuromorph.nn.layout import input_layout

    m = NMNISTConvSNN(channels=(4, 8), steps=5).eval()
    assert input_layout(m).shape == (2, 34, 34) and input_layout(m).steps == 5
    x = (torch.rand(5, 3, 2, 34, 34) < 0.2).float()  # time-major [T, B, ...]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = m(x)
    assert y.shape == (5, 3, 10)
    with pytest.warns(UserWarning, match=r"\(3, 5, 2, 34, 34\).*batch-first"):
        m(x.transpose(0, 1))  # float batch-first [B, T, ...]: read as T=3, B=5 without the declaration
    with pytest.raises(ShapeError, match="batch-first.*collate_time_major"):
        m(x.transpose(0, 1).to(torch.int16))  # torch's default collate of neuromorph samples
    with pytest.raises(ShapeError, match="int16"):
        m(x.to(torch.int16))  # integer counts: convert (the collate does), never a silent guess


def test_learns_on_real_nmnist(shared_data):
    torch.manual_seed(0)
    x, y = _real_frames(shared_data, per_class=2, n_bins=4)
    assert x.shape == (4, 20, 2, 34, 34) and x.sum() > 0
    m = NMNISTConvSNN(channels=(12, 32), dropout=0.0, train_shift=0)  # small: a cheap test
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(m(x).mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # fitting 20 real samples: the loss must fall well below chance level (ln 10 = 2.30)
    assert losses[-1] < 0.5 * losses[0] and losses[-1] < 1.0
    with torch.no_grad():  # (train-mode BN: 10 steps are too few for converged running statistics)
        assert (m(x).mean(0).argmax(1) == y).float().mean() >= 0.8
    # hidden layers emit binary spikes at a moderate rate
    spikes = []
    hooks = [mod.register_forward_hook(lambda mod, i, o: spikes.append(o)) for mod in m.modules() if isinstance(mod, LIF)]
    with torch.no_grad():
        m(x)
    for h in hooks:
        h.remove()
    for s in spikes:
        assert ((s == 0) | (s == 1)).all() and 0.001 < s.mean() < 0.5


def test_train_shift_moves_each_sample_rigidly_and_only_in_training():
    from neuromorph.models.nmnist import random_shift

    g = torch.Generator().manual_seed(0)
    x = torch.zeros(3, 16, 2, 34, 34)
    x[:, :, :, 10:20, 12:22] = torch.rand(3, 16, 2, 10, 10, generator=g) + 0.1
    y = random_shift(x, 3, generator=g)
    assert torch.allclose(y.sum(), x.sum())  # the content stays inside the frame: only moved
    moved = 0
    for b in range(16):
        nz = y[0, b, 0].nonzero()
        dy, dx = (nz.min(0).values - torch.tensor([10, 12])).tolist()
        assert -3 <= dy <= 3 and -3 <= dx <= 3
        # the same translation at every time step and channel
        assert torch.equal(y[:, b, :, 10 + dy:20 + dy, 12 + dx:22 + dx], x[:, b, :, 10:20, 12:22])
        moved += (dy, dx) != (0, 0)
    assert moved >= 8
    m = NMNISTConvSNN().eval()
    frames = torch.rand(3, 2, 2, 34, 34)
    assert torch.equal(m(frames), m(frames))  # no augmentation at evaluation


def test_bad_input_and_config():
    with pytest.raises(ShapeError, match=r"NMNISTConvSNN.*\[T, B, 2, 34, 34\]"):
        NMNISTConvSNN()(torch.rand(3, 2, 34, 34))
    with pytest.raises(ConfigError, match="channels"):
        NMNISTConvSNN(channels=())
    with pytest.raises(ConfigError, match="train_shift"):
        NMNISTConvSNN(train_shift=-1)
