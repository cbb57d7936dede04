"""Event transforms as small frozen dataclasses that compose (Tonic's design, tonic/transforms.py).

Each transform is a callable ``transform(events, rng=None)``; its parameters are its fields, so two
transforms with equal fields are equal and hash alike, and ``cache_key(transform)`` identifies a
pipeline for the dataset disk cache. Random transforms (``random = True``) draw from ``rng`` (a
``numpy.random.Generator``; a fresh OS-seeded one when None), so a caller that passes a seeded
generator gets reproducible augmentation. The work is done by the pure functions in
``neuromorph.data.functional``; see them for the equations and sources.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from neuromorph.data import functional as F
from neuromorph.errors import ConfigError


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _tuple(name: str, value, n: int) -> tuple:
    try:
        out = tuple(value)
    except TypeError as exc:
        raise ConfigError(f"{name} must be a tuple of {n} numbers, got {value!r}") from exc
    if len(out) != n:
        raise ConfigError(f"{name} must have {n} entries, got {value!r}")
    return out


class Transform:
    """Base of all transforms: ``random`` says whether two calls on the same events may differ."""

    random = False

    def __call__(self, events: np.ndarray, rng: np.random.Generator | None = None):  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class Compose(Transform):
    """Apply ``transforms`` in order: ``Compose((a, b))(ev) == b(a(ev))``; ``rng`` goes to each."""

    transforms: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "transforms", tuple(self.transforms))
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise ConfigError(f"Compose: transforms[{i}] ({t!r}) is not callable")

    @property
    def random(self) -> bool:  # type: ignore[override]
        return any(getattr(t, "random", True) for t in self.transforms)

    def __call__(self, events, rng=None):
        for t in self.transforms:
            events = t(events, rng) if isinstance(t, Transform) else t(events)
        return events


@dataclass(frozen=True)
class ToFrame(Transform):
    """Events -> frames ``[T, P, H, W]`` (Tonic convention); exactly one of ``time_window`` (µs),
    ``event_count``, ``n_time_bins``. ``sensor_size = (W, H, P)``. See ``functional.to_frame``.

    Example:
        >>> from neuromorph.data.events import make_events
        >>> ev = make_events(x=[0, 1, 1, 0], y=[0, 0, 1, 1], t=[0, 400, 1200, 1500], p=[1, 0, 1, 1])
        >>> to_frames = ToFrame(sensor_size=(2, 2, 2), time_window=1000, include_incomplete=True)  # 1 ms
        >>> frames = to_frames(ev)
        >>> frames.shape, frames.sum(axis=(1, 2, 3)).tolist()  # [T, P, H, W]; events per frame
        ((2, 2, 2, 2), [2, 2])
    """

    sensor_size: tuple
    time_window: float | None = None
    event_count: int | None = None
    n_time_bins: int | None = None
    include_incomplete: bool = False

    def __post_init__(self):
        object.__setattr__(self, "sensor_size", F._sensor(self.sensor_size))
        if sum(v is not None for v in (self.time_window, self.event_count, self.n_time_bins)) != 1:
            raise ConfigError("ToFrame: give exactly one of time_window, event_count, n_time_bins")

    def __call__(self, events, rng=None):
        return F.to_frame(
            events,
            self.sensor_size,
            time_window=self.time_window,
            event_count=self.event_count,
            n_time_bins=self.n_time_bins,
            include_incomplete=self.include_incomplete,
        )


@dataclass(frozen=True)
class ToSpikeCounts(Transform):
    """Audio events -> counts ``[T, n_units // group]`` in bins of ``dt_us`` (SHD preprocessing of
    Hammouamri et al., ICLR 2024: ``ToSpikeCounts(700, 10_000, 5)`` gives 140 channels at 10 ms)."""

    n_units: int = 700
    dt_us: int = 10_000
    group: int = 5
    n_time_bins: int | None = None

    def __post_init__(self):
        if self.n_units % self.group:
            raise ConfigError(f"ToSpikeCounts: group={self.group} must divide n_units={self.n_units}")

    def __call__(self, events, rng=None):
        return F.to_spike_counts(events, self.n_units, self.dt_us, self.group, self.n_time_bins)


@dataclass(frozen=True)
class Denoise(Transform):
    """Drop events with no 4-neighbour activity in the last ``filter_time`` µs (``functional.denoise``)."""

    filter_time: int = 10_000

    def __call__(self, events, rng=None):
        return F.denoise(events, self.filter_time)


@dataclass(frozen=True)
class RefractoryPeriod(Transform):
    """Per-pixel refractory period in µs after each kept event (``functional.refractory_period``)."""

    refractory_period: int = 1_000

    def __call__(self, events, rng=None):
        return F.refractory_period(events, self.refractory_period)


@dataclass(frozen=True)
class Downsample(Transform):
    """``x, y <- floor(x·spatial_factor)``, ``t <- floor(t·time_factor)``."""

    spatial_factor: float = 1.0
    time_factor: float = 1.0

    def __call__(self, events, rng=None):
        return F.downsample(events, self.spatial_factor, self.time_factor)


@dataclass(frozen=True)
class CenterCrop(Transform):
    """Keep the central ``size = (w, h)`` box of a ``sensor_size = (W, H, P)`` sensor, re-origined."""

    sensor_size: tuple
    size: tuple

    def __call__(self, events, rng=None):
        return F.center_crop(events, self.sensor_size, self.size)


@dataclass(frozen=True)
class Crop(Transform):
    """Keep ``origin <= (x, y) < origin + size``, re-origined to ``origin``."""

    origin: tuple
    size: tuple

    def __call__(self, events, rng=None):
        return F.crop(events, self.origin, self.size)


@dataclass(frozen=True)
class RandomFlipLR(Transform):
    """With probability ``p`` mirror ``x' = W - 1 - x``."""

    sensor_size: tuple
    p: float = 0.5
    random = True

    def __call__(self, events, rng=None):
        return F.flip_lr(events, self.sensor_size) if _rng(rng).random() < self.p else events


@dataclass(frozen=True)
class RandomFlipUD(Transform):
    """With probability ``p`` mirror ``y' = H - 1 - y``."""

    sensor_size: tuple
    p: float = 0.5
    random = True

    def __call__(self, events, rng=None):
        return F.flip_ud(events, self.sensor_size) if _rng(rng).random() < self.p else events


@dataclass(frozen=True)
class RandomFlipPolarity(Transform):
    """With probability ``p`` swap ON and OFF events."""

    p: float = 0.5
    random = True

    def __call__(self, events, rng=None):
        return F.flip_polarity(events) if _rng(rng).random() < self.p else events


@dataclass(frozen=True)
class RandomRotation(Transform):
    """Rotate about the sensor centre by an angle drawn uniformly from ``degrees = (lo, hi)``."""

    sensor_size: tuple
    degrees: tuple = (-15.0, 15.0)
    random = True

    def __call__(self, events, rng=None):
        lo, hi = _tuple("degrees", self.degrees, 2)
        return F.rotate(events, self.sensor_size, _rng(rng).uniform(lo, hi))


@dataclass(frozen=True)
class TimeJitter(Transform):
    """Add N(0, std²) µs to every timestamp, then re-sort (``functional.time_jitter``)."""

    std: float = 1.0
    clip_negative: bool = True
    random = True

    def __call__(self, events, rng=None):
        return F.time_jitter(events, self.std, _rng(rng), self.clip_negative)


@dataclass(frozen=True)
class DropEvent(Transform):
    """Drop ``round(p·E)`` events at random, ``p`` drawn uniformly from ``p_range = (lo, hi)``."""

    p_range: tuple = (0.0, 0.2)
    random = True

    def __call__(self, events, rng=None):
        lo, hi = _tuple("p_range", self.p_range, 2)
        g = _rng(rng)
        return F.drop_event(events, g.uniform(lo, hi), g)


@dataclass(frozen=True)
class TimeSkew(Transform):
    """``t' = t·c + b`` with ``c`` uniform in ``coefficient = (lo, hi)`` and ``b`` uniform in ``offset``."""

    coefficient: tuple = (0.8, 1.2)
    offset: tuple = (0.0, 0.0)
    random = True

    def __call__(self, events, rng=None):
        g = _rng(rng)
        c = g.uniform(*_tuple("coefficient", self.coefficient, 2))
        b = g.uniform(*_tuple("offset", self.offset, 2))
        return F.time_skew(events, c, b)


def _describe(obj):
    """A JSON-able description of a transform pipeline: class name and fields, recursively."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"class": type(obj).__qualname__, **{f.name: _describe(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, (list, tuple)):
        return [_describe(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ConfigError(
        f"cannot key a disk cache on {obj!r}: use the dataclass transforms of neuromorph.data.transforms"
    )


def cache_key(transform) -> str:
    """sha256 of the transform's class names and parameters (stable across runs and machines)."""
    text = json.dumps(_describe(transform), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


__all__ = [
    "Transform",
    "Compose",
    "ToFrame",
    "ToSpikeCounts",
    "Denoise",
    "RefractoryPeriod",
    "Downsample",
    "CenterCrop",
    "Crop",
    "RandomFlipLR",
    "RandomFlipUD",
    "RandomFlipPolarity",
    "RandomRotation",
    "TimeJitter",
    "DropEvent",
    "TimeSkew",
    "cache_key",
]
