#!/usr/bin/env bash
# Build the separate Lava environment used to run neuromorph's netx files in Lava's CPU simulator.
#
# Usage: hardware/lava/build_venv.sh [VENV_DIR]
#   VENV_DIR defaults to ${NEUROMORPH_LAVA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/neuromorph/lava-venv}.
# The venv is built once and reused: a stamp file records the requirements it was built from.
#
# Why these steps: lava-nc 0.10 and lava-dl 0.6 declare Python <3.11 and
# numpy <2; with numpy 2, six of lava-dl's own netx tests fail, so numpy<2 is pinned here. On
# Python 3.11, lava-nc's var_model.py uses mutable dataclass defaults (ByteEncoder()), which 3.11
# rejects: they are patched to default_factory. lava-dl is installed with --no-deps so it cannot pull
# a CUDA torch; netx only needs torch, numpy, scipy, h5py.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-${NEUROMORPH_LAVA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/neuromorph/lava-venv}}"
PY="${NEUROMORPH_LAVA_PYTHON:-python3.11}"
STAMP="$VENV/.neuromorph-lava-stamp"
WANT="$(cat "$HERE/requirements.txt") lava-nc==0.10.0 lava-dl==0.6.0 patch-v1"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "lava venv up to date: $VENV"
    exit 0
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -c <(echo torch==2.13.0) -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0

# Python 3.11: a dataclass field may not default to a mutable instance (ByteEncoder()).
VM="$("$VENV/bin/python" -c 'import importlib.util as u; print(u.find_spec("lava").submodule_search_locations[0])')/magma/compiler/var_model.py"
"$VENV/bin/python" - "$VM" <<'PY'
import re, sys, pathlib
p = pathlib.Path(sys.argv[1])
src = p.read_text()
new = re.sub(r":\s*ByteEncoder\s*=\s*ByteEncoder\(\)", ": ByteEncoder = field(default_factory=ByteEncoder)", src)
if new != src:
    new = re.sub(r"^(from dataclasses import [^\n]*)$", r"\1\nfrom dataclasses import field", new, count=1, flags=re.M)
p.write_text(new)
PY
echo "$WANT" > "$STAMP"
echo "lava venv built: $VENV"
