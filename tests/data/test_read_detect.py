"""read()/detect_format() on every real file, and the `neuromorph data read` command."""

import json

import numpy as np
import pytest

from neuromorph.cli import main
from neuromorph.data import detect_format, read, read_evt3, read_nmnist, summarize
from neuromorph.errors import ConfigError, DataFormatError

REAL = {  # path under shared data: (format, events)
    "nmnist/Train/5/00001.bin": ("atis_bin", 4681),
    "dvs128/01.bin": ("atis_bin", 63471),
    "prophesee/faery_evt2.raw": ("evt2", 521252),
    "prophesee/expelliarmus_evt2_sample.raw": ("evt2", 539481),
    "prophesee/expelliarmus_evt3_sample.raw": ("evt3", 219596),
    "aedat/aestream_davis.aedat4": ("aedat4", 117667),
    "eventstream/dvs.es": ("es", 473225),
}


@pytest.mark.parametrize("rel", sorted(REAL))
def test_detect_and_read_real_files(shared_data, rel):
    fmt, n = REAL[rel]
    path = shared_data / rel
    assert detect_format(path) == fmt
    assert len(read(path)) == n


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
    assert out["t_first_us"] == 0 and out["t_last_us"] == 999000
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
