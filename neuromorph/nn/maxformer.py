"""Max-Former blocks: max-pool patch embedding and depth-wise-convolution token mixers.

Source: Fang et al., "Spiking Neural Networks Need High-Frequency Information", NeurIPS 2025
(arXiv 2505.18608); official code ``bic-L/MaxFormer@6ddd4cc``, ``imagenet/{max_former,embedding_hub,
mixer_hub}.py``.
Method page: ``docs/methods/maxformer.md`` (equations, defaults, what neuromorph does differently).

All blocks act on time-major ``[T, B, C, H, W]`` real-valued tensors (the "membrane shortcut" stream)
and fire a LIF (τ = 2, hard reset to 0, detached reset: SpikingJelly's ``MultiStepLIFNode`` as used in
the code) before every convolution, so every convolution sees binary spikes:

    Embed(k, s):   LIF → conv k×k stride s → BN
    MaxEmbed:      LIF → conv 3×3 → BN → MaxPool(3, 2, 1)         (max-pool on the real BN output)
    EmbedMax:      s = LIF(x);  main = Embed_3×3(MaxPool(BN(conv3×3(s))));
                   shortcut = MaxPool(BN(conv1×1(s)));  out = main + shortcut       (halves H, W)
    DWC mixer:     x + BN(DWConv_k×k(LIF(x)))   (groups = C, with bias)
    S_MLP:         x + BN₂(conv1×1_{4C→C}(LIF(BN₁(conv1×1_{C→4C}(LIF(x))))))
    SSA:           Q, K, V = LIF(BN(conv1×1(LIF(x))));  A = LIF_{θ=0.5}(Q (Kᵀ V) · 0.125);
                   out = BN(conv1×1(A)) + x          (Spikformer-style, no softmax)
"""

from __future__ import annotations

import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.layers import BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, MaxPool2d
from neuromorph.nn.neurons import LIF

__all__ = ["Embed", "MaxEmbed", "EmbedMax", "DWCMixer", "SpikingMLP", "SpikingSelfAttention2d", "MaxFormerBlock"]


def _lif(threshold: float = 1.0, backend: str = "auto") -> LIF:
    # SpikingJelly MultiStepLIFNode(tau=2.0, detach_reset=True): decay_input, hard reset to 0
    return LIF(tau=2.0, threshold=threshold, reset="hard", v_reset=0.0, decay_input=True, detach_reset=True,
               backend=backend)


def _check5(x: torch.Tensor, name: str, channels: int) -> None:
    if x.dim() != 5 or x.shape[2] != channels:
        raise ShapeError(f"{name}: expected [T, B, {channels}, H, W], got shape {tuple(x.shape)}")


class Embed(torch.nn.Module):
    """LIF → conv k×k (stride s, padding k//2) → BN. ``spiking_input=False`` drops the LIF (the stem's
    first conv sees the image)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 spiking_input: bool = True, backend: str = "auto") -> None:
        super().__init__()
        self.in_channels = in_channels
        self.lif = _lif(backend=backend) if spiking_input else torch.nn.Identity()
        self.conv = Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.bn = BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check5(x, type(self).__name__, self.in_channels)
        return self.bn(self.conv(self.lif(x)))


class MaxEmbed(Embed):
    """LIF → conv 3×3 → BN → MaxPool(3, stride 2, padding 1): the max-pool acts on real values (§8)."""

    def __init__(self, in_channels: int, out_channels: int, backend: str = "auto") -> None:
        super().__init__(in_channels, out_channels, 3, 1, backend=backend)
        self.pool = MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(super().forward(x))


class EmbedMax(torch.nn.Module):
    """Down-sampling patch embedding (×2) with a max-pooled membrane shortcut (Max-Former ``Embed_Max``).

    Both paths read the same input spikes s = LIF(x): main = Embed(C→C, 3×3)(MaxPool(BN(conv3×3(s))))
    and shortcut = MaxPool(BN(conv1×1(s))); the output is their (real-valued) sum.
    """

    def __init__(self, in_channels: int, out_channels: int, backend: str = "auto") -> None:
        super().__init__()
        self.in_channels = in_channels
        self.lif = _lif(backend=backend)
        self.conv = Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = BatchNorm2d(out_channels)
        self.pool = MaxPool2d(3, stride=2, padding=1)
        self.embed = Embed(out_channels, out_channels, 3, 1, backend=backend)
        self.shortcut_conv = Conv2d(in_channels, out_channels, 1, bias=False)
        self.shortcut_bn = BatchNorm2d(out_channels)
        self.shortcut_pool = MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check5(x, "EmbedMax", self.in_channels)
        s = self.lif(x)
        main = self.embed(self.pool(self.bn(self.conv(s))))
        return main + self.shortcut_pool(self.shortcut_bn(self.shortcut_conv(s)))


class DWCMixer(torch.nn.Module):
    """Depth-wise convolution token mixer: x + BN(DWConv_{k×k}(LIF(x))), groups = C, with bias (k ∈ {3, 5, 7})."""

    def __init__(self, channels: int, kernel_size: int = 3, backend: str = "auto") -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ConfigError(f"DWCMixer: kernel_size={kernel_size} must be odd so that the shape is kept")
        self.channels = channels
        self.lif = _lif(backend=backend)
        self.conv = Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=True)
        self.bn = BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check5(x, "DWCMixer", self.channels)
        return x + self.bn(self.conv(self.lif(x)))


class SpikingMLP(torch.nn.Module):
    """x + BN₂(conv1×1_{rC→C}(LIF(BN₁(conv1×1_{C→rC}(LIF(x)))))) (no inner residual: widths differ)."""

    def __init__(self, channels: int, ratio: int = 4, backend: str = "auto") -> None:
        super().__init__()
        hidden = channels * ratio
        self.channels = channels
        self.lif1 = _lif(backend=backend)
        self.fc1 = Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = BatchNorm2d(hidden)
        self.lif2 = _lif(backend=backend)
        self.fc2 = Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check5(x, "SpikingMLP", self.channels)
        h = self.bn1(self.fc1(self.lif1(x)))
        return x + self.bn2(self.fc2(self.lif2(h)))


class SpikingSelfAttention2d(torch.nn.Module):
    """Spikformer-style spiking self-attention on the H·W tokens (no softmax; as in the Max-Former code).

    Q, K, V = LIF(BN(conv1×1(LIF(x)))); per head A = LIF_{θ=0.5}(Q (Kᵀ V) · scale); out = BN(conv1×1(A)) + x.
    """

    def __init__(self, channels: int, heads: int = 8, scale: float = 0.125, backend: str = "auto") -> None:
        super().__init__()
        if channels % heads:
            raise ConfigError(f"SpikingSelfAttention2d: channels={channels} is not divisible by heads={heads}")
        self.channels, self.heads, self.scale = channels, heads, scale
        self.lif_in = _lif(backend=backend)
        self.q = torch.nn.Sequential(Conv1d(channels, channels, 1, bias=False), BatchNorm1d(channels), _lif(backend=backend))
        self.k = torch.nn.Sequential(Conv1d(channels, channels, 1, bias=False), BatchNorm1d(channels), _lif(backend=backend))
        self.v = torch.nn.Sequential(Conv1d(channels, channels, 1, bias=False), BatchNorm1d(channels), _lif(backend=backend))
        self.attn_lif = _lif(threshold=0.5, backend=backend)
        self.proj = Conv1d(channels, channels, 1, bias=False)
        self.proj_bn = BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check5(x, "SpikingSelfAttention2d", self.channels)
        T, B, C, H, W = x.shape
        s = self.lif_in(x.flatten(3))  # [T, B, C, N]
        heads = lambda t: t.view(T, B, self.heads, C // self.heads, H * W).transpose(-1, -2)  # noqa: E731  [T,B,h,N,d]
        q, k, v = heads(self.q(s)), heads(self.k(s)), heads(self.v(s))
        a = q @ (k.transpose(-1, -2) @ v) * self.scale  # [T, B, h, N, d]
        a = self.attn_lif(a.transpose(-1, -2).reshape(T, B, C, H * W))
        return (self.proj_bn(self.proj(a)) + x.flatten(3)).view(T, B, C, H, W)


class MaxFormerBlock(torch.nn.Module):
    """Token mixer then S_MLP: ``mixer="dwc"`` (k×k depth-wise conv, early stages) or ``"ssa"`` (late stages)."""

    def __init__(self, channels: int, mixer: str = "dwc", kernel_size: int = 3, heads: int = 8, mlp_ratio: int = 4,
                 backend: str = "auto") -> None:
        super().__init__()
        if mixer == "dwc":
            self.mixer: torch.nn.Module = DWCMixer(channels, kernel_size, backend=backend)
        elif mixer == "ssa":
            self.mixer = SpikingSelfAttention2d(channels, heads, backend=backend)
        elif mixer == "none":
            self.mixer = torch.nn.Identity()
        else:
            raise ConfigError(f"MaxFormerBlock: mixer={mixer!r} is not valid; choose one of 'dwc', 'ssa', 'none'")
        self.mlp = SpikingMLP(channels, mlp_ratio, backend=backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.mixer(x))
