"""Random Spike Masking (RSM) of the Masked Spiking Transformer.

Source: Wang et al., "Masked Spiking Transformer", ICCV 2023; official code
``bic-L/Masked-Spiking-Transformer@368c9a5`` (``models/mst.py``).
Method page: ``docs/methods/masking.md`` (equations, defaults, what neuromorph does differently).

    out = s ⊙ m,   m ~ Bernoulli(1 − p) i.i.d. per element,

redrawn on every forward call (so per time step when a converted SNN is run step by step, and per
element of ``[T, B, ...]`` when a whole sequence is passed). There is **no** 1/(1 − p) rescaling, as in
the official code: masking removes spikes (and their synaptic operations) outright.
"""

from __future__ import annotations

import torch

from neuromorph.errors import ConfigError
from neuromorph.nn.protocol import LayerDecl, Role

__all__ = ["SpikeMask"]


class SpikeMask(torch.nn.Module):
    """Drop every spike independently with probability ``p`` (Random Spike Masking, MST §5).

    Args:
        p: masking ratio r in [0, 1]; ``p=0`` is the identity, ``p=1`` drops everything.
        seed: if given, masks come from a private ``torch.Generator`` seeded with it, so a run is
            reproducible without touching the global RNG.

    Active in training **and** inference (the paper masks at inference to save energy), unlike
    ``Dropout``. Its output is the masked spike tensor, so an energy monitor hooked on this module
    counts the spikes that actually reach the next layer (its layer role is ``mask``).
    """

    layer_decl = LayerDecl(Role.MASK, "spike_mask")

    def __init__(self, p: float = 0.75, seed: int | None = None) -> None:
        super().__init__()
        try:
            p = float(p)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"SpikeMask: p={p!r} is not a number; the masking probability must lie in [0, 1]") from exc
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise ConfigError(f"SpikeMask: p={p!r} is outside [0, 1]; it is the probability of dropping a spike")
        self.p = p
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        gen = self._generators.get(device)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(int(self.seed))
            self._generators[device] = gen
        return gen

    def reseed(self, seed: int | None = None) -> None:
        """Restart the mask stream (from ``seed`` if given, else from the constructor's seed)."""
        if seed is not None:
            self.seed = seed
        self._generators.clear()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        keep = torch.rand(x.shape, generator=self._generator(x.device), device=x.device) >= self.p
        return x * keep.to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (f", seed={self.seed}" if self.seed is not None else "")
