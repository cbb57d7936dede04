"""Event data sets declared by manifests (``manifests/*.toml``): NMNIST, SHD, SSC, DVSGesture."""

from neuromorph.data.datasets.base import EventDataset, load_manifest, manifests_dir
from neuromorph.data.datasets.download import download, extract, verify
from neuromorph.data.datasets.dvsgesture import DVSGesture
from neuromorph.data.datasets.nmnist import NMNIST
from neuromorph.data.datasets.shd import SHD, SSC
