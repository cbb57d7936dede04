"""Fidelity of a trained recipe's exported files on its whole test split.

    python benchmarks/export_recipe.py RUN_DIR [--data-root DIR] [--json]

RUN_DIR is a ``neuromorph train`` output folder (best.pt, model.nir, model.net.h5, written by the automatic
export). On every test sample, in the form the recipe evaluates (``neuromorph.export.pipeline``: e.g. rounded
delays):

- NIR: ``from_nir(model.nir)`` against the float model, every spiking layer (spikes differing, of all);
- Loihi: ``fidelity_report`` of ``model.net.h5`` (bit-accurate simulator): per-layer spike match rate,
  float vs quantized accuracy; for max-pool gate layers, whether they equal the max pooling of the simulated
  layer before them exactly (one step later).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from neuromorph.export import fidelity_report, from_nir, read_netx, simulate
    from neuromorph.export.nir import _clean
    from neuromorph.export.pipeline import evaluated_form
    from neuromorph.train import checkpoint as ck
    from neuromorph.train.data import load_split
    from neuromorph.train.evaluation import checkpoint_recipe

    model, info = ck.load_model(args.run / "best.pt")
    recipe = checkpoint_recipe(info, args.run / "best.pt", data_root=args.data_root)
    data = load_split(recipe, "test", info.get("data", {}).get("n_steps"))
    back = from_nir(args.run / "model.nir")
    layers = read_netx(args.run / "model.net.h5").layers
    mods = dict(model.named_modules())
    names = [n for n in mods if n and _clean(n) in back.nodes and _clean(n) in {l.name.rsplit("->", 1)[-1] for l in layers if l.spiking}]
    nir_diff = nir_total = 0
    match = {l.name: [] for l in layers if l.spiking}
    gate_exact = True
    y_true, p_float, p_quant = [], [], []
    with evaluated_form(model, info, args.run / "best.pt"):
        for start in range(0, len(data), args.batch):
            x, y = data.batch(torch.arange(start, min(start + args.batch, len(data))))
            x = x.float()
            outs = {}
            hooks = [mods[n].register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o)) for n in names]
            hooks += [back.nodes[_clean(n)].register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__("nir:" + n, o)) for n in names]
            with torch.no_grad():
                model(x), back(x)
            for h in hooks:
                h.remove()
            for n in names:
                nir_diff += int((outs[n] != outs["nir:" + n]).sum())
                nir_total += outs[n].numel()
            rep = fidelity_report(model, args.run / "model.net.h5", x, y)
            for r in rep.layers:
                if r["match_rate"] is not None:
                    match[r["layer"]].append(r["match_rate"])
            y_true += y.tolist()
            p_float.append(rep.accuracy_float * len(y))
            p_quant.append(rep.accuracy_quantized * len(y))
            sim = simulate(args.run / "model.net.h5", x)
            for i, l in enumerate(layers):
                if l.extra.get("role") == "maxpool_gate":
                    prev = torch.from_numpy(sim.spikes[i - 1]).double()
                    k, s, p = l.weight.shape[-1], l.stride[0], l.padding[0]
                    pooled = torch.nn.functional.max_pool2d(prev.flatten(0, 1), k, s, p).reshape(sim.spikes[i].shape).numpy()
                    gate_exact &= bool(np.array_equal(sim.spikes[i][1:], pooled[:-1]))
    n = len(y_true)
    result = {
        "run": str(args.run), "recipe": recipe.name, "test_samples": n,
        "nir_spikes_differing": nir_diff, "nir_spikes_compared": nir_total, "nir_layers": names,
        "loihi_match_rate": {k: float(np.mean(v)) for k, v in match.items() if v},
        "accuracy_float": sum(p_float) / n, "accuracy_loihi_sim": sum(p_quant) / n,
        "maxpool_gates_exact": gate_exact if any(l.extra.get("role") == "maxpool_gate" for l in layers) else None,
    }
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
