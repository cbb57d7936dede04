"""Event transforms as pure functions over structured event arrays (numpy + numba kernels).

Every function takes a numpy structured array with the fields it needs (``x, y, t, p`` for vision
events, ``t`` and ``unit`` or ``x`` for audio-like events) and returns a new array (or dense frames);
the input is never modified. The dtype conventions are Tonic's (sensor size is ``(W, H, P)``, frames are
``[T, P, H, W]``), so arrays produced by Tonic's readers work unchanged, whatever the integer width or
field order of their dtype.

Where Tonic (``tonic/functional``, v1.7.0) has the same transform, the semantics are Tonic's unless the
docstring says otherwise and why (two of Tonic's filters have boundary quirks that drop or keep events
wrongly; those are corrected here and the difference is documented).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from neuromorph.data.events import require_fields
from neuromorph.errors import ConfigError, ShapeError

# ---------------------------------------------------------------------------------------------------
# validation helpers


def _sensor(sensor_size, name: str = "sensor_size") -> tuple[int, int, int]:
    try:
        w, h, p = (int(v) for v in sensor_size)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be (width, height, polarities), got {sensor_size!r}") from exc
    if w < 1 or h < 1 or p < 1:
        raise ConfigError(f"{name} entries must be >= 1, got {sensor_size!r}")
    return w, h, p


def _positive(name: str, value, integer: bool = False):
    try:
        ok = value is not None and not isinstance(value, bool) and bool(np.isfinite(value)) and value > 0
    except TypeError:  # a string or another non-number
        ok = False
    if not ok:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    if integer and int(value) != value:
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    return int(value) if integer else value


def _polarity(events: np.ndarray) -> np.ndarray:
    p = events["p"]
    # Tonic arrays may carry p as bool; numba indexes with integers
    return p.view(np.int8) if p.dtype == np.bool_ else p


def _spatial_field(events: np.ndarray) -> str:
    """``x`` for vision and Tonic's audio arrays, ``unit`` for neuromorph's AUDIO_EVENT_DTYPE."""
    names = events.dtype.names or ()
    if "x" in names:
        return "x"
    if "unit" in names:
        return "unit"
    raise ShapeError(f"events need an 'x' or 'unit' field; they have {list(names)}")


# ---------------------------------------------------------------------------------------------------
# frame binning


@numba.njit(cache=True, nogil=True)
def _bin_time(x, y, p, t, t0, window, n_bins, frames, single_polarity):
    """frames[(t - t0) // window, p, y, x] += 1 for events with 0 <= (t - t0) // window < n_bins.

    Returns -1 if fine, else the index of the first event outside the frame's sensor. Sorted time is
    the fast path (the current window's edges are tracked, no division per event); an event out of
    order falls back to one division, so unsorted input is still binned correctly.
    """
    n_p, h, w = frames.shape[1], frames.shape[2], frames.shape[3]
    flat = frames.reshape(-1)
    plane = h * w
    b = 0
    lo = t0
    hi = t0 + window
    for i in range(t.shape[0]):
        ti = t[i]
        if ti < lo or ti >= hi:
            if ti < t0:
                continue
            b = int((ti - t0) // window)
            lo = t0 + b * window
            hi = lo + window
        if b >= n_bins:
            continue
        xi = int(x[i])
        yi = int(y[i])
        pi = 0 if single_polarity else int(p[i])
        if xi < 0 or xi >= w or yi < 0 or yi >= h or pi < 0 or pi >= n_p:
            return i
        flat[(b * n_p + pi) * plane + yi * w + xi] += 1
    return -1


@numba.njit(cache=True, nogil=True)
def _bin_count(x, y, p, start, count, n_bins, frames, single_polarity):
    """frames[b] counts events start[b] .. start[b] + count - 1 (event-count slicing)."""
    n_p, h, w = frames.shape[1], frames.shape[2], frames.shape[3]
    for b in range(n_bins):
        for i in range(start[b], min(start[b] + count, x.shape[0])):
            xi = int(x[i])
            yi = int(y[i])
            pi = 0 if single_polarity else int(p[i])
            if xi < 0 or xi >= w or yi < 0 or yi >= h or pi < 0 or pi >= n_p:
                return i
            frames[b, pi, yi, xi] += 1
    return -1


#: frames larger than this many counters (1 GiB of int16) are refused instead of exhausting memory
_MAX_FRAME_ELEMENTS = 1 << 29


def _time_slicing(t: np.ndarray, time_window=None, n_time_bins=None, include_incomplete=False, start_time=None, end_time=None):
    """(t0, window, n_bins) of Tonic's SliceByTime / SliceByTimeBins (overlap 0)."""
    if len(t) == 0:
        return 0, 1, (n_time_bins or 1)
    if n_time_bins is not None:
        t0 = t[0].item()
        # Tonic: time_window = (t[-1] - t[0]) // bin_count; the last event is only counted when that
        # division is exact (events after t0 + n * window fall outside every bin).
        window = (t[-1].item() - t0) // n_time_bins
        return t0, window, n_time_bins
    t0 = t[0].item() if start_time is None else start_time
    t1 = t[-1].item() if end_time is None else end_time
    duration = t1 - t0
    if include_incomplete:
        n = int(np.ceil((duration - time_window) / time_window) + 1)
    else:
        n = int(np.floor((duration - time_window) / time_window) + 1)
    return t0, time_window, max(n, 1)


def to_frame(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    time_window: float | None = None,
    event_count: int | None = None,
    n_time_bins: int | None = None,
    include_incomplete: bool = False,
    start_time: float | None = None,
    end_time: float | None = None,
    dtype=np.int16,
) -> np.ndarray:
    """Accumulate events into frames ``[T, P, H, W]`` (``[T, P, W]`` for events without ``y``).

    ``frames[k, p, y, x] = #{events i in slice k with (x_i, y_i, p_i) = (x, y, p)}``; exactly one of:

    - ``time_window`` (µs): slice k holds ``t0 + k·Δ <= t < t0 + (k+1)·Δ``, ``t0 = t[0]`` (or
      ``start_time``); ``T = floor((t_end - t0 - Δ)/Δ) + 1`` (``ceil`` with ``include_incomplete``), >= 1.
    - ``n_time_bins`` N: ``Δ = (t[-1] - t[0]) // N`` (integer division as in Tonic), ``T = N``.
    - ``event_count`` n: slice k holds events ``k·n .. k·n + n - 1``; ``T = floor((E - n)/n) + 1``
      (``ceil`` with ``include_incomplete``).

    This is Tonic's ``to_frame_numpy`` (tonic/functional/to_frame.py, v1.7.0, ``overlap=0``) slice for
    slice, computed in one pass by a numba kernel (events must be sorted by ``t``, as Tonic also
    assumes). ``sensor_size`` is ``(W, H, P)``; with ``P == 1`` every event counts in channel 0. Unlike
    Tonic, an event outside the sensor (or a polarity ``>= P``) raises ``ShapeError`` naming the event
    instead of wrapping around, and counts never overflow: the result is ``dtype`` (int16, Tonic's) unless
    one slice holds more events than ``dtype`` can count, when it is int32.
    """
    chosen = [v is not None for v in (time_window, event_count, n_time_bins)]
    if sum(chosen) != 1:
        raise ConfigError("give exactly one of time_window, event_count, n_time_bins")
    require_fields(events, ("t",), "events")
    w, h, n_p = _sensor(sensor_size)
    xf = _spatial_field(events)
    has_y = "y" in events.dtype.names
    if has_y:
        require_fields(events, ("x", "y", "t", "p"), "events")
    x = events[xf]
    if has_y:
        y = events["y"]
    else:
        y = np.zeros(len(events), np.int8)
        h = 1
    single = n_p == 1
    if not single and "p" not in events.dtype.names:
        raise ShapeError(f"sensor_size has {n_p} polarities but the events have no 'p' field")
    p = _polarity(events) if "p" in events.dtype.names else np.zeros(len(events), np.int8)
    if single and "p" in events.dtype.names and len(events) and p.min() != p.max():
        # Tonic raises here too: silently merging two polarities into one channel hides a mistake
        raise ShapeError("sensor_size has 1 polarity but the events contain several polarity values")
    t = events["t"]
    n_ev = len(events)
    if n_ev and int(t.max()) - int(t.min()) >= 2**62:
        raise ShapeError(f"event times span {int(t.max()) - int(t.min())} µs: not a recording (damaged 't' field?)")

    if event_count is not None:
        count = _positive("event_count", event_count, integer=True)
        c = min(count, n_ev)
        if n_ev == 0:
            n_bins = 1
        elif include_incomplete:
            n_bins = int(np.ceil((n_ev - c) / count) + 1)
        else:
            n_bins = int(np.floor((n_ev - c) / count) + 1)
        starts = np.arange(n_bins, dtype=np.int64) * count
        biggest = c
        run = lambda fr: _bin_count(x, y, p, starts, c, n_bins, fr, single)  # noqa: E731
    else:
        if time_window is not None:
            _positive("time_window", time_window)
        else:
            _positive("n_time_bins", n_time_bins, integer=True)
            n_time_bins = int(n_time_bins)
        t0, window, n_bins = _time_slicing(t, time_window, n_time_bins, include_incomplete, start_time, end_time)
        biggest = n_ev
        if window <= 0:  # a recording shorter than n_time_bins µs: Tonic's windows are all empty
            run = lambda fr: -1  # noqa: E731
        else:
            integral = float(window).is_integer() and float(t0).is_integer()
            window_arg, t0_arg = (int(window), int(t0)) if integral else (float(window), float(t0))
            run = lambda fr: _bin_time(x, y, p, t, t0_arg, window_arg, n_bins, fr, single)  # noqa: E731

    if n_bins * n_p * h * w > _MAX_FRAME_ELEMENTS:
        raise ShapeError(
            f"{n_bins} frames of {n_p}x{h}x{w} would need {n_bins * n_p * h * w:,} counters; "
            "choose a larger time_window/event_count or fewer n_time_bins"
        )
    out_dtype = np.dtype(dtype)
    if np.issubdtype(out_dtype, np.integer) and biggest > np.iinfo(out_dtype).max:
        out_dtype = np.dtype(np.int32)
    frames = np.zeros((n_bins, n_p, h, w), dtype=out_dtype)
    bad = run(frames)
    if bad >= 0:
        raise ShapeError(
            f"event {bad} (x={int(x[bad])}, y={int(y[bad])}, p={int(p[bad])}) lies outside sensor_size "
            f"{(w, h if has_y else 1, n_p)} (width, height, polarities)"
        )
    return frames if has_y else frames[:, :, 0, :]


def to_spike_counts(
    events: np.ndarray,
    n_units: int = 700,
    dt_us: int = 10_000,
    group: int = 1,
    n_time_bins: int | None = None,
    dtype=np.float32,
) -> np.ndarray:
    """Per-channel spike counts of audio-like events in bins of ``dt_us``: ``[T, n_units // group]``.

    With times taken relative to the first spike, ``t'_i = t_i - t_0``, spike i counts in bin
    ``k_i = min(t'_i // dt, T - 1)`` and channel ``unit_i // group``, with ``T = max(1, ceil(t'_last/dt))``
    (so a spike exactly on the last bin edge joins the last bin). This is SpikingJelly's
    ``integrate_events_by_fixed_duration`` for SHD (spikingjelly/datasets/shd.py) followed by the sum
    over groups of ``group`` adjacent channels, the preprocessing of the SHD/SSC delay networks (Hammouamri
    et al., ICLR 2024: Δt = 10 ms, 700 channels in groups of 5 -> 140). With
    ``n_time_bins`` the result is cut or zero-padded at the end to exactly that many bins.

    Accepts neuromorph's ``(t, unit)`` arrays and Tonic's SHD arrays ``(t, x, p)``.
    """
    require_fields(events, ("t",), "events")
    uf = _spatial_field(events)
    n_units = _positive("n_units", n_units, integer=True)
    dt_us = _positive("dt_us", dt_us, integer=True)
    group = _positive("group", group, integer=True)
    if n_units % group:
        raise ConfigError(f"group={group} must divide n_units={n_units}")
    units = events[uf].astype(np.int64, copy=False)
    if len(units) and (units.min() < 0 or units.max() >= n_units):
        bad = int(np.flatnonzero((units < 0) | (units >= n_units))[0])
        raise ShapeError(f"event {bad} has {uf}={int(units[bad])}, outside 0..{n_units - 1} (n_units)")
    t = events["t"].astype(np.int64, copy=False)
    if len(t) and (bool(np.any(np.diff(t) < 0)) or int(t[-1]) - int(t[0]) > 2**62):
        raise ShapeError("event times must be sorted (non-decreasing) and span less than 2**62 µs")
    if len(t):
        rel = t - t[0]
        n = max(1, -(-int(rel[-1]) // dt_us))
        if n * (n_units // group) > _MAX_FRAME_ELEMENTS:
            raise ShapeError(f"{n} bins of {dt_us} µs for {n_units // group} channels is too large; check the 't' field")
        k = np.minimum(rel // dt_us, n - 1)
    else:
        n, k = 1, np.zeros(0, np.int64)
    counts = np.zeros((n, n_units // group), dtype=np.float64)
    np.add.at(counts, (k, units // group), 1.0)
    if n_time_bins is not None:
        n_time_bins = _positive("n_time_bins", n_time_bins, integer=True)
        if n >= n_time_bins:
            counts = counts[:n_time_bins]
        else:
            counts = np.concatenate([counts, np.zeros((n_time_bins - n, counts.shape[1]))])
    return counts.astype(dtype)


# ---------------------------------------------------------------------------------------------------
# filters


def _pixel_grid(x: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    """(W, H) spanned by the events, as Tonic infers it; refuses grids no sensor has (damaged coordinates)."""
    w, h = int(x.max()) + 1, int(y.max()) + 1
    if w * h > _MAX_FRAME_ELEMENTS // 8:
        raise ShapeError(f"events span a {w}x{h} pixel grid; no event sensor is that large (damaged x/y?)")
    return w, h


@numba.njit(cache=True, nogil=True)
def _denoise_keep(x, y, t, w, h, filter_time):
    last = np.full((w, h), np.iinfo(np.int64).min // 2, dtype=np.int64)
    keep = np.zeros(t.shape[0], dtype=np.bool_)
    for i in range(t.shape[0]):
        xi, yi, ti = int(x[i]), int(y[i]), int(t[i])
        last[xi, yi] = ti
        if (
            (xi > 0 and last[xi - 1, yi] + filter_time > ti)
            or (xi < w - 1 and last[xi + 1, yi] + filter_time > ti)
            or (yi > 0 and last[xi, yi - 1] + filter_time > ti)
            or (yi < h - 1 and last[xi, yi + 1] + filter_time > ti)
        ):
            keep[i] = True
    return keep


def denoise(events: np.ndarray, filter_time: int = 10_000) -> np.ndarray:
    """Keep an event only if one of its 4 neighbours fired within the last ``filter_time`` µs.

    Keep event i iff ``∃ (x', y') ∈ N4(x_i, y_i): t_i < t_last(x', y') + filter_time``, where
    ``t_last`` is the time of the neighbour's latest earlier event (any event, kept or not). This is
    Tonic's ``denoise_numpy`` (tonic/functional/denoise.py) with one fix: Tonic initialises every pixel's
    memory to ``filter_time`` instead of "never fired", so during the first ``filter_time`` µs every
    event with an in-sensor neighbour passes; here a pixel that never fired never supports a neighbour.
    """
    require_fields(events, ("x", "y", "t"), "events")
    if len(events) == 0:
        return events.copy()
    _positive("filter_time", filter_time)
    x, y = events["x"], events["y"]
    if x.min() < 0 or y.min() < 0:
        raise ShapeError("events have negative x or y coordinates")
    w, h = _pixel_grid(x, y)
    return events[_denoise_keep(x, y, events["t"], w, h, int(filter_time))]


@numba.njit(cache=True, nogil=True)
def _refractory_keep(x, y, t, w, h, period):
    last = np.full((w, h), np.iinfo(np.int64).min // 2, dtype=np.int64)
    keep = np.zeros(t.shape[0], dtype=np.bool_)
    for i in range(t.shape[0]):
        xi, yi, ti = int(x[i]), int(y[i]), int(t[i])
        if ti - last[xi, yi] > period:
            keep[i] = True
            last[xi, yi] = ti
    return keep


def refractory_period(events: np.ndarray, refractory_period: int) -> np.ndarray:
    """Drop every event that follows the pixel's last *kept* event by at most ``refractory_period`` µs.

    Keep event i iff ``t_i - t_kept(x_i, y_i) > refractory_period``, where ``t_kept`` is the time of the
    last event kept at that pixel (as a real pixel, which is blind for the period after it fires;
    Lichtsteiner et al., IEEE JSSC 2008). Tonic's ``refractory_period_numpy`` differs in two ways that
    this function deliberately does not copy: it measures from the last event *seen* (so a steady
    stream faster than the period loses every event after the first) and it drops an event at t = 0.
    """
    require_fields(events, ("x", "y", "t"), "events")
    if len(events) == 0:
        return events.copy()
    if isinstance(refractory_period, bool) or not isinstance(refractory_period, (int, float, np.integer, np.floating)) \
            or not refractory_period >= 0:
        raise ConfigError(f"refractory_period must be >= 0 µs, got {refractory_period!r}")
    x, y = events["x"], events["y"]
    if x.min() < 0 or y.min() < 0:
        raise ShapeError("events have negative x or y coordinates")
    w, h = _pixel_grid(x, y)
    return events[_refractory_keep(x, y, events["t"], w, h, int(refractory_period))]


# ---------------------------------------------------------------------------------------------------
# geometry


def downsample(events: np.ndarray, spatial_factor: float = 1.0, time_factor: float = 1.0) -> np.ndarray:
    """Scale coordinates: ``x' = floor(x·f_s)``, ``y' = floor(y·f_s)``, ``t' = floor(t·f_t)``.

    Tonic's ``Downsample`` (tonic/transforms.py): events that land on the same coarse pixel are all
    kept (a later ``to_frame`` sums them).
    """
    require_fields(events, ("t",), "events")
    _positive("spatial_factor", spatial_factor)
    _positive("time_factor", time_factor)
    out = events.copy()
    for f in ("x", "y", "unit"):
        if f in out.dtype.names:
            out[f] = np.floor(out[f] * spatial_factor).astype(out.dtype[f])
    out["t"] = np.floor(out["t"] * time_factor).astype(out.dtype["t"])
    return out


def crop(events: np.ndarray, origin: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Keep events inside the box ``origin <= (x, y) < origin + size``, shifted by ``-origin``."""
    require_fields(events, ("x", "y"), "events")
    try:
        (x0, y0), (cw, ch) = (int(v) for v in origin), (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"crop origin and size must be pairs of integers, got {origin!r}, {size!r}") from None
    if cw < 1 or ch < 1:
        raise ConfigError(f"crop size must be positive, got {size!r}")
    x, y = events["x"], events["y"]
    keep = (x >= x0) & (x < x0 + cw) & (y >= y0) & (y < y0 + ch)
    out = events[keep]
    out["x"] -= x0
    out["y"] -= y0
    return out


def center_crop(events: np.ndarray, sensor_size: tuple[int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop the central ``size = (w, h)`` box: origin ``((W - w) // 2, (H - h) // 2)``."""
    w, h, _ = _sensor(sensor_size)
    try:
        cw, ch = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"crop size must be a pair of integers, got {size!r}") from None
    if cw > w or ch > h:
        raise ConfigError(f"crop size {size!r} exceeds sensor_size {sensor_size!r}")
    return crop(events, ((w - cw) // 2, (h - ch) // 2), (cw, ch))


def flip_lr(events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """Mirror left-right: ``x' = W - 1 - x`` (Tonic's ``RandomFlipLR`` with p = 1)."""
    return _mirror(events, "x", _sensor(sensor_size)[0])


def flip_ud(events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """Mirror up-down: ``y' = H - 1 - y`` (Tonic's ``RandomFlipUD`` with p = 1)."""
    return _mirror(events, "y", _sensor(sensor_size)[1])


def _mirror(events: np.ndarray, field: str, size: int) -> np.ndarray:
    require_fields(events, (field,), "events")
    out = events.copy()
    out[field] = size - 1 - out[field]
    return out


def flip_polarity(events: np.ndarray) -> np.ndarray:
    """Swap ON/OFF: ``p' = 1 - p`` for 0/1 polarities, ``p' = -p`` for ±1, ``not p`` for bool (Tonic)."""
    require_fields(events, ("p",), "events")
    out = events.copy()
    p = out["p"]
    if p.dtype == np.bool_:
        out["p"] = ~p
    elif len(p) and p.min() < 0:
        out["p"] = -p
    else:
        out["p"] = 1 - p
    return out


def rotate(events: np.ndarray, sensor_size: tuple[int, int, int], angle_deg: float) -> np.ndarray:
    """Rotate about the sensor centre ``c = ((W-1)/2, (H-1)/2)`` by ``angle_deg`` (counter-clockwise
    in image coordinates with y down, i.e. clockwise on screen), rounding to the nearest pixel:
    ``[x'; y'] = round(R(θ)·([x; y] - c) + c)``. Events that leave the sensor are dropped.
    """
    require_fields(events, ("x", "y"), "events")
    w, h, _ = _sensor(sensor_size)
    th = math.radians(float(angle_deg))
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    dx, dy = events["x"] - cx, events["y"] - cy
    xr = np.rint(math.cos(th) * dx - math.sin(th) * dy + cx)
    yr = np.rint(math.sin(th) * dx + math.cos(th) * dy + cy)
    keep = (xr >= 0) & (xr < w) & (yr >= 0) & (yr < h)
    out = events[keep]
    out["x"] = xr[keep]
    out["y"] = yr[keep]
    return out


# ---------------------------------------------------------------------------------------------------
# time and randomness


def time_skew(events: np.ndarray, coefficient: float, offset: float = 0) -> np.ndarray:
    """``t' = t·coefficient + offset``, truncated to the integer dtype of ``t`` (Tonic's ``time_skew_numpy``)."""
    require_fields(events, ("t",), "events")
    _positive("coefficient", coefficient)  # > 0 keeps time order
    try:
        finite = bool(np.isfinite(offset))
    except TypeError:
        finite = False
    if not finite:  # NaN or inf would cast to garbage timestamps
        raise ConfigError(f"offset must be a finite number of µs, got {offset!r}")
    out = events.copy()
    out["t"] = events["t"] * coefficient + offset
    return out


def time_jitter(events: np.ndarray, std: float, rng: np.random.Generator, clip_negative: bool = True) -> np.ndarray:
    """Add ``N(0, std²)`` µs to each timestamp (rounded), then re-sort by time (stable).

    Tonic's ``time_jitter_numpy`` leaves the events unsorted; frame binning and every filter here assume
    sorted time, so the result is re-sorted. With ``clip_negative`` negative times become 0.
    """
    require_fields(events, ("t",), "events")
    if not np.isfinite(std) or std < 0:  # NaN would turn every timestamp into garbage
        raise ConfigError(f"std must be finite and >= 0, got {std!r}")
    out = events.copy()
    t = np.rint(events["t"] + rng.normal(0.0, std, len(events)))
    if clip_negative:
        t = np.maximum(t, 0)
    out["t"] = t
    return out[np.argsort(out["t"], kind="stable")]


def drop_event(events: np.ndarray, drop_probability: float, rng: np.random.Generator) -> np.ndarray:
    """Drop exactly ``round(p·E)`` events chosen uniformly without replacement, keeping order (Tonic)."""
    if not 0.0 <= drop_probability <= 1.0:
        raise ConfigError(f"drop_probability must be in [0, 1], got {drop_probability!r}")
    n = len(events)
    n_drop = int(drop_probability * n + 0.5)
    keep = np.ones(n, bool)
    keep[rng.choice(n, n_drop, replace=False)] = False
    return events[keep]
