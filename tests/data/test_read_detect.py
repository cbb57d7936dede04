"""read()/detect_format() on every real file, and the `neuromorph data read` command."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuromorph.cli import main
from neuromorph.data import (
    AUDIO_EVENT_DTYPE, EVENT_DTYPE, Downsample, EventArray, ToFrame, detect_format, read, read_evt3, read_nmnist,
    summarize,
)
from neuromorph.errors import ConfigError, DataFormatError

REAL = {  # path under shared data: (format, events, sensor (width, height) the file declares)
    "nmnist/Train/5/00001.bin": ("atis_bin", 4681, None),  # headerless: the layout declares no sensor
    "dvs128/01.bin": ("atis_bin", 63471, None),
    "prophesee/faery_evt2.raw": ("evt2", 521252, (640, 480)),  # Gen3 VGA (plugin hal_plugin_gen3_fx3)
    "prophesee/expelliarmus_evt2_sample.raw": ("evt2", 539481, (640, 480)),
    "prophesee/expelliarmus_evt3_sample.raw": ("evt3", 219596, (1280, 720)),
    "aedat/aestream_davis.aedat4": ("aedat4", 117667, (346, 260)),
    "eventstream/dvs.es": ("es", 473225, (320, 240)),
}


@pytest.mark.parametrize("rel", sorted(REAL))
def test_detect_and_read_real_files(shared_data, rel):
    fmt, n, sensor = REAL[rel]
    path = shared_data / rel
    assert detect_format(path) == fmt
    ev = read(path)
    assert len(ev) == n and ev.dtype == EVENT_DTYPE
    # the header's sensor comes back with the events, and every event lies on it
    assert (ev.sensor_size, ev.format, ev.path) == (sensor, fmt, str(path))
    if sensor is not None:
        assert ev["x"].max() < sensor[0] and ev["y"].max() < sensor[1]
    json.dumps(ev.header)  # header fields are plain JSON


def test_read_result_is_an_array_that_keeps_only_the_files_metadata(shared_data, tmp_path):
    path = shared_data / "prophesee" / "faery_evt2.raw"
    ev = read(path)
    assert isinstance(ev, np.ndarray) and isinstance(ev, EventArray)
    assert ev.header["plugin_name"] == "hal_plugin_gen3_fx3" and ev.header["evt"] == "2.0"
    to_frame = ToFrame((*ev.sensor_size, 2), n_time_bins=2)
    frames = to_frame(ev)
    assert frames.shape == (2, 2, 480, 640) and np.array_equal(frames, to_frame(ev.view(np.ndarray)))
    # derived arrays are plain: a crop or downsampling must not claim the file's 640x480
    for derived in (ev[ev["t"] < ev["t"][1000]], ev[:10], ev["x"], ev.copy(), Downsample(0.5)(ev)):
        assert type(derived) is np.ndarray
    back = pickle.loads(pickle.dumps(ev))  # DataLoader workers pickle samples
    assert back.sensor_size == (640, 480) and back.header == ev.header and np.array_equal(back, ev)
    # a sensor_size given to the reader is the one the events were checked against, and the one returned
    assert read(path, sensor_size=(1280, 720, 2)).sensor_size == (1280, 720)
    cochlea = read(shared_data / "cochlea_sensor" / "enun_stereo_64ch_ONOFF_addr4b_ts1.aedat",
                   format="aedat_addresses", address_bytes=4)
    assert cochlea.dtype == AUDIO_EVENT_DTYPE and cochlea.sensor_size is None and cochlea.format == "aedat_addresses"


def test_read_dispatch_equals_format_readers(shared_data):
    f = shared_data / "nmnist" / "Train" / "5" / "00001.bin"
    np.testing.assert_array_equal(read(f, format="nmnist"), read_nmnist(f))
    np.testing.assert_array_equal(read(f), read_nmnist(f))
    g = shared_data / "prophesee" / "expelliarmus_evt3_sample.raw"
    np.testing.assert_array_equal(read(g), read_evt3(g))
    samples, labels = read(shared_data / "shd_fsdd" / "shd_fsdd_test.h5")
    assert len(samples) == len(labels) == 300
    with pytest.raises(ConfigError, match="format"):
        read(f, format="mp4")
    with pytest.raises(DataFormatError, match="34x34"):
        read(shared_data / "dvs128" / "01.bin", format="nmnist")


def test_unknown_and_headerless(tmp_path, shared_data):
    u = tmp_path / "x.txt"
    u.write_bytes(b"hello")
    with pytest.raises(DataFormatError, match="unknown event file format") as e:
        read(u)
    assert e.value.offset == 0 and "x.txt" in str(e.value)
    with pytest.raises(DataFormatError, match="address_bytes"):
        read(shared_data / "cochlea_sensor" / "sound_mono_32ch_ONOFF_addr2b_ts02.aedat")
    ev = read(shared_data / "cochlea_sensor" / "sound_mono_32ch_ONOFF_addr2b_ts02.aedat",
              format="aedat_addresses", address_bytes=2, timestamp_tick_us=0.2)
    assert len(ev) == 49864
    r = tmp_path / "n.raw"
    r.write_bytes(b"% camera foo\n" + bytes(8))
    with pytest.raises(DataFormatError, match="EVT"):
        read(r)


def test_summarize_real(shared_data):
    info = summarize(shared_data / "prophesee" / "expelliarmus_evt3_sample.raw")
    assert info["format"] == "evt3" and info["events"] == 219596 and info["sensor_size"] == (1280, 720)
    assert info["duration_us"] == 8801 and info["x_range"] == [0, 1279]


def test_cli_data_read(shared_data, capsys, tmp_path):
    assert main(["data", "read", "--json", str(shared_data / "eventstream" / "dvs.es")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "es" and out["events"] == 473225 and out["sensor_size"] == [320, 240]
    assert out["header"] == {"version": [2, 0, 0], "event_type": "dvs"}
    assert out["t_first_us"] == 0 and out["t_last_us"] == 999000
    assert main(["data", "read", "--json", str(shared_data / "prophesee" / "faery_evt2.raw")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sensor_size"] == [640, 480] and out["header"]["plugin_name"] == "hal_plugin_gen3_fx3"
    assert main(["data", "read", str(shared_data / "aedat" / "aestream_davis.aedat4")]) == 0
    text = capsys.readouterr().out
    assert "aedat4" in text and "117,667" in text and "346x260" in text
    bad = tmp_path / "t.bin"
    bad.write_bytes(bytes(7))
    assert main(["data", "read", "--json", str(bad)]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["type"] == "DataFormatError" and err["offset"] == 5 and err["file"] == str(bad)
    cochlea = shared_data / "cochlea_sensor" / "130Hz_mono_64ch_ONOFF_addr2b_ts02.aedat"
    assert main(["data", "read", "--json", "--format", "aedat_addresses", "--address-bytes", "2",
                 "--tick-us", "0.2", str(cochlea)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events"] == 331949 and out["unit_range"] == [0, 125] and out["t_last_us"] == 496680
    assert main(["data", "read", "--address-bytes", "2", str(cochlea)]) == 2


def _neuromorph(*args):
    """Run the installed ``neuromorph`` command as a user does (this interpreter's venv first on PATH)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["neuromorph", *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_cli_refuses_a_wrong_address_size_and_names_its_own_flags(shared_data):
    # whole 8-byte records, but really 2-byte addresses: this printed garbage with exit status 0
    cochlea = shared_data / "cochlea_sensor" / "sound_mono_32ch_ONOFF_addr2b_ts02.aedat"
    p = _neuromorph("data", "read", "--format", "aedat_addresses", "--address-bytes", "4", "--tick-us", "0.2", cochlea)
    text = p.stdout + p.stderr
    assert p.returncode == 1, text
    assert "run backwards" in text and cochlea.name in text and text.rstrip().endswith("pass --address-bytes 2")
    assert "address_bytes" not in text  # the readers' Python keyword is not what a CLI user types
    # no format given: the advice is the full, working command line
    p = _neuromorph("data", "read", "--json", cochlea)
    assert p.returncode == 1 and "pass --format aedat_addresses --address-bytes 2" in p.stdout + p.stderr
    assert "read_aedat_addresses" not in p.stdout + p.stderr
    p = _neuromorph("data", "read", "--json", "--format", "aedat_addresses", "--address-bytes", "2", "--tick-us", "0.2",
                    cochlea)
    assert p.returncode == 0 and json.loads(p.stdout)["events"] == 49864


def test_aedat2_without_a_known_chip_advises_the_chip(tmp_path, capsys):
    f = tmp_path / "a.aedat"
    f.write_bytes(b"#!AER-DAT2.0\r\n# made by hand\r\n" + bytes([0, 0, 0x0E, 0x0F, 0, 0, 0, 7]))
    with pytest.raises(DataFormatError, match="no known chip") as e:
        read(f)
    assert str(e.value).endswith("; use read(path, format='aedat2', chip='dvs128' or 'davis240' or 'davis346')")
    assert main(["data", "read", str(f)]) == 1
    assert capsys.readouterr().err.rstrip().endswith("; pass --format aedat2 --chip dvs128 or davis240 or davis346")
    assert main(["data", "read", "--json", "--format", "aedat2", "--chip", "dvs128", str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events"] == 1 and out["x_range"] == [7, 7] and out["y_range"] == [14, 14]
