"""neuromorph.train: the training loop, checkpoints, metrics, recipes and distributed runs."""

from neuromorph.train.checkpoint import load_checkpoint, load_model, register_builder, save_checkpoint
