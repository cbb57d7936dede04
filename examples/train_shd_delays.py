"""Train the DCLS delay SNN (Hammouamri et al., ICLR 2024) on SHD-format spike data, briefly.

    python examples/train_shd_delays.py --data-root DATA_ROOT --epochs 4

DATA_ROOT holds ``*_train.h5`` and ``*_test.h5`` in SHD's HDF5 layout (the real SHD, or shd_fsdd). The
recipe is that of the paper's code (``best_config_SHD.py``): 10 ms count bins of 700 channels summed in
groups of 5, two hidden layers of 256 with learnable delays up to 250 ms, two Adam optimisers (weights
under OneCycle, positions under cosine), σ shrinking every epoch, evaluation with integer delays,
summed-softmax readout. The paper trains 150 epochs; a few epochs here only show the pipeline working.
"""

import argparse

import torch

from neuromorph.nn.delays import delayed_layers
from neuromorph.train import fit, load_model, resolve_recipe

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data-root", required=True, help="folder with *_train.h5 and *_test.h5")
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--out", default="runs/example-shd")
args = parser.parse_args()

recipe = resolve_recipe("shd", data_root=args.data_root, epochs=args.epochs, batch_size=args.batch_size)
summary = fit(recipe, args.out, overwrite=True)
print(f"test accuracy {summary['test_accuracy']:.3f} (integer delays) on {summary['n_test']} samples")

# the trained delays, rounded to whole 10 ms steps as they would run on hardware
model, info = load_model(f"{args.out}/best.pt")
for i, layer in enumerate(delayed_layers(model)):
    d = layer.integer_delays()
    print(f"layer {i}: delays 0..{layer.kernel_size - 1} steps, mean {d.float().mean():.1f}, "
          f"histogram {torch.bincount(d.flatten(), minlength=layer.kernel_size).tolist()}")
