import os
from pathlib import Path

# The Triton kernels are checked on the CPU through Triton's interpreter; it must be chosen before triton
# is first imported.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# pytest-xdist runs one worker per core: more torch threads per worker would only contend for the cores.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NEUROMORPH_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real recordings for tests (never copied into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA}; set NEUROMORPH_TEST_DATA")
    return SHARED_DATA
