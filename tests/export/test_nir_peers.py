"""Our NIR files in the peers (snnTorch, Norse, SpikingJelly, Sinabs), per sample and batched, against the
export report's claims (neuromorph.export.peers): where the report says ``exact`` the peer's spikes equal
neuromorph's bit for bit, where it says ``fails`` the peer really fails, where ``differs`` it really runs
with other spikes. Every row of the table is the only cause of its verdict in at least one case here,
so the table cannot drift from what the peers do."""

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

import neuromorph.nn as nnm
from neuromorph.export.nir import from_nir, to_nir, write_nir
from neuromorph.export.peers import (BATCH, FAILS, LIMITS, PEERS, SPIKES, avgpool_to_sumpool, fix_peer_flatten,
                                     maxpool_gates_to_lif, peer_report, peer_summary)

from ._models import nmnist_frames, nmnist_net, shd_delay_net

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module", autouse=True)
def dense_synapses():
    """The peers compute every product densely in float32; neuromorph's event-driven synapses equal that only
    to rounding (tests/kernels/test_sparse_synapses.py), and a rounding difference can flip a spike. Bit-equal
    spikes across libraries are checked with the same dense products."""
    from neuromorph.kernels.sparse import synapse_backend

    with synapse_backend("dense"):
        yield


@contextlib.contextmanager
def _quiet():
    """The peers print and log warnings (snnTorch prints its weight scaling, Norse logs r != 1)."""
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _load(peer: str, g, steps: int):
    """Load ``g`` in ``peer`` as PEERS[peer]['usage'] says."""
    with _quiet():
        if peer == "snntorch":
            from snntorch.import_nir import import_from_nir

            return import_from_nir(g)
        if peer == "norse":
            import norse.torch

            return norse.torch.from_nir(g, dt=g.metadata["dt"])
        if peer == "spikingjelly":
            from spikingjelly.activation_based.nir_exchange import import_from_nir

            return import_from_nir(g, dt=g.metadata["dt"])
        import sinabs.nir

        return sinabs.nir.from_nir(g, num_timesteps=steps)


def _run(peer: str, net, x: torch.Tensor) -> torch.Tensor:
    """Run a loaded peer module on time-major ``x`` [T, B, ...]; returns its output per step [T, ...]."""
    T, B = x.shape[:2]
    with _quiet(), torch.no_grad():
        if peer == "sinabs":  # batch-major, time folded into the batch axis
            out = net(x.transpose(0, 1).reshape(B * T, *x.shape[2:]))
            out = out[0] if isinstance(out, tuple) else out
            return out.reshape(B, T, *out.shape[1:]).transpose(0, 1)
        if peer == "snntorch":
            import snntorch.utils

            snntorch.utils.reset(net)
        state, outs = None, []
        for t in range(T):
            y, state = net(x[t], state)
            outs.append(y)
        return torch.stack(outs)


def _observe(peer: str, g, x: torch.Tensor, ref: torch.Tensor, mode: str, fix=None) -> str:
    """What the peer does with ``g``: 'exact', 'differs' or 'fails'. ``mode`` 'per_sample' runs each
    sample alone (a fresh import each); 'batched' the whole batch at once. ``fix`` is applied to the
    loaded module (a workaround)."""
    try:
        if mode == "per_sample":
            got = []
            for b in range(x.shape[1]):
                net = _load(peer, g, x.shape[0])
                if fix:
                    fix(net)
                y = _run(peer, net, x[:, b : b + 1])
                want = ref[:, b : b + 1]
                got.append(y.reshape(want.shape) if y.numel() == want.numel() else y)
            same = all(y.shape == ref[:, b : b + 1].shape and torch.equal(y, ref[:, b : b + 1]) for b, y in enumerate(got))
        else:
            net = _load(peer, g, x.shape[0])
            if fix:
                fix(net)
            y = _run(peer, net, x)
            same = y.shape == ref.shape and torch.equal(y, ref)
    except Exception:  # noqa: BLE001 - any error a peer raises is its "cannot run"
        return "fails"
    return "exact" if same else "differs"


def _binary(shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def _scaled(*mods, gain=4.0, seed=0):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(*mods).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(gain)
    return m


def _model_case(m, x, dt=None, strict=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = to_nir(m, x, dt=dt, strict=strict)
    with torch.no_grad():
        ref = m(x)
    return g, x, ref


def _rng_w(n_out: int, n_in: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.5, (n_out, n_in)).astype(np.float32)


def _hand_delay_case():
    """Input -> Delay(2 steps) -> Affine -> LIF -> Output, written by hand (one delay value, with a bias)."""
    dt = 1e-4
    rng = np.random.default_rng(0)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([6])}),
            "delay": nir.Delay(delay=np.full(6, 2 * dt)),
            "fc": nir.Affine(weight=rng.normal(0, 1.5, (4, 6)), bias=np.full(4, 0.1)),
            "lif": nir.LIF(tau=np.full(4, 2 * dt), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.full(4, 0.3),
                           v_reset=np.zeros(4)),
            "output": nir.Output({"output": np.array([4])}),
        },
        edges=[("input", "delay"), ("delay", "fc"), ("fc", "lif"), ("lif", "output")],
        metadata={"dt": dt},
    )
    x = _binary((20, 3, 6))
    with torch.no_grad():
        ref = from_nir(g)(x)
    return g, x, ref


def _gates_lif(case):
    g, x, ref = case
    return maxpool_gates_to_lif(g), x, ref


def _hand_case(nodes: dict, edges: list, x: torch.Tensor):
    """A graph written by hand (dt = 1e-4 s); neuromorph's output is from_nir's."""
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-4})
    with torch.no_grad():
        ref = from_nir(g)(x)
    return g, x, ref


def _lif(n: int, dt: float = 1e-4):
    return nir.LIF(tau=np.full(n, 2 * dt), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.3), v_reset=np.zeros(n))


def nmnist_recipe_net(seed: int = 0) -> torch.nn.Module:
    """The N-MNIST recipe's model (models.nmnist, max pooling) at a small width, with BatchNorm statistics."""
    from neuromorph.models.nmnist import NMNISTConvSNN

    torch.manual_seed(seed)
    m = NMNISTConvSNN(channels=(4, 8), dropout=0.0, train_shift=0)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
        m.net[5].weight.mul_(3.0)  # BatchNorm gain: the second stage fires (its gates too)
        m.net[5].bias.add_(0.3)
    return m.eval()


def _sumpool(k: int, s: int, p: int):
    return nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([s, s]), padding=np.array([p, p]))


def _pool_graph(pool, head: dict, n_out: int, x: torch.Tensor):
    """Input [2, 6, 6] -> ``pool`` (to [2, 3, 3]) -> Flatten -> ``head`` nodes in a chain -> Output [n_out], by hand."""
    nodes = {"input": nir.Input({"input": np.array([2, 6, 6])}), "pool": pool,
             "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1), **head,
             "output": nir.Output({"output": np.array([n_out])})}
    chain = ["input", "pool", "flat", *head, "output"]
    return _hand_case(nodes, list(zip(chain, chain[1:])), x)


def _cases(shared_data: Path) -> dict:
    """name -> (graph, x [T, B, ...], neuromorph's output)."""
    frames, _ = nmnist_frames(shared_data, n=3, steps=12)
    conv_x = frames  # event counts per bin
    delay_x = _binary((30, 3, 20), p=0.3)
    return {
        # the two nets of the issue, written by to_nir (default dt 1e-4 s) and read back from a file
        "conv": _model_case(nmnist_net(), conv_x),
        "delay": _model_case(shd_delay_net(), delay_x),
        # one peer limitation at a time
        "conv_dt_1ms": _model_case(nmnist_net(), conv_x, dt=1e-3),
        "avgpool": _model_case(_scaled(nnm.AvgPool2d(2), nnm.Flatten(), nnm.Linear(2 * 2 * 2, 5),
                                       nnm.LIF(tau=2.0, threshold=0.3, reset="hard")), _binary((15, 3, 2, 4, 4))),
        "affine_lif": _model_case(_scaled(nnm.Linear(8, 6), nnm.LIF(tau=2.0, threshold=0.4, reset="hard")), _binary((20, 3, 8))),
        "linear_lif": _model_case(_scaled(nnm.Linear(8, 6, bias=False), nnm.LIF(tau=2.0, threshold=0.4, reset="hard")),
                                  _binary((20, 3, 8))),
        "lif_r_tau": _model_case(_scaled(nnm.Linear(8, 6), nnm.LIF(tau=2.0, threshold=0.4, reset="hard", decay_input=False)),
                                 _binary((20, 3, 8))),
        "li_r_tau": _model_case(_scaled(nnm.Linear(8, 6), nnm.LI(tau=2.0, decay_input=False)), _binary((20, 3, 8))),
        "li_r_1": _model_case(_scaled(nnm.Linear(8, 6), nnm.LI(tau=2.0, decay_input=True)), _binary((20, 3, 8))),
        "if": _model_case(_scaled(nnm.Linear(8, 6), nnm.IF(threshold=0.5, reset="hard")), _binary((20, 3, 8))),
        "thresholds": _model_case(_scaled(nnm.Linear(8, 4), nnm.LIF(tau=2.0, threshold=torch.tensor([0.2, 0.3, 0.4, 0.5]),
                                                                     shape=(4,), reset="hard")), _binary((20, 3, 8))),
        "if_thresholds": _model_case(_scaled(nnm.Linear(8, 4), nnm.IF(threshold=torch.tensor([0.2, 0.4, 0.6, 0.8]), shape=(4,),
                                                                       reset="hard")), _binary((20, 3, 8))),
        "conv1d": _model_case(_scaled(nnm.Conv1d(2, 4, 3, padding=1), nnm.LIF(tau=2.0, threshold=0.2, reset="hard")),
                              _binary((15, 3, 2, 10))),
        "cuba": _model_case(_scaled(nnm.Linear(8, 6), nnm.CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.3, reset="hard")),
                            _binary((20, 3, 8))),
        "cuba_dt_1ms": _model_case(_scaled(nnm.Linear(8, 6), nnm.CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.3, reset="hard")),
                                   _binary((20, 3, 8)), dt=1e-3),
        "soft_reset": _model_case(_scaled(nnm.Linear(8, 6), nnm.LIF(tau=2.0, threshold=0.3, reset="soft")), _binary((20, 3, 8)),
                                  strict=False),
        "delay_hand": _hand_delay_case(),
        "cuba_thresholds": _model_case(_scaled(nnm.Linear(8, 4), nnm.CubaLIF(tau_mem=3.0, tau_syn=2.0, shape=(4,), reset="hard",
                                                                         threshold=torch.tensor([0.2, 0.3, 0.4, 0.5]))),
                                       _binary((20, 3, 8))),
        "two_li": _model_case(_scaled(nnm.Linear(8, 6), nnm.LI(tau=2.0, decay_input=True), nnm.Linear(6, 4),
                                      nnm.LI(tau=3.0, decay_input=True)), _binary((20, 3, 8))),
        "two_cuba": _model_case(_scaled(nnm.Linear(8, 6), nnm.CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.3, reset="hard"),
                                        nnm.Linear(6, 4), nnm.CubaLIF(tau_mem=3.0, tau_syn=2.0, threshold=0.3, reset="hard")),
                                _binary((20, 3, 8))),
        # two delays into one LIF; a lone delay (no neurons); a conv net without pooling
        "two_delays": _hand_case(
            {"input": nir.Input({"input": np.array([6])}), "d1": nir.Delay(delay=np.full(6, 1e-4)),
             "d3": nir.Delay(delay=np.full(6, 3e-4)), "fa": nir.Affine(weight=_rng_w(4, 6, 1), bias=np.zeros(4)),
             "fb": nir.Affine(weight=_rng_w(4, 6, 2), bias=np.full(4, 0.1)), "lif": _lif(4),
             "output": nir.Output({"output": np.array([4])})},
            [("input", "d1"), ("input", "d3"), ("d1", "fa"), ("d3", "fb"), ("fa", "lif"), ("fb", "lif"), ("lif", "output")],
            _binary((20, 3, 6))),
        "delay_affine": _hand_case(
            {"input": nir.Input({"input": np.array([6])}), "d": nir.Delay(delay=np.full(6, 2e-4)),
             "fc": nir.Affine(weight=_rng_w(4, 6, 3), bias=np.zeros(4)), "output": nir.Output({"output": np.array([4])})},
            [("input", "d"), ("d", "fc"), ("fc", "output")], _binary((20, 3, 6))),
        # the N-MNIST recipe's model: max pooling of spikes as SumPool2d + IF gate (threshold 0.5, r = 1/dt, reset to 0)
        "nmnist_recipe": _model_case(nmnist_recipe_net(), conv_x),
        "nmnist_recipe_gates_lif": _gates_lif(_model_case(nmnist_recipe_net(), conv_x)),
        "maxpool_pad": _model_case(_scaled(nnm.Conv2d(2, 4, 3, padding=1), nnm.LIF(tau=2.0, threshold=0.3, reset="hard"),
                                           nnm.MaxPool2d(3, stride=2, padding=1), nnm.Flatten(), nnm.Linear(4 * 3 * 3, 5),
                                           nnm.LIF(tau=2.0, threshold=0.3, reset="hard"), gain=2.0), _binary((15, 3, 2, 6, 6))),
        # sum pooling alone: without padding (identity readout: the pooled counts themselves), with padding
        "sumpool": _pool_graph(_sumpool(2, 2, 0), {"fc": nir.Affine(weight=np.eye(18, dtype=np.float32),
                                                                    bias=np.zeros(18, dtype=np.float32))}, 18, _binary((10, 3, 2, 6, 6))),
        "sumpool_pad": _pool_graph(_sumpool(3, 2, 1), {"fc": nir.Affine(weight=_rng_w(5, 18, 4), bias=np.zeros(5)), "lif": _lif(5)},
                                   5, _binary((10, 3, 2, 6, 6))),
        "conv_flat": _model_case(_scaled(nnm.Conv2d(2, 4, 3, padding=1), nnm.LIF(tau=2.0, threshold=0.3, reset="hard"),
                                         nnm.Flatten(), nnm.Linear(4 * 6 * 6, 5), nnm.LIF(tau=2.0, threshold=0.3, reset="hard"),
                                         gain=2.0), _binary((15, 3, 2, 6, 6))),
    }


@pytest.fixture(scope="module")
def cases(shared_data, tmp_path_factory):
    out = {}
    d = tmp_path_factory.mktemp("nir")
    for name, (g, x, ref) in _cases(shared_data).items():
        path = write_nir(g, d / f"{name}.nir")  # the peers read our files, not the in-memory graph
        out[name] = (nir.read(path), x, ref)
    return out


def _peer_available(peer: str) -> bool:
    mod = {"snntorch": "snntorch.import_nir", "norse": "norse.torch", "spikingjelly":
           "spikingjelly.activation_based.nir_exchange", "sinabs": "sinabs.nir"}[peer]
    try:
        with _quiet():
            __import__(mod)
    except Exception:  # noqa: BLE001 - a broken install is as good as a missing one here
        return False
    return True


@pytest.mark.parametrize("peer", list(PEERS))
def test_report_matches_what_the_peer_does(peer, cases):
    if not _peer_available(peer):
        pytest.skip(f"{peer} is not installed")
    wrong = []
    for name, (g, x, ref) in cases.items():
        claim = peer_report(g)[peer]
        for mode in ("per_sample", "batched"):
            seen = _observe(peer, g, x, ref, mode)
            if seen != claim[mode]:
                wrong.append(f"{name} {mode}: report says {claim[mode]}, {peer} {seen}")
    assert not wrong, "; ".join(wrong)


def test_the_issue_matrix(cases):
    """The verdicts for the conv and delay nets, as the docs state them."""
    flat = cases["conv"][0].nodes["7"]  # NIR's convention: per-sample dims, no batch axis (nir's own shape inference)
    assert flat.start_dim == 0 and list(flat.input_type["input"]) == [8, 8, 8] and list(flat.output_type["output"]) == [512]
    conv = {p: (r["per_sample"], r["batched"]) for p, r in peer_report(cases["conv"][0]).items()}
    assert conv == {"snntorch": ("exact", "fails"), "norse": ("fails", "fails"), "spikingjelly": ("exact", "exact"),
                    "sinabs": ("fails", "fails")}
    delay = {p: (r["per_sample"], r["batched"]) for p, r in peer_report(cases["delay"][0]).items()}
    assert set(delay.values()) == {("fails", "fails")}
    for peer, r in peer_report(cases["delay"][0]).items():
        assert any(i["node"] == "Delay" for i in r["issues"]), peer
    assert float(cases["conv"][2].sum()) >= 5 and float(cases["delay"][2].abs().sum()) > 0  # not vacuous


def test_every_row_is_the_only_cause_somewhere(cases):
    """Each LIMITS row is, in some case, the only issue that decides its peer's verdict (so the verdict checks
    above test that row): no other 'fails' row for a 'fails' row, no other 'fails'/'spikes' row otherwise."""
    worse = {FAILS: {FAILS}, SPIKES: {FAILS, SPIKES}, BATCH: {FAILS, SPIKES}}
    for lim in LIMITS:
        isolated = False
        for g, _, _ in cases.values():
            issues = peer_report(g)[lim.peer]["issues"]
            mine = [i for i in issues if i["node"] == lim.node and i["problem"] == lim.problem]
            if mine and not any(i["effect"] in worse[lim.effect] for i in issues if i is not mine[0]):
                isolated = True
                break
        assert isolated, f"no case isolates {lim.peer} {lim.node} {lim.effect}: {lim.problem}"


def test_unknown_node_types_are_unchecked_not_exact():
    g = nir.NIRGraph(
        nodes={"input": nir.Input({"input": np.array([3])}), "scale": nir.Scale(scale=np.full(3, 2.0)),
               "output": nir.Output({"output": np.array([3])})},
        edges=[("input", "scale"), ("scale", "output")], metadata={"dt": 1e-4},
    )
    for peer, r in peer_report(g).items():
        assert (r["per_sample"], r["batched"]) == ("unchecked", "unchecked"), peer
        assert r["issues"][0]["nodes"] == ["scale"] and "not been checked" in r["issues"][0]["problem"]


@pytest.mark.parametrize("peer", ["snntorch", "norse"])
def test_batch_workaround_gives_exact_spikes(peer, cases):
    """The Flatten workaround the report names: after fix_peer_flatten, batches run with neuromorph's spikes."""
    if not _peer_available(peer):
        pytest.skip(f"{peer} is not installed")
    g, x, ref = cases["conv"]
    if peer == "norse":
        g = avgpool_to_sumpool(g)  # the AvgPool2d workaround, needed first
        assert not any(i["node"] == "AvgPool2d" for i in peer_report(g)["norse"]["issues"])
        assert peer_report(g)["norse"]["per_sample"] == "exact"
        assert _observe(peer, g, x, ref, "per_sample") == "exact"
    assert _observe(peer, g, x, ref, "batched") == "fails"
    assert _observe(peer, g, x, ref, "batched", fix=fix_peer_flatten) == "exact"
    twice = lambda net: (fix_peer_flatten(net), fix_peer_flatten(net))  # noqa: E731 - the second call is a no-op
    assert _observe(peer, g, x, ref, "batched", fix=twice) == "exact"


def test_avgpool_to_sumpool_is_the_same_network(cases):
    g, x, ref = cases["conv"]
    s = avgpool_to_sumpool(g)
    assert [type(n).__name__ for n in s.nodes.values()].count("SumPool2d") == 2
    assert not any(isinstance(n, nir.AvgPool2d) for n in s.nodes.values())
    np.testing.assert_array_equal(s.nodes["4"].weight, g.nodes["4"].weight / 4)
    np.testing.assert_array_equal(s.nodes["8"].weight, g.nodes["8"].weight / 4)  # through the Flatten
    with torch.no_grad():
        assert torch.equal(from_nir(s)(x), ref)
    bad = nnm.AvgPool2d(2), nnm.LIF(tau=2.0, reset="hard")
    g2 = to_nir(torch.nn.Sequential(*bad).eval(), torch.zeros(3, 1, 2, 4, 4))
    from neuromorph.errors import ExportError

    with pytest.raises(ExportError, match=r"AvgPool2d feeds LIF node '1'"):
        avgpool_to_sumpool(g2)


def _checkpoint(tmp_path: Path, kind: str) -> Path:
    from neuromorph.train import checkpoint as ck

    builder = nmnist_net if kind == "conv" else shd_delay_net
    ck.register_builder(f"tests.peer_{kind}", builder)
    shape = [2, 34, 34] if kind == "conv" else [20]
    return ck.save_checkpoint(tmp_path / f"{kind}.pt", builder(), f"tests.peer_{kind}", {},
                              info={"input_shape": shape, "data": {"n_steps": 5}})


@pytest.mark.parametrize("kind", ["conv", "delay"])
def test_export_json_reports_the_peers(kind, tmp_path, capsys):
    """`neuromorph export --to nir --json` carries, per peer, the verdicts and what it cannot do with the file."""
    from neuromorph.cli import main

    path = _checkpoint(tmp_path, kind)
    assert main(["export", str(path), "--to", "nir", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["written"] and set(rep["peers"]) == set(PEERS)
    assert rep["peers"] == json.loads(json.dumps(peer_report(nir.read(rep["out"]))))  # about the file written
    if kind == "conv":
        sn = rep["peers"]["snntorch"]
        assert (sn["per_sample"], sn["batched"]) == ("exact", "fails")
        assert [i["node"] for i in sn["issues"]] == ["Flatten"] and "fix_peer_flatten" in sn["issues"][0]["workaround"]
        assert any(i["node"] == "AvgPool2d" and "avgpool_to_sumpool" in i["workaround"] for i in rep["peers"]["norse"]["issues"])
    else:
        for peer in PEERS:
            assert rep["peers"][peer]["per_sample"] == "fails"
            assert any(i["node"] == "Delay" for i in rep["peers"][peer]["issues"]), peer


def test_export_cli_prints_the_peers(tmp_path):
    """The human report of `neuromorph export --to nir`, run as a user runs it (a subprocess)."""
    path = _checkpoint(tmp_path, "conv")
    code = (
        "import sys; sys.path.insert(0, {root!r})\n"
        "from neuromorph.cli import main\n"
        "from neuromorph.train import checkpoint as ck\n"
        "from tests.export._models import nmnist_net\n"
        "ck.register_builder('tests.peer_conv', nmnist_net)  # the test's own model builder\n"
        "sys.exit(main(sys.argv[1:]))\n"
    ).format(root=str(Path(__file__).resolve().parents[2]))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    res = subprocess.run([sys.executable, "-c", code, "export", str(path), "--to", "nir"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.startswith(f"wrote {tmp_path / 'conv.nir'}")
    assert "snntorch: per sample exact, batched fails" in out and "spikingjelly: per sample exact, batched exact" in out
    assert "Flatten '7'" in out and "fix_peer_flatten" in out
    assert "AvgPool2d '3', '6'" in out and "avgpool_to_sumpool" in out


def test_nmnist_recipe_matrix(cases):
    """The N-MNIST recipe's model (max pooling as SumPool2d + IF gates): no node type is left unchecked, and the
    verdicts are those the docs state."""
    g, x, ref = cases["nmnist_recipe"]
    kinds = [type(n).__name__ for n in g.nodes.values()]
    assert kinds.count("SumPool2d") == 2 and kinds.count("IF") == 2
    gate = next(n for n in g.nodes.values() if isinstance(n, nir.IF))
    np.testing.assert_array_equal(gate.v_threshold, 0.5)
    np.testing.assert_array_equal(gate.r, 1 / g.metadata["dt"])
    rep = peer_report(g)
    assert not [i for r in rep.values() for i in r["issues"] if i["effect"] == "unchecked"]
    assert {p: (r["per_sample"], r["batched"]) for p, r in rep.items()} == {
        "snntorch": ("fails", "fails"), "norse": ("exact", "fails"), "spikingjelly": ("exact", "exact"), "sinabs": ("fails", "fails")}
    assert any(i["node"] == "IF" and "maxpool_gates_to_lif" in i["workaround"] for i in rep["snntorch"]["issues"])
    assert peer_summary(rep) == ("peers (per sample/batched): snntorch fails (Flatten, IF); norse exact/fails (Flatten); "
                                 "spikingjelly exact; sinabs fails (IF, LIF)")
    # not vacuous: the gates fire (pooled spikes reach the second stage and the readout)
    model, pooled = nmnist_recipe_net(), []
    for m in model.modules():
        if isinstance(m, nnm.MaxPool2d):
            m.register_forward_hook(lambda mod, i, o: pooled.append(float(o.sum())))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
    assert len(pooled) == 2 and min(pooled) >= 10, pooled


def test_maxpool_gate_workaround_gives_exact_spikes(cases):
    """The snnTorch workaround the report names for the gates: maxpool_gates_to_lif (plus fix_peer_flatten for
    batches) runs the recipe's model with neuromorph's outputs; from_nir agrees with the original graph."""
    g, x, ref = cases["nmnist_recipe"]
    lif = maxpool_gates_to_lif(g)
    assert [type(n).__name__ for n in lif.nodes.values()].count("IF") == 0
    with torch.no_grad():
        assert torch.equal(from_nir(lif)(x), ref)
    assert peer_report(lif)["snntorch"]["per_sample"] == "exact"
    if not _peer_available("snntorch"):
        pytest.skip("snntorch is not installed")
    assert _observe("snntorch", g, x, ref, "per_sample") == "fails"
    assert _observe("snntorch", lif, x, ref, "per_sample") == "exact"
    assert _observe("snntorch", lif, x, ref, "batched", fix=fix_peer_flatten) == "exact"
