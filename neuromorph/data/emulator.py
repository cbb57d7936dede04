"""Event-camera emulator: intensity frames (video) -> DVS events.

The model is the standard DVS pixel (Lichtsteiner, Posch & Delbruck, IEEE JSSC 43(2), 2008) as used by
the emulators ESIM (Rebecq et al., CoRL 2018) and v2e (Hu, Liu, Delbruck, CVPRW 2021):

- every pixel sees the log intensity ``L = log(I + eps)``, linearly interpolated in time between frames;
- it remembers the level ``L_ref`` at its last event; whenever ``L - L_ref`` crosses ``+θ_on`` (or
  ``-θ_off``) it emits an ON (OFF) event at the crossing time and moves ``L_ref`` by ``±θ``;
- the thresholds differ from pixel to pixel: ``θ ~ N(θ̄, σ²)``, clipped below at ``θ_min``
  (fixed-pattern mismatch, drawn once per call from the seed);
- after an event the pixel is blind for ``refractory_us``: crossings inside that time still move
  ``L_ref`` (the change is consumed) but emit nothing, as in v2e;
- shot noise: each pixel also fires spontaneous events as a Poisson process of rate
  ``shot_noise_rate_hz`` with a random polarity (v2e's shot-noise model, without its intensity dependence).

Given the same frames, timestamps and seed the output is identical on every run. ``read_video`` and
``emulate_video`` take the frames from an animated GIF/TIFF or a folder of images (Pillow).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from neuromorph.data.events import EVENT_DTYPE
from neuromorph.errors import ConfigError, DataFormatError, NonFiniteError, ShapeError


@numba.njit(cache=True, nogil=True)
def _dvs_kernel(log_frames, times, th_on, th_off, refractory):
    n_frames, h, w = log_frames.shape
    cap = 1024
    ex = np.empty(cap, np.int16)
    ey = np.empty(cap, np.int16)
    et = np.empty(cap, np.int64)
    ep = np.empty(cap, np.int8)
    n = 0
    ref = log_frames[0].copy()
    last = np.full((h, w), np.iinfo(np.int64).min // 2, np.int64)
    for k in range(1, n_frames):
        t0 = times[k - 1]
        span = times[k] - t0
        for yy in range(h):
            for xx in range(w):
                l0 = log_frames[k - 1, yy, xx]
                l1 = log_frames[k, yy, xx]
                d = l1 - l0
                while True:
                    if l1 - ref[yy, xx] >= th_on[yy, xx]:
                        level = ref[yy, xx] + th_on[yy, xx]
                        pol = 1
                    elif ref[yy, xx] - l1 >= th_off[yy, xx]:
                        level = ref[yy, xx] - th_off[yy, xx]
                        pol = 0
                    else:
                        break
                    ref[yy, xx] = level
                    # time at which the interpolated log intensity reaches the crossed level
                    frac = (level - l0) / d if d != 0.0 else 1.0
                    if frac < 0.0:
                        frac = 0.0
                    elif frac > 1.0:
                        frac = 1.0
                    te = t0 + int(np.floor(frac * span))
                    if te - last[yy, xx] < refractory:
                        continue
                    last[yy, xx] = te
                    if n == cap:
                        cap *= 2
                        ex2 = np.empty(cap, np.int16)
                        ey2 = np.empty(cap, np.int16)
                        et2 = np.empty(cap, np.int64)
                        ep2 = np.empty(cap, np.int8)
                        ex2[:n] = ex[:n]
                        ey2[:n] = ey[:n]
                        et2[:n] = et[:n]
                        ep2[:n] = ep[:n]
                        ex, ey, et, ep = ex2, ey2, et2, ep2
                    ex[n] = xx
                    ey[n] = yy
                    et[n] = te
                    ep[n] = pol
                    n += 1
    return ex[:n], ey[:n], et[:n], ep[:n]


@dataclass(frozen=True)
class DVSEmulator:
    """DVS pixel model turning frames ``[N, H, W]`` and their times (µs) into ``EVENT_DTYPE`` events.

    Parameters (defaults follow v2e's "clean" preset, its ``--dvs_params clean``):
    ``threshold_on``/``threshold_off`` mean contrast thresholds θ̄ in log-intensity units (0.2);
    ``threshold_sigma`` σ of their per-pixel mismatch (0.02); ``threshold_min`` lower clip (0.01);
    ``refractory_us`` per-pixel refractory period; ``shot_noise_rate_hz`` spontaneous events per pixel
    per second; ``eps`` the offset inside the log (intensities are in [0, 1] or uint8 0..255);
    ``seed`` seeds the mismatch and the noise.
    """

    threshold_on: float = 0.2
    threshold_off: float = 0.2
    threshold_sigma: float = 0.02
    threshold_min: float = 0.01
    refractory_us: int = 0
    shot_noise_rate_hz: float = 0.0
    eps: float = 0.1
    seed: int = 0

    def __post_init__(self):
        for name in ("threshold_on", "threshold_off", "threshold_min", "eps", "threshold_sigma", "refractory_us",
                     "shot_noise_rate_hz"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ConfigError(f"DVSEmulator: {name} must be a number, got {v!r}")
        for name in ("threshold_on", "threshold_off", "threshold_min", "eps"):
            v = getattr(self, name)
            if not np.isfinite(v) or v <= 0:
                raise ConfigError(f"DVSEmulator: {name} must be > 0, got {v!r}")
        for name in ("threshold_sigma", "refractory_us", "shot_noise_rate_hz"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise ConfigError(f"DVSEmulator: {name} must be >= 0, got {v!r}")

    def thresholds(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The per-pixel (θ_on, θ_off) maps ``[H, W]`` this emulator uses for a sensor of that size."""
        rng = np.random.default_rng([self.seed, 0])
        on = self.threshold_on + self.threshold_sigma * rng.standard_normal((height, width))
        off = self.threshold_off + self.threshold_sigma * rng.standard_normal((height, width))
        return np.maximum(on, self.threshold_min), np.maximum(off, self.threshold_min)

    def __call__(self, frames, timestamps_us) -> np.ndarray:
        """Emulate: ``frames`` ``[N, H, W]`` (float in [0, 1] or uint8), ``timestamps_us`` ``[N]`` increasing."""
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.shape[0] < 1:
            raise ShapeError(f"frames must be [N, H, W] with N >= 1, got shape {frames.shape}")
        if frames.shape[1] > 32767 or frames.shape[2] > 32767:
            raise ShapeError(f"frames of {frames.shape[1:]} pixels exceed the int16 event coordinates")
        times = np.asarray(timestamps_us)
        if times.shape != (frames.shape[0],):
            raise ShapeError(f"timestamps_us must have shape ({frames.shape[0]},), got {times.shape}")
        if not np.all(np.isfinite(times)):
            raise NonFiniteError("timestamps_us contains NaN or Inf")
        times = np.asarray(np.rint(times), dtype=np.int64)
        if np.any(np.diff(times) <= 0):
            raise ShapeError("timestamps_us must be strictly increasing")
        intensity = frames.astype(np.float64) / 255.0 if frames.dtype == np.uint8 else frames.astype(np.float64)
        if not np.all(np.isfinite(intensity)):
            raise NonFiniteError("frames contain NaN or Inf")
        if intensity.min() < 0:
            raise ShapeError("frames must be non-negative intensities")
        _, h, w = frames.shape
        th_on, th_off = self.thresholds(h, w)
        ex, ey, et, ep = _dvs_kernel(np.log(intensity + self.eps), times, th_on, th_off, int(self.refractory_us))
        events = np.empty(len(et), EVENT_DTYPE)
        events["x"], events["y"], events["t"], events["p"] = ex, ey, et, ep
        if self.shot_noise_rate_hz > 0 and len(times) > 1:
            events = np.concatenate([events, self._shot_noise(h, w, int(times[0]), int(times[-1]))])
        # pixels are processed one after another within a frame interval; order by time (stable)
        return events[np.argsort(events["t"], kind="stable")]

    def _shot_noise(self, h: int, w: int, t0: int, t1: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1])
        lam = self.shot_noise_rate_hz * (t1 - t0) * 1e-6
        counts = rng.poisson(lam, h * w)
        n = int(counts.sum())
        pix = np.repeat(np.arange(h * w), counts)
        noise = np.empty(n, EVENT_DTYPE)
        noise["x"], noise["y"] = pix % w, pix // w
        noise["t"] = rng.integers(t0, t1, n, endpoint=True)
        noise["p"] = rng.integers(0, 2, n)
        return noise


def emulate(frames, timestamps_us, **params) -> np.ndarray:
    """``DVSEmulator(**params)(frames, timestamps_us)``: frames ``[N, H, W]`` -> ``EVENT_DTYPE`` events."""
    return DVSEmulator(**params)(frames, timestamps_us)


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".gif")


def read_video(path: str | os.PathLike, fps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[N, H, W]`` (grey, float in [0, 1]) and their times (µs) from a video for the emulator.

    ``path`` is an animated GIF / multi-page TIFF (frame times from the file's per-frame durations,
    unless ``fps`` is given) or a folder of still images taken in file-name order (``fps`` required).
    Grey conversion is Pillow's ``convert("L")`` (ITU-R 601-2 luma). Needs Pillow.
    """
    try:
        from PIL import Image, ImageSequence, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - Pillow comes with matplotlib
        raise ConfigError("read_video needs Pillow (pip install pillow)") from exc
    path = Path(path)
    durations = []
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            if not files:
                raise DataFormatError(f"no image files ({', '.join(_IMAGE_SUFFIXES)}) in the folder", path=path)
            if fps is None:
                raise ConfigError(f"fps is required for a folder of images ({path})")
            frames = []
            for f in files:
                with Image.open(f) as im:  # closed at once: a long folder must not exhaust file handles
                    frames.append(np.asarray(im.convert("L")))
        else:
            with Image.open(path) as im:
                frames = []
                for frame in ImageSequence.Iterator(im):
                    frames.append(np.asarray(frame.convert("L")))
                    durations.append(frame.info.get("duration"))
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(f"not a readable image or video: {exc}", path=path) from None
    if len({f.shape for f in frames}) != 1:
        raise DataFormatError("frames have different sizes", path=path)
    if fps is not None:
        if not fps > 0:
            raise ConfigError(f"fps must be > 0, got {fps!r}")
        times = np.rint(np.arange(len(frames)) * (1e6 / fps)).astype(np.int64)
    else:
        if any(d is None or d <= 0 for d in durations):
            raise ConfigError(f"{path} does not give every frame a duration; pass fps")
        times = np.concatenate([[0], np.cumsum(np.asarray(durations[:-1], dtype=np.int64) * 1000)])
    return np.stack(frames).astype(np.float64) / 255.0, times


def emulate_video(path: str | os.PathLike, fps: float | None = None, **params) -> np.ndarray:
    """``emulate(*read_video(path, fps), **params)``: a video file or image folder -> DVS events."""
    frames, times = read_video(path, fps)
    return emulate(frames, times, **params)
