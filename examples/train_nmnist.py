"""Train the N-MNIST conv SNN on event frames and evaluate it on the test split.

    python examples/train_nmnist.py --data-root DATA_ROOT --epochs 3

DATA_ROOT holds N-MNIST's own layout, Train/<label>/<id>.bin and Test/<label>/<id>.bin (40-bit ATIS
files). The same run from the command line: ``neuromorph train nmnist --data-root DATA_ROOT``.
"""

import argparse

from neuromorph.train import fit, resolve_recipe

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data-root", required=True, help="N-MNIST root (Train/ and Test/)")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--out", default="runs/example-nmnist")
args = parser.parse_args()

# the named recipe (5 frames per sample, conv-BN-LIF x2 with 32/64 channels, Adam + cosine) with two overrides
recipe = resolve_recipe("nmnist", data_root=args.data_root, epochs=args.epochs)
summary = fit(recipe, args.out, overwrite=True)
print(f"test accuracy {summary['test_accuracy']:.3f} on {summary['n_test']} samples "
      f"(best epoch {summary['best_epoch']}, mean firing rate {summary['mean_firing_rate']:.3f})")
print(f"checkpoints in {args.out}; evaluate again with: neuromorph eval {args.out}/best.pt")
