"""A small masked spiking transformer: QCFS ANN with Random Spike Masking, converted to IF neurons.

Method page: ``docs/methods/masking.md``.

Follows the Masked Spiking Transformer recipe (Wang et al., ICCV 2023; code
``bic-L/Masked-Spiking-Transformer@368c9a5``, ``models/mst.py``) at a size that trains on
a CPU: the network is trained as an ANN whose activations are ``QCFS`` and whose norms are BatchNorm,
then :func:`neuromorph.nn.convert_to_snn` turns every QCFS into a soft-reset IF neuron (initial
membrane ½) and the image is presented at every step.

Random Spike Masking sits where the official ``SpikingWindowAttention`` puts it:
on the Q spikes and the K spikes before Q·Kᵀ, and on the attention-score spikes after their
activation, before the softmax (which stays: a non-spiking operation). V is not masked. The paper's
Fig. 2(e) also masks the MLP input; the released code does not, so ``mask_mlp=False`` by default.

Simplifications against MST (a Swin-T): one stage of global attention over all patches instead of
shifted windows and patch merging, and no relative position bias (a learned position embedding is
added to the patch tokens instead).
"""

from __future__ import annotations

import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.masking import SpikeMask
from neuromorph.nn.qcfs import QCFS

__all__ = ["MaskedSpikingTransformer", "SpikingSelfAttention", "TransformerBlock"]


class _TokenBN(torch.nn.BatchNorm1d):
    """BatchNorm over the feature dim of tokens ``[B, N, D]`` (MST replaces LayerNorm by BN)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class SpikingSelfAttention(torch.nn.Module):
    """Multi-head attention on QCFS "spikes" with RSM on Q, K and the attention scores.

    q, k, v = QCFS(BN(Linear(x)));  q, k ← mask(q), mask(k)
    A = mask(QCFS(q kᵀ · d_h^{-1/2}));  out = BN(Linear(softmax(A) v))
    """

    def __init__(self, dim: int, heads: int, mask_ratio: float = 0.0, levels: int = 16) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"SpikingSelfAttention: dim={dim} is not divisible by heads={heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = torch.nn.Sequential(torch.nn.Linear(dim, dim, bias=False), _TokenBN(dim), QCFS(levels))
        self.k = torch.nn.Sequential(torch.nn.Linear(dim, dim, bias=False), _TokenBN(dim), QCFS(levels))
        self.v = torch.nn.Sequential(torch.nn.Linear(dim, dim, bias=False), _TokenBN(dim), QCFS(levels))
        self.mask_q = SpikeMask(mask_ratio)
        self.mask_k = SpikeMask(mask_ratio)
        self.attn_act = QCFS(levels)
        self.mask_attn = SpikeMask(mask_ratio)
        self.proj = torch.nn.Linear(dim, dim)
        self.proj_bn = _TokenBN(dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        return x.view(B, N, self.heads, D // self.heads).transpose(1, 2)  # [B, h, N, d]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q = self._split(self.mask_q(self.q(x)))
        k = self._split(self.mask_k(self.k(x)))
        v = self._split(self.v(x))
        scores = self.mask_attn(self.attn_act(q @ k.transpose(-2, -1) * self.scale))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, N, D)
        return self.proj_bn(self.proj(out))


class TransformerBlock(torch.nn.Module):
    """x ← x + Attn(QCFS(BN(x)));  x ← x + MLP(QCFS(BN(x))),  MLP = Linear → BN → QCFS → Linear.

    The residual stream stays real-valued (a linear sum, exact under conversion); every Linear sees
    QCFS outputs, i.e. spikes after conversion.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4, mask_ratio: float = 0.0, mask_mlp: bool = False,
                 levels: int = 16) -> None:
        super().__init__()
        self.pre_attn = torch.nn.Sequential(_TokenBN(dim), QCFS(levels))
        self.attn = SpikingSelfAttention(dim, heads, mask_ratio, levels)
        self.pre_mlp = torch.nn.Sequential(_TokenBN(dim), QCFS(levels))
        self.mask_mlp = SpikeMask(mask_ratio) if mask_mlp else torch.nn.Identity()
        hidden = dim * mlp_ratio
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden), _TokenBN(hidden), QCFS(levels), torch.nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.pre_attn(x))
        return x + self.mlp(self.mask_mlp(self.pre_mlp(x)))


class MaskedSpikingTransformer(torch.nn.Module):
    """Small MST-style transformer for images ``[B, C, H, W]`` (ANN form; convert with ``convert_to_snn``).

    Args:
        in_channels, image_size, num_classes: the data (e.g. 2, 34, 10 for N-MNIST frames summed
            over time, or 1, 28, 10 for MNIST).
        patch_size: side of the non-overlapping patches (image_size must be a multiple).
        dim, depth, heads, mlp_ratio: transformer size (defaults: 64, 2, 4, 2; 73 k parameters).
        mask_ratio: RSM ratio r on Q, K and attention spikes (MST's released checkpoints use 0 and 0.75).
        mask_mlp: also mask the MLP input (paper Fig. 2(e); not in the released code).
        levels: QCFS quantisation steps L (16 in MST).

    Output: logits ``[B, num_classes]`` (mean over tokens → Linear). After conversion,
    ``snn(x, T)`` returns ``[T, B, num_classes]``; MST sums them over T.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, patch_size: int = 4,
                 dim: int = 64, depth: int = 2, heads: int = 4, mlp_ratio: int = 2, mask_ratio: float = 0.0,
                 mask_mlp: bool = False, levels: int = 16) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ConfigError(f"MaskedSpikingTransformer: image_size={image_size} is not a multiple of patch_size={patch_size}")
        self.in_channels, self.image_size = in_channels, image_size
        n_tokens = (image_size // patch_size) ** 2
        self.patch = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, dim, patch_size, stride=patch_size, bias=False), torch.nn.BatchNorm2d(dim),
        )
        self.pos = torch.nn.Parameter(torch.zeros(1, n_tokens, dim))
        torch.nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = torch.nn.Sequential(
            *[TransformerBlock(dim, heads, mlp_ratio, mask_ratio, mask_mlp, levels) for _ in range(depth)]
        )
        self.head_act = torch.nn.Sequential(_TokenBN(dim), QCFS(levels))
        self.head = torch.nn.Linear(dim, num_classes)

    def set_mask_ratio(self, ratio: float) -> None:
        """Change the RSM ratio of every mask (e.g. train at 0, evaluate the SNN at 0.75)."""
        for m in self.modules():
            if isinstance(m, SpikeMask):
                m.p = SpikeMask(ratio).p  # validates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ShapeError(
                f"MaskedSpikingTransformer: input must be [B, {self.in_channels}, {self.image_size}, {self.image_size}], "
                f"got {tuple(x.shape)}"
            )
        tokens = self.patch(x).flatten(2).transpose(1, 2) + self.pos  # [B, N, D]
        tokens = self.blocks(tokens)
        return self.head(self.head_act(tokens).mean(1))
