"""DVS emulator: exact crossing times on a ramp, refractory period, mismatch, shot noise, determinism."""

import math

import numpy as np
import pytest

from neuromorph.data import DVSEmulator, emulate
from neuromorph.data.events import EVENT_DTYPE
from neuromorph.errors import ConfigError, NonFiniteError, ShapeError


def _ramp(i0, i1, span=1000):
    return np.array([[[i0]], [[i1]]], float), np.array([0, span])


def test_ramp_gives_one_event_per_threshold_crossing_at_the_interpolated_time():
    eps, th = 0.1, 0.5
    frames, times = _ramp(0.0, 1.0)
    ev = emulate(frames, times, threshold_on=th, threshold_off=th, threshold_sigma=0.0, eps=eps)
    dl = math.log(1.0 + eps) - math.log(0.0 + eps)
    n = math.floor(dl / th)
    assert ev.dtype == EVENT_DTYPE and len(ev) == n and np.all(ev["p"] == 1)
    expect = [math.floor(k * th / dl * 1000) for k in range(1, n + 1)]
    np.testing.assert_array_equal(ev["t"], expect)
    # the same ramp downwards gives OFF events, at the mirrored levels
    down = emulate(frames[::-1].copy(), times, threshold_on=th, threshold_off=th, threshold_sigma=0.0, eps=eps)
    assert len(down) == n and np.all(down["p"] == 0)


def test_reference_level_carries_over_frames():
    # three small steps of 0.3 each with θ = 0.5: events after the 2nd (0.6) and none after the 3rd (0.9 < 1.0)
    eps = 0.1
    lv = np.exp([0.0, 0.3, 0.6, 0.9]) - eps
    frames = lv[:, None, None]
    ev = emulate(frames, [0, 100, 200, 300], threshold_on=0.5, threshold_off=0.5, threshold_sigma=0.0, eps=eps)
    assert len(ev) == 1 and 100 < ev["t"][0] <= 200 and ev["p"][0] == 1


def test_refractory_period_suppresses_events_but_consumes_the_change():
    frames, times = _ramp(0.0, 1.0)
    kw = dict(threshold_on=0.5, threshold_off=0.5, threshold_sigma=0.0, eps=0.1)
    free = emulate(frames, times, **kw)["t"]
    blind = emulate(frames, times, refractory_us=300, **kw)["t"]
    kept, last = [], -10**9
    for t in free:
        if t - last >= 300:
            kept.append(t)
            last = t
    np.testing.assert_array_equal(blind, kept)
    assert len(blind) < len(free)


def test_threshold_mismatch_and_determinism():
    em = DVSEmulator(threshold_on=0.3, threshold_sigma=0.05, seed=3)
    on, off = em.thresholds(200, 200)
    assert abs(on.mean() - 0.3) < 0.003 and abs(on.std() - 0.05) < 0.003 and on.min() >= em.threshold_min
    rng = np.random.default_rng(0)
    video = rng.random((6, 16, 16))
    a, b = em(video, np.arange(6) * 1000), em(video, np.arange(6) * 1000)
    np.testing.assert_array_equal(a, b)
    c = DVSEmulator(threshold_on=0.3, threshold_sigma=0.05, seed=4)(video, np.arange(6) * 1000)
    assert not np.array_equal(a, c)
    assert np.all(np.diff(a["t"]) >= 0) and a["x"].max() < 16 and a["y"].max() < 16


def test_shot_noise_rate_on_a_static_scene():
    static = np.full((2, 50, 40), 0.5)
    ev = emulate(static, [0, 1_000_000], shot_noise_rate_hz=2.0, seed=1)
    expect = 2.0 * 50 * 40  # per pixel per second, for 1 s
    assert abs(len(ev) - expect) < 5 * math.sqrt(expect)
    assert abs(ev["p"].mean() - 0.5) < 0.05
    assert len(emulate(static, [0, 1_000_000])) == 0  # no change, no noise: silence


def test_moving_bar_gives_on_ahead_and_off_behind():
    frames = np.zeros((11, 1, 20))
    for k in range(11):
        frames[k, 0, 3 + k : 6 + k] = 1.0  # a bright bar moving right by one pixel per frame
    ev = emulate(frames, np.arange(11) * 1000, threshold_sigma=0.0)
    on, off = ev[ev["p"] == 1], ev[ev["p"] == 0]
    assert set(on["x"]) == set(range(6, 16)) and set(off["x"]) == set(range(3, 13))
    assert len(on) == len(off)


def test_bad_input():
    with pytest.raises(ShapeError, match="frames"):
        emulate(np.zeros((4, 4)), [0, 1])
    with pytest.raises(ShapeError, match="increasing"):
        emulate(np.zeros((2, 4, 4)), [5, 5])
    with pytest.raises(ShapeError, match="timestamps_us"):
        emulate(np.zeros((2, 4, 4)), [0, 1, 2])
    with pytest.raises(NonFiniteError):
        emulate(np.full((2, 4, 4), np.nan), [0, 1])
    with pytest.raises(ConfigError, match="threshold_on"):
        DVSEmulator(threshold_on=0.0)
    with pytest.raises(ConfigError, match="refractory_us"):
        DVSEmulator(refractory_us=-1)
    with pytest.raises(ConfigError, match="threshold_on"):
        DVSEmulator(threshold_on="0.2")  # a number, not a string (was a raw TypeError)


def test_video_files_and_image_folders(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from neuromorph.data.emulator import emulate_video, read_video
    from neuromorph.errors import DataFormatError

    frames = np.zeros((6, 8, 12), np.uint8)
    for k in range(6):
        frames[k, 2:6, 2 + k : 5 + k] = 255
    images = [Image.fromarray(f) for f in frames]
    images[0].save(tmp_path / "bar.gif", save_all=True, append_images=images[1:], duration=40, loop=0)
    got, times = read_video(tmp_path / "bar.gif")
    np.testing.assert_array_equal(np.rint(got * 255), frames)
    np.testing.assert_array_equal(times, np.arange(6) * 40_000)
    np.testing.assert_array_equal(emulate_video(tmp_path / "bar.gif", seed=2), emulate(frames, times, seed=2))
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, im in enumerate(images):
        im.save(folder / f"{k:03d}.png")
    np.testing.assert_array_equal(emulate_video(folder, fps=25, seed=2), emulate(frames, times, seed=2))
    with pytest.raises(ConfigError, match="fps"):
        read_video(folder)
    (tmp_path / "junk.gif").write_bytes(b"GIF89a-not-really")
    with pytest.raises(DataFormatError, match="junk.gif"):
        read_video(tmp_path / "junk.gif")
