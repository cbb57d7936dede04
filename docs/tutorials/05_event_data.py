# %% [markdown]
# # Event data: files, transforms, the emulator, FEAST
#
# Event cameras and silicon cochleas do not produce frames: each pixel (or channel) reports an *event* when
# its input changes, with a microsecond timestamp. neuromorph reads the common file formats into one NumPy
# layout, transforms events the way Tonic does, turns ordinary video into events with a DVS emulator, and
# learns features from events without gradients (FEAST).
#
# **Data.** The tutorial reads one file of each format it finds under `NEUROMORPH_DATA` (any folder tree):
# N-MNIST and DVS128 `.bin`, Prophesee `.raw` (EVT 2.0/3.0) and `.dat`, AEDAT 2.0/3.1/4.0 and headerless jAER
# `.aedat`, Event Stream `.es`, SHD/SSC `.h5`. Recordings of your own, or the samples published with
# Tonic, expelliarmus, aestream and faery, all work. The FEAST section uses N-MNIST (`DATA/nmnist/Train`,
# `DATA/nmnist/Test`, see tutorial 2) and falls back to the embedded `digits-dvs` set without it.

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import neuromorph as nm
from neuromorph.data import CenterCrop, Compose, Denoise, DropEvent, ToFrame

QUICK = os.environ.get("NEUROMORPH_TUTORIAL_QUICK") == "1"  # the test suite's reduced mode
DATA = Path(os.environ["NEUROMORPH_DATA"]) if os.environ.get("NEUROMORPH_DATA") else None
if DATA is None:
    print("NEUROMORPH_DATA is not set: no recordings to read; the transforms and FEAST use digits-dvs")

# %% [markdown]
# ## One layout for every format
#
# Vision events are a structured array with fields `x`, `y` (pixels), `t` (microseconds, int64) and `p`
# (polarity 0/1): `nm.data.EVENT_DTYPE`, the layout Tonic uses. Audio-like events (cochlea channels, SHD)
# have `t` and `unit` (`AUDIO_EVENT_DTYPE`). `nm.data.read(path)` recognises the format from the file's
# header, then its extension, and returns the events with the sensor size the file declares;
# `nm.data.summarize(path)` is what `neuromorph inspect FILE` prints.

# %%
def one_file_per_format(root: Path | None) -> dict[str, Path]:
    """The smallest file of each event-file suffix under ``root``."""
    found: dict[str, Path] = {}
    if root is None:
        return found
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if suffix in (".bin", ".raw", ".dat", ".aedat", ".aedat4", ".es", ".h5") and path.is_file():
            key = f"{path.relative_to(root).parts[0]}/*{suffix}"  # N-MNIST and DVS128 both use .bin
            if key not in found or path.stat().st_size < found[key].stat().st_size:
                found[key] = path
    return found


files = one_file_per_format(DATA)
for key, path in sorted(files.items()):
    try:
        info = nm.data.summarize(path)
    except nm.errors.DataFormatError as err:
        # headerless files do not say how they are laid out: the error names the option that reads them
        print(f"{path.name}: DataFormatError: {str(err).split(';')[-1].strip()}")
        options = {k: (v[0] if isinstance(v, tuple) else v) for k, v in err.options.items()}
        info = nm.data.summarize(path, **options)
    shown = {k: info[k] for k in ("format", "sensor_size", "events", "samples", "duration_us") if k in info}
    print(f"{path.name}: {shown}")

# %% [markdown]
# Large recordings stream: the formats whose files grow large have `iter_*` twins that yield chunks with
# bounded memory (`iter_atis_bin`, `iter_evt2`, `iter_evt3`, `iter_dat`, `iter_es`, `iter_aedat31`,
# `iter_aedat4`, `iter_shd`). Damaged files raise `DataFormatError` naming the file and the byte offset.

# %%
raw = next((p for k, p in files.items() if k.endswith(".raw")), None)
if raw is not None:
    fmt = nm.data.detect_format(raw)  # "evt2" or "evt3"
    chunks = [len(c) for c in getattr(nm.data, f"iter_{fmt}")(raw, chunk_events=50_000)]
    print(f"{raw.name} ({fmt}): {sum(chunks)} events in {len(chunks)} chunks of about 50,000")

# %% [markdown]
# ## Transforms
#
# Transforms are small frozen objects applied to an event array, composed with `Compose`, and named like
# Tonic's: `Denoise` (drop events without recent neighbours), `RefractoryPeriod`, `Downsample`,
# `CenterCrop`/`Crop`, the augmentations `RandomFlipLR/UD`, `RandomFlipPolarity`, `RandomRotation`,
# `TimeJitter`, `DropEvent`, `TimeSkew` (pass `rng=`), and the binning `ToFrame` (events to frames
# `[T, P, H, W]` by time window, event count or number of bins) and `ToSpikeCounts` (audio events to counts
# `[T, channels]`). Sensor sizes are `(W, H, P)` as in Tonic.

# %%
if DATA is not None and (DATA / "nmnist" / "Train").is_dir():
    events = nm.data.read_nmnist(sorted((DATA / "nmnist" / "Train" / "7").glob("*.bin"))[0])
else:
    events, _ = nm.data.DigitsDVS(split="train")[7]
sensor = (34, 34, 2)
pipeline = Compose((Denoise(filter_time=10_000), CenterCrop(sensor, (32, 32))))
clean = pipeline(events)
dropped = DropEvent(p_range=(0.5, 0.5))(clean, rng=np.random.default_rng(0))
print(f"{len(events)} events -> {len(clean)} after Denoise + CenterCrop -> {len(dropped)} after DropEvent(0.5)")
fig, axes = plt.subplots(1, 3, figsize=(8, 2.6))
for ax, (title, ev, size) in zip(axes, (("raw", events, sensor), ("denoised, cropped", clean, (32, 32, 2)),
                                        ("DropEvent(0.5)", dropped, (32, 32, 2)))):
    frame = ToFrame(sensor_size=size, n_time_bins=1)(ev)[0]
    ax.imshow(frame[1].astype(float) - frame[0], cmap="coolwarm", vmin=-4, vmax=4)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The DVS emulator
#
# `nm.data.DVSEmulator` turns frames `[N, H, W]` with timestamps into events the way a DVS pixel does: each
# pixel keeps the log intensity at its last event and fires ON/OFF events when the current log intensity has
# moved by its contrast threshold (per-pixel mismatch `threshold_sigma`, `refractory_us`, shot noise), with
# the times interpolated between frames. Its defaults follow v2e's "clean" preset; `emulate_video(path)` reads
# a video file or a folder of images. `digits-dvs` is made this way. Here: a bright bar sweeping across.

# %%
H, W, N = 32, 48, 60
times = np.arange(N) * 2_000  # a frame every 2 ms
frames = np.full((N, H, W), 0.1)
for k in range(N):
    x0 = int(k * (W - 6) / (N - 1))
    frames[k, 8:24, x0 : x0 + 6] = 0.9
emulated = nm.data.DVSEmulator(threshold_on=0.3, threshold_off=0.3, seed=0)(frames, times)
print(f"{len(emulated)} events, {int(emulated['p'].sum())} ON; fields {emulated.dtype.names}")
fig, ax = plt.subplots(figsize=(6, 2.6))
on = emulated["p"] == 1
ax.scatter(emulated["t"][on] / 1000, emulated["x"][on], s=1, label="ON")
ax.scatter(emulated["t"][~on] / 1000, emulated["x"][~on], s=1, label="OFF")
ax.set_xlabel("t (ms)")
ax.set_ylabel("x")
ax.legend(fontsize=8, markerscale=5)
plt.show()

# %% [markdown]
# ## FEAST: features learned from events, without gradients
#
# FEAST (Afshar et al., "Event-based Feature Extraction Using Adaptive Selection Thresholds", Sensors 2020)
# learns a set of feature neurons online, event by event. For each event it builds the *time surface* of the
# (2R+1)×(2R+1) neighbourhood (exp(−Δt/τ) of each pixel's last event), finds the neuron whose unit-norm
# kernel matches best among those whose threshold the match exceeds, moves that winner's kernel towards the
# surface and raises its threshold; if no neuron matches, every threshold drops. Frozen, the layer turns
# events into feature events (x, y, t, winning neuron). Histograms of feature events over a spatial grid,
# with a linear readout, classify N-MNIST; the example script `examples/feast_nmnist.py` does it on 1,000
# samples with hyper-parameters chosen by cross-validation on the training split.

# %%
from neuromorph.features import FeastLayer, LinearReadout, feature_histogram

n_train, n_test = (60, 30) if QUICK else (1000, 100)
if DATA is not None and (DATA / "nmnist" / "Train").is_dir():
    def load(split: str, n: int):
        paths = sorted((DATA / "nmnist" / split).glob("*/*.bin"))
        paths = [paths[i] for i in np.random.default_rng(0).permutation(len(paths))[:n]]
        return [nm.data.read_nmnist(p) for p in paths], np.array([int(p.parent.name) for p in paths])
    train, y_train = load("Train", n_train)
    test, y_test = load("Test", n_test)
else:
    digits_train, digits_test = nm.data.DigitsDVS(split="train"), nm.data.DigitsDVS(split="test")
    train, y_train = map(list, zip(*(digits_train[i] for i in range(n_train))))
    test, y_test = map(list, zip(*(digits_test[i] for i in range(n_test))))
    y_train, y_test = np.array(y_train), np.array(y_test)

layer = FeastLayer(32, (34, 34), radius=3, tau=10_000.0, init_threshold=0.0, seed=0)
t0 = time.perf_counter()
trace = layer.fit(train, record_every=2000)  # unsupervised: no labels
fit_s = time.perf_counter() - t0
h_train = feature_histogram(layer.transform(train), layer.n_neurons, (34, 34), grid=(4, 4))
h_test = feature_histogram(layer.transform(test), layer.n_neurons, (34, 34), grid=(4, 4))
readout = LinearReadout(C=0.1).fit(h_train, y_train)
events_seen = sum(len(s) for s in train)
print(f"FEAST fit on {len(train)} samples ({events_seen / fit_s / 1e6:.2f} M events/s); "
      f"test accuracy {readout.score(h_test, y_test):.3f} on {len(test)} samples")

# %%
fig, axes = plt.subplots(2, 16, figsize=(10, 1.6))
for k, ax in enumerate(axes.flat):
    ax.imshow(layer.weights[k, 0], cmap="viridis", origin="lower")
    ax.axis("off")
fig.suptitle("the 32 learned kernels (time-surface patches, 7×7)", fontsize=9)
plt.show()
fig, ax = plt.subplots(figsize=(6, 2.4))
ax.plot(trace.event_index, trace.thresholds, lw=0.6)
ax.set_xlabel("events presented")
ax.set_ylabel("threshold θ")
plt.show()
