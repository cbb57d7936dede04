"""Input layout: batch-first or time-less batches get a clear message naming the fix instead of being
silently misread as time-major (models declare their layout; checkpoints record it)."""

from __future__ import annotations

import warnings

import pytest
import torch

import neuromorph as nm
import neuromorph.data as nd
from neuromorph.errors import ShapeError
from neuromorph.train import checkpoint as ck


def frame_net() -> torch.nn.Sequential:
    return torch.nn.Sequential(nm.nn.Conv2d(2, 4, 5, stride=2), nm.nn.LIF(reset="hard"), nm.nn.Flatten(),
                               nm.nn.Linear(4 * 15 * 15, 10), nm.nn.LI())


ck.register_builder("tests.layout_frame_net", frame_net)


@pytest.fixture(scope="module")
def nmnist_test(shared_data):
    return nd.NMNIST(root=str(shared_data / "nmnist"), split="test", transform=nd.ToFrame((34, 34, 2), n_time_bins=5))


def test_default_dataloader_collate_is_refused_with_the_fix(nmnist_test):
    model = nm.nn.expect_input(frame_net().eval(), (2, 34, 34))
    x, _ = next(iter(torch.utils.data.DataLoader(nmnist_test, batch_size=4)))
    assert x.dtype == torch.int16 and x.shape == (4, 5, 2, 34, 34)  # what torch's default collate gives
    with pytest.raises(ShapeError, match=r"batch-first.*collate_fn=neuromorph.data.collate_time_major"):
        model(x)
    x, _ = next(iter(torch.utils.data.DataLoader(nmnist_test, batch_size=4, collate_fn=nd.collate_time_major)))
    assert model(x).shape == (5, 4, 10)


def test_frames_without_time_axis_and_wrong_features():
    model = nm.nn.expect_input(frame_net().eval(), (2, 34, 34))
    with pytest.raises(ShapeError, match=r"no time axis.*unsqueeze\(0\).*Streaming"):
        model(torch.zeros(8, 2, 34, 34))  # [B, C, H, W]: without the check, read as T=8, B=2
    with pytest.raises(ShapeError, match=r"expected time-major \[T, B, 2, 34, 34\]"):
        model(torch.zeros(5, 8, 34, 34, 2))


def test_declared_steps_flag_batch_first_float_input():
    model = nm.nn.expect_input(frame_net().eval(), (2, 34, 34), steps=5)
    with pytest.warns(UserWarning, match=r"axis 1.*x.transpose\(0, 1\)"):
        model(torch.zeros(3, 5, 2, 34, 34))  # [B=3, T=5, ...]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.zeros(5, 3, 2, 34, 34))  # time-major: silent


def test_checkpoints_record_and_enforce_the_layout(tmp_path):
    path = nm.save_model(frame_net(), tmp_path / "m.pt", "tests.layout_frame_net", input_shape=(2, 34, 34), n_steps=5)
    model, info = nm.load_model(path)
    assert nm.nn.layout.input_layout(model) == nm.nn.InputLayout((2, 34, 34), 5)
    with pytest.raises(ShapeError, match="int16"):
        model(torch.zeros(4, 5, 2, 34, 34, dtype=torch.int16))
    assert model(torch.zeros(5, 4, 2, 34, 34)).shape == (5, 4, 10)
