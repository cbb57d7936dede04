"""What a user meets when a neuron is called the wrong way or a backend is missing (issue 13)."""

import sys

import pytest
import torch

import neuromorph as nm
from neuromorph.errors import ConfigError, ShapeError


def test_2d_input_advises_streaming_and_time_major_layout():
    lif = nm.nn.LIF(tau=2.0, threshold=0.3)
    with pytest.raises(ShapeError) as info:
        lif(torch.rand(4, 10))
    msg = str(info.value)
    assert "[T, B" in msg and "streaming=True" in msg and "state" in msg
    assert "unsqueeze(0)" not in msg  # the old advice: a stateless neuron then forgets its state every step


def test_the_advice_works_step_by_step_equals_the_whole_sequence():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 2, 8, generator=g) * 0.5
    whole = nm.nn.LIF(tau=4.0, threshold=0.3)(x)
    online = nm.nn.LIF(tau=4.0, threshold=0.3, streaming=True)
    state, steps = None, []
    for x_t in x:  # [B, N] per step, as the message shows
        s, state = online(x_t[None], state)
        steps.append(s[0])
    assert whole.sum() > 10
    assert torch.equal(torch.stack(steps), whole)


def test_triton_backend_without_triton_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now fails as on a machine without it
    lif = nm.nn.LIF(backend="triton")
    with pytest.raises(ConfigError, match=r"pip install 'neuromorph\[gpu\]'"):
        lif(torch.rand(3, 2, 4))
    # the automatic choice still works without Triton
    assert nm.nn.LIF(backend="auto")(torch.rand(3, 2, 4)).shape == (3, 2, 4)


def test_triton_backend_on_cpu_tensors_without_the_interpreter_says_so(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ConfigError, match="CUDA tensors"):
        nm.nn.LIF(backend="triton")(torch.rand(3, 2, 4))
