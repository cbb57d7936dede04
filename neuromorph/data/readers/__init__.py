"""Readers for event files: one module per format family, all returning numpy structured arrays."""

from neuromorph.data.readers.aedat import iter_aedat31, read_aedat2, read_aedat31, read_aedat_addresses
from neuromorph.data.readers.aedat4 import iter_aedat4, read_aedat4
from neuromorph.data.readers.atis import iter_atis_bin, read_atis_bin, read_dvs128_bin, read_nmnist
from neuromorph.data.readers.eventstream import iter_es, read_es
from neuromorph.data.readers.hdf5_spikes import iter_shd, read_shd, read_shd_sample, read_ssc, shd_info
from neuromorph.data.readers.prophesee import iter_dat, iter_evt2, iter_evt3, read_dat, read_evt2, read_evt3
from neuromorph.data.readers.detect import FORMATS, detect_format, read, summarize
