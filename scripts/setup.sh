#!/usr/bin/env bash
# One set-up command for neuromorph (run inside the Python environment you want it in).
# Order matters: torch is pinned first so that nothing later can pull a multi-GB CUDA build, and
# spikingjelly/norse/neurobench are installed without their torchvision/torchaudio requirements, whose
# PyPI builds do not import beside the CPU torch (neurobench needs only snntorch, tonic, numba and tqdm,
# installed in the line before), and sinabs without its nir<=1.0.4 pin and samna.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --upgrade pip
python -m pip install "torch==2.13.0"
echo "torch==2.13.0" > "${TMPDIR:-/tmp}/neuromorph-torch-constraint.txt"
C="${TMPDIR:-/tmp}/neuromorph-torch-constraint.txt"
python -m pip install -c "$C" -e ".[dev,plot,gpu,zstd,docs]" "snntorch==1.0.0" "tonic==1.7.0" "nirtorch>=2.0" "dcls==0.1.1" "aedat==2.3.0" loguru tqdm scipy pbr
python -m pip install -c "$C" --no-deps "spikingjelly==2.0.0" "norse==1.1.0" "sinabs==3.1.3" "neurobench==2.3.0"
python -c "import neuromorph, torch; print('neuromorph', neuromorph.__version__, 'torch', torch.__version__)"
