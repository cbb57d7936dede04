"""The small masked spiking transformer (QCFS ANN + RSM, converted to IF neurons; METHODS.md §5)."""

import pytest
import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.models.transformer import MaskedSpikingTransformer
from neuromorph.nn.masking import SpikeMask
from neuromorph.nn.qcfs import QCFSNeuron, convert_to_snn


def _toy_data(n=256, seed=0):
    """8×8 images, 4 classes: a bright 2×2 blob in one of the quadrants, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.3
    for i, c in enumerate(y.tolist()):
        r, s = 4 * (c // 2) + 1, 4 * (c % 2) + 1
        x[i, 0, r:r + 2, s:s + 2] += 1.0
    return x, y


def _small(**kw):
    return MaskedSpikingTransformer(in_channels=1, image_size=8, num_classes=4, patch_size=2, dim=32, depth=1, heads=2,
                                    mlp_ratio=2, levels=8, **kw)


def test_masks_sit_on_q_k_and_attention_only():
    model = _small(mask_ratio=0.75)
    names = sorted(n for n, m in model.named_modules() if isinstance(m, SpikeMask))
    assert names == ["blocks.0.attn.mask_attn", "blocks.0.attn.mask_k", "blocks.0.attn.mask_q"]
    with_mlp = _small(mask_ratio=0.75, mask_mlp=True)
    assert sum(isinstance(m, SpikeMask) for m in with_mlp.modules()) == 4
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 4)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = _small()
    x, y = _toy_data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(4):
        for i in range(0, len(x), 32):
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def test_ann_learns_and_converted_snn_keeps_accuracy(trained):
    x, y = _toy_data(128, seed=1)
    with torch.no_grad():
        ann_acc = (trained(x).argmax(1) == y).float().mean().item()
        snn = convert_to_snn(trained)
        assert sum(isinstance(m, QCFSNeuron) for m in snn.modules()) == 8  # pre-attn, q, k, v, scores, pre-mlp, mlp, head
        out = snn(x, T=32)
        snn_acc = (out.sum(0).argmax(1) == y).float().mean().item()
    assert ann_acc >= 0.95
    assert snn_acc >= 0.9
    # converted neurons emit spikes: every QCFSNeuron output is a multiple of its λ in {0, λ}
    n = next(m for m in snn.modules() if isinstance(m, QCFSNeuron))
    assert n.lam > 0


def test_rsm_in_the_snn_drops_the_configured_share_of_q_spikes(trained):
    x, _ = _toy_data(64, seed=2)
    model = convert_to_snn(trained)
    model.model.set_mask_ratio(0.75)
    seen = {"in": 0.0, "out": 0.0}

    def hook(mod, inp, out):
        seen["in"] += float((inp[0] != 0).sum())
        seen["out"] += float((out != 0).sum())

    h = model.model.blocks[0].attn.mask_q.register_forward_hook(hook)
    with torch.no_grad():
        model(x, T=16)
    h.remove()
    assert seen["in"] > 1000
    assert abs(seen["out"] / seen["in"] - 0.25) < 0.03


def test_bad_input():
    with pytest.raises(ShapeError, match="MaskedSpikingTransformer"):
        _small()(torch.rand(2, 2, 8, 8))
    with pytest.raises(ConfigError, match="patch_size"):
        MaskedSpikingTransformer(image_size=30, patch_size=4)
    with pytest.raises(ConfigError, match="SpikeMask"):
        _small().set_mask_ratio(1.5)
