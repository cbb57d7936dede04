"""One NaN sample must not poison the weights: the loop skips batches with a non-finite loss or gradient
(counted in metrics.jsonl, warned with epoch and batch), stops after several in a row, and never writes
non-finite weights as a checkpoint."""

from __future__ import annotations

import pytest
import torch

from neuromorph.errors import NonFiniteError
from neuromorph.train import checkpoint as ck
from neuromorph.train.data import DataBundle, Split
from neuromorph.train.loop import fit
from neuromorph.train.metrics import read_jsonl

from .helpers import toy_bundle, toy_recipe


def _with_nan(bundle: DataBundle, rows: list[int]) -> DataBundle:
    x = bundle.train.x.to(torch.float32).clone()
    x[rows, 2, 0] = float("nan")
    return DataBundle(Split(x, bundle.train.y), bundle.val, bundle.test, bundle.n_classes, bundle.input_shape, bundle.info)


def test_one_nan_sample_is_skipped_and_weights_stay_finite(tmp_path):
    data = _with_nan(toy_bundle(), [17])
    with pytest.warns(RuntimeWarning, match=r"epoch \d batch \d+ .*batch skipped") as caught:
        summary = fit(toy_recipe(), tmp_path, data=data, progress=False)
    messages = [str(w.message) for w in caught]
    assert [m.split(" batch ")[0].split(" at ")[1] for m in messages] == ["epoch 1", "epoch 2", "epoch 3"]
    assert all("training samples with NaN/Inf input: [17]" in m for m in messages)
    assert summary["status"] == "completed"
    records = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "event" not in r]
    assert [r["skipped_batches"] for r in records] == [1, 1, 1]  # the batch holding sample 17, every epoch
    assert all(r["train_loss"] == r["train_loss"] for r in records)  # finite: the bad batch is left out
    for name in ("best.pt", "last.pt"):
        state = ck.load_checkpoint(tmp_path / name)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values()), name
    assert summary["test_accuracy"] > 0.5  # it still learned (3 classes)


def test_nan_in_a_row_stops_with_epoch_and_batch(tmp_path):
    data = _with_nan(toy_bundle(), list(range(96)))  # every sample: every batch is bad
    with pytest.warns(RuntimeWarning), pytest.raises(NonFiniteError, match=r"3 batches in a row.*epoch 1 batch 2"):
        fit(toy_recipe(), tmp_path, data=data, progress=False, max_nonfinite=3)
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()
    events = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r.get("event") == "nonfinite"]
    assert events and events[0]["epoch"] == 1 and events[0]["batch"] == 2


def test_nonfinite_weights_are_never_saved(tmp_path):
    """Weights that became non-finite outside the gradient step (here a method hook, as a delay clamp or
    a weight normalisation could) are refused before any checkpoint is written."""
    from neuromorph.train.loop import Hooks

    class Overflow(Hooks):
        def end_epoch(self, model, epoch):
            with torch.no_grad():
                model.fc1.weight[0, 0] = float("inf")

    with pytest.raises(NonFiniteError, match="'fc1.weight' holds NaN/Inf after epoch 1"):
        fit(toy_recipe(), tmp_path, data=toy_bundle(), progress=False, hooks=Overflow())
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()


class _GradHook:
    """Hooks that replace fc1.weight's gradient by ``value`` everywhere (an exploded BPTT gradient, a NaN)
    and keep the initial weights; the rest of the step is the standard one."""

    def __new__(cls, value: float):
        from neuromorph.train.loop import Hooks

        class Replace(Hooks):
            def build_optimizers(self, model, recipe, n_batches):
                self.initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
                model.fc1.weight.register_hook(lambda g: torch.full_like(g, value))
                return super().build_optimizers(model, recipe, n_batches)

        return Replace()


def test_huge_finite_gradient_is_clipped_not_skipped(tmp_path):
    """Entries of 1e20 are finite, but their float32 sum of squares overflows (the old loop reported
    "gradient norm inf" and skipped the batch): the norm is now summed in float64, so one SGD step moves
    fc1.weight by lr * clip / sqrt(n) in every entry and the other gradients, scaled by ~1e-21, not at all."""
    import warnings

    hooks = _GradHook(1e20)
    recipe = toy_recipe(optimizer="sgd", momentum=0.0, lr=0.1, schedule="none", grad_clip=1.5, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a skipped batch warns
        summary = fit(recipe, tmp_path, data=toy_bundle(), progress=False, hooks=hooks, on_step=lambda e, s: s == 0)
    assert summary["status"] == "interrupted"
    state = ck.load_checkpoint(tmp_path / "last.pt")["state_dict"]
    n = hooks.initial["fc1.weight"].numel()
    step = 0.1 * 1.5 / n ** 0.5
    torch.testing.assert_close(hooks.initial["fc1.weight"] - state["fc1.weight"], torch.full((16, 12), step), rtol=1e-4, atol=0)
    for name in ("fc1.bias", "fc2.weight", "fc2.bias"):
        assert torch.equal(state[name], hooks.initial[name]), name


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_gradient_with_finite_loss_is_skipped(tmp_path, value):
    hooks = _GradHook(value)
    recipe = toy_recipe(optimizer="sgd", momentum=0.0, schedule="none", grad_clip=1.5, epochs=1)
    with pytest.warns(RuntimeWarning, match=r"non-finite loss [-0-9.e]+, gradient norm (nan|inf) at epoch 1 batch 0 .*batch skipped"):
        summary = fit(recipe, tmp_path, data=toy_bundle(), progress=False, hooks=hooks, on_step=lambda e, s: s == 0)
    assert summary["status"] == "interrupted"
    state = ck.load_checkpoint(tmp_path / "last.pt")["state_dict"]
    assert all(torch.equal(state[k], hooks.initial[k]) for k in state)  # no step was taken


def test_clip_gradients_near_float32_max():
    """Entries near float32's maximum: the norm (3e38 * 100) is finite in float64 and the scale (~5e-41, below
    float32's normal range) is applied in two halves, so the clipped norm is max_norm to float32 rounding."""
    from neuromorph.train.loop import clip_gradients

    p, q = torch.nn.Parameter(torch.zeros(100, 100)), torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.full((100, 100), 3e38)
    p.grad[0, 0] = -3e38
    q.grad = torch.tensor([1.0, -2.0, 0.5])
    norm = clip_gradients([p, q], 1.5)
    assert norm == pytest.approx(float(torch.tensor(3e38).double()) * 100, rel=1e-9)
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten(), q.grad]).double())
    assert float(total) == pytest.approx(1.5, rel=1e-6)
    assert float(p.grad[0, 0]) == pytest.approx(-0.015, rel=1e-6)
    assert clip_gradients([p, q], None) == pytest.approx(1.5, rel=1e-5)  # measured (float32 per-tensor norms), not scaled
    assert float(p.grad[0, 0]) == pytest.approx(-0.015, rel=1e-6)


def test_gradient_whose_square_overflows_the_optimiser_state_is_skipped(tmp_path):
    """Without grad_clip, one finite gradient of 1e20 made Adam's second moment inf (1e40 in float32): the
    parameter then never moved again and training went on silently. That batch is now skipped, with the
    parameter named and grad_clip suggested; the optimiser state stays finite and fc1.weight keeps learning."""
    from neuromorph.train.loop import Hooks

    seen = []

    class OneHuge(Hooks):  # the second backward's fc1.weight gradient becomes 1e20 everywhere
        def build_optimizers(self, model, recipe, n_batches):
            model.fc1.weight.register_hook(lambda g: torch.full_like(g, 1e20) if len(seen) == 1 else g)
            model.fc1.weight.register_hook(lambda g: seen.append(1) or g)
            return super().build_optimizers(model, recipe, n_batches)

    recipe = toy_recipe(optimizer="adam", schedule="none", grad_clip=None, epochs=1)
    with pytest.warns(RuntimeWarning, match=r"unusable loss [-0-9.e]+, gradient norm [0-9.e+]+ \(gradient entries of "
                                            r"'fc1.weight' beyond 1.84e\+19.*set grad_clip\) at epoch 1 batch 1"):
        fit(recipe, tmp_path, data=toy_bundle(), progress=False, hooks=OneHuge(), on_step=lambda e, s: s == 4)
    state = ck.load_checkpoint(tmp_path / "last.pt")
    moments = [t for opt in state["train_state"]["optimizers"] for st in opt["state"].values() for t in st.values()
               if isinstance(t, torch.Tensor) and t.is_floating_point()]
    assert moments and all(bool(torch.isfinite(t).all()) for t in moments)
    assert state["train_state"]["accum"]["skipped"] == 1
