"""The training loop projects every layer that declares ``apply_constraints()`` after each optimizer step."""

from __future__ import annotations

import torch

import neuromorph as nm
from neuromorph.train import checkpoint as ck
from neuromorph.train.loop import fit

from tests.train.helpers import toy_bundle, toy_recipe


class ConstrainedNet(torch.nn.Sequential):
    """Defined here, as a user would: a Linear, an SE-adLIF layer (constrained), a Linear readout, and a
    layer of the user's own with a constraint, to show the loop is generic."""

    def __init__(self, in_features: int = 12, n_classes: int = 3):
        super().__init__(nm.nn.Linear(in_features, 8), nm.nn.SEAdLIF(8), nm.nn.Linear(8, n_classes), UnitNorm(n_classes))


class UnitNorm(torch.nn.Module):
    """Scales its input by a learnable gain kept in [0.5, 0.75] by its own projection."""

    layer_decl = nm.nn.LayerDecl(nm.nn.Role.ACTIVATION, "scale")

    def __init__(self, n: int):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.full((n,), 0.6))
        self.calls = 0

    def forward(self, x):
        return x * self.gain

    def apply_constraints(self) -> None:
        self.calls += 1
        with torch.no_grad():
            self.gain.clamp_(0.5, 0.75)


ck.register_builder("tests.ConstrainedNet", ConstrainedNet)


def test_fit_projects_declared_constraints_after_every_step(tmp_path):
    data = toy_bundle(n_train=48)
    # a large learning rate pushes the parameters far out of their ranges at every step
    recipe = toy_recipe(model="tests.ConstrainedNet", epochs=2, lr=3.0, schedule="none", batch_size=16)
    fit(recipe, tmp_path / "run", data=data, progress=False)
    state = ck.load_checkpoint(tmp_path / "run" / "last.pt")["state_dict"]
    for name, hi in (("1.w_u", 1.0), ("1.w_w", 1.0), ("1.a", 1.0), ("1.b", 2.0), ("3.gain", 0.75)):
        p = state[name]
        assert p.max() <= hi and p.min() >= (0.5 if name == "3.gain" else 0.0), name
    # the projection acted (values sit on the bounds), it did not just happen to stay inside
    on_bounds = sum(int(((state[n] == 0) | (state[n] == hi)).sum()) for n, hi in (("1.a", 1.0), ("1.b", 2.0)))
    assert on_bounds > 0
    assert bool(((state["3.gain"] == 0.5) | (state["3.gain"] == 0.75)).all())


def test_apply_constraints_walks_the_model():
    net = ConstrainedNet()
    with torch.no_grad():
        net[1].a.fill_(5.0)
        net[3].gain.fill_(9.0)
    nm.nn.apply_constraints(net)
    assert bool((net[1].a == 1.0).all()) and bool((net[3].gain == 0.75).all()) and net[3].calls == 1
