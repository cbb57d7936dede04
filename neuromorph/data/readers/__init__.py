"""Readers for event files: one module per format family, all returning numpy structured arrays.

``atis``        N-MNIST / ATIS 40-bit ``.bin`` (also DVS128 recordings in that layout)
``prophesee``   Prophesee EVT 2.0 / EVT 3.0 ``.raw`` and ``.dat``
``aedat``       jAER/cAER AEDAT 1.0, 2.0 (address words) and 3.1 (packets)
``aedat4``      AEDAT 4.0 (LZ4/zstd FlatBuffers packets)
``eventstream`` Event Stream ``.es`` 2.x (DVS, ATIS)
``hdf5_spikes`` SHD / SSC HDF5 (audio-like ``t, unit`` events and labels)
``detect``      ``read(path)``: picks one of the above from the header, then the extension, and returns an
                ``EventArray`` (the events with the file's ``sensor_size``, ``format`` and ``header``)

Vision events use ``EVENT_DTYPE`` (x, y, t µs int64, p), audio-like events ``AUDIO_EVENT_DTYPE``. The
formats whose files grow large have ``iter_*`` twins that stream chunks with bounded memory (ATIS .bin,
EVT 2.0/3.0, DAT, .es, AEDAT 3.1 and 4.0, SHD/SSC); AEDAT 1.0/2.0 are read whole.
Damage raises :class:`neuromorph.errors.DataFormatError` naming the file and, where the format allows,
the byte offset; where another reader option would read the file (``address_bytes=2``, ``chip=``), the
error's ``options`` name it and its message advises it.
"""

from neuromorph.data.readers.aedat import iter_aedat31, read_aedat2, read_aedat31, read_aedat_addresses
from neuromorph.data.readers.aedat4 import iter_aedat4, read_aedat4
from neuromorph.data.readers.atis import iter_atis_bin, read_atis_bin, read_dvs128_bin, read_nmnist
from neuromorph.data.readers.eventstream import iter_es, read_es
from neuromorph.data.readers.hdf5_spikes import iter_shd, read_shd, read_shd_sample, read_ssc, shd_info
from neuromorph.data.readers.prophesee import iter_dat, iter_evt2, iter_evt3, read_dat, read_evt2, read_evt3
from neuromorph.data.readers.detect import FORMATS, detect_format, read, summarize
