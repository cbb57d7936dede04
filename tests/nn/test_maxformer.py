"""Max-Former blocks (METHODS.md §8(d))."""

import pytest
import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn import LIF
from neuromorph.nn.maxformer import DWCMixer, Embed, EmbedMax, MaxEmbed, MaxFormerBlock, SpikingMLP, SpikingSelfAttention2d


def _x(C=8, H=8, W=8, T=3, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, C, H, W, generator=g) * 2


def test_embed_max_halves_height_and_width():
    out = EmbedMax(8, 16)(_x(8, 8, 10))
    assert out.shape == (3, 2, 16, 4, 5)
    assert MaxEmbed(8, 12)(_x(8, 9, 9)).shape == (3, 2, 12, 5, 5)
    assert Embed(8, 12, 3, 2)(_x()).shape == (3, 2, 12, 4, 4)


def test_embed_max_is_main_plus_maxpooled_shortcut_on_the_same_spikes():
    torch.manual_seed(1)
    m = EmbedMax(4, 6).eval()
    x = _x(4)
    s = m.lif(x)
    main = m.embed(m.pool(m.bn(m.conv(s))))
    short = torch.nn.functional.max_pool2d(m.shortcut_bn(m.shortcut_conv(s)).flatten(0, 1), 3, 2, 1).unflatten(0, (3, 2))
    assert torch.allclose(m(x), main + short)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_dwc_mixer_keeps_shape_and_parameter_count(k):
    C = 8
    m = DWCMixer(C, k)
    assert m(_x(C)).shape == (3, 2, C, 8, 8)
    assert sum(p.numel() for p in m.conv.parameters()) == C * k * k + C
    assert m.conv.groups == C


def test_dwc_mixer_with_zero_conv_and_bn_is_identity():
    m = DWCMixer(8, 5)
    with torch.no_grad():
        m.conv.weight.zero_()
        m.conv.bias.zero_()
        m.bn.weight.zero_()
        m.bn.bias.zero_()
    x = _x()
    assert torch.equal(m(x), x)
    mlp = SpikingMLP(8)
    with torch.no_grad():
        mlp.bn2.weight.zero_()
        mlp.bn2.bias.zero_()
    assert torch.equal(mlp(x), x)


def test_every_convolution_after_a_lif_sees_binary_spikes():
    torch.manual_seed(2)
    net = torch.nn.Sequential(
        Embed(3, 8, 3, 1, spiking_input=False), EmbedMax(8, 16), MaxFormerBlock(16, "dwc", 3),
        MaxFormerBlock(16, "ssa", heads=4),
    )
    seen = []

    def grab(mod, inp, out):
        seen.append((type(mod).__name__, inp[0]))

    hooks = [m.register_forward_hook(grab) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv1d))]
    out = net(torch.rand(2, 2, 3, 8, 8))
    for h in hooks:
        h.remove()
    assert out.shape == (2, 2, 16, 4, 4)
    convs_after_lif = seen[1:]  # the stem's conv sees the image
    assert len(convs_after_lif) >= 10
    for name, x in convs_after_lif:
        assert ((x == 0) | (x == 1)).all(), name
    assert not ((seen[0][1] == 0) | (seen[0][1] == 1)).all()


def test_ssa_matches_a_direct_transcription():
    torch.manual_seed(3)
    m = SpikingSelfAttention2d(8, heads=2).eval()
    x = _x(8, 4, 4)
    T, B, C, H, W = x.shape
    s = m.lif_in(x.flatten(3))
    q, k, v = m.q(s), m.k(s), m.v(s)  # [T, B, C, N]
    outs = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        qh, kh, vh = (t[:, :, sl].transpose(-1, -2) for t in (q, k, v))  # [T, B, N, d]
        outs.append((qh @ (kh.transpose(-1, -2) @ vh) * 0.125).transpose(-1, -2))
    a = m.attn_lif(torch.cat(outs, 2))
    ref = (m.proj_bn(m.proj(a)) + x.flatten(3)).view(T, B, C, H, W)
    assert torch.allclose(m(x), ref, atol=1e-6)
    assert m.attn_lif.threshold.item() == 0.5


def test_lifs_are_the_code_neuron():
    lif = next(m for m in DWCMixer(4).modules() if isinstance(m, LIF))
    assert lif.tau.item() == 2.0 and lif.reset == "hard" and lif.detach_reset and lif.decay_input


def test_bad_input():
    with pytest.raises(ShapeError, match="DWCMixer"):
        DWCMixer(8)(torch.rand(3, 2, 4, 8, 8))
    with pytest.raises(ConfigError, match="odd"):
        DWCMixer(8, 4)
    with pytest.raises(ConfigError, match="mixer"):
        MaxFormerBlock(8, "attention")
    with pytest.raises(ConfigError, match="heads"):
        SpikingSelfAttention2d(10, heads=4)


def test_block_lif_equals_spikingjelly_lif_node_of_the_official_code():
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    from spikingjelly.activation_based import functional as sjf

    torch.manual_seed(4)
    x = torch.randn(8, 4, 6, 5, 5, dtype=torch.float64) * 2
    ours = next(m for m in DWCMixer(6).modules() if isinstance(m, LIF)).double()
    sj = neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m")  # MultiStepLIFNode(tau=2.0, detach_reset=True)
    ref = sj(x)
    sjf.reset_net(sj)
    out = ours(x)
    assert 0 < out.mean() < 1
    assert torch.equal(out, ref)
