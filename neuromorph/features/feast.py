"""FEAST: Feature Extraction with Adaptive Selection Thresholds.

Afshar, Ralph, Xu, Tapson, van Schaik, Cohen, "Event-based feature extraction using adaptive selection
thresholds", Sensors 20(6):1600, 2020 (arXiv 1907.07853). Equations as in Afshar's reference MATLAB demo
("A simple one-layer FEAST") and the SimpleFeast python port (yeshwanthravitheja/SimpleFeast.py@f2d05bb).
Method page: ``docs/methods/feast.md`` (equations, defaults, what neuromorph does differently).

For every input event e = (x, y, p, t), in time order:

1. S(p, x, y) <- t                                    (per-channel timestamp map, "time surface")
2. c = vec(exp((S(p', x+dx, y+dy) - t) / tau))        over channels p' and |dx|, |dy| <= R;
   pixels with no event yet, or outside the sensor, give 0
3. c_hat = c / ||c||_2 ;  d_i = w_i . c_hat           (cosine similarity, ||w_i|| = 1)
4. candidates A = {i : d_i > theta_i}                 (strict ">", as the MATLAB demo)
5. miss (A empty):  theta_i <- theta_i - delta_open for every i; no output event
   hit:  j = argmax_{i in A} d_i ;  w_j <- normalize((1 - eta) w_j + eta c_hat) ;
         theta_j <- theta_j + delta_close ;  emit (x, y, j, t)

Inference freezes w and theta and applies the same selection rule (misses are dropped).

Conventions of this implementation (documented choices, not in the paper):

- ``t`` is int64 microseconds, so ``tau`` is in microseconds.
- Each sample (each event array passed in a list) starts from an empty time surface; the learned
  weights and thresholds carry over from sample to sample.
- Events must be sorted by ``t`` (non-decreasing); unsorted streams are refused with
  ``DataFormatError`` rather than silently re-ordered, because the order *is* the learning schedule.
  Sort first with ``np.sort(events, order="t", kind="stable")``.
- With ``n_channels == 1`` the ``p`` field is ignored (one time surface for both polarities); with
  ``n_channels > 1`` it must lie in ``[0, n_channels)`` and selects the channel (polarity for a first
  layer, the feature index for a deeper layer).
- Output feature events use :data:`FEATURE_EVENT_DTYPE`: ``x, y, t`` of the input event and
  ``p`` = index of the winning neuron, so a layer's output feeds the next layer directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numba
import numpy as np

from neuromorph._atomic import atomic_path
from neuromorph.data.events import require_fields
from neuromorph.errors import CheckpointError, ConfigError, DataFormatError, ShapeError

#: Output of a FEAST layer: position and time of the input event, ``p`` = winning neuron index.
FEATURE_EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int16)])


# reassociation lets LLVM vectorize the dot products and norms (results differ from strict
# left-to-right sums by rounding only); infinities stay allowed: -inf marks "no event yet".
@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _feast_kernel(xs, ys, cs, ts, starts, weights, theta, surface, radius, tau, eta, d_close, d_open,
                  learn, record_every, theta_trace, miss_trace, wins, winners):
    """Run FEAST over concatenated samples; ``starts[k]`` is the first event of sample k.

    ``surface`` is the padded timestamp map [C, X + 2R, Y + 2R] (float64, -inf = no event yet).
    ``weights`` [N, K] and ``theta`` [N] are updated in place when ``learn``. Writes the winner of
    every event (or -1) into ``winners`` and returns the number of misses.
    """
    n_neurons, n_ctx = weights.shape
    n_channels = surface.shape[0]
    side = 2 * radius + 1
    ctx = np.empty(n_ctx)
    n_events = xs.shape[0]
    n_miss = 0
    window_miss = 0
    next_start = 0
    inv_tau = 1.0 / tau
    for k in range(n_events):
        if next_start < starts.shape[0] and k == starts[next_start]:
            # a new sample begins: its time surface starts empty (samples are never empty)
            surface[:] = -np.inf
            next_start += 1
        x = xs[k] + radius
        y = ys[k] + radius
        t = float(ts[k])
        surface[cs[k], x, y] = t
        norm2 = 0.0
        idx = 0
        for ch in range(n_channels):
            for i in range(side):
                for j in range(side):
                    s = surface[ch, x - radius + i, y - radius + j]
                    v = 0.0  # no event yet (-inf): skip the exp, the costliest step per event
                    if s > -np.inf:
                        v = np.exp((s - t) * inv_tau)
                    ctx[idx] = v
                    norm2 += v * v
                    idx += 1
        inv_norm = 1.0 / np.sqrt(norm2)  # > 0: the event's own pixel contributes 1
        for q in range(n_ctx):
            ctx[q] *= inv_norm
        best = -1
        best_sim = -np.inf
        for n in range(n_neurons):
            d = 0.0
            for q in range(n_ctx):
                d += weights[n, q] * ctx[q]
            if d > theta[n] and d > best_sim:
                best = n
                best_sim = d
        winners[k] = best
        if best < 0:
            n_miss += 1
            window_miss += 1
            if learn:
                for n in range(n_neurons):
                    theta[n] -= d_open
        else:
            wins[best] += 1
            if learn:
                wn2 = 0.0
                for q in range(n_ctx):
                    w = (1.0 - eta) * weights[best, q] + eta * ctx[q]
                    weights[best, q] = w
                    wn2 += w * w
                inv = 1.0 / np.sqrt(wn2)
                for q in range(n_ctx):
                    weights[best, q] *= inv
                theta[best] += d_close
        if record_every > 0 and (k + 1) % record_every == 0:
            r = (k + 1) // record_every - 1
            for n in range(n_neurons):
                theta_trace[r, n] = theta[n]
            miss_trace[r] = window_miss
            window_miss = 0
    return n_miss


@dataclass
class FeastTrace:
    """Convergence signals of one :meth:`FeastLayer.fit` (or :meth:`FeastLayer.transform`) call.

    ``thresholds[r]`` is theta after event ``event_index[r]`` (counted from the start of the call);
    ``miss_rate[r]`` is the fraction of missed events in the window that ends there. ``wins`` counts
    the events each neuron won during the call, ``misses`` the events no neuron accepted. FEAST's
    steady state has equal win counts and ``wins.sum() / misses`` near
    ``n_neurons * delta_open / delta_close``; flat threshold trajectories signal converged weights.
    """

    thresholds: np.ndarray
    event_index: np.ndarray
    miss_rate: np.ndarray
    wins: np.ndarray
    misses: int
    events: int

    @property
    def hit_miss_ratio(self) -> float:
        """Total wins divided by misses (inf when there was no miss)."""
        return float(self.wins.sum() / self.misses) if self.misses else float("inf")


def _as_streams(streams) -> tuple[list[np.ndarray], bool]:
    if isinstance(streams, np.ndarray):
        return [streams], True
    streams = list(streams)
    if not streams:
        raise ShapeError("streams is an empty list; pass at least one event array")
    return streams, False


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _check_positive(name: str, value, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be a number") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ConfigError(f"{name}={value!r} must be finite and {'>= 0' if allow_zero else '> 0'}")
    return v


class FeastLayer:
    """One FEAST layer: ``n_neurons`` unit-norm kernels over (channel, 2R+1, 2R+1) time-surface patches.

    Parameters (defaults of Afshar's reference demo where it has one):
        n_neurons: number of feature neurons N (>= 1).
        sensor_size: (width, height) of the input; x in [0, width), y in [0, height).
        n_channels: input channels C (1: ignore ``p``; 2: ON/OFF polarity; a previous layer's N).
        radius: R, the context is (2R+1) x (2R+1) pixels per channel.
        tau: time-surface decay in microseconds.
        eta: learning rate of the winner's weights (0.001).
        delta_close: threshold raise of the winner (0.001).
        delta_open: threshold drop of every neuron on a miss (0.01).
        init_threshold: starting theta of every neuron (the MATLAB demo uses 1.0).
        seed: weights start as U(0, 1) draws from ``numpy.random.default_rng(seed)``, normalized.
    """

    def __init__(self, n_neurons: int, sensor_size: tuple[int, int], n_channels: int = 1, radius: int = 3,
                 tau: float = 20_000.0, eta: float = 0.001, delta_close: float = 0.001,
                 delta_open: float = 0.01, init_threshold: float = 1.0, seed: int = 0):
        self.n_neurons = _check_int("n_neurons", n_neurons, 1)
        try:
            width, height = (int(s) for s in sensor_size)
        except (TypeError, ValueError):
            raise ConfigError(f"sensor_size={sensor_size!r} must be (width, height)") from None
        if width < 1 or height < 1:
            raise ConfigError(f"sensor_size={sensor_size!r} must be positive")
        self.sensor_size = (width, height)
        self.n_channels = _check_int("n_channels", n_channels, 1)
        self.radius = _check_int("radius", radius, 0)
        self.tau = _check_positive("tau", tau)
        self.eta = _check_positive("eta", eta, allow_zero=True)
        if self.eta > 1:
            raise ConfigError(f"eta={eta!r} must be in [0, 1]")
        self.delta_close = _check_positive("delta_close", delta_close, allow_zero=True)
        self.delta_open = _check_positive("delta_open", delta_open, allow_zero=True)
        if not np.isfinite(float(init_threshold)):
            raise ConfigError(f"init_threshold={init_threshold!r} must be finite")
        side = 2 * self.radius + 1
        rng = np.random.default_rng(seed)
        w = rng.uniform(0.0, 1.0, size=(self.n_neurons, self.n_channels * side * side))
        self._weights = w / np.linalg.norm(w, axis=1, keepdims=True)
        self.thresholds = np.full(self.n_neurons, float(init_threshold))
        #: cumulative wins per neuron and misses over every fit() call
        self.win_counts = np.zeros(self.n_neurons, dtype=np.int64)
        self.miss_count = 0
        self.events_seen = 0
        #: one FeastTrace per fit() call, in order
        self.history: list[FeastTrace] = []

    @property
    def weights(self) -> np.ndarray:
        """Learned kernels as [N, C, 2R+1, 2R+1] (index [neuron, channel, dx + R, dy + R]); a copy."""
        side = 2 * self.radius + 1
        return self._weights.reshape(self.n_neurons, self.n_channels, side, side).copy()

    _HYPER = ("n_neurons", "n_channels", "radius", "tau", "eta", "delta_close", "delta_open")

    def save(self, path: str | os.PathLike) -> Path:
        """Write weights, thresholds, counters and hyper-parameters to an ``.npz`` file, atomically
        (temp file in the same folder, then ``os.replace``). Traces in :attr:`history` are not saved."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.asarray(getattr(self, k)) for k in self._HYPER}
        arrays.update(sensor_size=np.asarray(self.sensor_size), weights=self._weights, thresholds=self.thresholds,
                      win_counts=self.win_counts, miss_count=np.asarray(self.miss_count),
                      events_seen=np.asarray(self.events_seen), format=np.asarray("neuromorph.FeastLayer/1"))
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeastLayer":
        """Read a layer written by :meth:`save` (no pickled objects are ever loaded)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["format"]) != "neuromorph.FeastLayer/1":
                    raise CheckpointError(f"{str(path)!r} is not a FeastLayer file (format {str(z['format'])!r})")
                hyper = {k: z[k].item() for k in cls._HYPER}
                layer = cls(sensor_size=tuple(int(v) for v in z["sensor_size"]), **hyper)
                weights, thresholds = z["weights"].astype(np.float64), z["thresholds"].astype(np.float64)
                win_counts = z["win_counts"].astype(np.int64)
                miss_count, events_seen = int(z["miss_count"]), int(z["events_seen"])
        except CheckpointError:
            raise
        except (OSError, KeyError, ValueError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"cannot read FeastLayer file {str(path)!r}: {exc}") from exc
        if weights.shape != layer._weights.shape or thresholds.shape != (layer.n_neurons,) \
                or win_counts.shape != (layer.n_neurons,):
            raise CheckpointError(f"{str(path)!r}: weights {weights.shape} / thresholds {thresholds.shape} do not "
                                  f"match n_neurons={layer.n_neurons}, context size {layer._weights.shape[1]}")
        if not (np.isfinite(weights).all() and np.isfinite(thresholds).all()):
            raise CheckpointError(f"{str(path)!r}: weights or thresholds are not finite")
        layer._weights, layer.thresholds, layer.win_counts = weights, thresholds, win_counts
        layer.miss_count, layer.events_seen = miss_count, events_seen
        return layer

    def similarity(self, context: np.ndarray) -> np.ndarray:
        """Cosine similarity d_i = w_i . c / ||c|| of every neuron to one context of shape [C, 2R+1, 2R+1]."""
        c = np.asarray(context, dtype=np.float64).reshape(-1)
        if c.size != self._weights.shape[1]:
            raise ShapeError(f"context has {c.size} values, expected {self._weights.shape[1]} "
                             f"(C={self.n_channels}, side={2 * self.radius + 1})")
        n = np.linalg.norm(c)
        if n == 0:
            raise ShapeError("context is all zeros; its direction is undefined")
        return self._weights @ (c / n)

    # -- input checks ---------------------------------------------------------------------------
    def _prepare(self, streams: list[np.ndarray]):
        width, height = self.sensor_size
        xs, ys, cs, ts, starts = [], [], [], [], []
        offset = 0
        for k, ev in enumerate(streams):
            name = f"streams[{k}]"
            require_fields(ev, ("x", "y", "t", "p"), name)
            if ev.ndim != 1:
                raise ShapeError(f"{name} must be a 1-D structured array, got shape {ev.shape}")
            if len(ev) == 0:
                raise ShapeError(f"{name} is an empty event stream; FEAST needs at least one event")
            x = ev["x"].astype(np.int64)
            y = ev["y"].astype(np.int64)
            t = ev["t"].astype(np.int64)
            for fname, v, hi in (("x", x, width), ("y", y, height)):
                bad = np.flatnonzero((v < 0) | (v >= hi))
                if bad.size:
                    i = int(bad[0])
                    raise DataFormatError(f"{name} field {fname!r}: event {i} has {fname}={int(v[i])}, outside "
                                          f"the sensor [0, {hi}) of sensor_size={self.sensor_size}")
            dec = np.flatnonzero(np.diff(t) < 0)
            if dec.size:
                i = int(dec[0]) + 1
                raise DataFormatError(f"{name} field 't' is not sorted: event {i} has t={int(t[i])} < "
                                      f"t={int(t[i - 1])} of event {i - 1}; sort first with "
                                      f"np.sort(events, order='t', kind='stable')")
            if self.n_channels == 1:
                c = np.zeros(len(ev), dtype=np.int64)
            else:
                c = ev["p"].astype(np.int64)
                bad = np.flatnonzero((c < 0) | (c >= self.n_channels))
                if bad.size:
                    i = int(bad[0])
                    raise DataFormatError(f"{name} field 'p': event {i} has p={int(c[i])}, outside the "
                                          f"layer's channels [0, {self.n_channels})")
            xs.append(x), ys.append(y), cs.append(c), ts.append(t), starts.append(offset)
            offset += len(ev)
        return (np.concatenate(xs), np.concatenate(ys), np.concatenate(cs), np.concatenate(ts),
                np.asarray(starts, dtype=np.int64))

    def _run(self, streams: list[np.ndarray], learn: bool, record_every: int):
        x, y, c, t, starts = self._prepare(streams)
        r = self.radius
        surface = np.empty((self.n_channels, self.sensor_size[0] + 2 * r, self.sensor_size[1] + 2 * r))
        n = len(t)
        n_rec = n // record_every if record_every > 0 else 0
        theta_trace = np.zeros((n_rec, self.n_neurons))
        miss_trace = np.zeros(n_rec, dtype=np.int64)
        wins = np.zeros(self.n_neurons, dtype=np.int64)
        winners = np.empty(n, dtype=np.int64)
        misses = _feast_kernel(x, y, c, t, starts, self._weights, self.thresholds, surface, r, self.tau,
                               self.eta, self.delta_close, self.delta_open, learn, record_every,
                               theta_trace, miss_trace, wins, winners)
        trace = FeastTrace(thresholds=theta_trace,
                           event_index=(np.arange(1, n_rec + 1) * record_every) - 1,
                           miss_rate=miss_trace / float(record_every) if record_every > 0 else miss_trace * 0.0,
                           wins=wins, misses=int(misses), events=n)
        return winners, starts, (x, y, t), trace

    # -- public API -----------------------------------------------------------------------------
    def fit(self, streams: np.ndarray | Sequence[np.ndarray], epochs: int = 1, record_every: int = 1000) -> FeastTrace:
        """Learn online from one event array or a list of samples; returns the convergence trace.

        Events are presented in the given order, sample after sample, ``epochs`` times. Every
        ``record_every`` events the thresholds and the window's miss rate are recorded (0: never).
        The trace is also appended to :attr:`history`; :attr:`win_counts` accumulates.
        """
        epochs = _check_int("epochs", epochs, 1)
        record_every = _check_int("record_every", record_every, 0)
        streams, _ = _as_streams(streams)
        traces = []
        for _ in range(epochs):
            _, _, _, trace = self._run(streams, learn=True, record_every=record_every)
            traces.append(trace)
        if len(traces) == 1:
            trace = traces[0]
        else:
            offset = np.cumsum([0] + [tr.events for tr in traces[:-1]])
            trace = FeastTrace(thresholds=np.concatenate([tr.thresholds for tr in traces]),
                               event_index=np.concatenate([tr.event_index + o for tr, o in zip(traces, offset)]),
                               miss_rate=np.concatenate([tr.miss_rate for tr in traces]),
                               wins=sum(tr.wins for tr in traces), misses=sum(tr.misses for tr in traces),
                               events=sum(tr.events for tr in traces))
        self.win_counts += trace.wins
        self.miss_count += trace.misses
        self.events_seen += trace.events
        self.history.append(trace)
        return trace

    def transform(self, streams: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
        """Frozen inference: the feature events (x, y, t, p = winning neuron) of each sample.

        Missed events are dropped, so a sample may yield an empty array. Returns one array for one
        input array, a list for a list.
        """
        streams, single = _as_streams(streams)
        winners, starts, (x, y, t), _ = self._run(streams, learn=False, record_every=0)
        out = []
        bounds = list(starts) + [len(t)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            w = winners[a:b]
            keep = w >= 0
            ev = np.empty(int(keep.sum()), dtype=FEATURE_EVENT_DTYPE)
            ev["x"], ev["y"], ev["t"], ev["p"] = x[a:b][keep], y[a:b][keep], t[a:b][keep], w[keep]
            out.append(ev)
        return out[0] if single else out


class FeastNetwork:
    """A stack of FEAST layers: layer k+1 reads the feature events of layer k (``p`` = feature).

    Trained greedily, layer by layer: layer k learns on the frozen outputs of layers < k (the
    multi-layer scheme of Afshar et al. 2020).
    """

    def __init__(self, layers: Sequence[FeastLayer]):
        layers = list(layers)
        if not layers:
            raise ConfigError("layers is empty; a FeastNetwork needs at least one FeastLayer")
        for k in range(1, len(layers)):
            prev, cur = layers[k - 1], layers[k]
            if cur.n_channels != prev.n_neurons:
                raise ConfigError(f"layers[{k}].n_channels={cur.n_channels} must equal layers[{k - 1}].n_neurons="
                                  f"{prev.n_neurons} (its input channels are the previous layer's features)")
            if cur.sensor_size != prev.sensor_size:
                raise ConfigError(f"layers[{k}].sensor_size={cur.sensor_size} differs from layers[{k - 1}]"
                                  f".sensor_size={prev.sensor_size}")
        self.layers = layers

    def fit(self, streams, epochs: int = 1, record_every: int = 1000) -> list[FeastTrace]:
        """Train every layer in turn; returns each layer's trace."""
        streams, _ = _as_streams(streams)
        traces = []
        for k, layer in enumerate(self.layers):
            if k > 0:
                streams = [s for s in self.layers[k - 1].transform(streams)]
                if not any(len(s) for s in streams):
                    raise ShapeError(f"layers[{k - 1}] emitted no feature events; layer {k} cannot learn")
                streams = [s for s in streams if len(s)]
            traces.append(layer.fit(streams, epochs=epochs, record_every=record_every))
        return traces

    def transform(self, streams, all_layers: bool = False):
        """Feature events of the last layer (or of every layer when ``all_layers``), per sample.

        A sample that a layer turns into an empty stream stays empty in the deeper layers.
        """
        streams, single = _as_streams(streams)
        outputs = []
        current = streams
        for layer in self.layers:
            nonempty = [k for k, s in enumerate(current) if len(s)]
            result = [np.empty(0, dtype=FEATURE_EVENT_DTYPE) for _ in current]
            if nonempty:
                for k, ev in zip(nonempty, layer.transform([current[k] for k in nonempty])):
                    result[k] = ev
            outputs.append(result)
            current = result
        if all_layers:
            return [o[0] for o in outputs] if single else outputs
        return current[0] if single else current


def feature_histogram(feature_events: np.ndarray | Sequence[np.ndarray], n_features: int,
                      sensor_size: tuple[int, int], grid: tuple[int, int] = (1, 1),
                      normalize: bool = True) -> np.ndarray:
    """Per-sample histogram of feature events over (feature, spatial cell).

    The sensor is cut into ``grid = (gx, gy)`` equal cells (cell of x is ``x * gx // width``); entry
    ``[s, f * gx * gy + cx * gy + cy]`` counts the events of feature ``f`` in cell (cx, cy) of sample s.
    ``normalize`` divides each row by its total (an empty sample gives a zero row). With
    ``grid=(1, 1)`` this is the plain feature-count histogram used as FEAST's classifier input.
    Returns float64 [n_samples, n_features * gx * gy].
    """
    streams, single = _as_streams(feature_events)
    n_features = _check_int("n_features", n_features, 1)
    try:
        gx, gy = (_check_int("grid", g, 1) for g in grid)
        width, height = (int(s) for s in sensor_size)
    except (TypeError, ValueError):
        raise ConfigError(f"grid={grid!r} and sensor_size={sensor_size!r} must be pairs of integers") from None
    if width < 1 or height < 1:
        raise ConfigError(f"sensor_size={sensor_size!r} must be positive")
    out = np.zeros((len(streams), n_features * gx * gy))
    for s, ev in enumerate(streams):
        if len(ev) == 0:
            continue
        require_fields(ev, ("x", "y", "p"), f"feature_events[{s}]")
        f = ev["p"].astype(np.int64)
        x = ev["x"].astype(np.int64)
        y = ev["y"].astype(np.int64)
        if f.min() < 0 or f.max() >= n_features:
            raise DataFormatError(f"feature_events[{s}] field 'p' has values outside [0, {n_features})")
        if x.min() < 0 or x.max() >= width or y.min() < 0 or y.max() >= height:
            raise DataFormatError(f"feature_events[{s}] has x/y outside sensor_size={tuple(sensor_size)}")
        idx = f * (gx * gy) + (x * gx // width) * gy + (y * gy // height)
        out[s] = np.bincount(idx, minlength=out.shape[1])
        if normalize:
            out[s] /= out[s].sum()
    return out[0] if single else out
