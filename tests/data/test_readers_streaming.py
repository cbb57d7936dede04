"""Chunked readers keep memory bounded: peak allocation while streaming a whole real file stays far below
the size of the decoded file (numpy reports its buffers to tracemalloc)."""

import struct
import tracemalloc

import pytest

from neuromorph.data import EVENT_DTYPE
from neuromorph.data.readers import iter_aedat4, iter_atis_bin, iter_es, iter_evt2, iter_evt3

CHUNK = 4096
CASES = {  # name: (path under shared data, chunked iterator, events in the file)
    "evt2": ("prophesee/faery_evt2.raw", lambda p: iter_evt2(p, chunk_events=CHUNK), 521252),
    "evt3": ("prophesee/expelliarmus_evt3_sample.raw", lambda p: iter_evt3(p, chunk_events=CHUNK), 219596),
    "es": ("eventstream/dvs.es", lambda p: iter_es(p, chunk_events=CHUNK), 473225),
    "dvs128": ("dvs128/05.bin", lambda p: iter_atis_bin(p, (128, 128), False, chunk_events=CHUNK), 181179),
}


def _aedat4_repeated(src, dst, times):
    """The real AEDAT4 recording with its packets repeated ``times`` times (data table dropped)."""
    data = src.read_bytes()
    n = struct.unpack_from("<i", data, 14)[0]
    head = bytearray(data[: 18 + n])
    table = 18 + struct.unpack_from("<I", head, 18)[0]
    vtable = table - struct.unpack_from("<i", head, table)[0]
    field = struct.unpack_from("<H", head, vtable + 6)[0]  # slot 1: dataTablePosition
    end = struct.unpack_from("<q", head, table + field)[0]
    struct.pack_into("<q", head, table + field, -1)
    dst.write_bytes(bytes(head) + data[18 + n : end] * times)
    return dst


@pytest.mark.parametrize("name", sorted(CASES))
def test_streaming_peak_memory_is_bounded(shared_data, name):
    rel, make, n_events = CASES[name]
    path = shared_data / rel
    sum(len(c) for c in make(path))  # warm-up: numba cache load, imports
    tracemalloc.start()
    try:
        total, last_t = 0, -1
        for chunk in make(path):
            total += len(chunk)
            assert chunk["t"][0] >= last_t  # chunks continue in time order
            last_t = int(chunk["t"][-1])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole = n_events * EVENT_DTYPE.itemsize
    assert total == n_events
    # one chunk (EVT3: up to 6 x CHUNK events) plus its input bytes
    assert peak < whole / 4, (peak, whole)


def _peak(make, path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        n = sum(len(c) for c in make(path))
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_aedat4_streaming_peak_does_not_grow_with_the_file(shared_data, tmp_path):
    src = shared_data / "aedat" / "aestream_davis.aedat4"
    one = _aedat4_repeated(src, tmp_path / "x1.aedat4", 1)
    six = _aedat4_repeated(src, tmp_path / "x6.aedat4", 6)
    _peak(iter_aedat4, one)  # warm-up
    n1, peak1 = _peak(iter_aedat4, one)
    n6, peak6 = _peak(iter_aedat4, six)
    assert (n1, n6) == (117667, 6 * 117667)
    assert peak6 < 1.2 * peak1 + 100_000  # bounded by one packet, not by the file
    assert peak6 < 6 * 117667 * EVENT_DTYPE.itemsize / 4
