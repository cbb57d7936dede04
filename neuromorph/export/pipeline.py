"""Export of a training checkpoint: the one path behind ``neuromorph export`` and the automatic export at
the end of ``neuromorph train``, so that both write the same files and give the same check verdict.

Steps (:func:`export_checkpoint`): load the checkpoint; build the tracing sample from the recorded input
shape (zeros ``[steps, 1, *input_shape]``: the mapping depends on shapes only, and a fixed sample keeps the
verdict independent of which data happen to be at hand); put the model into the form its recipe evaluates
(the recipe's evaluation context, e.g. the DCLS delay recipe's rounded integer delays, so the exported
delays are the ones the reported accuracy was measured with); check it against a hardware profile with
:func:`~neuromorph.export.constraints.check_model` when asked; write the NIR graph or the netx file.
What the mapping changed or added (rounded delays, max-pool gate layers, latency) is listed in ``notes``.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch

from neuromorph.errors import CheckpointError, ConfigError
from neuromorph.nn.protocol import declaration

if TYPE_CHECKING:
    from neuromorph.export.constraints import CheckReport

#: the profile the automatic export after training checks against: Lava's netx networks run on Loihi 2
DEFAULT_PROFILE = "loihi2"


@dataclass
class ExportResult:
    """What an export did: ``written`` is False when the check failed (then ``error`` says why)."""

    to: str
    out: Path
    written: bool = False
    check: CheckReport | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {"to": self.to, "out": str(self.out), "written": self.written, "check": None if self.check is None else self.check.as_dict(),
             "notes": list(self.notes), "warnings": list(self.warnings), **self.details}
        if self.error is not None:
            d["error"] = self.error
        return d


def tracing_sample(info: dict[str, Any], steps: int | None = None, checkpoint: str | Path = "checkpoint") -> torch.Tensor:
    """Zeros ``[steps, 1, *input_shape]`` from what a checkpoint recorded (``steps`` default: the data's
    recorded number of steps, else the recipe's time bins, else 10)."""
    shape = info.get("input_shape")
    if not shape:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} records no input_shape; cannot build a tracing sample "
                              f"(save the model with neuromorph.save_model(..., input_shape=...))", file=checkpoint)
    if steps is None:
        steps = int((info.get("data") or {}).get("n_steps", 0) or (info.get("recipe") or {}).get("n_time_bins", 0) or 10)
    if steps < 1:
        raise ConfigError(f"--steps={steps} must be >= 1", field="--steps")
    return torch.zeros((steps, 1, *shape))


def _delay_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The layers declared ``delayed_linear`` in the layer protocol (a subclass or a user's own layer too)."""
    return {n: m for n, m in model.named_modules() if getattr(declaration(m), "op", None) == "delayed_linear"}


@contextlib.contextmanager
def evaluated_form(model: torch.nn.Module, info: dict[str, Any], checkpoint: str | Path = "checkpoint") -> Iterator[list[str]]:
    """Within the block, ``model`` is in the form its recipe evaluates it (the recipe's evaluation context;
    restored afterwards). Yields the notes that say what that changed (delays rounded to integers)."""
    notes: list[str] = []
    if "recipe" not in info:
        yield notes
        return
    from neuromorph.export.nir import _delays_are_integer
    from neuromorph.train.evaluation import checkpoint_recipe
    from neuromorph.train.loop import hooks_for

    recipe = checkpoint_recipe(info, checkpoint)
    real = [n for n, m in _delay_layers(model).items() if not _delays_are_integer(m)]
    with hooks_for(recipe).eval_context(model):
        layers = _delay_layers(model)
        rounded = [n for n in real if _delays_are_integer(layers[n])]
        if rounded:
            d_max = max(int(layers[n].integer_delays().max()) for n in rounded)
            notes.append(
                f"delays: exported with the integer delays that recipe {recipe.name!r} evaluates with (DelayedLinear "
                f"{', '.join(repr(n) for n in rounded)}: positions rounded, sigma 0; max delay {d_max} steps); the reported "
                "accuracy is for these delays"
            )
        yield notes


def export_model(model: torch.nn.Module, sample: torch.Tensor, to: str, out: str | Path, check: str | None = None,
                 dt: float | None = None, strict: bool = True) -> ExportResult:
    """Check ``model`` against the profile ``check`` (if given) and write it to ``out`` as NIR (``to="nir"``)
    or Lava netx (``"lava"``). A failed check writes nothing and returns ``written=False`` with the report;
    errors of the mapping itself raise (``ExportError``) as ``to_nir``/``to_lava`` do."""
    from neuromorph.export.constraints import check_model, map_and_check, mapping_costs

    if to not in ("nir", "lava"):
        raise ConfigError(f"export target {to!r} is unknown; choose nir or lava")
    res = ExportResult(to=to, out=Path(out))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = None
        if check:
            # for lava, the network that passed the check is the one written (one trace, one quantization)
            res.check, net = map_and_check(model, sample, check, dt=dt) if to == "lava" else (check_model(model, sample, check, dt=dt), None)
            if not res.check.ok:
                res.error = f"model violates {res.check.profile} constraints: " + "; ".join(
                    f"{r['layer']}: {r['fix']}" if r["check"] == "mapping" else f"{r['layer']} {r['check']} {r['value']} (limit {r['limit']})"
                    for r in res.check.violations())
        if res.error is None and to == "nir":
            from neuromorph.export.nir import to_nir, write_nir

            graph = to_nir(model, sample, strict=strict, dt=dt)
            write_nir(graph, res.out)
            res.written = True
            res.details["nodes"] = len(graph.nodes)
            import nir

            from neuromorph.export.peers import peer_report

            # what snnTorch/Norse/SpikingJelly/Sinabs cannot do with the file, judged on the graph as the
            # peers load it (read back: the written file, not the in-memory graph, is what they see)
            res.details["peers"] = peer_report(nir.read(res.out))
            gates = [n for n, v in graph.nodes.items() if ((v.metadata or {}).get("neuromorph") or {}).get("role") == "maxpool_gate"]
            if gates:
                res.notes.append(f"max pooling: {', '.join(repr(g) for g in gates)} written as SumPool2d + IF gate (threshold 0.5, "
                                 "hard reset to 0), exact for spike input")
        elif res.error is None:
            from neuromorph.export.lava import to_lava
            from neuromorph.export.netx import read_netx, write_netx

            if net is not None:
                write_netx(net, res.out)
            else:
                to_lava(model, res.out, sample, dt=dt)
            res.written = True
            net = read_netx(res.out)
            res.details["layers"] = [
                {"name": l.name, "kind": l.kind, "shape": list(l.shape), "weight_exponent": l.weight_exponent,
                 "vThMant": l.v_th_mant, "iDecay": l.i_decay, "vDecay": l.v_decay, "delays": l.delay is not None,
                 **({"role": l.extra["role"]} if l.extra.get("role") else {})}
                for l in net.layers
            ]
            res.notes.extend(row["note"] for row in mapping_costs(net))
    res.warnings = [str(w.message) for w in caught]
    return res


def export_checkpoint(checkpoint: str | Path, to: str, out: str | Path | None = None, check: str | None = None,
                      dt: float | None = None, steps: int | None = None, strict: bool = True,
                      **load_options: Any) -> ExportResult:
    """Export a training checkpoint (see the module docstring). ``out`` defaults to the checkpoint's path
    with ``.nir`` / ``.net.h5``; ``load_options`` go to :func:`neuromorph.train.checkpoint.load_model`
    (e.g. ``trust_builder`` for a model built by the user's own code)."""
    from neuromorph.train import checkpoint as ck

    model, info = ck.load_model(checkpoint, **load_options)
    sample = tracing_sample(info, steps, checkpoint)
    ckpt = Path(checkpoint)
    out = Path(out) if out else ckpt.with_suffix(".nir" if to == "nir" else ".net.h5")
    with evaluated_form(model, info, checkpoint) as notes:
        res = export_model(model, sample, to, out, check=check, dt=dt, strict=strict)
    res.notes[:0] = notes
    return res
