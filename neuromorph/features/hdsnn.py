"""HD-SNN: a layer of spiking neurons with heterogeneous synaptic delays, trained as a time-invariant
logistic regression on event streams.

Grimaldi & Perrinet, "Learning heterogeneous delays in a layer of spiking neurons for fast motion
detection", Biological Cybernetics 2023 (doi 10.1007/s00422-023-00975-8); equations as in
the paper's LaTeX source (SpikeAI/2023_GrimaldiPerrinet_HeterogeneousDelaySNN@dde1dca).
Method page: ``docs/methods/hdsnn.md`` (equations, defaults, what neuromorph does differently).

Input A ∈ {0,1}^{P×T×X×Y} (binned events), kernel 𝒦 ∈ ℝ^{C×P×D×Kx×Ky} (one weight per synapse
(polarity p, delay d, offset δx, δy) of output class c), bias b_c:

    B(c, t, x, y) = Σ_{p, d, δx, δy} 𝒦(c, p, d, δx, δy) · A(p, t − d, x − δx, y − δy)
    Pr(c | t, x, y) = σ(B(c, t, x, y) + b_c)

Conventions of this implementation: delays d = 0 … D−1 time bins (d = 0 is the current bin, so the
layer is causal: B at t only reads input at ≤ t); offsets δ = −(K−1)/2 … (K−1)/2 (K odd; kernel index
δ + (K−1)/2); input outside the sensor or before t = 0 is 0. With ``contrast_symmetry`` (the paper's
complex-cell heuristic, P = 2 only) the evidence is max(B(A), B(A with ON and OFF swapped)).
Training minimizes BCE against the one-hot label of the current motion at every (t, x, y).
Output spikes: a neuron (c, x, y) spikes at t when its evidence exceeds a threshold chosen so that it
fires at a target mean rate (the paper: 1 spike/s). Cost: every input event drives every nonzero
synapse once, so synaptic operations = events × nonzero weights (less the ones falling off the sensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch
import torch.nn.functional as F

from neuromorph.data.events import require_fields
from neuromorph.errors import ConfigError, DataFormatError, ShapeError, check_choice


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


class HDSNN(torch.nn.Module):
    """One layer of C × X × Y neurons with heterogeneous delays; ``forward`` returns the logits B + b.

    Args:
        n_classes: C, one output map per class (motion direction/speed).
        n_polarities: P (2 for ON/OFF events).
        n_delays: D, delays 0 … D−1 time bins.
        kernel_size: (Kx, Ky), odd spatial extent of each neuron's receptive field.
        contrast_symmetry: take the max of the evidence over the input and its ON/OFF swap (P = 2).
        seed: the kernel starts as N(0, 0.01²) from ``torch.Generator().manual_seed(seed)``.
    """

    def __init__(self, n_classes: int, n_polarities: int = 2, n_delays: int = 21,
                 kernel_size: tuple[int, int] = (17, 17), contrast_symmetry: bool = True, seed: int = 0):
        super().__init__()
        self.n_classes = _check_int("n_classes", n_classes, 1)
        self.n_polarities = _check_int("n_polarities", n_polarities, 1)
        self.n_delays = _check_int("n_delays", n_delays, 1)
        try:
            kx, ky = (int(k) for k in kernel_size)
        except (TypeError, ValueError):
            raise ConfigError(f"kernel_size={kernel_size!r} must be (Kx, Ky)") from None
        if kx < 1 or ky < 1 or kx % 2 == 0 or ky % 2 == 0:
            raise ConfigError(f"kernel_size={kernel_size!r} must be two odd positive integers (centred offsets)")
        self.kernel_size = (kx, ky)
        if contrast_symmetry and self.n_polarities != 2:
            raise ConfigError(f"contrast_symmetry=True needs n_polarities=2 (ON/OFF), got {n_polarities}")
        self.contrast_symmetry = bool(contrast_symmetry)
        g = torch.Generator().manual_seed(int(seed))
        shape = (self.n_classes, self.n_polarities, self.n_delays, kx, ky)
        self.kernel = torch.nn.Parameter(0.01 * torch.randn(shape, generator=g))
        self.bias = torch.nn.Parameter(torch.zeros(self.n_classes))

    def _check_input(self, a: torch.Tensor) -> torch.Tensor:
        if not isinstance(a, torch.Tensor):
            raise ShapeError(f"input must be a torch.Tensor [B, P, T, X, Y], got {type(a).__name__}")
        if a.dim() == 4:
            a = a.unsqueeze(0)
        if a.dim() != 5 or a.shape[1] != self.n_polarities:
            raise ShapeError(f"input must be [B, P={self.n_polarities}, T, X, Y] (or [P, T, X, Y]), got "
                             f"{tuple(a.shape)}")
        return a.to(self.kernel.dtype)

    def _conv(self, a: torch.Tensor) -> torch.Tensor:
        # conv3d correlates: out(t) = Σ_i w(i) a(t + i − pad). Flipping the kernel in d, δx, δy and
        # padding D−1 bins in front turns it into the causal convolution B = Σ 𝒦(d, δ) A(t − d, x − δ).
        rx, ry = (self.kernel_size[0] - 1) // 2, (self.kernel_size[1] - 1) // 2
        padded = F.pad(a, (ry, ry, rx, rx, self.n_delays - 1, 0))
        return F.conv3d(padded, self.kernel.flip(2, 3, 4))

    def evidence(self, a: torch.Tensor) -> torch.Tensor:
        """B(c, t, x, y) without bias: [B, C, T, X, Y] for input [B, P, T, X, Y]."""
        a = self._check_input(a)
        b = self._conv(a)
        if self.contrast_symmetry:
            b = torch.maximum(b, self._conv(a.flip(1)))
        return b

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Logits B + b_c, [B, C, T, X, Y]; σ of it is Pr(c | t, x, y)."""
        return self.evidence(a) + self.bias.view(1, -1, 1, 1, 1)

    def spikes(self, a: torch.Tensor, threshold: float) -> torch.Tensor:
        """Output spikes [B, C, T, X, Y]: neuron (c, x, y) fires at t when B + b_c > ``threshold``
        (choose it with :func:`spike_threshold` for a target rate, as the paper does)."""
        with torch.no_grad():
            return (self(a) > threshold).to(self.kernel.dtype)

    @property
    def n_synapses(self) -> int:
        """Nonzero weights of the kernel (the synapses a pruned layer keeps)."""
        return int((self.kernel.detach() != 0).sum())

    def pruned(self, n_keep: int) -> "HDSNN":
        """A copy that keeps the ``n_keep`` weights of largest |𝒦| and sets the rest to 0 (ties: lower index)."""
        total = self.kernel.numel()
        n_keep = _check_int("n_keep", n_keep, 0)
        if n_keep > total:
            raise ConfigError(f"n_keep={n_keep} exceeds the kernel's {total} weights")
        flat = self.kernel.detach().abs().flatten()
        mask = torch.zeros(total, dtype=torch.bool, device=self.kernel.device)
        mask[torch.argsort(flat, descending=True, stable=True)[:n_keep]] = True
        return self._with_kernel(self.kernel.detach() * mask.view_as(self.kernel))

    def shortened(self, n_delays_kept: int) -> "HDSNN":
        """A copy that keeps only delays 0 … n_delays_kept − 1 (the paper's shortening baseline)."""
        n = _check_int("n_delays_kept", n_delays_kept, 0)
        if n > self.n_delays:
            raise ConfigError(f"n_delays_kept={n} exceeds n_delays={self.n_delays}")
        k = self.kernel.detach().clone()
        k[:, :, n:] = 0
        return self._with_kernel(k)

    def _with_kernel(self, kernel: torch.Tensor) -> "HDSNN":
        twin = HDSNN(self.n_classes, self.n_polarities, self.n_delays, self.kernel_size, self.contrast_symmetry)
        twin = twin.to(dtype=self.kernel.dtype, device=self.kernel.device)
        with torch.no_grad():
            twin.kernel.copy_(kernel)
            twin.bias.copy_(self.bias.detach())
        return twin


def bin_events(events: np.ndarray, sensor_size: tuple[int, int], n_steps: int, dt: float,
               n_polarities: int = 2) -> torch.Tensor:
    """Binary input tensor A [P, T, X, Y]: A(p, t, x, y) = 1 if some event (x, y, p) has ⌊t_µs / dt⌋ = t.

    ``dt`` is the bin width in µs (the paper: 1 ms). Events at or after ``n_steps · dt`` are dropped.
    """
    require_fields(events, ("x", "y", "t", "p"), "events")
    width, height = (int(s) for s in sensor_size)
    n_steps = _check_int("n_steps", n_steps, 1)
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)) or not 0 < dt < np.inf:
        raise ConfigError(f"dt={dt!r} must be > 0 (µs per bin)")
    x, y, p = (events[f].astype(np.int64) for f in ("x", "y", "p"))
    b = (events["t"].astype(np.int64) // dt).astype(np.int64)
    for name, v, hi in (("x", x, width), ("y", y, height), ("p", p, n_polarities)):
        bad = np.flatnonzero((v < 0) | (v >= hi))
        if bad.size:
            raise DataFormatError(f"events field {name!r}: event {int(bad[0])} has {name}={int(v[bad[0]])}, "
                                  f"outside [0, {hi})")
    if (b < 0).any():
        raise DataFormatError("events field 't' has negative timestamps")
    keep = b < n_steps
    a = np.zeros((n_polarities, n_steps, width, height), dtype=np.float32)
    a[p[keep], b[keep], x[keep], y[keep]] = 1.0
    return torch.from_numpy(a)


@numba.njit(cache=True)
def _event_driven(ps, ts, xs, ys, kernel, out):
    n_classes, _, n_delays, kx, ky = kernel.shape
    rx, ry = (kx - 1) // 2, (ky - 1) // 2
    n_t, n_x, n_y = out.shape[1], out.shape[2], out.shape[3]
    ops = 0
    for e in range(ps.shape[0]):
        p, t0, x0, y0 = ps[e], ts[e], xs[e], ys[e]
        for c in range(n_classes):
            for d in range(n_delays):
                t = t0 + d
                if t >= n_t:
                    break
                for i in range(kx):
                    x = x0 + i - rx
                    if x < 0 or x >= n_x:
                        continue
                    for j in range(ky):
                        w = kernel[c, p, d, i, j]
                        y = y0 + j - ry
                        if w != 0.0 and 0 <= y < n_y:
                            out[c, t, x, y] += w  # the spike arrives d bins later at (x + δx, y + δy)
                            ops += 1
    return ops


def evidence_from_events(a: torch.Tensor | np.ndarray, kernel: torch.Tensor | np.ndarray) -> tuple[np.ndarray, int]:
    """Event-driven evidence: for each input spike A(p, t, x, y) = 1 and each nonzero synapse
    𝒦(c, p, d, δx, δy), add the weight to B(c, t + d, x + δx, y + δy).

    The same B as :meth:`HDSNN.evidence` without contrast symmetry, and the number of
    synaptic operations it took (= the paper's cost model). ``a`` is one sample [P, T, X, Y].
    Returns (B [C, T, X, Y] float64, synaptic operations).
    """
    a = np.asarray(a.detach() if isinstance(a, torch.Tensor) else a)
    k = np.ascontiguousarray(np.asarray(kernel.detach() if isinstance(kernel, torch.Tensor) else kernel),
                             dtype=np.float64)
    if a.ndim != 4 or k.ndim != 5 or a.shape[0] != k.shape[1]:
        raise ShapeError(f"a must be [P, T, X, Y] and kernel [C, P, D, Kx, Ky] with equal P; got "
                         f"{a.shape} and {k.shape}")
    p, t, x, y = (v.astype(np.int64) for v in np.nonzero(a))
    out = np.zeros((k.shape[0],) + a.shape[1:])
    ops = _event_driven(p, t, x, y, k, out)
    return out, int(ops)


def spike_threshold(evidence: torch.Tensor, rate_hz: float, dt: float) -> float:
    """Threshold θ such that the neurons fire at ``rate_hz`` on average: the fraction of (c, t, x, y)
    entries with B > θ is ``rate_hz · dt · 1e-6`` (``dt`` in µs per bin). Spikes are ``B > θ``."""
    q = rate_hz * dt * 1e-6
    if not 0 < q < 1:
        raise ConfigError(f"rate_hz * dt = {q} spikes per bin must lie in (0, 1)")
    # numpy: torch.quantile refuses inputs over 16M entries, and a prefix of them would be a biased sample
    return float(np.quantile(evidence.detach().double().cpu().numpy().ravel(), 1.0 - q))


def per_step_prediction(logits: torch.Tensor, mode: str = "evidence") -> torch.Tensor:
    """Class per time step from ``logits`` [B, C, T, X, Y] -> [B, T].

    ``mode="evidence"`` (the paper's read-out): at each t, average the evidence over positions, apply
    σ, take the argmax. ``mode="probability"``: average σ(B + b) over positions instead, so that the
    rare positions where many delayed spikes coincide dominate (the linear average of the evidence
    only sees the input's spatial sum, apart from the contrast-symmetry max).
    """
    check_choice("mode", mode, ("evidence", "probability"))
    if mode == "evidence":
        return torch.sigmoid(logits.mean(dim=(3, 4))).argmax(dim=1)
    return torch.sigmoid(logits).mean(dim=(3, 4)).argmax(dim=1)


def accuracy(model: HDSNN, inputs: torch.Tensor, labels: torch.Tensor, warmup: int = 0,
             batch_size: int = 16, mode: str = "evidence") -> float:
    """Fraction of correct time steps t ≥ ``warmup`` (labels [N] of one motion per clip, or [N, T]);
    ``mode`` as in :func:`per_step_prediction`."""
    correct = total = 0
    with torch.no_grad():
        for s in range(0, len(inputs), batch_size):
            pred = per_step_prediction(model(inputs[s:s + batch_size]), mode)[:, warmup:]
            lab = labels[s:s + batch_size]
            lab = lab[:, None].expand_as(pred) if lab.dim() == 1 else lab[:, warmup:]
            correct += int((pred == lab).sum())
            total += pred.numel()
    return correct / total


@dataclass
class FitResult:
    losses: list[float]


def fit(model: HDSNN, inputs: torch.Tensor, labels: torch.Tensor, epochs: int = 10, lr: float = 1e-2,
        batch_size: int = 16, seed: int = 0) -> FitResult:
    """Train as time-invariant logistic regression: Adam on the mean BCE between σ(B + b) and the
    one-hot label of the clip's motion at every (c, t, x, y). ``inputs`` [N, P, T, X, Y], ``labels`` [N]
    (class per clip) or [N, T] (class per step). Returns the mean loss of each epoch."""
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 5:
        raise ShapeError(f"inputs must be a tensor [N, P, T, X, Y], got {getattr(inputs, 'shape', type(inputs))}")
    labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ShapeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    labels = labels.long()  # F.one_hot takes int64 only
    if labels.dim() not in (1, 2) or len(labels) != len(inputs):
        raise ShapeError(f"inputs must be [N, P, T, X, Y] and labels [N] or [N, T]; got {tuple(inputs.shape)} "
                         f"and {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= model.n_classes:
        raise ConfigError(f"labels must lie in [0, {model.n_classes})")
    epochs = _check_int("epochs", epochs, 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=g)
        total = 0.0
        for s in range(0, len(inputs), batch_size):
            idx = order[s:s + batch_size]
            logits = model(inputs[idx])
            lab = labels[idx]
            target = F.one_hot(lab, model.n_classes).to(logits.dtype)  # [B, C] or [B, T, C]
            if lab.dim() == 1:
                target = target[:, :, None, None, None].expand_as(logits)
            else:
                target = target.permute(0, 2, 1)[..., None, None].expand_as(logits)
            loss = F.binary_cross_entropy_with_logits(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(inputs))
    return FitResult(losses)


def motion_clips(n_clips: int, size: int = 24, n_steps: int = 32, n_directions: int = 8,
                 speeds: tuple[float, ...] = (1.0,), threshold: float = 1.0, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic motion stimuli in the manner of the paper (Grimaldi & Perrinet 2023, § Stimuli), scaled down.

    Each clip translates a random 1/f² texture (periodic, size × size) at one of ``n_directions`` ×
    ``len(speeds)`` velocities (speed in px per bin; sub-pixel shifts in Fourier space). Each pixel
    accumulates its intensity change in a residual; whenever the residual crosses ±``threshold`` it
    emits an ON (p = 1) or OFF (p = 0) event and every whole threshold it crossed is subtracted (A is
    binary, so a pixel emits at most one event per bin; the paper subtracts one threshold per event).
    Returns A [N, 2, T, X, Y] (binary, float32) and labels [N] = direction index + n_directions ·
    speed index. (The paper uses 128² whitened natural images and 36 classes; none ship here.)
    """
    n_clips = _check_int("n_clips", n_clips, 1)
    rng = np.random.default_rng(seed)
    fx = np.fft.fftfreq(size)[:, None]
    fy = np.fft.fftfreq(size)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    n_classes = n_directions * len(speeds)
    out = np.zeros((n_clips, 2, n_steps, size, size), dtype=np.float32)
    labels = rng.integers(0, n_classes, n_clips)
    for k in range(n_clips):
        spectrum = (rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))) / f
        spectrum[0, 0] = 0.0
        angle = 2 * np.pi * (labels[k] % n_directions) / n_directions
        speed = speeds[labels[k] // n_directions]
        vx, vy = speed * np.cos(angle), speed * np.sin(angle)
        frames = []
        for t in range(n_steps + 1):
            shift = np.exp(-2j * np.pi * (fx * vx * t + fy * vy * t))  # image(x - v t)
            img = np.real(np.fft.ifft2(spectrum * shift))
            frames.append(img)
        frames = np.array(frames)
        frames = (frames - frames.mean()) / frames.std()
        residual = np.zeros((size, size))
        for t in range(n_steps):
            residual += frames[t + 1] - frames[t]
            on = residual >= threshold
            off = residual <= -threshold
            out[k, 1, t][on] = 1.0
            out[k, 0, t][off] = 1.0
            residual[on] -= threshold * np.floor(residual[on] / threshold)
            residual[off] += threshold * np.floor(-residual[off] / threshold)
    return torch.from_numpy(out), torch.from_numpy(labels)
